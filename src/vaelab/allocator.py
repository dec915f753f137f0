"""How glibc's malloc serves tensors of tens of MB: a bounded heap by default.

Training and the IS evaluation allocate and free the same few tensors of 4-60 MB over and
over (the IS evaluation pushes k x B rows through the decoder in chunks of 15,000; its
hidden layer and logits are 30-47 MB on the MLP).  glibc's default is a *dynamic* mmap
threshold: a block above it is mmapped and handed back to the kernel when freed, but each
such free raises the threshold to that block's size (up to 32 MB), after which blocks of
that size come from the heap.  There, small allocations that outlive a chunk most likely
land in the freed big blocks and split them, so the next chunk's blocks no longer fit and
the heap grows again: measured in sweep workers on 2 cores (2026-12-07, Intel Xeon), the
heap of a worker evaluating a DVAE after training it reached 6.9 GB, one evaluating the
VampPrior at N_z = 200 was killed by the kernel at 23 GB, while the same evaluations in a
fresh process stayed under 1 GB.  How far the threshold has risen depends on what the
process did before, which is why a fresh process does not show it.

:func:`tune_malloc` sets the mode (``VAELAB_MALLOC``) when a phase starts (training in
``Trainer.fit``, evaluation in ``evaluate_model`` and a sweep worker's start):

* ``bounded`` (default).  Evaluating: mmap and trim thresholds at 1 GiB, so a chunk's
  big blocks are reused from the heap without page faults, and :func:`release_free_memory`
  hands the heap's free pages back (``malloc_trim``) at most once a second, between
  batches of images, so that fragments cannot pile up: the VampPrior's evaluation at
  N_z = 200 in a worker stayed at 1.2-1.5 GB over 1,800 images, and the CNN's evaluation ran
  1.3x faster than with a fixed 4 MiB mmap threshold, which kept memory flat (0.83 GB) by
  mmapping every block of 4 MiB or more afresh (BENCHMARKS.md, section 3).  Training: the mmap threshold
  fixed at 16 MiB with a 256 MiB trim threshold, because an IWAE step (k = 50) allocates
  and frees blocks of 4-16 MiB, and mmapping them afresh every step made its epoch 1.22x
  slower; a training step allocates the same blocks every time, so its heap does not creep.
* ``keep``: mmap and trim thresholds at 1 GiB: freed big blocks stay in the process and are
  reused without page faults, 1.13x faster IS evaluation on the MLP (BENCHMARKS.md), but
  the heap then grows as above (1.1 GB -> 3.9 GB over 300 VampPrior images).  Only for
  short evaluations you watch.
* ``glibc``: leave glibc's defaults.

The numbers are the same to the last digit in every mode: only where memory comes from
changes.  A no-op off glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import functools
import sys
import time

from .errors import env_choice

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
TRAIN_MMAP = 16 << 20  # training: from 16 MiB up (an IWAE step's 4-16 MiB blocks stay in the heap)
TRAIN_TRIM = 256 << 20  # ... and a free heap top up to 256 MiB is kept, not handed back every step
KEEP = 1 << 30  # blocks below 1 GiB from the heap and kept there
MODES = ("bounded", "keep", "glibc")
ENV = "VAELAB_MALLOC"


def malloc_mode() -> str:
    """The mode ``VAELAB_MALLOC`` asks for (default ``bounded``); a ConfigError for another."""
    return env_choice(ENV, MODES, "malloc mode")


@functools.lru_cache(maxsize=1)
def _libc():
    """This process's C library where it is glibc on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not all(hasattr(libc, name) for name in ("mallopt", "malloc_trim")):
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc


PHASES = ("evaluate", "train")
_phase: str | None = None  # the phase tune_malloc last set


def tune_malloc(phase: str = "evaluate") -> str:
    """Set glibc's malloc to :func:`malloc_mode` for ``phase`` (process-wide; each phase
    sets its own thresholds when it starts).  -> the mode in force (``glibc`` where it asked
    for that, or where this is not glibc)."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    global _phase
    mode = malloc_mode()
    libc = _libc() if mode != "glibc" else None
    if libc is None:
        return "glibc"
    # keep: 1 GiB in every phase; bounded: 16 MiB training, 1 GiB evaluating (pages released between batches)
    mmap, trim = (TRAIN_MMAP, TRAIN_TRIM) if mode == "bounded" and phase == "train" else (KEEP, KEEP)
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim))
    if phase == "evaluate" and _phase != "evaluate":
        release_free_memory(force=True)  # what training kept free goes back, once (a no-op unless bounded)
    _phase = phase
    return mode if ok else "glibc"



RELEASE_EVERY_S = 1.0  # at most one release a second: each costs the next batch its page faults
_last_release = 0.0


def release_free_memory(force: bool = False) -> None:
    """In the ``bounded`` mode, hand the heap's free pages back to the kernel (glibc's
    ``malloc_trim``), at most once every :data:`RELEASE_EVERY_S` seconds unless ``force``:
    an evaluation calls it after every batch of images, and the pages it hands back are
    faulted in again by the next batch.  A no-op in the other modes and off glibc."""
    global _last_release
    libc = _libc()
    if libc is None or malloc_mode() != "bounded":
        return
    now = time.monotonic()
    if force or now - _last_release >= RELEASE_EVERY_S:
        libc.malloc_trim(0)
        _last_release = time.monotonic()

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

* ``bounded`` (default): the mmap threshold fixed, which turns the dynamic adjustment
  off.  Evaluating: at 4 MiB, so blocks of 4 MiB and more always come from mmap and go back
  at free, and the heap holds only small blocks and cannot grow by fragments of big ones
  (a fixed 16 MiB let the VampPrior's evaluation at N_z = 200 grow from 1.05 to 3.6 GB over
  1,800 images).  Training: at 16 MiB with a 256 MiB trim threshold, because an IWAE step
  (k = 50) allocates and frees blocks of 4-16 MiB, and mmapping them afresh every step made
  its epoch 1.22x slower (4.4 against 3.6 s on 3,000 images; BENCHMARKS.md, section 3);
  a training step allocates the same blocks every time, so its heap does not creep.
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
import os
import sys

from .errors import ConfigError

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
BOUNDED_MMAP = 4 << 20  # evaluating: blocks from 4 MiB up mmapped, returned at free
BOUNDED_TRIM = 128 << 10  # glibc's default trim threshold (it stays there once the mmap one is fixed)
TRAIN_MMAP = 16 << 20  # training: from 16 MiB up (an IWAE step's 4-16 MiB blocks stay in the heap)
TRAIN_TRIM = 256 << 20  # ... and a free heap top up to 256 MiB is kept, not handed back every step
KEEP = 1 << 30  # blocks below 1 GiB from the heap and kept there
MODES = ("bounded", "keep", "glibc")
ENV = "VAELAB_MALLOC"


def malloc_mode() -> str:
    """The mode ``VAELAB_MALLOC`` asks for (default ``bounded``); a ConfigError for another."""
    mode = os.environ.get(ENV, "bounded").strip().lower() or "bounded"
    if mode not in MODES:
        raise ConfigError(f"{ENV}={mode!r} is not a malloc mode; use one of {', '.join(MODES)}")
    return mode


def _mallopt():
    """glibc's ``mallopt``, or None (not Linux, not glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return None
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return fn


PHASES = ("evaluate", "train")


def tune_malloc(phase: str = "evaluate") -> str:
    """Set glibc's malloc to :func:`malloc_mode` for ``phase`` (process-wide; each phase
    sets its own thresholds when it starts).  -> the mode in force (``glibc`` where it asked
    for that, or where this is not glibc)."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    mode = malloc_mode()
    mallopt = _mallopt() if mode != "glibc" else None
    if mallopt is None:
        return "glibc"
    if mode == "keep":
        ok = bool(mallopt(M_MMAP_THRESHOLD, KEEP)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP))
    elif phase == "train":
        ok = bool(mallopt(M_MMAP_THRESHOLD, TRAIN_MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, TRAIN_TRIM))
    else:
        ok = bool(mallopt(M_MMAP_THRESHOLD, BOUNDED_MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, BOUNDED_TRIM))
        _malloc_trim()  # what training kept free goes back: evaluation's big blocks are mmaps of their own
    return mode if ok else "glibc"


def _malloc_trim() -> None:
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass

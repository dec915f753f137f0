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

:func:`tune_malloc` sets the mode once per process (``VAELAB_MALLOC``):

* ``bounded`` (default): the mmap threshold fixed at 4 MiB, which turns the dynamic
  adjustment off: blocks of 4 MiB and more always come from mmap and go back at free, so
  the heap holds only small blocks and cannot grow by fragments of big ones.
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
BOUNDED_MMAP = 4 << 20  # blocks from 4 MiB up: mmapped, returned at free
KEEP = 1 << 30  # blocks below 1 GiB from the heap and kept there
MODES = ("bounded", "keep", "glibc")
ENV = "VAELAB_MALLOC"

_done: str | None = None


def malloc_mode() -> str:
    """The mode ``VAELAB_MALLOC`` asks for (default ``bounded``); a ConfigError for another."""
    mode = os.environ.get(ENV, "bounded").strip().lower() or "bounded"
    if mode not in MODES:
        raise ConfigError(f"{ENV}={mode!r} is not a malloc mode; use one of {', '.join(MODES)}")
    return mode


def tune_malloc() -> str:
    """Set glibc's malloc to :func:`malloc_mode` once per process.  -> the mode in force
    (``glibc`` where it asked for that, or where this is not glibc)."""
    global _done
    if _done is not None:
        return _done
    mode = malloc_mode()
    _done = "glibc"
    if mode == "glibc" or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mode == "bounded":
        ok = bool(mallopt(M_MMAP_THRESHOLD, BOUNDED_MMAP))
    else:
        ok = bool(mallopt(M_MMAP_THRESHOLD, KEEP)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP))
    _done = mode if ok else "glibc"
    return _done

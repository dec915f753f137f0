"""Keep freed memory in the process: glibc's malloc tuned for tensors of tens of MB.

The IS evaluation pushes k x B rows through the decoder in chunks of 15,000: every chunk
allocates the same few tensors of 30-47 MB (the decoder's hidden layer and logits) and
frees them.  With glibc's defaults a block that large is given back to the kernel when
freed (``munmap``: its dynamic mmap threshold stops at 32 MB; a heap trim for smaller
ones), so the next chunk's identical block comes back as fresh pages, each zeroed by a
page fault on first touch: on the MLP at k = 5000 a fifth of the evaluation went to the
``copy_`` that seeds ``addmm``'s output with the bias and to ``relu``'s output, both mostly
page faults.  Raising both thresholds keeps such blocks in the heap and reuses them:
measured 1.2-1.4x faster per image on two threads, 1.1-1.2x on one (BENCHMARKS.md,
"Levers").  The numbers are the same to the last digit: only where the memory comes from
changes.

**Off by default: opt in with ``VAELAB_KEEP_FREED_MEMORY=1``.**  The heap does not stay
at its peak, it grows (most likely small allocations that outlive a chunk land inside the
freed big blocks and split them, so the next chunk's blocks no longer fit and glibc extends
the heap).  Measured on the VampPrior at N_z = 200 (``evaluate_model``, k = 5000, three
images per chunk, one thread): resident memory 1.1, 1.4, 2.5, 3.1, 3.9 GB after 60, 120,
180, 240, 300 images, against 0.49, 0.51, 0.51, 0.51, 0.51 GB with glibc's defaults; a sweep worker evaluating it on 10,000 images was killed by the kernel at
23 GB.  Process-wide and idempotent; a no-op off glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP = 1 << 30  # blocks below 1 GiB from the heap: the IS chunk's 47 MB logits included (the
TRIM = 1 << 30  # dynamic threshold stops at 32 MB); a thread arena that cannot fit one falls back to mmap

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process, where
    ``VAELAB_KEEP_FREED_MEMORY=1`` asks for it.  -> whether they are set."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux") or os.environ.get("VAELAB_KEEP_FREED_MEMORY", "0") != "1":
        return _done
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM))
    return _done

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

Process-wide and idempotent; a no-op off glibc (macOS, Windows, musl) or when
``VAELAB_KEEP_FREED_MEMORY=0``.  The cost is that up to ``TRIM`` bytes of freed memory
stay with the process instead of going back to the system.
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
    """Raise glibc's mmap and trim thresholds once per process.  -> whether they are set."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux") or os.environ.get("VAELAB_KEEP_FREED_MEMORY", "1") == "0":
        return _done
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM))
    return _done

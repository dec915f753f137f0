"""allocator.keep_freed_memory: a tensor of tens of MB comes from the heap, not from a fresh
mmap, once it is on (VAELAB_KEEP_FREED_MEMORY=1); glibc's defaults otherwise, since the
heap then grows without bound on some models (allocator.py).  Each check in its own
process: the setting is process-wide."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# mallinfo2().hblkhd: bytes in blocks glibc got from mmap (each freed back to the kernel, and
# page-faulted in anew next time).  A 48 MB tensor, the size of an IS chunk's decoder output
# (15,000 x 784 floats), above the 32 MB where glibc's own dynamic threshold stops.
PROBE = r"""
import ctypes, sys, torch
from vaelab.allocator import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
on = keep_freed_memory()
assert keep_freed_memory() == on  # once per process
t = torch.empty(12_000_000)
t.fill_(1.0)
print(int(on), libc.mallinfo2().hblkhd)
"""


def probe(**env):
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def test_a_block_of_tens_of_mb_comes_from_the_heap_when_on():
    try:
        on, mapped = probe(VAELAB_KEEP_FREED_MEMORY="1")
    except subprocess.CalledProcessError as e:
        if "mallinfo2" in e.stderr:
            pytest.skip("not glibc >= 2.33")
        raise
    assert on == 1
    assert mapped < 48_000_000  # the 48 MB block is not an mmap of its own


@pytest.mark.parametrize("env", [{}, {"VAELAB_KEEP_FREED_MEMORY": "0"}])
def test_off_by_default_leaves_glibc_as_it_was(env, monkeypatch):
    monkeypatch.delenv("VAELAB_KEEP_FREED_MEMORY", raising=False)
    on, mapped = probe(**env)
    assert on == 0
    assert mapped >= 48_000_000  # glibc's default: a block this size is mmapped

"""allocator.tune_malloc: where a tensor of tens of MB comes from in each VAELAB_MALLOC mode
(mallinfo2: bytes in mmapped blocks), and that the default keeps the heap from growing
when big blocks of several sizes come and go.  Each check in its own process: the
setting is process-wide."""

import os
import subprocess
import sys

import pytest

from vaelab.allocator import malloc_mode
from vaelab.errors import ConfigError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# Both probes' start: libc.mallinfo2().hblkhd is the bytes in blocks glibc got from mmap.
MALLINFO = r"""
import ctypes, torch
from vaelab.allocator import release_free_memory, tune_malloc
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
"""

# RSS from /proc/self/statm.
PROBE = MALLINFO + r"""
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
mode = tune_malloc()
assert tune_malloc() == mode
t = torch.empty(12_000_000)  # 48 MB: an IS chunk's decoder output (15,000 x 784 floats)
t.fill_(1.0)
mapped = libc.mallinfo2().hblkhd
held = rss()
del t
release_free_memory(force=True)
freed = held - rss()  # resident bytes handed back once the block is freed
# Big blocks of several sizes freed, while small tensors made between them live on (as a
# chunk's results do), one batch after another, each followed by the release.
before = rss()
keep = []
for i in range(60):
    a = torch.empty(1_100_000 + 250_000 * (i % 7)).fill_(1.0)  # 4.4-10.4 MB
    b = torch.empty(2_000_000 + 100_000 * (i % 5)).fill_(1.0)
    keep.append(torch.zeros(64))
    del a, b
    release_free_memory(force=True)
print(mode, mapped, freed, rss() - before)
"""


def run_probe(code: str, **env) -> list[str]:
    """Run ``code`` in a fresh interpreter (the malloc settings are process-wide) with
    VAELAB_MALLOC from ``env`` only; -> its output's words."""
    run_env = {k: v for k, v in os.environ.items() if k != "VAELAB_MALLOC"}
    try:
        return subprocess.run([sys.executable, "-c", code], env={**run_env, **env}, check=True,
                              capture_output=True, text=True).stdout.split()
    except subprocess.CalledProcessError as e:
        if "mallinfo2" in e.stderr:
            pytest.skip("not glibc >= 2.33")
        raise


def probe(**env):
    out = run_probe(PROBE, **env)
    return out[0], int(out[1]), int(out[2]), int(out[3])  # mode, mmapped, freed resident, growth


def test_the_default_reuses_big_blocks_and_hands_their_pages_back():
    mode, mapped, freed, grown = probe()
    assert mode == "bounded"
    assert mapped < 48_000_000  # the 48 MB block came from the heap (reused, no fresh page faults)
    assert freed > 40_000_000  # ... and its pages went back to the kernel at the release
    assert grown < 8_000_000  # a loop of 4-10 MB blocks leaves at most ~one block resident


def test_keep_holds_big_blocks_in_the_heap():
    mode, mapped, freed, _ = probe(VAELAB_MALLOC="keep")
    assert mode == "keep"
    assert mapped < 48_000_000  # the 48 MB block came from the heap
    assert freed < 8_000_000  # and stays resident: no release in this mode


def test_glibc_leaves_the_defaults():
    mode, mapped, _, _ = probe(VAELAB_MALLOC="glibc")
    assert mode == "glibc"
    assert mapped >= 48_000_000  # glibc's default: a block this size is mmapped


def test_an_unknown_mode_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("VAELAB_MALLOC", "jemalloc")
    with pytest.raises(ConfigError, match="bounded, keep, glibc"):
        malloc_mode()


TRAIN_PROBE = MALLINFO + r"""
out = []
for phase in ("train", "evaluate"):
    tune_malloc(phase)
    for n in (2_500_000, 12_000_000):  # 10 MB (an IWAE step's block), 48 MB (an IS chunk's)
        t = torch.empty(n).fill_(1.0)
        out.append(libc.mallinfo2().hblkhd >= 4 * n)
        del t
print(*out)
"""


def test_training_mmaps_only_blocks_from_16_mib_and_evaluation_none():
    out = run_probe(TRAIN_PROBE)
    # mmapped?  training: 10 MB no, 48 MB yes; evaluating: neither (reused, released per batch)
    assert out == ["False", "True", "False", "False"]

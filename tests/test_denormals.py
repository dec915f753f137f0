"""vaelab.denormals: flush-to-zero on the CPU, what it changes (denormal results become 0)
and what it does not (the weights Adam computes)."""

import math
import subprocess
import sys

import pytest
import torch

from vaelab.denormals import ENV, denormal_mode, flush_denormals, flushed, flushing
from vaelab.errors import ConfigError

TINY = torch.finfo(torch.float32).tiny  # smallest normal float32, 1.18e-38
CAN_FLUSH = torch.set_flush_denormal(False)  # True where the CPU has the flags (x86 with SSE3)
needs_flags = pytest.mark.skipif(not CAN_FLUSH, reason="this CPU cannot flush denormals")


@pytest.fixture
def mode(monkeypatch):
    """Set VAELAB_DENORMALS and apply it in this thread; IEEE behaviour again afterwards."""
    def set_mode(value):
        monkeypatch.setenv(ENV, value)
        return flush_denormals()
    yield set_mode
    torch.set_flush_denormal(False)


def test_default_is_flush_and_bad_value_is_one_clear_error(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert denormal_mode() == "flush"
    monkeypatch.setenv(ENV, "sometimes")
    with pytest.raises(ConfigError, match="VAELAB_DENORMALS='sometimes' is not a denormal mode; use one of flush, keep"):
        denormal_mode()


@needs_flags
def test_flush_turns_denormal_results_into_zero_and_keep_does_not(mode):
    x = torch.tensor([1e-39, 3 * TINY, -1e-40])  # denormal, normal, denormal
    assert mode("keep") == "keep"
    kept = x * 1.0
    assert kept[0].item() == pytest.approx(1e-39, rel=1e-3) and kept[2].item() == pytest.approx(-1e-40, rel=1e-2)
    assert mode("flush") == "flush"
    flushed = x * 1.0
    assert flushed[0].item() == 0.0 and flushed[2].item() == 0.0
    assert flushed[1].item() == pytest.approx(3 * TINY, rel=1e-6)  # normal numbers untouched


def adam_state_after_silence(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on 1000 weights; after the first step half of them get exactly zero gradient
    (as MNIST's always-black border pixels give the first layer), so their first moment,
    0.1 * 4 after the first step, decays as 0.4 * 0.9^(t - 1).  -> (weights, first moments)."""
    p = torch.nn.Parameter(torch.full((1000,), 3.0))
    opt = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.99))
    silent = torch.arange(1000) >= 500
    for step in range(steps):
        opt.zero_grad()
        weight = torch.ones(1000) if step == 0 else (~silent).float()
        ((p - 1) ** 2 * weight).sum().backward()  # gradient 2(p - 1) = 4 at the start
        opt.step()
    return p.detach().clone(), opt.state[p]["exp_avg"].clone()


@needs_flags
def test_adam_moments_decay_into_denormals_and_flushing_leaves_the_weights_bit_identical(mode):
    steps = 860  # 0.4 * 0.9^859 = 1.98e-40: inside the denormal range (1.4e-45 .. 1.18e-38)
    expected = 0.4 * 0.9 ** (steps - 1)
    assert 1.4e-45 < expected < TINY
    silent = slice(500, None)
    mode("keep")
    w_keep, m_keep = adam_state_after_silence(steps)
    # checked now: with the flags on, a comparison reads a denormal as 0 too
    assert bool(((m_keep[silent] > 0) & (m_keep[silent] < TINY)).all())  # every silent moment is denormal
    assert math.isclose(float(m_keep[600]), expected, rel_tol=1e-4)
    mode("flush")
    w_flush, m_flush = adam_state_after_silence(steps)
    assert bool((m_flush[silent].view(torch.int32) == 0).all())  # ... and +0.0 when flushed (its bits)
    assert torch.equal(m_keep[:500], m_flush[:500])  # the live half: the same moments
    assert torch.equal(w_keep, w_flush)  # and every weight the same, bit for bit


@needs_flags
def test_torch_threads_started_after_the_flush_inherit_it():
    """The mode is per thread: set before torch's thread pool exists, every thread of a
    2-thread elementwise product flushes (a fresh interpreter, as a command or worker is)."""
    code = ("import torch; from vaelab.denormals import flush_denormals; print(flush_denormals()); "
            "torch.set_num_threads(2); x = torch.full((1 << 22,), 1e-39); "
            "print(torch.get_num_threads(), int((x * 1.0 != 0).sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "", "VAELAB_DENORMALS": "flush"}).stdout.split()
    assert out == ["flush", "2", "0"]


@needs_flags
def test_flushed_gives_the_caller_its_own_flags_back(mode, monkeypatch):
    mode("keep")
    monkeypatch.setenv(ENV, "flush")
    with flushed() as inside:
        assert inside == "flush" and flushing()  # the default mode, in force in the block
    assert not flushing()
    mode("flush")
    with flushed():
        pass
    assert flushing()  # a caller that flushed before still does


@needs_flags
def test_library_calls_leave_the_callers_arithmetic_ieee(mode, monkeypatch, tmp_path):
    """``evaluate_model`` and a whole command run in-process flush inside and not after: a
    program calling vaelab (or Hypothesis, which checks) keeps IEEE floats."""
    from tests.evaluation.test_likelihood import ppca
    from vaelab.cli import main
    from vaelab.evaluation import evaluate_model

    mode("keep")
    monkeypatch.delenv(ENV)
    model, x, _ = ppca(exact=False)
    evaluate_model(model, x, None, k=10, progress=False)
    assert not flushing()
    assert main(["eval", str(tmp_path / "no-such-run")]) == 2  # a command that fails inside its body
    assert not flushing()


def test_cli_names_a_bad_mode_in_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "vaelab.cli", "eval", str(tmp_path / "nothing")],
                         capture_output=True, text=True, env={"PATH": "", "VAELAB_DENORMALS": "often"})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "vaelab: error: VAELAB_DENORMALS='often' is not a denormal mode; use one of flush, keep"]

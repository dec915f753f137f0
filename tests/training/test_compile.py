"""train.compile: the compiled step trains the same model as the eager one up
to float rounding, and a failure to compile falls back to eager training, bit for bit."""

from __future__ import annotations

import pytest
import torch

from vaelab.config import RunConfig
from vaelab.training import Trainer
from vaelab.training import loop as loop_module

from .test_fast_path import tiny_dataset


def config(compile_: bool, **objective) -> RunConfig:
    return RunConfig.from_dict({
        "model": {"hidden": [32], "latent": 4},
        "objective": objective,
        "train": {"epochs": 2, "batch_size": 50, "seed": 3, "device": "cpu", "compile": compile_},
    })


def fit(tmp_path, name, cfg):
    tr = Trainer.open(cfg, tmp_path / name, progress=False).build(dataset=tiny_dataset(200))
    return tr, tr.fit()


def test_default_is_eager():
    assert RunConfig().train.compile is False


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("objective", [{}, {"name": "iwae", "k": 5}])
def test_compiled_step_matches_eager(tmp_path, monkeypatch, objective):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    eager, eager_state = fit(tmp_path, "eager", config(False, **objective))
    comp, comp_state = fit(tmp_path, "compiled", config(True, **objective))
    assert comp._compiled is not None  # it did compile (did not fall back)
    for (name, a), b in zip(eager.model.state_dict().items(), comp.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
    for m_e, m_c in zip(eager_state.metrics, comp_state.metrics):
        assert m_c["train_elbo"] == pytest.approx(m_e["train_elbo"], abs=1e-3)
        assert m_c["valid_elbo"] == pytest.approx(m_e["valid_elbo"], abs=1e-3)


def test_failed_compile_falls_back_to_eager_bit_for_bit(tmp_path, monkeypatch, capsys):
    def broken(fn, *args, **kwargs):
        def run(*a, **k):
            torch.randn(3)  # consumes random numbers before failing: the fallback must restore them
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(loop_module.torch, "compile", broken)
    eager, _ = fit(tmp_path, "eager", config(False))
    comp, _ = fit(tmp_path, "fallback", config(True))
    assert comp._compiled is None
    assert "train.compile failed" in capsys.readouterr().err
    for (name, a), b in zip(eager.model.state_dict().items(), comp.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_warmup_trains_eagerly(tmp_path, capsys):
    tr = Trainer.open(config(True, warmup_epochs=2), tmp_path / "w", progress=False).build(dataset=tiny_dataset(200))
    assert tr._compiled is None
    assert "KL warm-up" in capsys.readouterr().err

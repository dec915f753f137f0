"""The NaN guard: a diverging run rolls back with a halved learning rate, then fails
clearly; nothing non-finite reaches metrics or checkpoints."""

import json
import math

import pytest

from vaelab.config import RunConfig
from vaelab.errors import TrainingDiverged
from vaelab.training import train_run
from vaelab.runs.checkpoint import list_checkpoints, load_latest


def cfg(lr, retries=2, epochs=2):
    return RunConfig.from_dict({
        "model": {"latent": 4, "hidden": [32]},
        "optim": {"name": "sgd", "lr": lr, "betas": [0.0, 0.999]},
        "train": {"epochs": epochs, "batch_size": 100, "nan_retries": retries, "threads": 1},
        "data": {"train_limit": 1000, "test_limit": 200},
    })


def test_absurd_learning_rate_fails_clearly_and_writes_nothing_non_finite(tmp_path, data_dir, capsys):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as err:
        train_run(cfg(lr=1e12, retries=2), run, data_dir, progress=False)
    msg = str(err.value)
    assert "epoch 1" in msg and "step" in msg and "--lr" in msg and "\n" not in msg
    assert capsys.readouterr().err.count("halved the learning rate") == 2
    # Only the initial checkpoint exists, and it is finite.
    loaded = load_latest(run / "checkpoints")
    assert loaded.train_state().epoch == 0
    assert all(bool(t.isfinite().all()) for t in loaded.tensors.values() if t.is_floating_point())
    metrics = run / "metrics.jsonl"
    assert not metrics.exists() or metrics.read_text() == ""


def test_rollback_halves_the_rate_and_recovers(tmp_path, data_dir, monkeypatch):
    """A loss that is non-finite once (an injected fault) costs one retry and a halved lr."""
    from vaelab.objectives.elbo import ELBO

    original = ELBO.__call__
    calls = {"n": 0}

    def flaky(self, model, x, y=None, progress=1.0):
        calls["n"] += 1
        out = original(self, model, x, y, progress)
        if calls["n"] == 3:
            out["objective"] = out["objective"] * math.nan
        return out

    monkeypatch.setattr(ELBO, "__call__", flaky)
    run = tmp_path / "run"
    state = train_run(cfg(lr=0.1), run, data_dir, progress=False)
    assert state.epoch == 2 and state.retries == 1 and state.lr_scale == 0.5
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == [0.05, 0.05]
    assert all(math.isfinite(v) for r in rows for v in r.values() if not isinstance(v, str))  # "step" names the step
    assert len(list_checkpoints(run / "checkpoints")) >= 1

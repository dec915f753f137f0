"""`vaelab sweep --plan` (issue #13): per-run estimates from a short measurement, the
sweep's schedule replayed, and nothing run or written."""

from __future__ import annotations

import pytest

from vaelab.cli import main
from vaelab.config import RunConfig
from vaelab.sweep.experiment import Run, load_experiment
from vaelab.sweep.plan import EPOCH_OVERHEAD_S, RUN_OVERHEAD_S, RunEstimate, estimate, shape_key, wall_time


def run(**train) -> Run:
    cfg = RunConfig.from_dict({"train": {"epochs": 4, **train}})
    return Run("x", cfg, {})


def test_shape_ignores_what_does_not_change_cost():
    a = RunConfig.from_dict({"optim": {"lr": 0.01}, "train": {"seed": 1}, "objective": {"beta": 4.0}})
    b = RunConfig.from_dict({"optim": {"lr": 0.001}, "train": {"seed": 2}})
    assert shape_key(a) == shape_key(b)
    assert shape_key(a) != shape_key(RunConfig.from_dict({"model": {"latent": 200}}))
    assert shape_key(a) != shape_key(RunConfig.from_dict({"objective": {"name": "iwae", "k": 50}}))


def test_estimate_scales_measurements():
    r = run(valid_every=2)
    timing = {"step_s": 0.01, "epoch_fixed_s": 0.0, "valid_s": 1.0, "eval_s": 100.0, "steps_epoch": 500,
              "load_s": 2.0}
    (e,) = estimate([r], {shape_key(r.config): timing})
    # 4 epochs of 500 steps, validation after epochs 2 and 4, the evaluation once
    assert e.train_s == pytest.approx(4 * (5.0 + EPOCH_OVERHEAD_S) + 2 * 1.0)
    assert e.eval_s == pytest.approx(100.0 + 2 * 2.0 + RUN_OVERHEAD_S)  # the data is loaded twice


def test_wall_time_replays_the_schedule():
    ests = [RunEstimate(run(), t, 0.0) for t in (10.0, 4.0, 4.0, 4.0)]
    assert wall_time(ests, 1) == pytest.approx(22.0)
    assert wall_time(ests, 2) == pytest.approx(12.0)  # 10 | 4+4+4


@pytest.mark.slow
def test_plan_prints_estimates_and_runs_nothing(write_experiment, data_dir, tmp_path, capsys):
    exp = write_experiment(runs="{sweep: {model.latent: [2, 3]}}")
    out = tmp_path / "sweep"
    code = main(["sweep", str(exp), "--effort", "smoke", "--plan", "--workers", "1", "--out", str(out),
                 "--data-dir", str(data_dir)])
    assert code == 0
    text = capsys.readouterr().out
    ids = [r.id for r in load_experiment(exp, "smoke").runs]
    assert all(i in text for i in ids)
    assert "estimated wall time" in text
    assert not out.exists()

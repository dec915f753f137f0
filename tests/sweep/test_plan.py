"""`vaelab sweep --plan`: per-run estimates from a short measurement under each packing
(workers x threads), the packing with the most runs per hour chosen per run shape, the
sweep's schedule replayed, nothing run, and the choice saved for the sweep to follow."""

from __future__ import annotations

import time

import pytest

from vaelab.cli import main
from vaelab.config import RunConfig
from vaelab.sweep.experiment import Run, load_experiment
from vaelab.sweep import plan as plan_module
from vaelab.sweep.plan import (EPOCH_OVERHEAD_S, RUN_OVERHEAD_S, RunEstimate, choose, estimate, groups, load_packing,
                               packings, phased_wall_time, save_packing, shape_key, wall_time)
from vaelab.sweep.runner import packed_phases


def run(latent: int = 20, **train) -> Run:
    cfg = RunConfig.from_dict({"model": {"latent": latent}, "train": {"epochs": 4, **train}})
    return Run(f"x{latent}", cfg, {})


def test_shape_ignores_what_does_not_change_cost():
    a = RunConfig.from_dict({"optim": {"lr": 0.01}, "train": {"seed": 1}, "objective": {"beta": 4.0}})
    b = RunConfig.from_dict({"optim": {"lr": 0.001}, "train": {"seed": 2}})
    assert shape_key(a) == shape_key(b)
    assert shape_key(a) != shape_key(RunConfig.from_dict({"model": {"latent": 200}}))
    assert shape_key(a) != shape_key(RunConfig.from_dict({"objective": {"name": "iwae", "k": 50}}))
    assert shape_key(a) != shape_key(RunConfig.from_dict({"train": {"precision": "bfloat16"}}))


def test_estimate_scales_measurements():
    r = run(valid_every=2)
    timing = {"step_s": 0.01, "epoch_fixed_s": 0.0, "valid_s": 1.0, "eval_s": 100.0, "steps_epoch": 500,
              "load_s": 2.0}
    (e,) = estimate([r], {shape_key(r.config): timing})
    # 4 epochs of 500 steps, validation after epochs 2 and 4, the evaluation once
    assert e.train_s == pytest.approx(4 * (5.0 + EPOCH_OVERHEAD_S) + 2 * 1.0)
    assert e.eval_s == pytest.approx(100.0 + 2 * 2.0 + RUN_OVERHEAD_S)  # the data is loaded twice


def test_a_selection_stage_is_part_of_the_estimate():
    cfg = RunConfig.from_dict({"train": {"epochs": 4}, "select": {"key": "optim.lr", "values": [0.1, 0.01],
                                                                  "epochs": 3}})
    r = Run("s", cfg, {})
    timing = {"step_s": 0.01, "epoch_fixed_s": 0.0, "valid_s": 1.0, "eval_s": 0.0, "steps_epoch": 500}
    (e,) = estimate([r], {shape_key(r.config): timing})
    epoch = 5.0 + EPOCH_OVERHEAD_S
    assert e.train_s == pytest.approx(4 * (epoch + 1.0) + 2 * 3 * (epoch + 1.0))  # the run, and 2 x 3 epochs


def test_wall_time_replays_the_schedule():
    ests = [RunEstimate(run(), t, 0.0) for t in (10.0, 4.0, 4.0, 4.0)]
    assert wall_time(ests, 1) == pytest.approx(22.0)
    assert wall_time(ests, 2) == pytest.approx(12.0)  # 10 | 4+4+4


def test_packings_share_the_cores():
    assert packings(2) == [(2, 1), (1, 2)]
    assert packings(1) == [(1, 1)]
    assert packings(16) == [(16, 1), (8, 2), (1, 16)]
    assert all(w * t <= 16 for w, t in packings(16))
    assert [w for w, _ in packings(16, gpu=True)] == [1, 2, 4]  # processes sharing one GPU


def test_each_shape_gets_the_packing_with_the_most_runs_per_hour():
    small, big = run(3), run(200)
    by_packing = {
        (2, 1): [RunEstimate(small, 10.0, 0.0), RunEstimate(big, 6.0, 0.0)],
        (1, 2): [RunEstimate(small, 4.0, 0.0), RunEstimate(big, 4.0, 0.0)],
    }
    chosen = choose([small, big], by_packing)
    # small: 2 runs per 10 s against 1 per 4 s; big: 2 per 6 s against 1 per 4 s
    assert chosen == {shape_key(small.config): (1, 2), shape_key(big.config): (2, 1)}
    # equal rates: the packing with more workers
    tie = choose([small], {(2, 1): [RunEstimate(small, 8.0, 0.0)], (1, 2): [RunEstimate(small, 4.0, 0.0)]})
    assert tie == {shape_key(small.config): (2, 1)}


def test_the_packed_schedule_runs_one_phase_per_packing():
    a1, b, a2 = run(3), run(200), run(3, seed=2)
    packing = {shape_key(a1.config): (1, 2), shape_key(b.config): (2, 1)}
    phases = groups([a1, b, a2], packing, (2, 1))
    assert phases == [((1, 2), [a1, a2]), ((2, 1), [b])]
    ests = [RunEstimate(a1, 5.0, 0.0), RunEstimate(b, 7.0, 0.0), RunEstimate(a2, 5.0, 0.0)]
    assert phased_wall_time(ests, packing, (2, 1)) == pytest.approx(5 + 5 + 7)
    assert phased_wall_time(ests, packing, (2, 1), start_s=3.0) == pytest.approx(3 + 5 + 5 + 3 + 7)  # per phase
    unknown = run(10)  # a shape the plan never saw: the default packing
    assert groups([unknown], packing, (2, 1)) == [((2, 1), [unknown])]


def test_a_worker_start_is_measured_in_a_fresh_interpreter():
    start = plan_module.worker_start_s()
    assert 0.0 < start < 120.0  # an interpreter importing torch: seconds, never nothing


def test_the_feature_network_is_made_ready_once_per_dataset(monkeypatch):
    made = []
    monkeypatch.setattr(plan_module, "config_feature_net", lambda cfg, data_dir: made.append(cfg.data.dataset))
    logged = []
    plan_module.prepare_feature_nets([run(3), run(20), run(200, seed=2)], None, log=logged.append)
    assert made == ["mnist"]  # three runs, one dataset: one network, before any worker starts
    assert len(logged) == 1 and "ready" in logged[0]


def test_the_sweep_follows_a_saved_plan(tmp_path, monkeypatch):
    monkeypatch.setattr(plan_module, "usable_cores", lambda: 2)
    a, b = run(3), run(200)
    packing = {shape_key(a.config): (1, 2), shape_key(b.config): (2, 1)}
    save_packing(tmp_path, packing, cores=2)
    assert load_packing(tmp_path) == packing
    logged = []
    assert packed_phases([a, b], tmp_path, None, "local", logged.append) == [((1, 2), [a]), ((2, 1), [b])]
    assert "plan.json" in logged[0]
    assert packed_phases([a, b], tmp_path, 3, "local", logged.append) == [((3, None), [a, b])]  # --workers wins
    monkeypatch.setattr(plan_module, "usable_cores", lambda: 8)  # made on another machine: ignored
    assert load_packing(tmp_path) == {}
    assert load_packing(tmp_path / "nowhere") == {}


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


@pytest.mark.slow
def test_a_sweep_runs_the_packing_its_plan_chose(write_experiment, data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plan_module, "usable_cores", lambda: 2)
    exp = write_experiment(runs="{sweep: {model.latent: [2, 3]}}")
    out = tmp_path / "sweep"
    assert main(["sweep", str(exp), "--effort", "smoke", "--plan", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    text = capsys.readouterr().out
    assert "2 worker(s) x 1 thread(s)" in text and "1 worker(s) x 2 thread(s)" in text  # both measured
    chosen = load_packing(out)
    assert set(chosen.values()) <= {(2, 1), (1, 2)} and len(chosen) == 2
    assert sorted(p.name for p in out.iterdir()) == ["plan.json"]  # nothing run
    assert main(["sweep", str(exp), "--effort", "smoke", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    assert "following the plan" in capsys.readouterr().err


def test_the_evaluation_is_timed_on_a_warm_chunk(data_dir, monkeypatch):
    """A long evaluation reuses its chunks' memory, so only its first chunk pays for page
    faults and set-up: the plan times a chunk after a warm-up over the same chunk at the
    same k, and scales that.  Here the first call on a chunk takes 0.3 s and every later
    one 0.01 s: the estimate must be the warm time scaled to the test set, not the cold."""
    calls = []

    def fake_evaluate(model, x, y, k, **kw):
        calls.append((k, x.shape[0]))
        time.sleep(0.3 if calls.count((k, x.shape[0])) == 1 else 0.01)

    monkeypatch.setattr(plan_module, "evaluate_model", fake_evaluate)
    cfg = RunConfig.from_dict({"model": {"latent": 2, "hidden": [16]}, "train": {"epochs": 1},
                               "data": {"dataset": "mnist", "train_limit": 200, "test_limit": 60},
                               "eval": {"k": 1000}})
    t = plan_module._measure(cfg.to_dict(), str(data_dir), 1)
    imgs = plan_module.DEFAULT_ROWS_PER_CHUNK // 1000  # the chunk evaluate_model would take
    assert calls == [(1000, imgs), (1000, imgs)]
    per_chunk = t["eval_s"] * imgs / 60
    assert 0.01 <= per_chunk < 0.1  # warm (0.01 s and the call's overhead), not cold (0.3 s)

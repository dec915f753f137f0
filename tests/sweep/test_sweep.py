"""Sweeps end to end: a tiny grid with a failing run, restarts that skip finished runs,
`vaelab sweep` exit codes, and a real kill -9 of a sweep in the middle of training."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vaelab.cli import main
from vaelab.store import Store, process_alive
from vaelab.sweep import load_experiment
from vaelab.sweep.executors import core_shares

GOOD_AND_BAD = ("{chain: [{sweep: {model.latent: [2, 3]}},"
                " {set: {name: cvae-on-frey, model.kind: cvae, data.dataset: frey, model.latent: 2}}]}")


def test_core_shares():
    assert core_shares(2, [0, 1]) == [[0], [1]]
    assert core_shares(2, [0, 1, 2, 3, 4]) == [[0, 1], [2, 3]]
    assert core_shares(3, [0, 1]) == [[0, 1]] * 3  # more workers than cores: all share all


def test_tiny_sweep_end_to_end(write_experiment, tmp_path, data_dir, capsys):
    exp_file = write_experiment(runs=GOOD_AND_BAD)
    out = tmp_path / "sweep"
    args = ["sweep", str(exp_file), "--effort", "smoke", "--out", str(out), "--workers", "2",
            "--data-dir", str(data_dir)]
    assert main(args) == 1  # one run fails: the sweep says so with a non-zero exit
    err = capsys.readouterr().err
    summary = err.strip().splitlines()[-1]
    assert "2/3 runs done, 1 failed" in summary and "cvae-on-frey" in summary and "labelled dataset" in summary
    assert "done vae mnist z=2" in err and "FAILED cvae-on-frey" in err

    store = Store(out / "store.sqlite")
    exp = load_experiment(exp_file, "smoke")
    rows = {r.id: r for r in store.runs()}
    assert set(rows) == {r.id for r in exp.runs}
    good = [r for r in exp.runs if r.config.name == "vae"]
    for run in good:
        row = rows[run.id]
        assert row.status == "done" and row.attempts == 1 and row.epochs == 2
        assert row.metrics["k"] == 5 and row.metrics["n"] == 50 and row.metrics["elbo"] < 0
        assert row.train_seconds > 0 and row.eval_seconds > 0 and row.wall_seconds > 0
        assert row.config == run.config.to_dict()
        saved = json.loads((out / "runs" / run.id / "eval.json").read_text())
        assert saved["elbo"] == row.metrics["elbo"]
    bad = next(r for r in rows.values() if r.status == "failed")
    assert bad.error.startswith("ConfigError:") and bad.metrics is None

    # Again: nothing is re-run and nothing is duplicated; the failure stays failed.
    assert main(args + ["--quiet"]) == 1
    after = {r.id: r for r in store.runs()}
    assert {i: (r.status, r.attempts, r.metrics) for i, r in after.items()} == \
           {i: (r.status, r.attempts, r.metrics) for i, r in rows.items()}
    # --retry-failed runs it once more (and it fails once more).
    assert main(args + ["--quiet", "--retry-failed"]) == 1
    assert store.get(bad.id).attempts == 2 and store.get(bad.id).status == "failed"
    assert all(store.get(r.id).attempts == 1 for r in good)


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert main(["sweep", "no-such-experiment", "--out", str(tmp_path / "x")]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert main(["sweep", "frey", "--effort", "huge", "--out", str(tmp_path / "x")]) == 2
    assert "no effort 'huge'" in capsys.readouterr().err
    assert main(["sweep", "frey", "--effort", "smoke", "--executor", "slurm", "--out", str(tmp_path / "x")]) == 2
    assert "unknown executor 'slurm'" in capsys.readouterr().err
    assert main(["sweep", "frey", "--effort", "smoke", "--workers", "0", "--out", str(tmp_path / "x")]) == 2
    assert main(["report", "--sweep", str(tmp_path / "nothing")]) == 2
    assert "no results store" in capsys.readouterr().err


def test_list_prints_runs_without_running(tmp_path, capsys):
    assert main(["sweep", "table1", "--effort", "smoke", "--list", "--out", str(tmp_path / "s")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(load_experiment("table1", "smoke").runs)
    assert not (tmp_path / "s").exists()


def _wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_kill_9_mid_sweep_then_restart(write_experiment, tmp_path, data_dir):
    """kill -9 the sweep while runs are training; start it again: it finishes, resuming
    the cut-off runs from their checkpoints, and the store holds one done row per run."""
    epochs = 10
    exp_file = write_experiment(
        runs="{sweep: {model.latent: [2, 3, 4, 5]}}",
        smoke=f"{{data.train_limit: 3000, data.test_limit: 100, train.epochs: {epochs}, eval.k: 5}}",
        base="{preset: vae, model.hidden: [128]}")
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "vaelab.cli", "sweep", str(exp_file), "--effort", "smoke", "--out", str(out),
           "--workers", "2", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store_file = out / "store.sqlite"
    _wait_for(store_file.exists, 60, "the store")
    store = Store(store_file)

    def mid_training():
        rows = store.runs()
        running = [r for r in rows if r.status == "running"
                   and len((out / "runs" / r.id / "metrics.jsonl").read_text().splitlines()
                           if (out / "runs" / r.id / "metrics.jsonl").exists() else []) >= 1]
        done = [r for r in rows if r.status == "done"]
        return running if done and running else None

    _wait_for(mid_training, 120, "one run done and another mid-training")
    workers = {r.worker for r in store.runs(status="running")}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # Which runs were cut off is read after the kill: one seen mid-training may still have
    # finished in the moment before the signal landed, and is then rightly not resumed.
    assert proc.returncode == -signal.SIGKILL
    # The orphaned workers notice their sweep is gone and stop within a second or so.
    _wait_for(lambda: not any(process_alive(w) for w in workers), 15, "orphaned workers to exit")
    cut = store.runs(status="running")
    assert len(cut) >= 1  # the cut-off runs are still marked running...

    # ...until the sweep starts again: it resumes them and skips the finished ones.
    done_before = {r.id: r.metrics for r in store.runs(status="done")}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cut off earlier, resuming from checkpoints" in again.stderr
    assert f"{len(done_before)} already done" in again.stderr
    rows = store.runs()
    assert len(rows) == 4 and all(r.status == "done" for r in rows)
    conn_rows = store.conn.execute("SELECT id, COUNT(*) FROM runs GROUP BY id").fetchall()
    assert all(n == 1 for _, n in conn_rows)
    for r in rows:
        if r.id in done_before:  # finished results are untouched
            assert r.metrics == done_before[r.id] and r.attempts == 1
        metrics = [json.loads(x) for x in (out / "runs" / r.id / "metrics.jsonl").read_text().splitlines()]
        assert [m["epoch"] for m in metrics] == list(range(1, epochs + 1))  # resumed, not restarted twice
    for r in cut:
        assert store.get(r.id).attempts == 2


def test_only_runs_the_matching_cells_under_the_whole_grids_ids(tmp_path, capsys):
    """--only picks cells of the one experiment file: every KEY=V of a filter must match, a
    key given twice matches either value, filters given twice add up; the ids are the
    whole grid's, so a cell run alone lands in the same store row as in the full sweep."""
    assert main(["sweep", "table1", "--effort", "smoke", "--list"]) == 0
    full = dict(line.split("  ", 1) for line in capsys.readouterr().out.splitlines())
    assert main(["sweep", "table1", "--effort", "smoke", "--list", "--only", "model=cvae,latent=5,latent=200",
                 "--only", "name=vae,model.latent=3"]) == 0
    picked = dict(line.split("  ", 1) for line in capsys.readouterr().out.splitlines())
    assert sorted(picked.values()) == ["table1  cvae mnist z=200", "table1  cvae mnist z=5",
                                       "table1  vae mnist z=3"]
    assert all(full[rid] == label for rid, label in picked.items())
    assert main(["sweep", "table1", "--effort", "smoke", "--list", "--only", "model=cvea"]) == 2
    assert "empty after --only" in capsys.readouterr().err
    assert main(["sweep", "table1", "--effort", "smoke", "--list", "--only", "model.latnt=3"]) == 2
    assert "'model.latnt' is not a config key" in capsys.readouterr().err
    assert main(["sweep", "table1", "--effort", "smoke", "--list", "--only", "latent"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_cells_run_one_call_at_a_time_all_reach_the_report(tmp_path):
    """Two `--only` calls into one sweep directory: its experiment holds both cells, at
    their places in the whole grid."""
    from vaelab.sweep.experiment import load_experiment, parse_only
    from vaelab.sweep.runner import prepare

    full = load_experiment("table1", "smoke")
    for only in ("model=cvae,latent=5", "model=vae,latent=3"):
        store, _ = prepare([load_experiment("table1", "smoke", only=[parse_only(only)])], tmp_path)
        store.close()
    store = Store(tmp_path / "store.sqlite")
    members = [r.id for r in store.experiment_runs("table1")]
    assert members == [r.id for r in full.runs if r.id in members] and len(members) == 2
    store.close()


def test_runs_on_a_gpu_go_one_at_a_time_unless_workers_says(write_experiment, tmp_path, data_dir, monkeypatch, capsys):
    """Runs sharing one GPU time-slice it (BENCHMARKS.md): a sweep whose runs train on CUDA
    defaults to one worker; an explicit --workers wins.  (The device is faked: the
    check only reads train.device, and the runs themselves train on the CPU.)"""
    import vaelab.sweep.runner as runner

    seen = []

    class Spy(runner.EXECUTORS.get("local")):
        def __init__(self, workers=None, address=None, threads=None):
            seen.append(workers)
            super().__init__(workers=workers, address=address, threads=threads)

    monkeypatch.setattr(runner, "on_cuda", lambda device: True)
    monkeypatch.setattr(runner.EXECUTORS, "get", lambda name: Spy)
    exp_file = write_experiment(runs="{sweep: {model.latent: [2, 3]}}")
    out = tmp_path / "s"
    assert main(["sweep", str(exp_file), "--effort", "smoke", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    assert "one at a time" in capsys.readouterr().err
    assert main(["sweep", str(exp_file), "--effort", "smoke", "--out", str(tmp_path / "t"), "--workers", "2",
                 "--data-dir", str(data_dir), "--quiet"]) == 0
    assert seen == [1, 2]


@pytest.mark.parametrize("exitcode,says", [(-9, "out-of-memory killer"), (-15, "signal 15"), (3, "exit code 3")])
def test_a_dead_worker_fails_its_run_saying_how(tmp_path, exitcode, says):
    from vaelab.sweep.executors import LocalExecutor

    store = Store(tmp_path / "s.sqlite")
    store.add_experiment("e", "smoke", {}, [("r1", "vae", {"name": "vae"})])
    store.claim(["r1"], "owner", "vm:4186:1")
    LocalExecutor._orphaned_by(store, 4186, exitcode, ["r1"])
    row = store.get("r1")
    assert row.status == "failed" and says in row.error and row.error.startswith("worker process 4186 died")
    store.close()


def test_a_bad_malloc_mode_stops_the_sweep_before_any_worker(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAELAB_MALLOC", "jemalloc")
    assert main(["sweep", "table1", "--effort", "smoke", "--only", "model=vae,latent=3", "--out",
                 str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "VAELAB_MALLOC='jemalloc' is not a malloc mode" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s" / "store.sqlite").exists()  # nothing half-written

"""The SQLite results store: WAL, transactions, a run's life, and concurrent writers
(four processes, one of them killed with SIGKILL in the middle of writing)."""

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vaelab.store import Store, StoreError, process_alive, process_id
from vaelab.sweep.runner import recover

REPO = Path(__file__).resolve().parents[1]


def _cfg(i: int) -> dict:
    return {"name": "vae", "model": {"latent": i}, "data": {"dataset": "mnist"}, "train": {"epochs": 1}}


def _store_with_runs(path: Path, n: int) -> tuple[Store, list[str]]:
    store = Store(path)
    ids = [f"run{i:04d}" for i in range(n)]
    store.add_experiment("exp", "smoke", {"name": "exp"}, [(rid, "vae", _cfg(i)) for i, rid in enumerate(ids)])
    return store, ids


def test_wal_mode_and_schema(tmp_path):
    store, ids = _store_with_runs(tmp_path / "s.sqlite", 3)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.counts(ids) == {"queued": 3, "running": 0, "done": 0, "failed": 0}
    assert [r.id for r in store.experiment_runs("exp")] == ids
    assert store.experiments() == [{"name": "exp", "effort": "smoke", "spec": {"name": "exp"}}]
    assert store.integrity_ok()


def test_add_experiment_keeps_results_and_skips_known_runs(tmp_path):
    store, ids = _store_with_runs(tmp_path / "s.sqlite", 2)
    row = store.claim(ids, "owner", "worker")
    store.finish(row.id, {"elbo": -90.5, "log_likelihood": -88.0})
    new = store.add_experiment("exp", "smoke", {"name": "exp"},
                               [(rid, "vae", _cfg(i)) for i, rid in enumerate(ids + ["run9999"])])
    assert new == 1
    assert store.get(ids[0]).status == "done" and store.get(ids[0]).metrics["elbo"] == -90.5
    assert store.counts() == {"queued": 2, "running": 0, "done": 1, "failed": 0}


def test_some_cells_join_the_experiment_and_another_effort_replaces_it(tmp_path):
    """`vaelab sweep E --only ...` twice into one directory: the report sees both cells (the
    second call once replaced the first's membership, and a finished cell vanished from
    the report); the cells sit at their grid positions; another effort starts afresh."""
    store = Store(tmp_path / "s.sqlite")
    store.add_experiment("exp", "paper", {}, [("c", "vae", _cfg(3))], positions=[2], merge=True)
    store.add_experiment("exp", "paper", {}, [("a", "vae", _cfg(1))], positions=[0], merge=True)
    assert [r.id for r in store.experiment_runs("exp")] == ["a", "c"]
    store.add_experiment("exp", "paper", {}, [("a", "vae", _cfg(1)), ("b", "vae", _cfg(2))])  # the whole grid
    assert [r.id for r in store.experiment_runs("exp")] == ["a", "b"]
    store.add_experiment("exp", "quick", {}, [("q", "vae", _cfg(4))], merge=True)  # another effort: replaced
    assert [r.id for r in store.experiment_runs("exp")] == ["q"]


def test_claim_order_and_life_of_a_run(tmp_path):
    store, ids = _store_with_runs(tmp_path / "s.sqlite", 3)
    first = store.claim(list(reversed(ids)), "own", "wrk")
    assert first.id == ids[-1] and first.status == "running" and first.attempts == 1
    assert first.owner == "own" and first.worker == "wrk" and first.started_at is not None
    done = store.finish(first.id, {"elbo": -100.0, "k": 10}, epochs=3, train_seconds=1.5, eval_seconds=0.5)
    assert done.status == "done" and done.epochs == 3 and done.metrics == {"elbo": -100.0, "k": 10}
    assert done.wall_seconds >= 0 and done.finished_at >= done.started_at
    assert store.claim([first.id], "own", "wrk") is None  # done runs are never claimed again
    second = store.claim(ids, "own", "wrk")
    store.fail(second.id, "TrainingDiverged: boom")
    assert store.get(second.id).status == "failed" and store.get(second.id).error == "TrainingDiverged: boom"
    assert store.requeue(ids, ("failed",)) == 1
    again = store.claim(ids, "own", "wrk")
    assert again.id == second.id and again.attempts == 2 and again.error is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_metrics_mark_the_run_failed(tmp_path, bad):
    store, ids = _store_with_runs(tmp_path / "s.sqlite", 1)
    store.claim(ids, "o", "w")
    row = store.finish(ids[0], {"elbo": -90.0, "log_likelihood": bad})
    assert row.status == "failed" and row.metrics is None
    assert "log_likelihood" in row.error and "non-finite" in row.error
    raw = store.conn.execute("SELECT metrics FROM runs").fetchone()[0]
    assert raw is None


def test_process_identity(tmp_path):
    me = process_id()
    assert process_alive(me) is True
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    dead = process_id(p.pid).rsplit(":", 1)[0] + ":1"  # its pid with a start time that cannot match
    assert process_alive(dead) is False
    assert process_alive(None) is False
    assert process_alive("some-other-host:1:1") is None  # cannot be checked from here


def test_stale_rows_of_a_dead_sweep_are_requeued(tmp_path):
    store, ids = _store_with_runs(tmp_path / "s.sqlite", 3)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    dead_owner = f"{process_id().split(':')[0]}:{p.pid}:0"
    store.claim(ids, dead_owner, dead_owner)  # cut off by a sweep that is gone
    store.claim(ids, process_id(), process_id())  # held by a live sweep (this process)
    orphaned, held = store.stale(ids)
    assert [r.id for r in orphaned] == [ids[0]] and [r.id for r in held] == [ids[1]]
    resumed, retried = recover(store, ids)
    assert (resumed, retried) == (1, 0)
    assert store.get(ids[0]).status == "queued" and store.get(ids[1]).status == "running"


def test_not_a_store(tmp_path):
    bad = tmp_path / "junk.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable results store"):
        Store(bad)
    with pytest.raises(StoreError, match="no results store"):
        Store(tmp_path / "missing.sqlite", create=False)


WRITER = textwrap.dedent("""
    import os, sys, time
    from vaelab.store import Store, process_id
    path, n, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    ids = [f"run{i:04d}" for i in range(n)]
    store = Store(path)
    me = process_id()
    print("ready", flush=True)
    while not os.path.exists(path + ".go"):  # all writers start together
        time.sleep(0.001)
    while True:
        row = store.claim(ids, me, me)
        if row is None:
            break
        time.sleep(pause)
        store.finish(row.id, {"elbo": -float(row.config["model"]["latent"]), "writer": me,
                              "blob": "x" * 2000})
""")


@pytest.mark.slow
def test_four_concurrent_writers_one_killed_mid_write(tmp_path):
    n = 200
    path = tmp_path / "store.sqlite"
    store, ids = _store_with_runs(path, n)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [subprocess.Popen([sys.executable, str(script), str(path), str(n), "0.002" if i else "0.0"],
                              stdout=subprocess.PIPE, env=env) for i in range(4)]
    for p in procs:
        assert p.stdout.readline().strip() == b"ready"
    Path(f"{path}.go").touch()
    victim = procs[0]  # pause 0: it is writing nearly all the time
    deadline = time.monotonic() + 20
    while store.counts(ids)["done"] < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait(60)
    assert victim.returncode == -signal.SIGKILL
    assert all(p.returncode == 0 for p in procs[1:])

    # The file is intact, every run has one row, and nothing half-written is visible.
    check = Store(path)
    assert check.integrity_ok()
    assert tuple(check.conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM runs").fetchone()) == (n, n)
    counts = check.counts(ids)
    assert counts["queued"] == 0 and counts["failed"] == 0
    assert counts["running"] <= 1  # at most the victim's claimed run
    for row in check.runs(ids, status="done"):
        assert row.metrics["elbo"] == -float(row.config["model"]["latent"])
        assert len(row.metrics["blob"]) == 2000
    # The victim's run (if it held one) is re-queued by the restart logic and finishes once.
    recover(check, ids)
    assert check.counts(ids)["running"] == 0
    subprocess.run([sys.executable, str(script), str(path), str(n), "0"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    assert check.counts(ids) == {"queued": 0, "running": 0, "done": n, "failed": 0}
    writers = {r.metrics["writer"] for r in check.runs(ids)}
    assert len(writers) >= 3  # several processes really did write
    raw = sqlite3.connect(path).execute("SELECT metrics FROM runs").fetchall()
    assert all(math.isfinite(json.loads(m)["elbo"]) for (m,) in raw)

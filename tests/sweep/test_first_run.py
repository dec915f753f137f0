"""The first hour as a user: the offline first run and the rerun once the data
variable is set; failures of the environment retried on the next start; experiment files
that would write outside sweeps/; Ctrl-C during a sweep."""

import os
import signal
import subprocess
import sys
import time

import pytest

from vaelab.cli import main
from vaelab.store import Store
from vaelab.sweep import load_experiment
from vaelab.sweep.runner import environment_failure, prepare, recover


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("vaelab: error: ")
    return err[0]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A fresh machine without network: no VAELAB_DATA, an empty cache, no download."""
    monkeypatch.delenv("VAELAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VAELAB_OFFLINE", "1")


def test_offline_first_run_then_rerun_with_the_variable(write_experiment, tmp_path, data_dir, offline, capsys,
                                                        monkeypatch):
    exp_file = write_experiment(runs="{sweep: {model.latent: [2, 3]}}")
    out = tmp_path / "sweep"
    args = ["reproduce", "--experiment", str(exp_file), "--effort", "smoke", "--out", str(out), "--workers", "2",
            "--quiet"]
    assert main(args) == 2
    line = one_line_error(capsys)
    assert "MNIST not found" in line and "VAELAB_DATA" in line and "--data-dir" in line
    assert not out.exists()  # no store, no failed rows, no report

    monkeypatch.setenv("VAELAB_DATA", str(data_dir))
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "2/2 runs done, 0 failed" in captured.out
    assert (out / "report" / "index.html").exists()
    assert all(r.status == "done" for r in Store(out / "store.sqlite").runs())


def test_corrupt_data_stops_the_sweep_before_it_starts(write_experiment, tmp_path, data_dir, offline, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mnist.pkl.gz").write_bytes((data_dir / "mnist.pkl.gz").read_bytes()[:100_000])
    out = tmp_path / "sweep"
    exp_file = write_experiment(runs="{sweep: {model.latent: [2]}}")
    assert main(["sweep", str(exp_file), "--effort", "smoke", "--out", str(out), "--data-dir", str(bad), "--quiet"]) == 2
    assert "checksum" in one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("error, environment", [
    ("DataError: MNIST not found: looked in ...", True),
    ("DiskFullError: no space left on the device holding runs/x", True),
    ("internal error MemoryError:  (traceback in runs/x/error.txt)", True),
    ("worker process 123 died (signal 9) while running it; its checkpoints are kept", True),
    ("ray task failed: node lost", True),
    ("TrainingDiverged: training diverged at epoch 3", False),
    ("ConfigError: the cvae model needs a labelled dataset", False),
    ("internal error ZeroDivisionError: division by zero", False),
    (None, False),
])
def test_environment_failures_are_told_apart(error, environment):
    assert environment_failure(error) is environment


def test_environment_failures_retry_on_the_next_start(write_experiment, tmp_path):
    """A run that failed for want of data is queued again once the sweep restarts; a
    diverged one stays failed unless --retry-failed."""
    exp = load_experiment(write_experiment(runs="{sweep: {model.latent: [2, 3, 4]}}"), "smoke")
    store, runs = prepare([exp], tmp_path / "sweep")
    ids = [r.id for r in runs]
    for rid, error in zip(ids, ["DataError: MNIST not found", "TrainingDiverged: at epoch 1"]):
        assert store.claim_id(rid, "me", "w")
        store.fail(rid, error)
    assert recover(store, ids) == (0, 1)
    assert [store.get(i).status for i in ids] == ["queued", "failed", "queued"]
    assert recover(store, ids, retry_failed=True) == (0, 1)
    assert store.get(ids[1]).status == "queued"
    store.close()


@pytest.mark.parametrize("name", ["../../../somewhere/x", "a/b", "..", ".hidden", "x y", "/abs"])
def test_experiment_names_cannot_escape_the_sweeps_folder(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    exp_file = tmp_path / "evil.yaml"
    exp_file.write_text(f"name: '{name}'\nruns: {{sweep: {{model.latent: [2]}}}}\n"
                        "efforts: {smoke: {train.epochs: 1}}\n")
    before = set(tmp_path.rglob("*"))
    assert main(["sweep", str(exp_file), "--effort", "smoke"]) == 2
    assert "experiment name" in one_line_error(capsys)
    assert set(tmp_path.rglob("*")) == before  # nothing written anywhere under here
    assert not (tmp_path.parent / "somewhere").exists()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "kill-int-in-background", "kill-term"])
def test_ctrl_c_during_a_sweep_shuts_down_cleanly(write_experiment, tmp_path, data_dir, how):
    """Ctrl-C (SIGINT to the process group), `kill -INT` to a sweep a script started in the
    background (which inherits SIGINT ignored), and `kill -TERM`: each stops the sweep the
    same way, its cut-off runs back in the queue."""
    exp_file = write_experiment(
        runs="{sweep: {model.latent: [2, 3, 4]}}",
        smoke="{data.train_limit: 3000, data.test_limit: 100, train.epochs: 30, eval.k: 5}")
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "vaelab.cli", "sweep", str(exp_file), "--effort", "smoke", "--out", str(out),
           "--workers", "2", "--data-dir", str(data_dir)]
    inherited = signal.SIG_IGN if how == "kill-int-in-background" else signal.SIG_DFL
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, inherited))
    deadline = time.monotonic() + 90
    while not list(out.glob("runs/*/metrics.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.1)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    else:  # the sweep's own process only, as `kill` does
        os.kill(proc.pid, signal.SIGINT if how == "kill-int-in-background" else signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "run the same command again" in err
    assert "leaked" not in err and "Traceback" not in err and "Warning" not in err, err[-2000:]
    rows = Store(out / "store.sqlite").runs()
    assert rows and not any(r.status in ("running", "failed") for r in rows)  # cut-off runs went back to the queue

"""Crash-exact resume: a run killed with SIGKILL anywhere, including in the middle of a
checkpoint write, and then resumed, ends bit-for-bit where an uninterrupted run ends."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from vaelab.runs.checkpoint import list_checkpoints

pytestmark = pytest.mark.slow

ARGS = ["--latent", "4", "--hidden", "32", "--epochs", "4", "--batch-size", "50", "--optimizer", "adam",
        "--set", "data.train_limit=1500", "--set", "data.test_limit=300", "--threads", "1", "--quiet"]


def vaelab(data_dir, *args, env_extra=None, wait=True):
    env = {**os.environ, "VAELAB_DATA": str(data_dir), "VAELAB_OFFLINE": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "vaelab.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def final_state(run: Path):
    newest = list_checkpoints(run / "checkpoints")[0]
    tensors = load_file(str(newest.with_suffix(".safetensors")))
    metrics = [{k: v for k, v in m.items() if k != "seconds"} for m in
               (json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())]
    return tensors, metrics


def assert_identical(a, b):
    ta, ma = a
    tb, mb = b
    assert ma == mb  # every epoch's metrics, exactly
    assert ta.keys() == tb.keys()
    for key in ta:  # weights and optimiser state, bit for bit
        assert ta[key].dtype == tb[key].dtype and bool((ta[key] == tb[key]).all()), key


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("ref") / "run"
    res = vaelab(data_dir, "train", *ARGS, "--out", str(run))
    assert res.returncode == 0, res.stderr
    return run


@pytest.fixture(scope="module")
def reference(reference_run):
    return final_state(reference_run)


@pytest.mark.parametrize("point", [
    "checkpoint:between_weights_and_sidecar:2",  # weights of epoch 1 renamed, sidecar not yet
    "atomic_write:before_rename:3",  # a temp file fsynced but not renamed
    "atomic_write:before_rename:8",
])
def test_resume_after_kill_at_crash_point(tmp_path, data_dir, reference, point):
    run = tmp_path / "run"
    name, nth = point.rsplit(":", 1)
    res = vaelab(data_dir, "train", *ARGS, "--out", str(run), env_extra={"VAELAB_CRASH_AT": f"{name}:{nth}"})
    assert res.returncode == -signal.SIGKILL, res.stderr  # it really died there
    res = vaelab(data_dir, "train", *ARGS, "--out", str(run), "--resume")
    assert res.returncode == 0, res.stderr
    assert_identical(final_state(run), reference)


def checkpoint_names(run: Path):
    folder = run / "checkpoints"
    return {p.name for p in list_checkpoints(folder)} if folder.exists() else set()


def wait_for_new_checkpoint(run: Path, proc, timeout=120.0):
    """Poll until the run has a checkpoint it did not have when called, or the process ends."""
    before, end = checkpoint_names(run), time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if checkpoint_names(run) - before:
            return
        time.sleep(0.002)


def test_resume_after_kills_at_random_moments(tmp_path, data_dir, reference, reference_run):
    # Each attempt waits until the run has finished one more epoch, then dies at a random moment within the
    # next epoch's time (the reference run's mean epoch, measured on this machine): inside training on a slow
    # machine and a fast one alike (a fixed 1.5-4 s window from the spawn let a whole run finish on a fast CI
    # machine). The first attempt dies in epoch 2 of 4, so every run of this test kills at least once.
    lines = (reference_run / "metrics.jsonl").read_text().splitlines()
    epoch = sum(json.loads(line)["seconds"] for line in lines) / len(lines)
    rng = random.Random(1234)
    run = tmp_path / "run"
    kills = 0
    for attempt in range(4):
        args = ["train", *ARGS, "--out", str(run)] + (["--resume"] if run.exists() else [])
        proc = vaelab(data_dir, *args, wait=False)
        wait_for_new_checkpoint(run, proc)
        time.sleep(rng.uniform(0.0, epoch))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            break
    res = vaelab(data_dir, "train", *ARGS, "--out", str(run), "--resume")
    assert res.returncode == 0, res.stderr
    assert kills >= 1
    assert_identical(final_state(run), reference)

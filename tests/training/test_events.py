"""TensorBoard events of a run, read back with tensorboard's own reader; optional, and
harmless: without tensorboard (or with a broken writer) training runs unchanged."""

import sys

import pytest
import torch

from vaelab.config import load_config
from vaelab.training import train_run
from vaelab.runs.checkpoint import load_latest
from vaelab.training.events import EVENTS_DIR, image_epochs

OVERRIDES = {"model.latent": 3, "model.hidden": [32], "train.epochs": 3, "data.train_limit": 400,
             "data.test_limit": 100, "train.threads": 1}


def train(tmp_path, data_dir, name="run", **extra):
    cfg = load_config(None, "vae", {**OVERRIDES, **extra})
    train_run(cfg, tmp_path / name, data_dir, progress=False)
    return tmp_path / name


def weights(run):
    return load_latest(run / "checkpoints").model_state()


def test_image_epochs():
    assert image_epochs(1) == {1}
    assert image_epochs(3) == {1, 2, 3}
    assert image_epochs(100) == {1, 25, 50, 75, 100}


def test_tensorboard_reads_a_runs_events(tmp_path, data_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(tmp_path, data_dir)
    acc = EventAccumulator(str(run / EVENTS_DIR), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("train/elbo", "train/objective", "valid/elbo", "valid/kl", "lr", "seconds"):
        assert tag in tags["scalars"], tags
        assert [e.step for e in acc.Scalars(tag)] == [1, 2, 3]
    metrics = [line for line in (run / "metrics.jsonl").read_text().splitlines()]
    import json

    rows = [json.loads(m) for m in metrics]
    assert [e.value for e in acc.Scalars("valid/elbo")] == pytest.approx([r["valid_elbo"] for r in rows], rel=1e-6)
    assert all(e.value > 0 for e in acc.Scalars("valid/kl"))
    assert "samples" in tags["images"]
    assert {e.step for e in acc.Images("samples")} == {1, 2, 3}
    assert acc.Images("samples")[0].width > 0


def test_events_do_not_change_the_run(tmp_path, data_dir, monkeypatch):
    pytest.importorskip("tensorboard")
    with_events = train(tmp_path, data_dir, "with")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were absent
    without = train(tmp_path, data_dir, "without")
    assert (with_events / EVENTS_DIR).is_dir() and not (without / EVENTS_DIR).exists()
    a, b = weights(with_events), weights(without)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_failing_writer_warns_and_training_goes_on(tmp_path, data_dir, monkeypatch, capsys):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    def broken(self, *args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(SummaryWriter, "add_scalar", broken)
    run = train(tmp_path, data_dir)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    err = capsys.readouterr().err
    assert err.count("TensorBoard events are not written") == 1 and "disk on fire" in err

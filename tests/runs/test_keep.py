"""train.keep_epochs: the named epochs' checkpoints survive pruning, and `vaelab eval
--epoch` evaluates exactly that checkpoint (a budget curve from one run)."""

import json

import pytest
import torch

from vaelab.cli import main
from vaelab.config import RunConfig
from vaelab.errors import CheckpointError, ConfigError
from vaelab.runs import KEEP, checkpoint_epoch, list_checkpoints, load_run
from vaelab.training import train_run


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("keep") / "run"
    cfg = RunConfig.from_dict({"data": {"train_limit": 300, "test_limit": 50}, "model": {"hidden": [16], "latent": 2},
                               "train": {"epochs": 6, "batch_size": 50, "threads": 1, "keep_epochs": [1, 3]}})
    train_run(cfg, run, data_dir, progress=False)
    return run


def test_kept_epochs_survive_pruning(kept_run):
    epochs = sorted(checkpoint_epoch(p) for p in list_checkpoints(kept_run / "checkpoints"))
    assert epochs == [1, 3, 5, 6] and KEEP == 2  # the newest two and the kept ones, not 0, 2 or 4


def test_a_kept_epoch_loads_its_own_weights(kept_run):
    first, last = load_run(kept_run, epoch=1), load_run(kept_run)
    assert first.sidecar["epoch"] == 1 and last.sidecar["epoch"] == 6
    a, b = first.model.state_dict(), last.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(CheckpointError, match=r"no checkpoint of epoch 2 \(it holds: 1, 3, 5, 6\)"):
        load_run(kept_run, epoch=2)


def test_eval_epoch_writes_its_own_record(kept_run, data_dir, capsys):
    assert main(["eval", str(kept_run), "--epoch", "3", "--k", "5", "--json", "--data-dir", str(data_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epoch"] == 3
    assert json.loads((kept_run / "eval-e3-k5.json").read_text())["epoch"] == 3
    assert not (kept_run / "eval.json").exists()
    assert main(["eval", str(kept_run), "--epoch", "2", "--k", "5", "--data-dir", str(data_dir)]) == 2


def test_keep_epochs_counts_from_one():
    with pytest.raises(ConfigError, match="train.keep_epochs"):
        RunConfig.from_dict({"train": {"keep_epochs": [0]}})

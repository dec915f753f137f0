"""Run directories: paths built in one place, one metrics reader, config.json with the
architecture, load_trained."""

import json

import pytest

from vaelab.config import RunConfig
from vaelab.errors import CheckpointError
from vaelab.runs import (RunDir, default_run_path, epochs_done, load_trained, read_metrics, report_path, run_label,
                         run_path, store_path, write_metrics)
from vaelab.training import train_run


def test_sweep_paths(tmp_path):
    assert store_path(tmp_path) == tmp_path / "store.sqlite"
    assert run_path(tmp_path, "abc") == tmp_path / "runs" / "abc"
    assert report_path(tmp_path) == tmp_path / "report"
    cfg = RunConfig.from_dict({"name": "vae", "model": {"latent": 3}, "train": {"seed": 2}})
    assert str(default_run_path(cfg)) == "runs/vae-mnist-z3-s2"


def test_run_label_is_one_format_for_configs_and_stored_dicts():
    cfg = RunConfig.from_dict({"name": "iwae", "model": {"latent": 50}})
    assert run_label(cfg) == run_label(cfg.to_dict()) == "iwae mnist z=50"


def test_one_metrics_reader(tmp_path):
    assert read_metrics(tmp_path) == [] and epochs_done(tmp_path) == (0, None)
    write_metrics(tmp_path, [{"epoch": 1, "seconds": 2.0}, {"epoch": 2, "seconds": 4.0}])
    assert [m["epoch"] for m in read_metrics(tmp_path)] == [1, 2]
    assert epochs_done(tmp_path) == (2, 3.0)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(CheckpointError, match="metrics.jsonl"):
        read_metrics(tmp_path)
    assert epochs_done(tmp_path) == (0, None)  # a progress display never fails


def test_config_json_holds_config_data_info_and_architecture(tmp_path, data_dir):
    cfg = RunConfig.from_dict({"name": "t", "model": {"latent": 2, "hidden": [16]}, "data": {"train_limit": 100,
                               "test_limit": 20}, "train": {"epochs": 1, "batch_size": 50, "device": "cpu"}})
    train_run(cfg, tmp_path / "r", data_dir, progress=False)
    raw = json.loads((tmp_path / "r" / "config.json").read_text())
    assert set(raw) == {"format", "vaelab_version", "config", "data_info", "architecture", "data"}
    assert raw["architecture"]["nets"]["encoder"]["steps"][0] == {
        "op": "linear", "in": 784, "out": 16, "weight": "encoder.net.0.weight", "bias": "encoder.net.0.bias"}
    run = RunDir(tmp_path / "r")
    assert run.read_config()[0] == cfg
    assert run.resume_config(5).train.epochs == 5 and run.resume_config().train.epochs == 1
    model = load_trained(tmp_path / "r")
    assert not model.training and model.cfg == cfg.model


def test_load_trained_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_trained(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a vaelab run directory"):
        load_trained(tmp_path / "empty")

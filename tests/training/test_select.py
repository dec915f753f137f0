"""The selection stage (RunConfig.select): the best validation ELBO wins, a diverging
candidate loses, the choice is recorded once and reused on resume, and a config without
a stage keeps its run id."""

import json
import math

import pytest

from vaelab.config import RunConfig
from vaelab.errors import ConfigError, TrainingDiverged
from vaelab.sweep.experiment import load_experiment, run_id
from vaelab.training import train_run
from vaelab.runs import TrainState
from vaelab.training.select import RECORD, candidate_dir, select

LRS = (0.1, 0.01, 0.02)


def staged(**over):
    cfg = RunConfig.from_dict({"select": {"key": "optim.lr", "values": list(LRS), "epochs": 7}})
    return cfg.replace(**over) if over else cfg


class FakeTrain:
    """Scores a candidate by a table of its learning rate; records what it was asked."""

    def __init__(self, scores):
        self.scores, self.calls = scores, []

    def __call__(self, cfg, run_dir):
        self.calls.append((cfg.optim.lr, cfg.train.epochs, cfg.select, run_dir))
        score = self.scores[cfg.optim.lr]
        if score is None:
            raise TrainingDiverged("loss is nan")
        return TrainState(epoch=cfg.train.epochs, metrics=[{"valid_elbo": score}])


def test_best_validation_elbo_wins_and_is_recorded(tmp_path):
    fake = FakeTrain({0.1: -300.0, 0.01: -95.5, 0.02: -96.0})
    out = select(staged(), tmp_path, fake)
    assert out.optim.lr == 0.01 and out.select == staged().select  # the stage stays in the config
    assert [(lr, ep, sel) for lr, ep, sel, _ in fake.calls] == [(lr, 7, None) for lr in LRS]
    assert [d for *_, d in fake.calls] == [candidate_dir(tmp_path, "optim.lr", lr) for lr in LRS]
    record = json.loads((tmp_path / RECORD).read_text())
    assert record["chosen"] == 0.01 and record["scores"] == [-300.0, -95.5, -96.0]


def test_resume_reuses_the_choice(tmp_path):
    select(staged(), tmp_path, FakeTrain({0.1: -1.0, 0.01: -2.0, 0.02: -3.0}))
    again = FakeTrain({0.1: -9.0, 0.01: -1.0, 0.02: -9.0})
    assert select(staged(), tmp_path, again).optim.lr == 0.1
    assert again.calls == []


def test_a_diverging_candidate_loses_and_all_diverging_fails(tmp_path):
    fake = FakeTrain({0.1: None, 0.01: -100.0, 0.02: float("nan")})
    assert select(staged(), tmp_path / "a", fake).optim.lr == 0.01
    record = json.loads((tmp_path / "a" / RECORD).read_text())
    assert record["scores"] == [None, -100.0, None] and "nan" in record["errors"]["0.1"]
    with pytest.raises(TrainingDiverged, match="every candidate"):
        select(staged(), tmp_path / "b", FakeTrain({0.1: None, 0.01: None, 0.02: None}))
    assert not (tmp_path / "b" / RECORD).exists()


def test_configs_without_a_stage_keep_their_ids():
    cfg = RunConfig()
    assert "select" not in cfg.to_dict()
    assert run_id(RunConfig.from_dict(cfg.to_dict())) == run_id(cfg)
    assert run_id(staged()) != run_id(staged(select=None))
    assert staged(select=None).to_dict() == cfg.to_dict()


@pytest.mark.parametrize("bad, msg", [
    ({"values": [0.1]}, "two or more distinct"),
    ({"values": [0.1, 0.1]}, "two or more distinct"),
    ({"values": [0.1, 0.2], "key": "model.latent"}, "select.key"),
    ({"values": [0.1, -1.0]}, "optim.lr"),  # every candidate must make a valid config
    ({"values": [0.1, 0.2], "metric": "test_elbo"}, "valid_elbo"),
    ({"values": [0.1, 0.2], "epochs": 0}, "select.epochs"),
])
def test_bad_stages_fail_at_load(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        RunConfig.from_dict({"select": bad})


def test_shipped_experiments_use_the_study_procedure():
    frey = load_experiment("frey", "paper")
    assert {r.config.select.values for r in frey.runs} == {LRS}
    assert {r.config.select.epochs for r in frey.runs} == {50}
    table1 = load_experiment("table1", "paper")
    stages = {r.config.name: r.config.select for r in table1.runs if r.config.select}
    assert set(stages) == {"vae", "cvae"}  # the rows whose rate the study states only as a procedure
    assert stages["vae"].values == LRS and stages["vae"].key == "optim.lr"
    assert stages["cvae"].values == (0.01, 0.003, 0.001)  # sec. 4.2.1's range, around its two choices
    assert {s.epochs for s in stages.values()} == {50}  # the study's "approximately 50"


def test_a_real_stage_trains_each_candidate_then_the_run(tmp_path, data_dir):
    cfg = RunConfig.from_dict({
        "data": {"dataset": "frey", "train_limit": 300}, "model": {"hidden": [16], "latent": 2},
        "optim": {"name": "adagrad"}, "train": {"epochs": 2, "batch_size": 50, "threads": 1},
        "select": {"values": [1e-6, 0.02], "epochs": 2}})
    state = train_run(cfg, tmp_path / "run", data_dir, progress=False)
    record = json.loads((tmp_path / "run" / RECORD).read_text())
    # a learning rate of 1e-6 leaves the decoder at its start; 0.02 learns within 2 epochs
    assert record["chosen"] == 0.02 and record["scores"][1] > record["scores"][0]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["optim"]["lr"] == 0.02 and saved["select"]["values"] == [1e-6, 0.02]
    assert state.epoch == 2 and math.isfinite(state.metrics[-1]["valid_elbo"])
    for lr in (1e-6, 0.02):
        assert (candidate_dir(tmp_path / "run", "optim.lr", lr) / "config.json").exists()

"""Checkpoint integrity: atomic writes, hashes in the sidecar, fallback past corrupt
checkpoints, and no pickle anywhere."""

import json
import pickle

import pytest
import torch

from vaelab.config import ModelConfig, OptimConfig
from vaelab.errors import CheckpointError
from vaelab.models import DataInfo, build_model
from vaelab.runs.checkpoint import KEEP, TrainState, list_checkpoints, load_latest, save_checkpoint
from vaelab.training.optim import build_optimizer


def make(seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(latent=3, hidden=(16,)), DataInfo((1, 4, 4), True))
    opt = build_optimizer(model.parameters(), OptimConfig(name="adam"))
    x = torch.bernoulli(torch.full((8, 16), 0.5))
    loss = -model.log_weights(x).log_w.mean()
    loss.backward()
    opt.step()  # so the optimiser has state to save
    return model, opt


def test_round_trip_restores_model_and_optimiser_exactly(tmp_path):
    model, opt = make()
    save_checkpoint(tmp_path, model, opt, TrainState(epoch=3, metrics=[{"epoch": 3}]))
    loaded = load_latest(tmp_path)
    model2, opt2 = make(seed=1)
    model2.load_state_dict(loaded.model_state())
    opt2.load_state_dict(loaded.optim_state())
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for pid in s1:
        for key in s1[pid]:
            assert torch.equal(torch.as_tensor(s1[pid][key]), torch.as_tensor(s2[pid][key]))
    assert loaded.train_state().epoch == 3


def test_keeps_only_the_newest_checkpoints(tmp_path):
    model, opt = make()
    for epoch in range(5):
        save_checkpoint(tmp_path, model, opt, TrainState(epoch=epoch))
    assert [p.name for p in list_checkpoints(tmp_path)] == [f"epoch-{e:06d}.json" for e in (4, 3)][:KEEP]
    assert len(list(tmp_path.glob("*.safetensors"))) == KEEP


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, damage, capsys):
    model, opt = make()
    save_checkpoint(tmp_path, model, opt, TrainState(epoch=1))
    save_checkpoint(tmp_path, model, opt, TrainState(epoch=2))
    weights = tmp_path / "epoch-000002.safetensors"
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        weights.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    else:
        weights.unlink()
    loaded = load_latest(tmp_path)
    assert loaded.train_state().epoch == 1
    assert "skipping checkpoint" in capsys.readouterr().err


def test_all_checkpoints_corrupt_is_a_clear_error(tmp_path):
    model, opt = make()
    save_checkpoint(tmp_path, model, opt, TrainState(epoch=1))
    (tmp_path / "epoch-000001.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        load_latest(tmp_path)


def test_sidecar_from_another_format_is_refused(tmp_path):
    model, opt = make()
    save_checkpoint(tmp_path, model, opt, TrainState(epoch=1))
    side = tmp_path / "epoch-000001.json"
    meta = json.loads(side.read_text())
    meta["format"] = 99
    side.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format"):
        load_latest(tmp_path)


class Boom:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['BOOM']).write_text('pwned')",))


def test_planted_pickle_is_never_executed(tmp_path, monkeypatch):
    """A malicious pickle placed where a checkpoint would be is never unpickled."""
    canary = tmp_path / "canary"
    monkeypatch.setenv("BOOM", str(canary))
    model, opt = make()
    save_checkpoint(tmp_path, model, opt, TrainState(epoch=1))
    evil = pickle.dumps(Boom())
    # Every place a pickle-based loader might look.
    for name in ("epoch-000002.safetensors", "epoch-000001.pt", "model.pt", "checkpoint.pt", "model.pkl"):
        (tmp_path / name).write_bytes(evil)
    side = json.loads((tmp_path / "epoch-000001.json").read_text())
    side["epoch"] = 2
    (tmp_path / "epoch-000002.json").write_text(json.dumps(side))  # sidecar claims it; hash differs
    loaded = load_latest(tmp_path, warn=lambda msg: None)
    assert loaded.train_state().epoch == 1
    assert not canary.exists()
    # And replacing the real weights by the pickle is caught by the hash, not executed.
    (tmp_path / "epoch-000001.safetensors").write_bytes(evil)
    with pytest.raises(CheckpointError):
        load_latest(tmp_path, warn=lambda msg: None)
    assert not canary.exists()

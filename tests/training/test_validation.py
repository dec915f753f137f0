"""train.valid_every / train.valid_limit: the per-epoch validation ELBO can be
thinned out and shrunk without touching training; the defaults change nothing."""

from __future__ import annotations

import pytest
import torch

from vaelab.config import RunConfig
from vaelab.errors import ConfigError
from vaelab.training import Trainer

from .test_fast_path import tiny_dataset


def config(**train) -> RunConfig:
    return RunConfig.from_dict({
        "model": {"hidden": [32], "latent": 4},
        "train": {"epochs": 5, "batch_size": 50, "seed": 3, "device": "cpu", **train},
    })


def fit(tmp_path, name, **train):
    tr = Trainer.open(config(**train), tmp_path / name, progress=False).build(dataset=tiny_dataset(200))
    state = tr.fit()
    return tr, state


def test_defaults_validate_every_epoch_on_all_images():
    cfg = RunConfig()
    assert cfg.train.valid_every == 1 and cfg.train.valid_limit is None


def test_valid_every_skips_epochs_but_not_the_last(tmp_path):
    _, state = fit(tmp_path, "a", valid_every=2)
    assert [m["valid_elbo"] is not None for m in state.metrics] == [False, True, False, True, True]


def test_validation_settings_do_not_change_training(tmp_path):
    ref, ref_state = fit(tmp_path, "ref")
    thin, thin_state = fit(tmp_path, "thin", valid_every=3, valid_limit=10)
    for (name, a), b in zip(ref.model.state_dict().items(), thin.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [m["train_elbo"] for m in ref_state.metrics] == [m["train_elbo"] for m in thin_state.metrics]
    # every 3rd epoch (3) and the last (5) validated; epoch 3's value comes from 10 images
    assert [m["valid_elbo"] is not None for m in thin_state.metrics] == [False, False, True, False, True]
    assert thin.valid_x.shape[0] == 10 and ref.valid_x.shape[0] == 40
    assert thin_state.metrics[2]["valid_elbo"] != ref_state.metrics[2]["valid_elbo"]


@pytest.mark.parametrize("key,value", [("valid_every", 0), ("valid_limit", 0), ("valid_every", -1)])
def test_non_positive_values_are_rejected(key, value):
    with pytest.raises(ConfigError, match=f"train.{key}"):
        config(**{key: value})

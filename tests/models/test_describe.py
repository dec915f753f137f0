"""A model describes itself for its run directory (config.json's ``architecture``); the
rebuild from that record alone is tests/runs/test_rebuild.py."""

import json

import pytest

from vaelab.config import load_config
from vaelab.models import DataInfo, build_model


@pytest.mark.parametrize("preset", ["vae-cnn", "hvae", "vae", "cvae", "vampprior"])
def test_the_record_says_which_config_keys_the_model_ignores(preset):
    """Nothing implicit: config keys the built model does not read are listed as unused
    (the conv net reads neither model.hidden nor model.activation)."""
    cfg = load_config(preset=preset)
    arch = build_model(cfg.model, DataInfo((1, 28, 28), True, 10)).describe()
    unused = set(arch["unused_config_keys"])
    if cfg.model.arch == "conv":
        assert {"model.hidden", "model.activation"} <= unused
    else:
        assert not {"model.hidden", "model.activation"} & unused
    assert ("model.pseudo_inputs" in unused) == (cfg.model.prior != "vamp")
    assert ("model.inner_latent" in unused) == (cfg.model.kind != "hierarchical")
    json.dumps(arch, allow_nan=False)

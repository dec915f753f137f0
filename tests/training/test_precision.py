"""train.precision: bfloat16 products inside the nets, float32 everywhere else."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from vaelab.config import RunConfig
from vaelab.errors import ConfigError
from vaelab.nets import MLP
from vaelab.training import Trainer
from vaelab.training.precision import MixedPrecision

from .test_fast_path import tiny_dataset

U = 2.0 ** -8  # bfloat16's unit roundoff: 8 significant bits


class Holder(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net


def test_config_checks_and_run_id():
    assert RunConfig().train.precision == "float32"
    assert "precision" not in RunConfig().to_dict()["train"]  # earlier runs keep their ids
    assert RunConfig.from_dict({"train": {"precision": "bfloat16"}}).to_dict()["train"]["precision"] == "bfloat16"
    with pytest.raises(ConfigError, match="train.precision"):
        RunConfig.from_dict({"train": {"precision": "bf16"}})
    with pytest.raises(ConfigError, match="train.compile"):
        RunConfig.from_dict({"train": {"precision": "bfloat16", "compile": True}})


def test_a_layer_rounds_within_the_bfloat16_bound():
    """One linear layer y = W x + b under bfloat16: W and x are rounded to 8 bits (relative
    error <= U each), their products summed in float32, and y rounded to 8 bits again, so
    |y16 - y32| <= (2U + U^2)(|W| |x|) + U |y16| + float32's own few ulps.  The output
    comes back as float32, and it is not float32's result (the products did run in bf16)."""
    torch.manual_seed(0)
    net = MLP(300, (), 50, "tanh")
    model = Holder(net)
    x = torch.randn(64, 300)
    y32 = net(x)
    with MixedPrecision(model, "bfloat16", torch.device("cpu")).step():
        y16 = model.net(x)
    assert y16.dtype == torch.float32
    layer = net.net[0]
    bound = (2 * U + U * U) * (x.abs() @ layer.weight.abs().t()) + U * y16.abs() + 1e-5
    assert ((y16 - y32).abs() <= bound).all()
    assert (y16 != y32).any()
    assert not model.net._forward_hooks  # the hooks live for the step only


def test_float32_is_a_no_op():
    torch.manual_seed(0)
    model = Holder(MLP(20, (16,), 8, "tanh"))
    x = torch.randn(5, 20)
    mp = MixedPrecision(model, "float32", torch.device("cpu"))
    assert not mp.active
    with mp.step():
        assert not torch.is_autocast_enabled("cpu")
        assert torch.equal(model.net(x), model.net.forward(x))


def test_inside_the_step_only_the_nets_compute_in_bfloat16():
    """A hidden layer's output is bf16 inside the net; what leaves the net is float32, and
    the float32 maths after it (here a softplus) stays float32."""
    torch.manual_seed(0)
    model = Holder(MLP(20, (16,), 8, "tanh"))
    seen = {}

    def record(module, inputs, out):
        seen["hidden"] = out.dtype

    model.net.net[0].register_forward_hook(record)
    with MixedPrecision(model, "bfloat16", torch.device("cpu")).step():
        out = model.net(torch.randn(5, 20))
        after = nn.functional.softplus(out)
    assert seen["hidden"] == torch.bfloat16
    assert out.dtype == after.dtype == torch.float32


@pytest.mark.parametrize("objective", [{}, {"name": "iwae", "k": 5}])
def test_trains_by_autograd_and_learns(tmp_path, objective):
    cfg = RunConfig.from_dict({
        "model": {"hidden": [32], "latent": 4}, "objective": objective,
        "train": {"epochs": 3, "batch_size": 50, "seed": 3, "device": "cpu", "precision": "bfloat16"}})
    tr = Trainer.open(cfg, tmp_path / "run", progress=False).build(dataset=tiny_dataset(200))
    state = tr.fit()
    assert tr._closed is None and {m["step"] for m in state.metrics} == {"autograd"}
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())
    elbos = [m["valid_elbo"] for m in state.metrics]
    assert elbos[-1] > elbos[0]  # it learns
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["train"]["precision"] == "bfloat16"


def test_other_devices_are_refused_with_one_line():
    with pytest.raises(ConfigError, match="not on mps"):
        MixedPrecision(Holder(MLP(2, (), 2, "tanh")), "bfloat16", torch.device("mps"))

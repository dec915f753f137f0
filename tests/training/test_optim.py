"""Optimisers by name: SGD's momentum is its own key, never Adam's betas."""

import pytest
import torch

from vaelab.config import OptimConfig
from vaelab.errors import ConfigError
from vaelab.training.optim import OPTIMIZERS, build_optimizer


def params():
    return [torch.nn.Parameter(torch.zeros(3))]


def test_sgd_has_no_momentum_unless_asked():
    opt = build_optimizer(params(), OptimConfig(name="sgd", betas=(0.9, 0.999)))
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.0
    opt = build_optimizer(params(), OptimConfig(name="sgd", momentum=0.5))
    assert opt.param_groups[0]["momentum"] == 0.5


def test_momentum_is_checked():
    with pytest.raises(ConfigError, match="optim.momentum"):
        OptimConfig(momentum=1.0)


def test_the_optimisers_are_listed():
    assert OPTIMIZERS.names() == ["adagrad", "adam", "sgd"]

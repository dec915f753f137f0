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


@pytest.mark.parametrize("cfg", [OptimConfig(name="adam", lr=1e-2, betas=(0.9, 0.99)),
                                 OptimConfig(name="adam", lr=1e-2, weight_decay=0.01),
                                 OptimConfig(name="adagrad", lr=0.05, weight_decay=0.01),
                                 OptimConfig(name="sgd", lr=0.05, momentum=0.9)])
def test_fast_step_is_torchs_step_bit_for_bit(cfg):
    """FastStep runs the fused kernels itself; 40 steps of it, with a learning-rate change
    (the NaN guard's halving) and a reload of the optimiser's state (a rollback or a resume)
    on the way, leave exactly the weights and state of torch's own step."""
    from vaelab.training.optim import FastStep

    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(30, 50), torch.nn.Tanh(), torch.nn.Linear(50, 10)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [build_optimizer(n.parameters(), cfg) for n in nets]
    slow_calls = []
    torch_step = opts[1].step
    opts[1].step = lambda: (slow_calls.append(1), torch_step())
    steps = [opts[0].step, FastStep(opts[1])]
    g = torch.Generator().manual_seed(1)
    for i in range(40):
        x = torch.randn(64, 30, generator=g)
        for net, opt, step in zip(nets, opts, steps):
            opt.zero_grad(set_to_none=True)
            net(x).pow(2).mean().backward()
            step()
        if i == 15:
            for opt in opts:
                opt.param_groups[0]["lr"] *= 0.5
        if i == 25:
            saved = opts[1].state_dict()
            opts[1].load_state_dict(saved)  # new state tensors: the fast step must use them
    # torch.optim's own step: Adam once (it creates its state there; Adagrad does at
    # construction), SGD always
    assert len(slow_calls) == {"adam": 1, "adagrad": 0, "sgd": 40}[cfg.name]
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(p, q)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        for key, value in opts[0].state[p].items():
            assert torch.equal(value, opts[1].state[q][key]), key

"""Optimisers by name (:data:`OPTIMIZERS`, what ``optim.name`` picks), and learning-rate schedules."""

from __future__ import annotations

import torch

from ..config import OptimConfig
from ..registry import Registry

# Devices with torch's fused optimiser kernels that vaelab trains on.  Adagrad has no
# fused CUDA kernel (torch raises "`fused=True` requires ... supported devices: cpu, ...";
# found on the first GPU run, results/README.md).
_FUSED_DEVICES = ("cpu", "cuda")
_FUSED_DEVICES_ADAGRAD = ("cpu",)


def _kernel(params: list, devices: tuple[str, ...] = _FUSED_DEVICES) -> dict[str, bool]:
    """``fused=True`` when every parameter sits where torch has a fused kernel, else ``foreach``.

    Fused: one pass over each tensor per step for the whole update, instead of one
    elementwise kernel per operation (foreach) or per operation and tensor (the default
    on the CPU).  Same update rule; on the 784-500-20 MLP VAE it saves about 15% of a CPU
    epoch (benchmarks/bench.py, BENCHMARKS.md).
    """
    tensors = []
    for p in params:
        group = p["params"] if isinstance(p, dict) else p
        tensors.extend([group] if torch.is_tensor(group) else list(group))
    if tensors and all(t.is_floating_point() and t.device.type in devices for t in tensors):
        return {"fused": True}
    return {"foreach": True}


def _adam(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    params = list(params)
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                            weight_decay=cfg.weight_decay, **_kernel(params))


def _adagrad(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    params = list(params)
    return torch.optim.Adagrad(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay,
                               **_kernel(params, _FUSED_DEVICES_ADAGRAD))


def _sgd(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Plain SGD, with heavy-ball momentum ``optim.momentum`` (0 by default; ``optim.betas``
    are Adam's and are not used here)."""
    params = list(params)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           **_kernel(params))


OPTIMIZERS: Registry = Registry("optimizer", {"adam": _adam, "adagrad": _adagrad, "sgd": _sgd}, plugins="optimizer")


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(cfg.name)(params, cfg)


class FastStep:
    """``opt.step()`` for the fused CPU Adam and Adagrad of :func:`build_optimizer`: the
    two kernels torch.optim runs for them (the step counters' increment, then the fused
    update) on the optimiser's own tensors, without its per-step Python around them
    (grouping the tensors by device and dtype, hooks, checks): about 1 ms a step on this
    project's 2-core machine, 5% of an MLP VAE step on one thread (BENCHMARKS.md).  The
    same numbers bit for bit (tests/training/test_optim.py).  Anything else (another
    optimiser, hooks, a parameter without a gradient, the first step, which creates the
    state) goes through ``opt.step()``."""

    def __init__(self, opt: torch.optim.Optimizer):
        self.opt = opt

    def __call__(self) -> None:
        kernel = self._kernel()
        if kernel is None:
            self.opt.step()
            return
        group = self.opt.param_groups[0]
        params = group["params"]
        grads = [p.grad for p in params]
        states = [self.opt.state.get(p) for p in params]
        if any(g is None for g in grads) or not all(states):
            self.opt.step()
            return
        steps = [st["step"] for st in states]
        with torch.no_grad():
            torch._foreach_add_(steps, 1)
            if kernel is torch._fused_adam_:
                beta1, beta2 = group["betas"]
                kernel(params, grads, [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states], [],
                       steps, amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                       weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                       grad_scale=None, found_inf=None)
            else:
                kernel(params, grads, [st["sum"] for st in states], steps, lr=group["lr"],
                       lr_decay=group["lr_decay"], weight_decay=group["weight_decay"], eps=group["eps"],
                       maximize=False, grad_scale=None, found_inf=None)

    def _kernel(self):
        """The fused kernel this optimiser's step amounts to, or None (use ``opt.step()``)."""
        opt = self.opt
        if len(opt.param_groups) != 1 or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks:
            return None
        group = opt.param_groups[0]
        if not group.get("fused") or group.get("maximize") or group.get("differentiable") \
                or group.get("capturable") or not isinstance(group["lr"], float) \
                or any(p.device.type != "cpu" for p in group["params"]):
            return None
        if type(opt) is torch.optim.Adam and not group["amsgrad"] and not group.get("decoupled_weight_decay"):
            return torch._fused_adam_
        if type(opt) is torch.optim.Adagrad:
            return torch._fused_adagrad_
        return None


def burda_stages(n_stages: int = 8) -> list[int]:
    """Epochs per stage of Burda et al. (2015), sec. 5: 3^i epochs, i = 0..7 (3280 in all)."""
    return [3 ** i for i in range(n_stages)]


def _constant(lr: float, epoch: int) -> float:
    return lr


def _burda(lr: float, epoch: int) -> float:
    """lr * 10^(-i/7) during stage i; the last stage's rate holds beyond 3280 epochs."""
    start = 0
    for i, length in enumerate(burda_stages()):
        if epoch < start + length:
            return lr * 10 ** (-i / 7)
        start += length
    return lr * 10 ** (-7 / 7)


# optim.schedule: (base rate, 0-based epoch) -> the epoch's rate
SCHEDULES: Registry = Registry("schedule", {"constant": _constant, "burda": _burda})


def lr_at(cfg: OptimConfig, epoch: int) -> float:
    """Learning rate for 0-based ``epoch`` (before any NaN-guard halving)."""
    return SCHEDULES.get(cfg.schedule)(cfg.lr, epoch)

"""Decoder likelihoods p(x | z), computed from unconstrained network outputs.

A decoder emits ``n_params`` numbers per pixel; the likelihood turns them into a
log-density summed over pixels and a mean image.  Everything is in log space:
no ``log(sigmoid(.))`` and no ``log(0)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .normal import LOG_2PI


class Likelihood(nn.Module):
    n_params: int = 1
    config_keys: tuple[str, ...] = ()  # the model.* keys it is built from
    # Defined on {0, 1} pixels only: grey data is binarised for it (data.binarize), and
    # ``model.likelihood: auto`` picks it for data that is binary already.
    binary = False

    def describe(self) -> dict:
        """What the decoder's outputs mean and how log p(x | z) is computed from them."""
        raise NotImplementedError

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """params (..., n_params * D), x broadcastable to (..., D) -> (...)."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob_backward(self, params: torch.Tensor, x: torch.Tensor,
                          grad: torch.Tensor) -> torch.Tensor | None:
        """The backward of :meth:`log_prob` as autograd computes it (the same kernels in the
        same order, so the same numbers bit for bit), for a flat batch: params (N, n_params * D),
        x (N, D), grad = d loss / d log_prob (N,) -> d loss / d params.  None where the
        likelihood does not write it out (its models then train by autograd)."""
        return None

    def params_for_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """Parameters (n_params * D,) whose ``mean`` is the image ``mean`` (D,): the decoder's
        output bias at the start.  Grey levels are clipped to [1e-3, 1 - 1e-3] first, so an
        always-0 or always-1 pixel starts at a finite logit (+-6.9)."""
        raise NotImplementedError


MEAN_CLIP = 1e-3


def _logit_of_mean(mean: torch.Tensor) -> torch.Tensor:
    return torch.logit(mean.clamp(MEAN_CLIP, 1.0 - MEAN_CLIP))


class BernoulliLikelihood(Likelihood):
    """Bernoulli pixels with logits l: log p(x | l) = x l - softplus(l), exact for x in {0,1}."""

    n_params = 1
    binary = True

    def __init__(self, cfg=None):
        super().__init__()

    def describe(self) -> dict:
        return {"name": "bernoulli", "params_per_pixel": 1, "params": ["logits l"],
                "log_prob": "sum over pixels of x * l - softplus(l)", "mean": "sigmoid(l)"}

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # softplus(l) = log(1 + e^l) is computed stably by torch for any l.
        if _blockable(params, x):
            if torch.is_grad_enabled() and params.requires_grad:
                return _BlockedBernoulli.apply(params, x)
            return _bernoulli_log_prob_blocked(params, x)
        return (x * params - F.softplus(params)).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def log_prob_backward(self, params: torch.Tensor, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """d/dl [x l - softplus(l)] = x - sigmoid(l), as autograd runs ``(x * l - softplus(l)).sum(-1)``
        backwards: the sum's expanded grad g, softplus' kernel on -g, plus g * x."""
        g = grad.unsqueeze(-1).expand_as(params)
        # -g materialised, as autograd's negation makes it: the kernel on a broadcast operand
        # rounds some elements differently (tests/objectives/test_closed.py caught it)
        return torch.ops.aten.softplus_backward(-g, params, 1, 20) + g * x

    def params_for_mean(self, mean: torch.Tensor) -> torch.Tensor:
        return _logit_of_mean(mean)


# Elements per block of the blocked path: 256k floats = 1 MiB, split by torch over the
# intra-op threads, so a block stays in cache (L2/L3) through its passes (forward: mul,
# softplus, sub, sum; backward: neg, softplus_backward, mul, add) and its temporaries are
# reused from the allocator instead of being fresh pages.  Not smaller: each op on a block
# is a thread barrier, and barriers are what a busy machine makes expensive (measured: 64k
# floats no faster when idle, slower under load).
_BLOCK = 1 << 18


def _blockable(params: torch.Tensor, x: torch.Tensor) -> bool:
    """The blocked path: large CPU tensors (the IS evaluation's k*B rows; the IWAE's k*B
    rows in training, where autograd goes through :class:`_BlockedBernoulli`).

    Evaluated whole, each pass over a (k, B, D) tensor of tens of MB goes to DRAM, and
    each temporary is a fresh allocation that the OS must page in: about twice the time
    of the same arithmetic done block by block (measured, BENCHMARKS.md).  Not for a
    differentiable x (autograd's own path gives its gradient) nor under ``torch.compile``
    (inductor fuses the plain expression itself).
    """
    return (params.device.type == "cpu" and params.dim() >= 2 and params.numel() >= 2 * _BLOCK
            and not x.requires_grad and not torch.compiler.is_compiling()
            and torch.broadcast_shapes(params.shape, x.shape) == params.shape)


def _bernoulli_log_prob_blocked(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(x * params - softplus(params)).sum(-1)``, the same expression row-block by row-block."""
    out = torch.empty(params.shape[:-1], dtype=torch.result_type(params, x), device=params.device)
    _blocked_rows(params, _same_ndim(x, params), out)
    return out


def _same_ndim(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.reshape((1,) * (like.dim() - x.dim()) + tuple(x.shape))


def _blocks(l: torch.Tensor, x: torch.Tensor, *rest: torch.Tensor):
    """(l, x, *rest) block by block along dim 0, recursing while one slice of dim 0 is itself
    larger than a block; x broadcasts over l with the same ndim (size 1 or l's in dim 0),
    ``rest`` are indexed like l's leading dims."""
    n = l.shape[0]
    per_row = l[0].numel() if n else 1
    if per_row > _BLOCK and l.dim() > 2:
        for i in range(n):
            yield from _blocks(l[i], x[0] if x.shape[0] == 1 else x[i], *(t[i] for t in rest))
        return
    rows = max(1, _BLOCK // per_row)
    for i in range(0, n, rows):
        yield (l[i:i + rows], x if x.shape[0] == 1 else x[i:i + rows], *(t[i:i + rows] for t in rest))


def _blocked_rows(l: torch.Tensor, x: torch.Tensor, out: torch.Tensor) -> None:
    """out (n, ...) = sum over the last dim of x*l - softplus(l), for l (n, ..., D) and x
    broadcastable to it with the same ndim."""
    for lb, xb, ob in _blocks(l, x, out):
        t = torch.mul(xb, lb)
        t.sub_(F.softplus(lb))
        torch.sum(t, dim=-1, out=ob)


class _BlockedBernoulli(torch.autograd.Function):
    """``(x * l - softplus(l)).sum(-1)`` with its gradient in l, both block by block: the
    kernels autograd runs on the plain expression, in its order (forward: mul, softplus,
    sub, sum; backward: the sum's expanded grad g, softplus_backward on -g materialised,
    plus g * x), on cache-sized blocks instead of whole (k, B, D) tensors.  Each element
    goes through the same kernels, so the numbers are autograd's bit for bit wherever a
    block's length is a multiple of the kernels' vector width (MNIST's 784 pixels times a
    batch that is a multiple of 4; the other tails go through torch's scalar loop, which
    rounds ``softplus`` differently in the last bit).  Only l and x are saved for backward
    (no (k, B, D) temporaries)."""

    @staticmethod
    def forward(ctx, l: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(l, x)
        return _bernoulli_log_prob_blocked(l, x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):
        l, x = ctx.saved_tensors
        grad = torch.empty_like(l, memory_format=torch.contiguous_format)
        for lb, xb, gb, ob in _blocks(l, _same_ndim(x, l), g, grad):
            ge = gb.unsqueeze(-1).expand_as(lb)
            t = torch.ops.aten.softplus_backward(-ge, lb, 1, 20)
            torch.mul(ge, xb, out=ob)
            ob.add_(t)
        return grad, None


class GaussianLikelihood(Likelihood):
    """Gaussian pixels with a learned per-pixel std, bounded below smoothly.

    mean = sigmoid(a) (data live in [0,1], as in K&W's Frey Face decoder) and
    std = min_std + softplus(b).  The floor keeps the density bounded on data that sit
    exactly on a grid of grey levels, so the bound cannot run off to +inf; unlike the
    study's tanh-squashed variance it leaves log p(x|z) a true Gaussian density, so the
    ELBO is in nats and comparable with Kingma & Welling's.
    """

    n_params = 2
    config_keys = ("gaussian_min_std",)

    def __init__(self, cfg=None):
        super().__init__()
        self.min_std = float(getattr(cfg, "gaussian_min_std", 0.01))

    def describe(self) -> dict:
        return {"name": "gaussian", "params_per_pixel": 2, "params": ["a", "b"],
                "log_prob": "sum over pixels of log N(x; mean, std^2)", "mean": "sigmoid(a)",
                "std": "min_std + softplus(b)", "min_std": self.min_std}

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = params.chunk(2, dim=-1)
        return torch.sigmoid(a), self.min_std + F.softplus(b)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.split(params)
        return (-0.5 * ((x - mean) / std).pow(2) - torch.log(std) - 0.5 * LOG_2PI).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self.split(params)[0]

    def params_for_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """Mean block sigmoid^-1(mean); std block 0 (std = min_std + log 2)."""
        return torch.cat([_logit_of_mean(mean), torch.zeros_like(mean)])

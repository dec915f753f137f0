"""Decoder likelihoods p(x | z), computed from unconstrained network outputs.

A decoder emits ``n_params`` numbers per pixel; the likelihood turns them into a
log-density summed over pixels, a mean image and samples.  Everything is in log space:
no ``log(sigmoid(.))`` and no ``log(0)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import LIKELIHOODS
from .normal import LOG_2PI


class Likelihood(nn.Module):
    n_params: int = 1

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """params (..., n_params * D), x broadcastable to (..., D) -> (...)."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@LIKELIHOODS.register("bernoulli")
class BernoulliLikelihood(Likelihood):
    """Bernoulli pixels with logits l: log p(x | l) = x l - softplus(l), exact for x in {0,1}."""

    n_params = 1

    def __init__(self, cfg=None):
        super().__init__()

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # softplus(l) = log(1 + e^l) is computed stably by torch for any l.
        return (x * params - F.softplus(params)).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params))


@LIKELIHOODS.register("gaussian")
class GaussianLikelihood(Likelihood):
    """Gaussian pixels with a learned per-pixel std, bounded below smoothly.

    mean = sigmoid(a) (data live in [0,1], as in K&W's Frey Face decoder) and
    std = min_std + softplus(b).  The floor keeps the density bounded on data that sit
    exactly on a grid of grey levels, so the bound cannot run off to +inf; unlike the
    study's tanh-squashed variance it leaves log p(x|z) a true Gaussian density, so the
    ELBO is in nats and comparable with Kingma & Welling's.
    """

    n_params = 2

    def __init__(self, cfg=None):
        super().__init__()
        self.min_std = float(getattr(cfg, "gaussian_min_std", 0.01))

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = params.chunk(2, dim=-1)
        return torch.sigmoid(a), self.min_std + F.softplus(b)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.split(params)
        return (-0.5 * ((x - mean) / std).pow(2) - torch.log(std) - 0.5 * LOG_2PI).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self.split(params)[0]

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        mean, std = self.split(params)
        return mean + std * torch.randn_like(mean)


def max_log_density_per_pixel(min_std: float) -> float:
    """Upper bound of a Gaussian pixel's log-density under the std floor."""
    return -math.log(min_std) - 0.5 * LOG_2PI

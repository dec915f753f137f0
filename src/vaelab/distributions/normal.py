"""Diagonal Gaussian, the posterior family of Kingma & Welling (2014), sec. 3."""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dim.  (..., D) -> (...)."""
    return -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * LOG_2PI)


class DiagonalGaussian:
    """N(mean, diag(exp(logvar))) over the last dim.  mean, logvar: (..., D)."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def rsample(self, k: int) -> torch.Tensor:
        """k reparameterised samples z = mean + std * eps (K&W eq. 10).  -> (k, ..., D)."""
        eps = torch.randn((k, *self.mean.shape), dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + self.std * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, var) summed over the last dim; z broadcasts against mean.  -> (...)."""
        # (z - mean)^2 / var written with exp(-logvar) so a huge logvar cannot overflow.
        sq = (z - self.mean).pow(2) * torch.exp(-self.logvar)
        return -0.5 * (sq + self.logvar + LOG_2PI).sum(-1)

    def kl_standard_normal(self) -> torch.Tensor:
        """KL(q || N(0, I)) in closed form (K&W appendix B).  -> (...)."""
        return 0.5 * (self.mean.pow(2) + torch.exp(self.logvar) - 1.0 - self.logvar).sum(-1)

"""Diagonal Gaussian, the posterior family of Kingma & Welling (2014), sec. 3."""

from __future__ import annotations

import math
from functools import cached_property

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

    @cached_property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @cached_property
    def var(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def rsample(self, k: int) -> torch.Tensor:
        """k reparameterised samples z = mean + std * eps (K&W eq. 10).  -> (k, ..., D)."""
        return self.at(self.noise(k))

    def noise(self, k: int) -> torch.Tensor:
        """The standard normal draws eps of :meth:`rsample`.  -> (k, ..., D)."""
        return torch.randn((k, *self.mean.shape), dtype=self.mean.dtype, device=self.mean.device)

    def at(self, eps: torch.Tensor) -> torch.Tensor:
        """z = mean + std * eps for given draws (k, ..., D)."""
        return self.mean + self.std * eps

    def at_backward(self, eps: torch.Tensor, grad_z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backward of :meth:`at` for one sample, as autograd runs it: d loss / dz
        (1, ..., D) -> (d loss / d mean, d loss / d logvar), each (..., D), with dz/dmean = 1
        and dz/dlogvar = eps * std / 2 (the product's, exp's, then the halving's kernel)."""
        if grad_z.shape[0] != 1:
            raise ValueError("at_backward is written for one sample (k = 1)")
        return grad_z[0], (grad_z * eps)[0] * self.std * 0.5

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, var) summed over the last dim; z broadcasts against mean.  -> (...)."""
        # (z - mean)^2 / var written with exp(-logvar) so a huge logvar cannot overflow.
        sq = (z - self.mean).pow(2) * torch.exp(-self.logvar)
        return -0.5 * (sq + self.logvar + LOG_2PI).sum(-1)

    def kl_standard_normal(self) -> torch.Tensor:
        """KL(q || N(0, I)) in closed form (K&W appendix B).  -> (...)."""
        return 0.5 * (self.mean.pow(2) + self.var - 1.0 - self.logvar).sum(-1)

    def kl_standard_normal_backward(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backward of :meth:`kl_standard_normal` as autograd runs it: grad = d loss / d KL
        (...) -> (d loss / d mean, d loss / d logvar) = grad * (mean, (exp(logvar) - 1) / 2),
        the logvar terms summed in autograd's order (the "- logvar" term's, then exp's)."""
        g = (grad * 0.5).unsqueeze(-1).expand_as(self.mean)
        return g * (2 * self.mean), -g + g * self.var

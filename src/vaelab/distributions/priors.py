"""Priors p(z).

A prior gets the encoder as an argument (never as a submodule, so its weights are not
stored twice): the VampPrior needs it, the standard normal ignores it.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from .normal import DiagonalGaussian, standard_normal_log_prob

Encoder = Callable[[torch.Tensor], DiagonalGaussian]


class Prior(nn.Module):
    config_keys: tuple[str, ...] = ()  # the model.* keys it is built from
    closed_form_kl = False  # kl_closed_form() returns KL(q || p) (objective.kl analytic)
    uses_encoder = False  # built from the model's own posterior (the VampPrior): describe() says how

    def describe(self) -> dict:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor, encoder: Encoder) -> torch.Tensor:
        """z (..., Z) -> (...)."""
        raise NotImplementedError

    def sample(self, n: int, encoder: Encoder) -> torch.Tensor:
        """-> (n, Z)."""
        raise NotImplementedError

    def kl_closed_form(self, q: DiagonalGaussian) -> torch.Tensor | None:
        """KL(q || p) per example, (...), if it has a closed form; else None."""
        return None

    def kl_closed_form_backward(self, q: DiagonalGaussian,
                                grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The backward of :meth:`kl_closed_form` as autograd computes it: grad = d loss / d KL
        (...) -> (d loss / d q.mean, d loss / d q.logvar); None where the prior does not
        write it out (its models then train by autograd)."""
        return None


class StandardNormalPrior(Prior):
    """p(z) = N(0, I)."""

    closed_form_kl = True

    def __init__(self, cfg, latent: int, x_dim: int):
        super().__init__()
        self.latent = latent
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # carries device/dtype

    def describe(self) -> dict:
        return {"name": "normal", "size": self.latent, "density": "N(0, I)"}

    def log_prob(self, z: torch.Tensor, encoder: Encoder | None = None) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def sample(self, n: int, encoder: Encoder | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent, device=self._anchor.device, dtype=self._anchor.dtype)

    def kl_closed_form(self, q: DiagonalGaussian) -> torch.Tensor:
        return q.kl_standard_normal()

    def kl_closed_form_backward(self, q: DiagonalGaussian, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return q.kl_standard_normal_backward(grad)

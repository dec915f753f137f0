"""A learnable mixture-of-Gaussians prior for vaelab, as a plugin.

    p(z) = sum_k pi_k N(z; mu_k, diag(exp(logvar_k))),   pi = softmax(logits),  k = 1..K

Every parameter is learned with the model (Tomczak & Welling 2018 use it as the
"MoG prior" baseline of the VampPrior).  It has no closed-form KL against the diagonal
Gaussian posterior, so the ELBO's KL is taken at the samples (``objective.kl: auto``
resolves to ``sampled`` from ``closed_form_kl = False``).

Installed, the package's entry point ``prior.mog`` in the group ``vaelab.parts`` makes
``model.prior: mog`` a valid config value in every vaelab process.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from vaelab.config import part_options
from vaelab.distributions import LOG_2PI, DiagonalGaussian, Prior

NAME = "mog"  # the name the entry point gives this prior (pyproject.toml)


class MixturePrior(Prior):
    """K learnable diagonal Gaussians with learnable weights over the latent z."""

    @dataclass(frozen=True)
    class Options:
        components: int = 10  # K

        def __post_init__(self) -> None:
            if self.components < 1:
                raise ValueError(f"components must be >= 1, got {self.components}")

    closed_form_kl = False

    def __init__(self, cfg, latent: int, x_dim: int):
        super().__init__()
        k = part_options(cfg, NAME, self.Options).components
        self.latent = latent
        # Means spread like draws from N(0, I) so the components start apart; unit variances.
        self.means = nn.Parameter(torch.randn(k, latent))
        self.logvars = nn.Parameter(torch.zeros(k, latent))
        self.logits = nn.Parameter(torch.zeros(k))

    def describe(self) -> dict:
        k, z = self.means.shape
        return {"name": NAME, "size": self.latent, "components": k,
                "density": "log p(z) = logsumexp_k [log softmax(logits)_k + log N(z; means_k, diag exp(logvars_k))]",
                "params": {"means": "prior.means", "logvars": "prior.logvars", "logits": "prior.logits"}}

    def log_prob(self, z: torch.Tensor, encoder=None) -> torch.Tensor:
        """z (..., Z) -> (...)."""
        diff = z.unsqueeze(-2) - self.means  # (..., K, Z)
        log_comp = -0.5 * (diff.pow(2) * torch.exp(-self.logvars) + self.logvars + LOG_2PI).sum(-1)  # (..., K)
        return torch.logsumexp(log_comp + torch.log_softmax(self.logits, -1), dim=-1)

    def sample(self, n: int, encoder=None) -> torch.Tensor:
        """-> (n, Z): a component by its weight, then a draw from it."""
        idx = torch.multinomial(torch.softmax(self.logits, -1), n, replacement=True)
        return DiagonalGaussian(self.means[idx], self.logvars[idx]).rsample(1)[0]


__all__ = ["MixturePrior"]

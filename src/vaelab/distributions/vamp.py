"""The VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior", eq. 9).

    p(z) = (1/K) sum_k q(z | u_k)

a uniform mixture of the model's own variational posterior evaluated at K learned
pseudo-inputs u_k.  The posterior comes in as the ``encoder`` argument (the model's
``prior_encoder``), so its weights live once, in the model.

Pseudo-inputs are K free vectors of the data's size passed through hardtanh(0, 1), so
they stay valid images; initialised N(0.05, 0.01) as in the authors' MNIST code
(``pseudoinputs_mean``/``pseudoinputs_std``), inside hardtanh's linear range.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .normal import LOG_2PI, DiagonalGaussian
from .priors import Encoder, Prior

INIT_MEAN, INIT_STD = 0.05, 0.01


def mixture_log_prob(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k N(z; mean_k, diag exp(logvar_k)).  z (..., Z); mean, logvar (K, Z) -> (...).

    The quadratic form is expanded, sum_j (z_j - m_kj)^2 / v_kj
    = (z^2) . (1/v_k) - 2 z . (m_k / v_k) + sum_j m_kj^2 / v_kj,
    so every component's log-density is one (N, 2Z) x (2Z, K) matrix product with the
    constants as its bias, [z^2, z] . [-1/(2 v_k), m_k / v_k] + c_k: no Python loop, no
    (N, K, Z) tensor (at evaluation N = 16384 rows, K = 500, Z = 200 that would be 6.5 GB),
    and one pass over the (N, K) result before its logsumexp.  The expansion cancels terms
    of size m^2 / v, large for sharp components, so it is computed in float64 (exact to
    ~1e-9 nats; float32 could be off by 0.1 nat) and the result is returned in z's dtype.
    """
    lead, zdim, dtype = z.shape[:-1], z.shape[-1], z.dtype
    work = dtype if z.device.type == "mps" else torch.float64  # MPS has no float64
    flat = z.reshape(-1, zdim).to(work)  # (N, Z)
    mean, logvar = mean.to(work), logvar.to(work)
    prec = torch.exp(-logvar)  # (K, Z)
    feats = torch.cat([flat.pow(2), flat], dim=-1)  # (N, 2Z)
    coef = torch.cat([-0.5 * prec, mean * prec], dim=-1)  # (K, 2Z)
    const = -0.5 * ((mean.pow(2) * prec + logvar).sum(-1) + zdim * LOG_2PI)  # (K,)
    log_comp = torch.addmm(const, feats, coef.T)  # (N, K): log q(z | u_k)
    out = torch.logsumexp(log_comp, dim=-1) - math.log(mean.shape[0])  # (N,)
    return out.reshape(lead).to(dtype)


class VampPrior(Prior):
    config_keys = ("pseudo_inputs",)
    uses_encoder = True

    def __init__(self, cfg, latent: int, x_dim: int):
        super().__init__()
        self.latent = latent
        k = int(cfg.pseudo_inputs)
        self.pseudo = nn.Parameter(torch.randn(k, x_dim) * INIT_STD + INIT_MEAN)  # (K, D), unconstrained

    def describe(self) -> dict:
        """The model adds how a component q(z | u_k) is computed (its ``prior_encoder``)."""
        k, d = self.pseudo.shape
        return {"name": "vamp", "size": self.latent, "components": k,
                "density": "log p(z) = logsumexp_k log q(z | u_k) - log K",
                "pseudo_inputs": {"param": "prior.pseudo", "shape": [k, d],
                                  "u": "hardtanh(pseudo, 0, 1): each entry clipped to [0, 1]"}}

    @property
    def num_components(self) -> int:
        return self.pseudo.shape[0]

    def pseudo_inputs(self) -> torch.Tensor:
        """u_k in [0, 1]^D.  -> (K, D)."""
        return F.hardtanh(self.pseudo, 0.0, 1.0)

    def components(self, encoder: Encoder) -> DiagonalGaussian:
        """q(z | u_k) for all k: parameters (K, Z)."""
        return encoder(self.pseudo_inputs())

    def log_prob(self, z: torch.Tensor, encoder: Encoder) -> torch.Tensor:
        """log p(z) = logsumexp_k log q(z | u_k) - log K.  z (..., Z) -> (...)."""
        q = self.components(encoder)
        return mixture_log_prob(z, q.mean, q.logvar)

    def sample(self, n: int, encoder: Encoder) -> torch.Tensor:
        """Pick a component uniformly, then z ~ q(z | u_k).  -> (n, Z)."""
        q = self.components(encoder)
        idx = torch.randint(self.num_components, (n,), device=self.pseudo.device)
        return DiagonalGaussian(q.mean[idx], q.logvar[idx]).rsample(1)[0]

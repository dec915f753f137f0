"""Two stochastic layers (Burda, Grosse & Salakhutdinov 2015, sec. 5 and appendix C).

    q(z1, z2 | x) = q(z1 | x) q(z2 | z1)          p(x, z1, z2) = p(x | z1) p(z1 | z2) p(z2)

so for a sample of the chain (z1, z2) ~ q,

    log w = log p(x | z1) + [log p(z1 | z2) + log p(z2)] - [log q(z1 | x) + log q(z2 | z1)],

returned as ``log_px_z``, ``log_pz`` and ``log_qz_x`` so the ELBO, the IWAE bound and the
IS estimate come out of it exactly as for one layer (the study's appendix A.3 eq. 9 adds
log N(h1; 0, I) on top of log p(h1 | h2), a likely cause of its note 3; this has no such
term).  Burda et al.'s MNIST net is 784-200-200-z1(100)-100-100-z2(50), tanh: x <-> z1
uses ``cfg.arch`` with ``cfg.hidden`` and z1 <-> z2 an MLP with ``cfg.inner_hidden``.
``cfg.latent`` is z2, the latent that meets the prior; ``cfg.inner_latent`` is z1.
"""

from __future__ import annotations

import torch

from typing import Any

from ..distributions import DiagonalGaussian
from ..nets import MLP
from .base import VAE, LogWeights


class HierarchicalVAE(VAE):
    closed_form_kl = False  # the KL is over the chain q(z1|x) q(z2|z1): no closed form
    def build_nets(self, arch) -> None:
        cfg, info, cond = self.cfg, self.info, self.cond_dim
        z1, z2, inner = cfg.inner_latent, cfg.latent, tuple(cfg.inner_hidden)
        self.encoder = arch.encoder(cfg, info.image_shape, 2 * z1, cond)  # q(z1 | x)
        self.decoder = arch.decoder(cfg, z1, info.image_shape, self.likelihood.n_params, cond)  # p(x | z1)
        self.encoder2 = MLP(z1, inner, 2 * z2, cfg.activation, cond)  # q(z2 | z1)
        self.decoder2 = MLP(z2, tuple(reversed(inner)), 2 * z1, cfg.activation, cond)  # p(z1 | z2)
        # the prior p(z2) over cfg.latent is built by VAE.__init__

    CONFIG_KEYS = VAE.CONFIG_KEYS + ("inner_latent", "inner_hidden", "activation")  # activation: the z1<->z2 MLPs

    @classmethod
    def notes(cls, cfg) -> list[str]:
        return [f"Two stochastic layers: N_z (model.latent) counts the top latent z2 only, under which a "
                f"{cfg.inner_latent}-unit z1 sits next to x, so a small N_z limits it far less than a one-layer VAE."]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        z1, z2 = self.cfg.inner_latent, self.cfg.latent
        out["latents"] = {"z1": {"size": z1, "next_to_x": True, "config_key": "model.inner_latent"},
                          "z2": {"size": z2, "meets_prior": True, "config_key": "model.latent"}}
        out["conditionals"] = {
            "q(z1|x)": {"net": "encoder", "input": "x", "output": "posterior params of z1"},
            "q(z2|z1)": {"net": "encoder2", "input": "z1", "output": "posterior params of z2"},
            "p(z1|z2)": {"net": "decoder2", "input": "z2", "output": "diagonal Gaussian params of z1 "
                                                                   "([mean, logvar], as the posterior)"},
            "p(x|z1)": {"net": "decoder", "input": "z1", "output": "likelihood params"},
        }
        out["nets"]["encoder2"] = self.encoder2.describe("encoder2")
        out["nets"]["decoder2"] = self.decoder2.describe("decoder2")
        out["prior"]["over"] = "z2"
        out["log_weight"] = ("log w = log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1), "
                             "z1 ~ q(z1|x), then one z2 ~ q(z2|z1) per z1 sample")
        return out

    def _describe_prior_component(self) -> str:
        return "q(z2 | z1 = mean of q(z1 | u_k)): the top posterior along the mean path of the pseudo-input u_k"

    # --- the extra conditionals -------------------------------------------------------
    def posterior2(self, z1: torch.Tensor, c: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z2 | z1); z1 (..., B, Z1) -> parameters (..., B, Z2)."""
        mean, logvar = self.encoder2(z1, c).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def prior1(self, z2: torch.Tensor, c: torch.Tensor | None = None) -> DiagonalGaussian:
        """p(z1 | z2); z2 (..., B, Z2) -> parameters (..., B, Z1)."""
        mean, logvar = self.decoder2(z2, c).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def top_posterior(self, x: torch.Tensor, c: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z2 | z1 = E[z1 | x]): the top layer along the posterior's mean path."""
        return self.posterior2(self.posterior(x, c).mean, c)

    def prior_encoder(self, u: torch.Tensor) -> DiagonalGaussian:
        """For a VampPrior over z2, the components are q(z2 | E[z1 | u_k]): the true
        q(z2 | u) = E_{q(z1|u)} q(z2 | z1) is not Gaussian; a mixture of these Gaussians
        is still a proper density, so every bound stays a bound."""
        c = u.new_zeros(u.shape[0], self.cond_dim) if self.cond_dim else None
        return self.top_posterior(u, c)

    # --- the contract -----------------------------------------------------------------
    def log_weights(self, x: torch.Tensor, k: int = 1, y: torch.Tensor | None = None,
                    x_in: torch.Tensor | None = None) -> LogWeights:
        """k samples of the chain z1 ~ q(z1|x), z2 ~ q(z2|z1), in one batched pass.  -> (k, B)."""
        c = self.condition(y)
        q1 = self.posterior(x if x_in is None else x_in, c)  # (B, Z1)
        z1 = q1.rsample(k)  # (k, B, Z1)
        q2 = self.posterior2(z1, c)  # (k, B, Z2)
        z2 = q2.rsample(1)[0]  # (k, B, Z2)
        p1 = self.prior1(z2, c)  # (k, B, Z1)
        params = self.decode(z1, c)  # (k, B, P*D)
        return LogWeights(
            log_px_z=self.likelihood.log_prob(params, x),
            log_pz=p1.log_prob(z1) + self.prior.log_prob(z2, self.prior_encoder),
            log_qz_x=q1.log_prob(z1) + q2.log_prob(z2),
        )

    # --- for figures and diagnostics ---------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Ancestral: z2 ~ p(z2), z1 ~ p(z1 | z2), then the mean image of p(x | z1).  -> (n, D)."""
        c = self.condition(y)
        z2 = self.prior.sample(n, self.prior_encoder)
        z1 = self.prior1(z2, c).rsample(1)[0]
        return self.likelihood.mean(self.decode(z1, c))

    # reconstruct() is inherited: the mean of p(x | z1 = E_q[z1 | x]).

    @torch.no_grad()
    def latent_means(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The top latent along the mean path, E_{q(z2 | z1 = E[z1|x])}[z2].  -> (B, Z2).
        (Burda et al. count active units per layer; this reports the top one.)"""
        return self.top_posterior(x, self.condition(y)).mean

    @torch.no_grad()
    def decode_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Top latents z2 (N, Z2) -> mean image of p(x | z1 = E[z1 | z2]).  -> (N, D)."""
        c = self.condition(y)
        return self.likelihood.mean(self.decode(self.prior1(z, c).mean, c))

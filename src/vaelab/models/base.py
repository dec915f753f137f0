"""The VAE as a composition of parts: encoder and decoder nets, posterior family,
likelihood and prior, each picked by name from the registries.

Everything a bound or an estimator needs comes from one method, :meth:`VAE.log_weights`:

    log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x),   z_i ~ q(z | x),  i = 1..k

* ELBO (K&W 2014, eq. 3)          = E_i[log w_i]                 (mean over k)
* IWAE bound (Burda et al., eq. 8) = logsumexp_i(log w_i) - log k
* log p(x) estimate (IS, k=5000)   = the same logsumexp at evaluation time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn as nn

from ..config import ModelConfig
from ..data.dataset import DataInfo
from ..distributions import LIKELIHOODS, PRIORS, DiagonalGaussian, Likelihood
from ..nets import NETS, init_weights, resolve_init, set_output_bias


@dataclass
class LogWeights:
    """Per-sample log terms, each (k, B).  Higher is better for all derived quantities."""

    log_px_z: torch.Tensor
    log_pz: torch.Tensor
    log_qz_x: torch.Tensor
    # KL(q(z|x) || p(z)) in closed form, (B,), where the prior has one (the standard
    # normal); None otherwise.  The ELBO with ``objective.kl: analytic`` uses it.
    kl_closed_form: torch.Tensor | None = None

    @property
    def log_w(self) -> torch.Tensor:
        return self.log_px_z + self.log_pz - self.log_qz_x

    @property
    def kl(self) -> torch.Tensor:
        """Single-sample Monte Carlo estimate of KL(q(z|x) || p(z)), (k, B)."""
        return self.log_qz_x - self.log_pz


def wants_binary(cfg: ModelConfig) -> bool | None:
    """Whether the configured likelihood needs {0, 1} pixels (grey data is then binarised);
    None for ``auto``, where the data decides (:func:`likelihood_name`)."""
    if cfg.likelihood == "auto":
        return None
    return bool(getattr(LIKELIHOODS.get(cfg.likelihood), "binary", False))


def likelihood_name(cfg: ModelConfig, info: DataInfo) -> str:
    if cfg.likelihood != "auto":
        return cfg.likelihood
    return "bernoulli" if info.binary else "gaussian"


class VAE(nn.Module):
    """One stochastic layer: q(z|x) diagonal Gaussian, p(z) from PRIORS, p(x|z) from LIKELIHOODS."""

    # Its KL(q(z|x) || p(z)) has a closed form wherever the prior's has (objective.kl analytic).
    closed_form_kl = True

    def __init__(self, cfg: ModelConfig, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.info = info
        self.likelihood: Likelihood = LIKELIHOODS.get(likelihood_name(cfg, info))(cfg)
        self.build_nets(NETS.get(cfg.arch))
        self.prior = PRIORS.get(cfg.prior)(cfg, cfg.latent, info.dim)
        self.start()

    def build_nets(self, arch) -> None:
        """q(z|x) and p(x|z); a model with more conditionals (hierarchical.py) adds its own."""
        self.encoder = arch.encoder(self.cfg, self.info.image_shape, 2 * self.cfg.latent, self.cond_dim)
        self.decoder = arch.decoder(self.cfg, self.cfg.latent, self.info.image_shape, self.likelihood.n_params,
                                    self.cond_dim)

    @torch.no_grad()
    def start(self) -> None:
        """The initial weights (``model.init``) of every net, and the decoder's output bias
        at the likelihood's parameters of the mean training image (``model.output_bias``).
        See :mod:`vaelab.nets.init`; the prior keeps its own start."""
        scheme = resolve_init(self.cfg)
        for name, child in self.named_children():
            if name not in ("prior", "likelihood"):
                init_weights(child, scheme)
        if self.cfg.output_bias == "data" and self.info.pixel_mean is not None:
            mean = torch.tensor(self.info.pixel_mean, dtype=torch.float64)
            set_output_bias(self.decoder.output_bias, self.likelihood.params_for_mean(mean))

    # --- conditioning hook (the CVAE overrides these two) -------------------------
    @property
    def cond_dim(self) -> int:
        return 0

    def condition(self, y: torch.Tensor | None) -> torch.Tensor | None:
        """Labels (B,) -> the vector fed to both nets, or None for an unconditional model."""
        return None

    # --- the parts ------------------------------------------------------------------
    def posterior(self, x: torch.Tensor, c: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z | x [, c]); x (B, D) -> parameters (B, Z)."""
        mean, logvar = self.encoder(x, c).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def prior_encoder(self, u: torch.Tensor) -> DiagonalGaussian:
        """The encoder as the prior sees it (VampPrior pseudo-inputs carry no label)."""
        c = None
        if self.cond_dim:
            c = u.new_zeros(u.shape[0], self.cond_dim)
        return self.posterior(u, c)

    def decode(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z (..., B, Z) -> likelihood parameters (..., B, P*D).  Nets see a flat batch."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        if c is not None:
            c = c.expand(*lead, c.shape[-1]).reshape(-1, c.shape[-1])
        return self.decoder(flat, c).reshape(*lead, -1)

    def log_weights(self, x: torch.Tensor, k: int = 1, y: torch.Tensor | None = None,
                    x_in: torch.Tensor | None = None) -> LogWeights:
        """k importance samples per example.  x (B, D) is the target; the encoder sees
        ``x_in`` when given (a corrupted copy, for the denoising bound).  -> (k, B) terms."""
        c = self.condition(y)
        q = self.posterior(x if x_in is None else x_in, c)
        z = q.rsample(k)  # (k, B, Z)
        params = self.decode(z, c)  # (k, B, P*D)
        return LogWeights(
            log_px_z=self.likelihood.log_prob(params, x),
            log_pz=self.prior.log_prob(z, self.prior_encoder),
            log_qz_x=q.log_prob(z),
            kl_closed_form=self.prior.kl_closed_form(q),
        )

    def forward(self, x: torch.Tensor, k: int = 1, y: torch.Tensor | None = None,
                x_in: torch.Tensor | None = None) -> LogWeights:
        """``model(x, k)`` is :meth:`log_weights`, so hooks, ``torch.compile`` and DDP wrap
        a model the ordinary way."""
        return self.log_weights(x, k, y, x_in)

    @classmethod
    def notes(cls, cfg: ModelConfig) -> list[str]:
        """What a reader of this model's test numbers needs beside them, one sentence each,
        from its config (a report marks the rows they concern and prints them under the
        table).  A one-layer VAE needs none."""
        return []

    # --- the run directory's description ----------------------------------------------
    # ModelConfig keys every model reads; a part adds its own (``config_keys``).
    CONFIG_KEYS = ("kind", "arch", "latent", "likelihood", "prior", "init", "output_bias")

    def describe(self) -> dict[str, Any]:
        """The model as built, complete enough to rebuild it and its log weights with plain
        torch from ``config.json`` and the checkpoint (a run's ``architecture`` record)."""
        z = self.cfg.latent
        out: dict[str, Any] = {
            "model": self.cfg.kind,
            "x": {"shape": list(self.info.image_shape), "dim": self.info.dim,
                  "layout": "each image flattened in (C, H, W) order, values in [0, 1]"},
            "condition": self._describe_condition(),
            "latents": {"z": {"size": z, "meets_prior": True}},
            "posterior": {"family": "diagonal_gaussian", "params": ["mean", "logvar"],
                          "split": "a net's output (N, 2*size): first half mean, second half logvar",
                          "density": "N(mean, diag(exp(logvar)))", "rsample": "mean + exp(0.5 * logvar) * eps"},
            "conditionals": {
                "q(z|x)": {"net": "encoder", "input": "x", "output": "posterior params of z"},
                "p(x|z)": {"net": "decoder", "input": "z", "output": "likelihood params"},
            },
            "nets": {"encoder": self.encoder.describe("encoder"), "decoder": self.decoder.describe("decoder")},
            "likelihood": {**self.likelihood.describe(),
                           "decoder_output": "parameter-major: index p * D + d is parameter p of pixel d "
                                             "(d in x's flattened order)"},
            "prior": {**self.prior.describe(), "over": "z"},
            "log_weight": "log w = log p(x|z) + log p(z) - log q(z|x), z ~ q(z|x)",
            "weights": "the newest checkpoints/epoch-NNNNNN.safetensors whose sha256 matches its .json; "
                       "tensor 'model.' + the parameter names given here",
        }
        if self.prior.uses_encoder:  # a mixture of the model's own posteriors (the VampPrior)
            out["prior"]["component"] = self._describe_prior_component()
        out["unused_config_keys"] = [f"model.{f.name}" for f in fields(self.cfg) if f.name not in self.config_keys()]
        return out

    def config_keys(self) -> set[str]:
        """The ModelConfig fields this model as built depends on."""
        arch = NETS.get(self.cfg.arch)
        return {*self.CONFIG_KEYS, *arch.config_keys, *self.likelihood.config_keys, *self.prior.config_keys}

    def _describe_condition(self) -> dict[str, Any] | None:
        return None

    def _describe_prior_component(self) -> str:
        return "q(z | u_k) = the posterior (encoder) of the pseudo-input u_k"

    # --- for figures and diagnostics -----------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images of p(x | z), z ~ p(z).  -> (n, D)."""
        z = self.prior.sample(n, self.prior_encoder)
        return self.likelihood.mean(self.decode(z, self.condition(y)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(x | z = E_q[z]).  -> (B, D)."""
        c = self.condition(y)
        return self.likelihood.mean(self.decode(self.posterior(x, c).mean, c))

    @torch.no_grad()
    def latent_means(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E_q[z | x] of the latent that meets the prior.  -> (B, Z)."""
        return self.posterior(x, self.condition(y)).mean

    @torch.no_grad()
    def decode_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean image for given latents (the 2-D manifold figure).  z (N, Z) -> (N, D)."""
        return self.likelihood.mean(self.decode(z, self.condition(y)))

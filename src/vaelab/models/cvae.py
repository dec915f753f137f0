"""The conditional VAE (Sohn, Lee & Yan 2015; the study's sec. 4.2.3).

A one-hot label y is fed to both nets: q(z | x, y), p(x | z, y), with p(z) unchanged.
Its bound is on log p(x | y), not log p(x): evaluation reports it as such.  Everything
else is the VAE's; only the conditioning hook changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import VAE


class CVAE(VAE):
    @classmethod
    def notes(cls, cfg) -> list[str]:
        return ["Its numbers bound log p(x | y): both nets are given the digit's label, which the latent then "
                "need not encode, so they sit above an unconditional model's log p(x)."]

    @property
    def cond_dim(self) -> int:
        if self.info.num_classes <= 0:
            raise ConfigError("model.kind 'cvae' needs a labelled dataset; this one has no labels")
        return self.info.num_classes

    def _describe_condition(self) -> dict:
        return {"what": "one-hot label y", "size": self.cond_dim,
                "fed_to": "every net, by its concat_condition step",
                "bound": "log p(x | y): the prior p(z) does not see y"}

    def _describe_prior_component(self) -> str:
        return "q(z | u_k, c = 0): the posterior (encoder) of the pseudo-input u_k with an all-zero condition"

    def condition(self, y: torch.Tensor | None) -> torch.Tensor:
        """Labels (B,) -> one-hot (B, num_classes) in the model's dtype."""
        if y is None:
            raise ValueError("a CVAE needs the labels y (it models p(x | y))")
        dtype = next(self.parameters()).dtype
        return F.one_hot(y.long(), self.cond_dim).to(dtype)

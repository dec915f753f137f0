"""The importance weighted bound (Burda, Grosse & Salakhutdinov 2015, eq. 8).

L_k = E[log (1/k) sum_i w_i] with all k samples drawn in one batched pass.  Autograd of
the logsumexp gives exactly their eq. 14 gradient: sum_i w~_i grad log w_i with the
normalised weights w~_i = w_i / sum_j w_j, so no hand-written gradient is needed.
At k = 1 it is the ELBO for the same sample.
"""

from __future__ import annotations

import math

import torch

from .base import Objective


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/k) sum_i exp(log_w_i) over dim 0, stably.  (k, B) -> (B,)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


class IWAE(Objective):
    @classmethod
    def notes(cls, cfg) -> list[str]:
        return super().notes(cfg) + [
            f"Trained on the importance-weighted bound with k = {cfg.k} (Burda et al. 2015), not the ELBO: its "
            f"ELBO lies further under its log p(x) than an ELBO-trained model's, by design."]

    def __call__(self, model, x, y=None, progress: float = 1.0) -> dict[str, torch.Tensor]:
        lw = model.log_weights(x, self.cfg.k, y, x_in=self.encoder_input(x))
        log_w = lw.log_w  # (k, B)
        return {
            "objective": iwae_bound(log_w),
            "elbo": log_w.mean(0),
            "recon": lw.log_px_z.mean(0),
            "kl": lw.kl.mean(0),
        }

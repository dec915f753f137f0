"""The ELBO and the beta-ELBO.

ELBO (Kingma & Welling 2014, eq. 3): E_q[log p(x|z)] - KL(q(z|x) || p(z)), estimated with
``k`` reparameterised samples as the mean of log w, or (``kl: analytic``) as the mean of
log p(x|z) minus the KL in closed form (K&W's estimator B, eq. 10).  beta-VAE (Higgins et al. 2017,
eq. 4) weights the KL by beta; beta may ramp linearly from 0 over ``warmup_epochs``
(Bowman et al. 2016; Sonderby et al. 2016).  With beta = 1 and no warm-up the objective
*is* the ELBO.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import Objective
from .closed import closed_elbo_step


class ELBO(Objective):
    closed_form_kl = True

    @classmethod
    def notes(cls, cfg) -> list[str]:
        out = super().notes(cfg)
        if cfg.beta != 1.0:
            out.append(f"Trained on E[log p(x|z)] - {cfg.beta:g} × KL (the β-VAE, Higgins et al. 2017) and tested on "
                       f"the true ELBO (β = 1): its numbers are not those of the objective it maximised.")
        return out

    def beta_at(self, progress: float) -> float:
        if self.cfg.warmup_epochs <= 0:
            return self.cfg.beta
        return self.cfg.beta * min(1.0, progress / self.cfg.warmup_epochs)

    def closed_step(self, model):
        """One sample with the closed-form KL (the study's estimator, ``kl`` auto or
        analytic): written out where the model's parts allow (:mod:`.closed`)."""
        if self.cfg.k != 1 or self.cfg.kl == "sampled" or type(self).__call__ is not ELBO.__call__:
            return None
        return closed_elbo_step(model, self)

    def __call__(self, model, x, y=None, progress: float = 1.0) -> dict[str, torch.Tensor]:
        lw = model.log_weights(x, self.cfg.k, y, x_in=self.encoder_input(x))  # (k, B) terms
        recon = lw.log_px_z.mean(0)  # (B,)
        # RunConfig admits "analytic" only where the closed form exists and resolves "auto";
        # an ObjectiveConfig used on its own meets both here.
        if self.cfg.kl == "analytic" and lw.kl_closed_form is None:
            raise ConfigError("objective.kl: 'analytic' needs a closed-form KL (one stochastic layer, the normal "
                              "prior), which this model has not; use kl: auto or sampled")
        closed = self.cfg.kl != "sampled" and lw.kl_closed_form is not None
        kl = lw.kl_closed_form if closed else lw.kl.mean(0)  # (B,)
        beta = self.beta_at(progress)
        objective = recon - kl if beta == 1.0 else recon - beta * kl
        return {"objective": objective, "elbo": recon - kl, "recon": recon, "kl": kl}

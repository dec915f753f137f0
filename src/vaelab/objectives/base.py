"""What every objective shares: input corruption (the denoising criterion) and the
call signature."""

from __future__ import annotations

import torch

from ..config import ObjectiveConfig
from ..data import corrupt


class Objective:
    """Base: show the encoder a corrupted input if ``noise`` is set, score the clean one.

    Im et al. (2017), eq. 6: the denoising bound E_{p(x~|x)} E_{q(z|x~)}[log p(x,z)/q(z|x~)]
    is the ordinary bound with the encoder fed x~ and the decoder scored on x.
    """

    # Whether it can use a closed-form KL (objective.kl analytic); a bound that is a mean of
    # log w over samples (the IWAE's) cannot.
    closed_form_kl = False

    def __init__(self, cfg: ObjectiveConfig):
        self.cfg = cfg

    @classmethod
    def notes(cls, cfg: ObjectiveConfig) -> list[str]:
        """What a reader of a model's test numbers needs to know about how it was trained, one
        sentence each, from the config (see :meth:`vaelab.models.VAE.notes`).  Evaluation is
        always on clean data at beta = 1, so a corrupted input or a weighted KL in training
        says why a model's numbers differ from a plain ELBO-trained one's."""
        if cfg.noise == "none" or cfg.noise_level == 0.0:
            return []
        return [f"Trained on inputs with {cfg.noise} noise (level {cfg.noise_level:g}) and tested on clean ones "
                f"(the denoising bound, Im et al. 2017): its numbers bound the same log p(x) as a clean-trained "
                f"model's."]

    def encoder_input(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.cfg.noise == "none" or self.cfg.noise_level == 0.0:
            return None
        return corrupt(x, self.cfg.noise, self.cfg.noise_level)

    def closed_step(self, model):
        """This objective's step with the gradient written out by hand for ``model``
        (:mod:`.closed`), or None: train by autograd."""
        return None

    def __call__(self, model, x: torch.Tensor, y: torch.Tensor | None = None,
                 progress: float = 1.0) -> dict[str, torch.Tensor]:
        """``progress`` = epochs done so far (fractional), for warm-ups.  -> {name: (B,)}."""
        raise NotImplementedError

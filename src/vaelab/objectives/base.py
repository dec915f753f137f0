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

    def encoder_input(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.cfg.noise == "none" or self.cfg.noise_level == 0.0:
            return None
        return corrupt(x, self.cfg.noise, self.cfg.noise_level)

    def __call__(self, model, x: torch.Tensor, y: torch.Tensor | None = None,
                 progress: float = 1.0) -> dict[str, torch.Tensor]:
        """``progress`` = epochs done so far (fractional), for warm-ups.  -> {name: (B,)}."""
        raise NotImplementedError

"""Training objectives: f(model, x, y) -> named per-example terms, higher is better.

Only the trainer negates and reduces.  Every objective reports ``objective`` (what is
maximised) and ``elbo`` (the true ELBO at beta = 1 on the clean target), so learning
curves of different objectives are comparable.
"""

from __future__ import annotations

from ..config import ObjectiveConfig
from ..registry import Registry
from .base import Objective
from .elbo import ELBO
from .iwae import IWAE

OBJECTIVES: Registry = Registry("objective", {"elbo": ELBO, "iwae": IWAE}, plugins="objective")

__all__ = ["OBJECTIVES", "Objective", "build_objective"]


def build_objective(cfg: ObjectiveConfig) -> Objective:
    return OBJECTIVES.get(cfg.name)(cfg)

"""Models: :class:`VAE` composes the parts; a genuinely different model is one small
registered file (``cvae.py``, ``hierarchical.py``)."""

from __future__ import annotations

from .. import distributions, nets  # noqa: F401  (register parts)
from ..config import ModelConfig
from ..registry import MODELS
from .base import VAE, DataInfo, LogWeights
from . import cvae, hierarchical  # noqa: F401,E402  (register "cvae", "hierarchical")

__all__ = ["VAE", "DataInfo", "LogWeights", "build_model"]


def build_model(cfg: ModelConfig, info: DataInfo) -> VAE:
    return MODELS.get(cfg.kind)(cfg, info)

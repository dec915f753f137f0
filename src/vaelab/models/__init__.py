"""Models: :class:`VAE` composes the parts; a genuinely different model is one small
file (``cvae.py``, ``hierarchical.py``), listed by name in :data:`MODELS`."""

from __future__ import annotations

import os

import torch

from ..config import ModelConfig
from ..errors import ConfigError
from ..registry import Registry
from .base import VAE, DataInfo, LogWeights, wants_binary
from .cvae import CVAE
from .hierarchical import HierarchicalVAE

MODELS: Registry = Registry("model", {"vae": VAE, "cvae": CVAE, "hierarchical": HierarchicalVAE}, plugins="model")

__all__ = ["MODELS", "VAE", "DataInfo", "LogWeights", "build_model", "check_fits_memory", "wants_binary"]


def build_model(cfg: ModelConfig, info: DataInfo) -> VAE:
    return MODELS.get(cfg.kind)(cfg, info)


def available_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_memory(cfg: ModelConfig, info: DataInfo, batch_rows: int, available: int | None = None) -> int:
    """Refuse, before allocating anything, a model that cannot fit in memory.

    The model is built on the meta device (shapes only) to count its parameters; training
    holds each one four times (weights, gradients, two Adam moments) plus activations of
    roughly ``batch_rows`` x (widest layer) per layer.  Returns the estimate in bytes.
    """
    with torch.device("meta"):
        model = build_model(cfg, info)
    params = sum(p.numel() for p in model.parameters())
    widest = max([info.dim * 2, cfg.latent * 2, *cfg.hidden, *cfg.inner_hidden])
    layers = sum(1 for _ in model.modules())
    need = 4 * (4 * params + 2 * batch_rows * widest * layers)
    available = available_memory_bytes() if available is None else available
    if available is not None and need > available:
        raise ConfigError(
            f"this model needs about {need / 2**30:.1f} GiB ({params:,} parameters) but only "
            f"{available / 2**30:.1f} GiB is available; lower model.latent or model.hidden")
    return need

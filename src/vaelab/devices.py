"""Devices: a config's ``train.device`` (or ``--device``) -> a torch.device that exists.

Below both train and evaluate, so neither imports the other for it.  A device this torch
build or this machine does not have is a one-line :class:`~vaelab.errors.ConfigError`,
not torch's AssertionError from deep inside the first ``.to()``.
"""

from __future__ import annotations

import re

import torch

from .errors import ConfigError

_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,4})?)$")


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` and
    ``mps`` are checked against what this torch build and machine have."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None \
                else "no CUDA GPU is visible (check CUDA_VISIBLE_DEVICES and the driver)"
            raise ConfigError(f"device {name!r} is not available: {why}; use --device cpu (or auto)")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} is not available: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                              f"cuda:{torch.cuda.device_count() - 1}")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' is not available on this machine; use --device cpu (or auto)")
    return torch.device(name)


def on_cuda(name: str) -> bool:
    """Whether ``train.device`` = ``name`` trains on a CUDA GPU here (without raising: an
    unavailable device is :func:`resolve_device`'s error to report)."""
    return isinstance(name, str) and (name.startswith("cuda") or (name == "auto" and torch.cuda.is_available()))

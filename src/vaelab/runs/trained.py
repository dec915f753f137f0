"""A trained model back from its run directory: what evaluation and figures start from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..data import DataInfo
from ..errors import CheckpointError, first_line
from ..models import VAE, build_model
from .checkpoint import find_checkpoint, load_latest
from .layout import CONFIG, RunDir


@dataclass
class TrainedRun:
    """A run's model from its newest good checkpoint (in eval mode), with its config, data
    info and the checkpoint's commit record (``sidecar["epoch"]``...)."""

    model: VAE
    cfg: RunConfig
    info: DataInfo
    sidecar: dict[str, Any]
    path: Path


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", epoch: int | None = None) -> TrainedRun:
    """Read config.json, build the model it names and load the newest checkpoint whose hash
    verifies (or that of ``epoch``).  CheckpointError when the directory holds no usable run."""
    run = RunDir(Path(run_dir))
    cfg, info = run.read_config()
    loaded = load_latest(run.ckpt_dir) if epoch is None else find_checkpoint(run.ckpt_dir, epoch)
    if loaded is None:
        raise CheckpointError(f"{run.path} has no checkpoint yet; train it first")
    model = build_model(cfg.model, info)
    try:
        model.load_state_dict(loaded.model_state())
    except RuntimeError as err:
        raise CheckpointError(f"{loaded.path} does not fit the model in {CONFIG}: "
                              f"{first_line(err)}") from None
    model.to(device).eval()
    return TrainedRun(model, cfg, info, loaded.sidecar, run.path)


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu") -> VAE:
    """The trained model of a run directory, in eval mode."""
    return load_run(run_dir, device).model

"""A run directory: the resolved config, metrics, checkpoints and evaluation of one run.

    RUN/config.json        {"format", "vaelab_version", "config": RunConfig, "data_info": DataInfo}
    RUN/metrics.jsonl      one JSON object per finished epoch
    RUN/checkpoints/       see checkpoint.py
    RUN/eval.json          written by `vaelab eval`
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..config import RunConfig
from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_json, atomic_write_text
from ..models import DataInfo, build_model
from .checkpoint import FORMAT, load_latest

CONFIG = "config.json"
METRICS = "metrics.jsonl"
EVAL = "eval.json"


@dataclass
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def ckpt_dir(self) -> Path:
        return self.path / "checkpoints"

    def exists(self) -> bool:
        return (self.path / CONFIG).exists()

    def write_config(self, cfg: RunConfig, info: DataInfo) -> None:
        atomic_write_json(self.path / CONFIG, {
            "format": FORMAT, "vaelab_version": __version__, "config": cfg.to_dict(), "data_info": info.to_dict(),
        })

    def read_config(self) -> tuple[RunConfig, DataInfo]:
        f = self.path / CONFIG
        if not self.path.is_dir():
            raise CheckpointError(f"run directory {self.path} does not exist; train one with `vaelab train --out {self.path}`")
        if not f.exists():
            raise CheckpointError(f"{self.path} is not a vaelab run directory (no {CONFIG})")
        try:
            raw = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{f} is unreadable ({err.__class__.__name__}); the run cannot be used") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or "config" not in raw:
            version = raw.get("vaelab_version", "unknown") if isinstance(raw, dict) else "unknown"
            raise CheckpointError(f"{self.path} was written by vaelab {version} in a format this vaelab "
                                  f"{__version__} cannot read; retrain it or use that version")
        try:
            cfg = RunConfig.from_dict(raw["config"])
            info = DataInfo.from_dict(raw["data_info"])
        except (ConfigError, KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{f} holds an invalid config ({err}); the run cannot be used") from None
        return cfg, info

    def write_metrics(self, metrics: list[dict[str, Any]]) -> None:
        atomic_write_text(self.path / METRICS, "".join(json.dumps(m, allow_nan=False) + "\n" for m in metrics))

    def read_metrics(self) -> list[dict[str, Any]]:
        f = self.path / METRICS
        if not f.exists():
            return []
        return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]

    def load_model(self, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, RunConfig, DataInfo, dict]:
        """The trained model from the newest good checkpoint, in eval mode."""
        cfg, info = self.read_config()
        loaded = load_latest(self.ckpt_dir)
        if loaded is None:
            raise CheckpointError(f"{self.path} has no checkpoint yet; train it first")
        model = build_model(cfg.model, info)
        try:
            model.load_state_dict(loaded.model_state())
        except RuntimeError as err:
            raise CheckpointError(f"{loaded.path} does not fit the model in {CONFIG}: "
                                  f"{str(err).splitlines()[0]}") from None
        model.to(device).eval()
        return model, cfg, info, loaded.sidecar

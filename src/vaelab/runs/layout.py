"""Where a run's files are, and the run's config: the one place that builds these paths.

A run directory::

    RUN/config.json        {"format", "vaelab_version", "config": RunConfig, "data_info": DataInfo,
                            "architecture": the built model described (see vaelab.nets.describe),
                            "data": where the data came from and its test images' sha256 (data.py)}
    RUN/metrics.jsonl      one JSON object per finished epoch (metrics.py)
    RUN/checkpoints/       weights, optimiser state and the commit records (checkpoint.py)
    RUN/events/            TensorBoard event files (optional)
    RUN/eval.json          written by `vaelab eval`
    RUN/select.json        a selection stage's scores and choice (vaelab.training.select)
    RUN/quality.json       written by `vaelab quality` (sample quality, vaelab.evaluation.quality)
    RUN/error.txt          a sweep run's traceback, when a bug stopped it

A sweep directory::

    SWEEP/store.sqlite     the results store (vaelab.store)
    SWEEP/runs/<id>/       one run directory per run id
    SWEEP/report/          `vaelab report`'s default output

``vaelab train`` without ``--out`` writes to ``runs/NAME-DATASET-zLATENT-sSEED``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..version import __version__
from ..config import RunConfig
from ..data import DataInfo
from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_json
from .checkpoint import FORMAT
from .metrics import METRICS, read_metrics, write_metrics

CONFIG = "config.json"
EVAL = "eval.json"
SELECT = "select.json"
QUALITY = "quality.json"
ERROR = "error.txt"
CHECKPOINTS = "checkpoints"
EVENTS = "events"

STORE_FILE = "store.sqlite"
RUNS_DIR = "runs"
REPORT_DIR = "report"


def store_path(sweep_dir: str | Path) -> Path:
    """SWEEP/store.sqlite."""
    return Path(sweep_dir) / STORE_FILE


def run_path(sweep_dir: str | Path, run_id: str) -> Path:
    """SWEEP/runs/<id>: the run directory of a sweep's run."""
    return Path(sweep_dir) / RUNS_DIR / run_id


def report_path(sweep_dir: str | Path) -> Path:
    """SWEEP/report: where a sweep's report goes unless told otherwise."""
    return Path(sweep_dir) / REPORT_DIR


def default_run_path(cfg: RunConfig) -> Path:
    """``runs/NAME-DATASET-zLATENT-sSEED``: where ``vaelab train`` writes without ``--out``."""
    return Path(RUNS_DIR) / f"{cfg.name}-{cfg.data.dataset}-z{cfg.model.latent}-s{cfg.train.seed}"


def run_label(config: RunConfig | Mapping[str, Any]) -> str:
    """How a run is named to people (progress lines, summaries, failure lists):
    ``NAME DATASET z=LATENT``, from a config or its stored dict."""
    if isinstance(config, RunConfig):
        config = config.to_dict()
    data = config.get("data") or {}
    model = config.get("model") or {}
    return f"{config.get('name')} {data.get('dataset')} z={model.get('latent')}"


@dataclass
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def __fspath__(self) -> str:  # a RunDir goes wherever a path does
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def ckpt_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def eval_file(self) -> Path:
        return self.path / EVAL

    def other_eval_file(self, k: int, epoch: int | None = None, n: int | None = None) -> Path:
        """Where an evaluation other than the run's own protocol is kept: another k, the
        checkpoint of an earlier epoch, the first n test images: ``eval[-eE]-kK[-nN].json``."""
        return self.path / ("eval" + (f"-e{epoch}" if epoch is not None else "") + f"-k{k}"
                            + (f"-n{n}" if n is not None else "") + ".json")

    @property
    def select_file(self) -> Path:
        return self.path / SELECT

    @property
    def quality_file(self) -> Path:
        return self.path / QUALITY

    def other_quality_file(self, n: int, epoch: int | None = None) -> Path:
        """Where a sample-quality score other than the run's own protocol is kept (another
        number of images, an earlier epoch's checkpoint): ``quality[-eE]-nN.json``."""
        return self.path / ("quality" + (f"-e{epoch}" if epoch is not None else "") + f"-n{n}.json")

    @property
    def error_file(self) -> Path:
        return self.path / ERROR

    @property
    def events_dir(self) -> Path:
        return self.path / EVENTS

    def exists(self) -> bool:
        return self.config_file.exists()

    # --- config.json --------------------------------------------------------------------
    def write_config(self, cfg: RunConfig, info: DataInfo, architecture: Mapping[str, Any] | None = None,
                     data: Mapping[str, Any] | None = None) -> None:
        """The resolved config (the run's identity), what the model knows of its data, the
        architecture of the model as built (complete enough to rebuild it without vaelab),
        and the data's identity (:func:`vaelab.runs.data.data_record`)."""
        record: dict[str, Any] = {"format": FORMAT, "vaelab_version": __version__, "config": cfg.to_dict(),
                                  "data_info": info.to_dict()}
        if architecture is not None:
            record["architecture"] = dict(architecture)
        if data is not None:
            record["data"] = dict(data)
        atomic_write_json(self.config_file, record)

    def data_record(self) -> dict[str, Any] | None:
        """What config.json says of the run's data (None for runs from before it was kept)."""
        return self.read_raw().get("data")

    def read_raw(self) -> dict[str, Any]:
        """config.json as written, checked to be a vaelab run of this format."""
        f = self.config_file
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
        return raw

    def read_config(self) -> tuple[RunConfig, DataInfo]:
        raw = self.read_raw()
        try:
            cfg = RunConfig.from_dict(raw["config"])
            info = DataInfo.from_dict(raw["data_info"])
        except (ConfigError, KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{self.config_file} holds an invalid config ({err}); the run cannot be used") from None
        return cfg, info

    def resume_config(self, epochs: int | None = None) -> RunConfig:
        """The config a resumed run continues with: its saved one (the run's identity), with
        only the epoch budget changed when ``epochs`` is given (to train a run for longer)."""
        saved, _ = self.read_config()
        return saved if epochs is None else saved.replace(**{"train.epochs": epochs})

    # --- metrics.jsonl -----------------------------------------------------------------
    def write_metrics(self, metrics: list[dict[str, Any]]) -> None:
        write_metrics(self.path, metrics)

    def read_metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

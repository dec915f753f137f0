"""What the explorer page shows, computed from run directories: no web code here.

An :class:`Explorer` holds the runs of a target (one run directory or bundle, or every run
of a sweep's store), loads each model lazily from its newest good checkpoint (safetensors,
hash-checked: :func:`vaelab.runs.load_run`) and answers with PNG bytes or plain data.  It
writes nothing, anywhere.  A run that is still training is marked so and shown from its
newest checkpoint, reloaded when a newer one appears.

Every input from a request is checked here (a latent of the model's size, finite values,
a known label, a test image index in range, a drawn image of the model's pixel count), and
a bad one is an :class:`ExplorerError`, which the web layer answers with 400.
"""

from __future__ import annotations

import io
import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import matplotlib.image
import torch

from ..errors import VaelabError
from ..report.grid import make_grid
from ..runs import (RunDir, TrainedRun, is_bundle, list_checkpoints, load_run, read_metrics, run_dataset, run_label,
                    run_path, store_path)
from ..runs.checkpoint import checkpoint_epoch
from ..store import Store

STRIP = 12  # test images offered for reconstruction
MAX_SAMPLES = 64
MAX_LATENT_ABS = 1e3  # |z| beyond this is no place a decoder was trained for (and overflows float32 soon)
RELOAD_S = 5.0  # how often a run still training is checked for a newer checkpoint


class ExplorerError(VaelabError):
    """A request the explorer cannot answer (unknown run, malformed input)."""


class NotFound(ExplorerError):
    """No such run (or it has no weights here)."""


def png(images: torch.Tensor, image_shape: tuple[int, int, int], nrow: int | None = None, pad: int = 0) -> bytes:
    """(N, D) in [0, 1] -> PNG bytes of their grid, one image pixel per PNG pixel (the page
    scales it up without smoothing)."""
    grid = make_grid(images, image_shape, nrow=nrow, pad=pad)
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return buf.getvalue()


def _metrics_summary(metrics: dict[str, Any] | None) -> dict[str, Any]:
    m = metrics or {}
    quality = m.get("quality") or {}
    return {"elbo": m.get("elbo"), "log_likelihood": m.get("log_likelihood"), "k": m.get("k"),
            "fd": quality.get("fd"), "precision": quality.get("precision"), "recall": quality.get("recall"),
            "label_accuracy": quality.get("label_accuracy")}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None


@dataclass
class Entry:
    """One explorable run: where it is, how it is named, what is known of it."""

    id: str
    path: Path
    label: str
    status: str  # done | training | queued | failed
    metrics: dict[str, Any] = field(default_factory=dict)
    experiment: str | None = None

    @property
    def training(self) -> bool:
        return self.status in ("training", "queued", "running")

    def has_weights(self) -> bool:
        return is_bundle(self.path) or bool(list_checkpoints(RunDir(self.path).ckpt_dir))


def _newest_epoch(path: Path) -> int | None:
    found = list_checkpoints(RunDir(path).ckpt_dir)
    return checkpoint_epoch(found[0]) if found else None


def _single(path: Path) -> Entry:
    """A run directory or bundle given alone."""
    if is_bundle(path):
        raw = _read_json(path / "config.json") or {}
        label = run_label(raw.get("config") or {})
        return Entry("run", path, label, "done", _metrics_summary(_read_json(path / "eval.json")))
    run = RunDir(path)
    trained_cfg, _ = run.read_config()
    done = len(read_metrics(path))
    status = "done" if done >= trained_cfg.train.epochs else "training"
    evaluation = _read_json(run.eval_file) or {}
    quality = _read_json(run.quality_file)
    return Entry("run", path, run_label(trained_cfg), status, _metrics_summary({**evaluation, "quality": quality}))


def _sweep(sweep_dir: Path) -> list[Entry]:
    """Every run of a sweep's store, in experiment and grid order, named as reports name them."""
    out: list[Entry] = []
    seen: set[str] = set()
    with Store(store_path(sweep_dir), create=False) as store:
        for exp in store.experiments():
            for r in store.experiment_runs(exp["name"]):
                if r.id in seen:
                    continue
                seen.add(r.id)
                status = "training" if r.status == "running" else r.status
                out.append(Entry(r.id, run_path(sweep_dir, r.id), run_label(r.config), status,
                                 _metrics_summary(r.metrics), exp["name"]))
    return out


def discover(target: str | Path) -> list[Entry]:
    """The runs of a target: a sweep directory (with store.sqlite), a run directory or a
    bundle.  An ExplorerError when it is none of these."""
    path = Path(target)
    if store_path(path).is_file():
        return _sweep(path)
    if is_bundle(path) or RunDir(path).exists():
        return [_single(path)]
    raise ExplorerError(f"{target} is not a run directory, a model bundle or a sweep directory (no config.json, "
                        f"no store.sqlite)")


@dataclass
class Loaded:
    trained: TrainedRun
    epoch: int | None
    checked: float
    test_x: torch.Tensor | None = None  # (STRIP, D), loaded on first use
    test_y: torch.Tensor | None = None


class Explorer:
    """The runs of a target, their models loaded on first use (on ``device``)."""

    def __init__(self, target: str | Path, device: str = "cpu", data_dir: str | Path | None = None):
        self.target = Path(target)
        self.device = torch.device(device)
        self.data_dir = data_dir
        self.entries = {e.id: e for e in discover(target)}
        self._loaded: dict[str, Loaded] = {}
        self._lock = threading.Lock()  # model loading and inference, one request at a time

    # --- what the page lists ------------------------------------------------------------
    def listing(self) -> list[dict[str, Any]]:
        """The runs as they are now (a sweep still running moves on while the page is open)."""
        try:
            self.entries = {e.id: e for e in discover(self.target)}
        except VaelabError:
            pass  # the store is busy or gone for a moment: the last listing stands
        return [{"id": e.id, "label": e.label, "status": e.status, "experiment": e.experiment,
                 "explorable": e.has_weights(), "read_only": e.training, **e.metrics} for e in self.entries.values()]

    def entry(self, run_id: str) -> Entry:
        e = self.entries.get(run_id)
        if e is None:
            raise NotFound(f"no run {run_id!r} here")
        return e

    def _model(self, run_id: str) -> Loaded:
        """The run's model; for a run still training, reloaded when a newer checkpoint exists."""
        e = self.entry(run_id)
        have = self._loaded.get(run_id)
        now = time.monotonic()
        if have is not None and (not e.training or now - have.checked < RELOAD_S):
            return have
        if have is not None and _newest_epoch(e.path) == have.epoch:
            have.checked = now
            return have
        if not e.has_weights():
            raise NotFound(f"run {run_id} has no weights here (not trained yet, or its sweep came back without them)")
        trained = load_run(e.path, self.device)
        self._loaded[run_id] = Loaded(trained, trained.sidecar.get("epoch"), now)
        return self._loaded[run_id]

    def info(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            loaded = self._model(run_id)
        t, e = loaded.trained, self.entry(run_id)
        c, h, w = t.info.image_shape
        return {"id": run_id, "label": e.label, "status": e.status, "read_only": e.training,
                "epoch": loaded.epoch, "epochs": t.cfg.train.epochs, "latent": t.cfg.model.latent,
                "image_shape": [c, h, w], "conditional": t.model.cond_dim > 0, "num_classes": t.info.num_classes,
                "binary": t.info.binary, "strip": STRIP, **e.metrics}

    # --- images -------------------------------------------------------------------------
    def _label(self, t: TrainedRun, y: int | None) -> torch.Tensor | None:
        """The label tensor a conditional model needs (default class 0); None for others."""
        if not t.model.cond_dim:
            return None
        y = 0 if y is None else y
        if not 0 <= y < t.info.num_classes:
            raise ExplorerError(f"label must be a class 0..{t.info.num_classes - 1}, got {y}")
        return torch.tensor([y], device=self.device)

    def decode(self, run_id: str, z: Sequence[float], y: int | None = None) -> bytes:
        """The mean image of p(x | z) for one latent vector (the pad)."""
        with self._lock:
            t = self._model(run_id).trained
            size = t.cfg.model.latent
            if len(z) != size or not all(math.isfinite(v) and abs(v) <= MAX_LATENT_ABS for v in z):
                raise ExplorerError(f"z must be {size} finite numbers within ±{MAX_LATENT_ABS:g}")
            zz = torch.tensor([list(z)], dtype=torch.float32, device=self.device)
            img = t.model.decode_mean(zz, self._label(t, y))
        return png(img.cpu(), t.info.image_shape)

    def samples(self, run_id: str, n: int = 16, y: int | None = None, seed: int = 0) -> bytes:
        """n prior samples (of class y for a conditional model), from ``seed``."""
        if not 1 <= n <= MAX_SAMPLES or not 0 <= seed < 2 ** 63:
            raise ExplorerError(f"n must be 1..{MAX_SAMPLES} and seed in [0, 2^63)")
        with self._lock:
            t = self._model(run_id).trained
            label = self._label(t, y)
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(seed)
                imgs = t.model.sample(n, None if label is None else label.expand(n))
        return png(imgs.cpu(), t.info.image_shape, nrow=min(n, 8), pad=1)

    def _strip(self, run_id: str) -> Loaded:
        loaded = self._model(run_id)
        if loaded.test_x is None:
            t = loaded.trained
            ds = run_dataset(t.cfg, t.data, data_dir=self.data_dir)
            loaded.test_x, loaded.test_y = ds.test.x[:STRIP].to(self.device), ds.test.y[:STRIP].to(self.device)
        return loaded

    def _index(self, loaded: Loaded, i: int) -> int:
        if not 0 <= i < loaded.test_x.shape[0]:
            raise ExplorerError(f"test image index must be 0..{loaded.test_x.shape[0] - 1}, got {i}")
        return i

    def test_image(self, run_id: str, i: int) -> bytes:
        with self._lock:
            loaded = self._strip(run_id)
            x = loaded.test_x[self._index(loaded, i)][None]
        return png(x.cpu(), loaded.trained.info.image_shape)

    def reconstruct_test(self, run_id: str, i: int) -> bytes:
        """The mean of p(x | z = E_q[z | x]) of test image i (with its own label, for a CVAE)."""
        with self._lock:
            loaded = self._strip(run_id)
            t = loaded.trained
            j = self._index(loaded, i)
            x, y = loaded.test_x[j][None], loaded.test_y[j][None]
            img = t.model.reconstruct(x, y if t.model.cond_dim else None)
        return png(img.cpu(), t.info.image_shape)

    def encode_test(self, run_id: str, i: int) -> list[float]:
        """E_q[z | x] of test image i: the pad keeps the other latent dimensions there."""
        with self._lock:
            loaded = self._strip(run_id)
            t = loaded.trained
            j = self._index(loaded, i)
            x, y = loaded.test_x[j][None], loaded.test_y[j][None]
            z = t.model.latent_means(x, y if t.model.cond_dim else None)[0]
        return [round(float(v), 5) for v in z]

    def test_label(self, run_id: str, i: int) -> int:
        with self._lock:
            loaded = self._strip(run_id)
            return int(loaded.test_y[self._index(loaded, i)])

    def reconstruct_drawn(self, run_id: str, pixels: Sequence[float], y: int | None = None) -> bytes:
        """The reconstruction of an image drawn on the page: D grey levels in [0, 1] in the
        model's (C, H, W) order, binarised at 0.5 for a model of binary pixels."""
        with self._lock:
            t = self._model(run_id).trained
            dim = t.info.dim
            if len(pixels) != dim or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in pixels):
                raise ExplorerError(f"a drawn image must be {dim} numbers in [0, 1]")
            x = torch.tensor([list(pixels)], dtype=torch.float32, device=self.device)
            if t.info.binary:
                x = (x > 0.5).float()
            img = t.model.reconstruct(x, self._label(t, y))
        return png(img.cpu(), t.info.image_shape)

"""The feature network that sample quality is measured in: a small LeNet-like CNN that vaelab
trains itself, once per dataset, deterministically, and keeps in the user cache.

FID (Heusel et al. 2017) compares generated and real images in the feature space of an
Inception network trained on ImageNet; for MNIST-like data that network is the wrong
judge, and the usual substitute is the penultimate layer of a small LeNet-like classifier
trained on the dataset itself (the "Fréchet LeNet distance": Heusel et al.'s distance, in
LeNet's features instead of Inception's).  Such numbers are comparable only between
scores made with the same network, so vaelab never downloads one: it trains its own, from
a fixed seed, and records the sha256 of its weights with every score.

* A dataset with labels gets a **classifier** (features: the 128 ReLU units before the
  class layer); its test accuracy is recorded, and it also tells which class a sample
  looks like (a conditional model's ``label_accuracy``).
* A dataset without labels (Frey Faces) gets an **autoencoder** with the same trunk
  (features: its 128-unit code); its test reconstruction error is recorded instead.

The network sees the dataset as the runs' models see it: the whole training split in the
run's representation (binarised by the run's ``data.binarize``; grey levels for a
Gaussian decoder), whatever ``data.train_limit`` the run had.  It is keyed by the sha256
of that training tensor, its labels and the recipe, and stored as
``CACHE/features/KEY/net.safetensors`` beside ``net.json`` (:func:`vaelab.data.sources.cache_dir`).
Training runs on the CPU in one thread from :data:`RECIPE`'s seed, so the same torch on
the same kind of CPU rebuilds the same weights; the recorded hash says which network
scored a run either way.  A file lock lets concurrent sweep workers train it only once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..data import Dataset, binarize_dynamic, tensor_sha256
from ..data.sources import cache_dir
from ..errors import VaelabError
from ..io import atomic_write, atomic_write_json, sha256_file

try:  # POSIX: one process trains a missing network while the others wait for it
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, at worst trained twice (same weights)
    fcntl = None

FORMAT = "vaelab-feature-net"
FEATURES = 128  # penultimate width: the feature space's dimension
# How every feature network is trained.  Part of the cache key: change a value and a new
# network is trained (and scores made with the old one stay labelled with its hash).
# The learning rate decays to 0 on a half cosine over the steps.
RECIPE: dict[str, Any] = {"version": 1, "steps": 1500, "batch_size": 128, "optimizer": "adam", "lr": 2e-3,
                          "schedule": "cosine", "seed": 0, "threads": 1}


class FeatureNet(nn.Module):
    """conv5(16) - pool - conv5(32) - pool - fc(128): LeNet's shape, padded so any (C, H, W)
    image fits (Frey's 28 x 20 too); then a class layer or a decoder back to pixels."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.trunk = nn.Sequential(
            nn.Conv2d(c, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Flatten(), nn.Linear(32 * math.ceil(h / 4) * math.ceil(w / 4), FEATURES), nn.ReLU())
        dim = c * h * w
        self.head = nn.Linear(FEATURES, num_classes) if num_classes > 0 else \
            nn.Sequential(nn.Linear(FEATURES, 512), nn.ReLU(), nn.Linear(512, dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Flat images (B, D) in [0, 1] -> the feature vectors (B, 128)."""
        return self.trunk(x.reshape(-1, *self.image_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> class logits (B, K), or pixel logits (B, D) for the autoencoder."""
        return self.head(self.features(x))


@dataclass(frozen=True)
class Kind:
    """What a feature network learns from the data, and how it is judged on the test set."""

    name: str
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (out, x, y) -> mean loss
    score_name: str  # what net.json records of its test performance
    score: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (out, x, y) -> (B,) per image


CLASSIFIER = Kind("classifier", lambda out, x, y: F.cross_entropy(out, y), "test_accuracy",
                  lambda out, x, y: (out.argmax(1) == y).double())
# Binary cross-entropy to the pixels (grey targets allowed); judged by mean squared error.
AUTOENCODER = Kind("autoencoder", lambda out, x, y: F.binary_cross_entropy_with_logits(out, x), "test_mse",
                   lambda out, x, y: (torch.sigmoid(out) - x).double().pow(2).mean(1))


def kind_for(ds: Dataset) -> Kind:
    """A classifier where the data have labels, an autoencoder where they have none."""
    return CLASSIFIER if ds.num_classes > 0 else AUTOENCODER


@dataclass
class TrainedFeatures:
    """A feature network ready to use, with its record (``net.json``)."""

    net: FeatureNet
    record: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.record["sha256"]

    @property
    def kind(self) -> str:
        return self.record["kind"]

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """(N, D) -> (N, 128) float64, computed on the CPU in float32."""
        return torch.cat([self.net.features(x[i:i + batch].float().cpu()) for i in range(0, len(x), batch)]).double()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """The classifier's class for each image (N,); a VaelabError for an autoencoder."""
        if self.kind != CLASSIFIER.name:
            raise VaelabError("this dataset has no labels, so its feature network is no classifier")
        return torch.cat([self.net(x[i:i + batch].float().cpu()).argmax(1) for i in range(0, len(x), batch)])


def cache_key(ds: Dataset, recipe: dict[str, Any] = RECIPE) -> str:
    """sha256 of what decides the network: the training tensor as the models see it, its
    labels, the image shape, whether it is binarised afresh each step, and the recipe."""
    ident = {"format": FORMAT, "recipe": recipe, "image_shape": list(ds.image_shape), "num_classes": ds.num_classes,
             "dynamic": ds.dynamic, "train_x": tensor_sha256(ds.train.x),
             "train_y": hashlib.sha256(ds.train.y.numpy().tobytes()).hexdigest()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()


def features_dir() -> Path:
    """Where trained feature networks are kept: ``CACHE/features``."""
    return cache_dir() / "features"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded global RNG (restored after) and a fixed thread count: the reductions of a
    multi-threaded CPU kernel may add in another order with another thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(before)


def train_features(ds: Dataset, recipe: dict[str, Any] = RECIPE, progress: bool = False) -> FeatureNet:
    """Train a feature network on the whole training split of ``ds`` (binarised afresh
    each step where the dataset is dynamic, as the runs' models saw it)."""
    kind = kind_for(ds)
    x, y = ds.train.x, ds.train.y
    if len(x) < 2:
        raise VaelabError(f"{ds.name} has {len(x)} training images: too few to train a feature network for "
                          "sample quality")
    with _deterministic(recipe["seed"], recipe["threads"]):
        net = FeatureNet(ds.image_shape, ds.num_classes)
        opt = torch.optim.Adam(net.parameters(), lr=recipe["lr"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / recipe["steps"])))
        gen = torch.Generator().manual_seed(recipe["seed"])
        order = torch.randperm(len(x), generator=gen)
        pos, batch = 0, min(recipe["batch_size"], len(x))
        t0 = time.time()
        for step in range(recipe["steps"]):
            if pos + batch > len(order):
                order, pos = torch.randperm(len(x), generator=gen), 0
            idx = order[pos:pos + batch]
            pos += batch
            xb = binarize_dynamic(x[idx], gen) if ds.dynamic else x[idx]
            loss = kind.loss(net(xb), xb, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if progress and (step + 1) % 200 == 0:
                print(f"vaelab: feature network ({kind.name}) for {ds.name}: step {step + 1}/{recipe['steps']}, "
                      f"loss {loss.item():.4f}, {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return net.eval()


@torch.no_grad()
def test_score(net: FeatureNet, ds: Dataset, batch: int = 1000) -> float:
    """The network's mean test score: accuracy (classifier) or pixel MSE (autoencoder)."""
    kind = kind_for(ds)
    x, y = ds.test.x, ds.test.y
    scores = [kind.score(net(x[i:i + batch]), x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)]
    return float(torch.cat(scores).mean()) if scores else float("nan")


def _load(where: Path, ds: Dataset) -> TrainedFeatures | None:
    """The cached network, or None when it is absent or fails its hash (then retrained)."""
    record_file, weights = where / "net.json", where / "net.safetensors"
    if not (record_file.is_file() and weights.is_file()):
        return None
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if record.get("format") != FORMAT or sha256_file(weights) != record.get("sha256"):
            raise ValueError("sha256 mismatch")
        net = FeatureNet(ds.image_shape, ds.num_classes)
        net.load_state_dict(load_file(str(weights)))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, json.JSONDecodeError) as err:
        print(f"vaelab: note: the cached feature network in {where} is unusable ({type(err).__name__}); "
              f"training it again", file=sys.stderr)
        return None
    return TrainedFeatures(net.eval(), record)


def feature_net(ds: Dataset, recipe: dict[str, Any] = RECIPE, progress: bool = True) -> TrainedFeatures:
    """The feature network of ``ds`` (its whole training split, as the runs see it): from
    the cache, or trained now (once; concurrent callers wait for it) and cached."""
    key = cache_key(ds, recipe)
    where = features_dir() / key[:16]
    found = _load(where, ds)
    if found is not None:
        return found
    try:
        return _train_and_keep(ds, recipe, key, where, progress)
    except PermissionError as err:
        raise VaelabError(f"cannot write the feature network into {where} ({err.strerror}); point XDG_CACHE_HOME "
                          f"at a writable folder") from None


def _train_and_keep(ds: Dataset, recipe: dict[str, Any], key: str, where: Path, progress: bool) -> TrainedFeatures:
    with _locked(features_dir() / f"{key[:16]}.lock"):
        found = _load(where, ds)  # another process may have trained it while we waited
        if found is not None:
            return found
        if progress:
            print(f"vaelab: training the feature network for sample quality on {ds.name} ({len(ds.train.x)} "
                  f"images, once; cached in {where})", file=sys.stderr, flush=True)
        t0 = time.time()
        net = train_features(ds, recipe, progress)
        state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
        atomic_write(where / "net.safetensors", lambda p: save_file(state, str(p), metadata={"format": FORMAT}))
        kind = kind_for(ds)
        record = {"format": FORMAT, "key": key, "kind": kind.name, "sha256": sha256_file(where / "net.safetensors"),
                  "features": FEATURES, "image_shape": list(ds.image_shape), "num_classes": ds.num_classes,
                  "recipe": recipe, "dataset": ds.source, "train_images": int(len(ds.train.x)),
                  "train_sha256": tensor_sha256(ds.train.x), "dynamic": ds.dynamic,
                  kind.score_name: round(test_score(net, ds), 6), "test_images": int(len(ds.test.x)),
                  "seconds": round(time.time() - t0, 1), "torch": torch.__version__}
        atomic_write_json(where / "net.json", record)
        return TrainedFeatures(net, record)

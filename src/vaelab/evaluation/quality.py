"""Sample quality: how a model's samples compare with the test images, in the feature space
of a network trained on the dataset (:mod:`.features`).

* ``fd``: the Fréchet distance between Gaussians fitted to the two sets of features
  (Heusel et al. 2017, eq. 2; FID's formula in a LeNet's features, the "Fréchet LeNet
  distance" of MNIST-like data)::

      fd = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

  Lower is better; 0 for two identical sets.
* ``precision`` and ``recall``: the k-nearest-neighbour manifold estimates of Kynkäänniemi
  et al. (2019, sec. 3) with k = 3: a set's manifold is the union of balls around its
  points, each of radius the distance to its k-th nearest neighbour in the set; precision
  is the fraction of samples inside the test images' manifold (are samples realistic?),
  recall the fraction of test images inside the samples' manifold (is the data covered?).
* ``classifier_accuracy``: the feature classifier's own test accuracy (None for an
  autoencoder's features: a dataset without labels).
* ``label_accuracy``: for a conditional model, the fraction of samples drawn for label c
  that the classifier calls c.
* ``fd_reconstruction``: the same distance between the test images and the model's
  reconstructions of them (means of p(x | z = E_q[z|x])), for claims about reconstructions.

The model's images are the means of p(x | z), z ~ p(z), as ``vaelab sample`` draws them,
from a fixed seed; a conditional model draws one for the label of each test image it is
compared with, so both sets have the same class mix.  The test images are the run's own,
as its model saw them (binarised where it was), reloaded and checked
(:func:`vaelab.runs.check_same_data`).  For a Bernoulli decoder the means are grey while
the test images are binary, so even a perfect model keeps fd > 0: compare scores between
runs on one dataset and binarisation, at one N, never with another paper's FID.  The fd
estimate is biased upwards at small N, which is why N is recorded with every score.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch

from ..data import Dataset, load_dataset, tensor_sha256
from ..devices import resolve_device
from ..errors import ConfigError, VaelabError
from ..io import atomic_write_json
from ..models import wants_binary
from ..runs import RunDir, TrainedRun, check_same_data, load_run
from ..runs.data import run_data_config
from .features import CLASSIFIER, TrainedFeatures, feature_net

__all__ = ["DEFAULT_N", "K", "SEED", "check_n", "frechet_distance", "precision_recall", "quality_run", "score_features",
           "score_run"]

DEFAULT_N = 5000  # samples and test images per score (capped at the run's test images)
K = 3  # neighbours for the manifold radii (Kynkäänniemi et al. 2019 use k = 3)
SEED = 0  # the prior samples' seed
MAX_N = 100_000


# --- the maths -----------------------------------------------------------------------------


def _sqrtm_psd(c: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (F, F);
    eigenvalues below 0 (rounding) count as 0."""
    vals, vecs = torch.linalg.eigh(c)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to features a (N, F) and b (M, F), in
    float64.  Tr((S_a S_b)^(1/2)) is computed as the trace of the square root of the
    symmetric S_a^(1/2) S_b S_a^(1/2), which has the same eigenvalues and stays real."""
    a, b = a.double(), b.double()
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("a Fréchet distance needs at least two feature vectors per set")
    mu_a, mu_b = a.mean(0), b.mean(0)  # (F,)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)  # (F, F), unbiased
    root_a = _sqrtm_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    fd = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * cross
    return max(float(fd), 0.0)


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance from each point of x (N, F) to its k-th nearest other point.  -> (N,)"""
    if x.shape[0] <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {x.shape[0]}")
    out = []
    for i in range(0, x.shape[0], chunk):
        d = torch.cdist(x[i:i + chunk], x)  # (c, N); the point itself is at distance 0
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(out)


def _inside(query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Whether each query point (Q, F) lies in some ball (ref_j, radii_j).  -> (Q,) bool"""
    return torch.cat([(torch.cdist(query[i:i + chunk], ref) <= radii).any(1) for i in range(0, query.shape[0], chunk)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = K) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, eqs. 1-3) of samples
    ``fake`` (M, F) against ``real`` (N, F), with k-NN manifolds."""
    real, fake = real.double(), fake.double()
    precision = _inside(fake, real, _kth_neighbour_radii(real, k)).double().mean()
    recall = _inside(real, fake, _kth_neighbour_radii(fake, k)).double().mean()
    return float(precision), float(recall)


def score_features(nets: TrainedFeatures, real: torch.Tensor, fake: torch.Tensor,
                   fake_labels: torch.Tensor | None = None, k: int = K) -> dict[str, Any]:
    """fd, precision and recall of images ``fake`` (M, D) against ``real`` (N, D) in the
    features of ``nets``; ``label_accuracy`` where ``fake_labels`` (M,) says which class
    each fake image was drawn for (and the network is a classifier)."""
    f_real, f_fake = nets.features(real), nets.features(fake)
    precision, recall = precision_recall(f_real, f_fake, k)
    out: dict[str, Any] = {"fd": frechet_distance(f_real, f_fake), "precision": precision, "recall": recall,
                           "classifier_accuracy": nets.record.get("test_accuracy"), "label_accuracy": None}
    if fake_labels is not None and nets.kind == CLASSIFIER.name:
        hits = nets.predict(fake) == fake_labels.cpu()
        out["label_accuracy"] = float(hits.double().mean())
        out["label_accuracy_by_class"] = {str(int(c)): float(hits[fake_labels.cpu() == c].double().mean())
                                          for c in fake_labels.unique().tolist()}
    return out


# --- a run ---------------------------------------------------------------------------------


def every_image(dcfg):
    """A DataConfig without ``data.train_limit`` / ``data.test_limit``: what sample quality
    is measured against, and what its feature network is trained on."""
    return dataclasses.replace(dcfg, train_limit=None, test_limit=None)


def whole_dataset(trained: TrainedRun, data: str | Path | None = None, data_dir: str | Path | None = None) -> Dataset:
    """The run's dataset with every training and test image (whatever ``data.train_limit``
    and ``data.test_limit`` it had), as its model saw them, checked against its record:
    the run's own test images are its first ones."""
    ds = load_dataset(every_image(run_data_config(trained.cfg, trained.data, data)), data_dir,
                      binary=wants_binary(trained.cfg.model))
    check_same_data(ds, trained.data)
    return ds


def config_feature_net(cfg, data_dir: str | Path | None = None, progress: bool = False) -> TrainedFeatures:
    """The feature network a new run of ``cfg`` will be scored in (its dataset, every
    image, as its model sees them): from the cache, or trained now and cached, so that a
    sweep's workers find it ready (``vaelab sweep --plan`` calls this once per dataset)."""
    return feature_net(load_dataset(every_image(cfg.data), data_dir, binary=wants_binary(cfg.model)), progress=progress)


def _run_test_size(trained: TrainedRun, ds: Dataset) -> int:
    recorded = (trained.data or {}).get("test_images")
    limit = trained.cfg.data.test_limit
    return int(recorded if recorded is not None else min(limit or len(ds.test.x), len(ds.test.x)))


@torch.no_grad()
def model_images(model, n: int, y: torch.Tensor | None, seed: int, batch: int = 1000) -> torch.Tensor:
    """n mean images of p(x | z), z ~ p(z) (for labels y where the model is conditional),
    under ``seed`` without touching the global RNG.  -> (n, D) on the CPU, in [0, 1]."""
    dev = next(model.parameters()).device
    out = []
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, n, batch):
            yb = None if y is None else y[i:i + batch].to(dev)
            out.append(model.sample(min(batch, n - i), yb).float().clamp(0, 1).cpu())
    return torch.cat(out)


@torch.no_grad()
def reconstructions(model, x: torch.Tensor, y: torch.Tensor | None, batch: int = 1000) -> torch.Tensor:
    """The means of p(x | z = E_q[z | x]) of images x (N, D) (with labels y where the model
    is conditional).  -> (N, D) on the CPU."""
    dev = next(model.parameters()).device
    return torch.cat([model.reconstruct(x[i:i + batch].to(dev), None if y is None else y[i:i + batch].to(dev))
                      .float().clamp(0, 1).cpu() for i in range(0, x.shape[0], batch)])


def protocol(out: dict[str, Any], nets: TrainedFeatures, dataset: str, conditional: bool) -> str:
    """One sentence saying exactly what the numbers are."""
    rec = nets.record
    judged = (f"test accuracy {rec['test_accuracy']:.4f}" if "test_accuracy" in rec
              else f"test pixel MSE {rec.get('test_mse', float('nan')):.4f}; the data have no labels")
    drawn = "for the labels of those test images, " if conditional else ""
    return (f"{out['n']} model images (means of p(x|z), z ~ p(z), {drawn}seed {out['seed']}) against the first "
            f"{out['n']} test images of {dataset} as the model saw them; features: the {rec['features']} units before "
            f"the last layer of the {rec['kind']} vaelab trained on the dataset's {rec['train_images']} training "
            f"images "
            f"(sha256 {rec['sha256'][:12]}, {judged}); fd = Fréchet distance (Heusel et al. 2017), lower is better; "
            f"precision, recall: k-NN manifolds with k={out['k']} (Kynkäänniemi et al. 2019), higher is better; "
            f"comparable between runs on the same dataset and binarisation at the same N only")


def check_n(n: int | None) -> None:
    """ConfigError unless ``n`` (images per set) is None or 1..MAX_N."""
    if n is not None and not 1 <= n <= MAX_N:
        raise ConfigError(f"--n (images per set) must be between 1 and {MAX_N:,}, got {n}")


def score_run(trained: TrainedRun, ds: Dataset, n: int | None = None, seed: int = SEED,
              progress: bool = False) -> dict[str, Any]:
    """The sample-quality record of a loaded run against its test images; ``ds`` is
    :func:`whole_dataset` of the run."""
    check_n(n)
    model, cfg = trained.model, trained.cfg
    available = _run_test_size(trained, ds)
    n_eff = min(n or DEFAULT_N, available)
    if n_eff <= K:
        raise VaelabError(f"sample quality needs more than k={K} test images; this run has {available}")
    nets = feature_net(ds, progress=progress)
    t0 = time.perf_counter()
    x_test, y_test = ds.test.x[:n_eff], ds.test.y[:n_eff]
    conditional = model.cond_dim > 0
    labels = y_test if conditional else None
    fake = model_images(model, n_eff, labels, seed)
    out = score_features(nets, x_test, fake, labels)
    # The same distance for the model's reconstructions of those test images: how far what it
    # gives back is from what it was given (the study judges reconstructions and samples apart).
    recon = reconstructions(model, x_test, labels)
    out["fd_reconstruction"] = frechet_distance(nets.features(x_test), nets.features(recon))
    bad = [k for k in ("fd", "precision", "recall", "fd_reconstruction") if not math.isfinite(out[k])]
    if bad:
        raise VaelabError(f"sample quality of {trained.path} gave non-finite {', '.join(bad)}: the model's samples "
                          "are broken (NaN pixels?)")
    out.update({
        "n": n_eff, "k": K, "seed": seed, "epoch": trained.sidecar.get("epoch"), "model": cfg.name,
        "dataset": cfg.data.dataset, "latent": cfg.model.latent, "conditional": conditional,
        "feature_net": {key: nets.record.get(key) for key in
                        ("kind", "sha256", "features", "train_images", "test_accuracy", "test_mse", "recipe")
                        if key in nets.record},
        "test_sha256": tensor_sha256(x_test), "seconds": round(time.perf_counter() - t0, 3),
        "torch": torch.__version__,
    })
    out["protocol"] = protocol(out, nets, cfg.data.dataset, conditional)
    return out


def quality_run(run_dir: str | Path, n: int | None = None, *, data: str | Path | None = None,
                data_dir: str | Path | None = None, device: str = "auto", epoch: int | None = None,
                seed: int = SEED, write: bool = True, progress: bool = True) -> dict[str, Any]:
    """Score a run directory's (or bundle's) samples against its own test images
    (:func:`score_run`).  ``write`` keeps the record in the run directory:
    ``quality.json`` at the default protocol (N = :data:`DEFAULT_N` or all of its test
    images, its newest checkpoint, seed 0), else ``quality[-eE]-nN.json`` (a bundle is
    never written to)."""
    trained = load_run(run_dir, resolve_device(device), epoch)
    ds = whole_dataset(trained, data, data_dir)
    out = score_run(trained, ds, n, seed, progress)
    if write and not trained.bundle:
        own = out["n"] == min(DEFAULT_N, _run_test_size(trained, ds)) and epoch is None and seed == SEED
        run = RunDir(trained.path)
        atomic_write_json(run.quality_file if own else run.other_quality_file(out["n"], epoch), out)
    return out

"""`vaelab eval`: evaluate a run directory (or bundle) on its clean test set, on a stated protocol."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..data import Dataset, tensor_sha256
from ..devices import resolve_device
from ..errors import ConfigError, VaelabError
from ..io import atomic_write_json
from ..nets.gemm import gemm_backend
from ..runs import RunDir, TrainedRun, load_run, run_dataset
from .likelihood import DEFAULT_ROWS_PER_CHUNK, active_units, evaluate_model, importance_sampled

__all__ = ["evaluate_run", "images", "load_images", "protocol", "tensor_sha256"]


def protocol(cfg, k: int, conditional: bool, n: int, binary: bool = True) -> str:
    """One sentence saying exactly what the numbers are (``binary``: the model saw {0, 1}
    pixels, binarised by ``data.binarize`` where the data were grey)."""
    target = "log p(x | y) (conditioned on the true label)" if conditional else "log p(x)"
    binar = f", {cfg.data.binarize} binarisation (fixed-seed test sample)" if binary else ""
    return (f"{cfg.data.dataset} test set ({n} images{binar}); ELBO = mean of log w over the {k} samples; "
            f"log-likelihood = importance-sampled {target} with k={k} samples from q (Burda et al. 2015); "
            f"nats per image, higher is better")


MAX_K = 10 ** 7  # beyond this an estimate takes longer than anyone waits


def _check_args(k: int | None, limit: int | None) -> None:
    if k is not None and not 1 <= k <= MAX_K:
        raise ConfigError(f"--k (importance samples) must be between 1 and {MAX_K:,}, got {k}; "
                          f"--k 100 gives a quick look, 5000 is the literature's protocol")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit (test images) must be >= 1, got {limit}; leave it out for the whole test set")


def _batch_images(k: int, n: int, batch_size: int) -> int:
    """Images per chunk, as evaluate_model picks them."""
    if batch_size > 0:
        return batch_size
    return max(1, min(n, DEFAULT_ROWS_PER_CHUNK // k if k < DEFAULT_ROWS_PER_CHUNK else 1, 1000))


def estimate_seconds(model, x: torch.Tensor, y: torch.Tensor | None, k: int, batch_size: int = 0) -> float:
    """Seconds the evaluation of all of x will take, timed on its first chunk (under a
    forked RNG, so the evaluation's numbers do not change)."""
    n = x.shape[0]
    b = min(_batch_images(k, n, batch_size), max(1, n // 20))  # at most 5% of the work
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        t0 = time.perf_counter()
        importance_sampled(model, x[:b], None if y is None else y[:b], k)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) * n / b


def _announce(seconds: float, n: int, k: int, device: torch.device) -> None:
    if seconds < 30:
        return
    when = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
    print(f"vaelab: eval: about {when} for {n} test images at k={k} on {device.type} (timed on a first "
          f"chunk); a smaller --k or --limit is quicker, e.g. --k 100 --limit 1000 for a first look",
          file=sys.stderr, flush=True)


def evaluate_run(run_dir: str | Path, k: int | None = None, data_dir: str | Path | None = None,
                 device: str = "auto", progress: bool = True, write: bool = True,
                 limit: int | None = None, announce: bool = False, epoch: int | None = None,
                 all_test: bool = False, data: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a run directory (its newest checkpoint, or that of ``epoch``, kept with
    ``train.keep_epochs``) on its test set, or with ``all_test`` on the dataset's whole test
    set where the run was trained with a ``data.test_limit`` (a quick effort's 5000 images:
    the first images of the whole set are the run's own, binarised alike).  ``announce``
    prints a time estimate on stderr first (the CLI does; an hours-long default must not
    start silently).  ``write`` records the result in
    the run directory: ``eval.json`` at the run's own protocol (its final checkpoint, its
    eval.k, every test image), else ``eval[-eE]-kK[-nN].json``, so a look at anything else
    never replaces it (a bundle is never written to).  The data are the run's own, checked
    (:func:`vaelab.runs.run_dataset`); ``data``: a moved copy of a dataset given by path."""
    _check_args(k, limit)
    dev = resolve_device(device)
    trained = load_run(run_dir, dev, epoch)
    model, cfg, sidecar = trained.model, trained.cfg, trained.sidecar
    k = cfg.eval.k if k is None else k
    every = all_test and cfg.data.test_limit is not None
    ds = run_dataset(cfg, trained.data, data, data_dir, whole_test=every)
    x, y = ds.test.x, ds.test.y
    if limit:
        x, y = x[:limit], y[:limit]
    x, y = x.to(dev), y.to(dev)
    conditional = model.cond_dim > 0
    labels = y if conditional else None
    if announce:
        _announce(estimate_seconds(model, x, labels, k, cfg.eval.batch_size), int(x.shape[0]), k, dev)
    t0 = time.perf_counter()
    res = evaluate_model(model, x, labels, k=k, batch_size=cfg.eval.batch_size, seed=cfg.eval.seed,
                         progress=progress)
    seconds = time.perf_counter() - t0
    au = active_units(model, x, labels, cfg.eval.active_threshold)
    out = {
        **res.to_dict(),
        "active_units": au,
        "latent": cfg.model.latent,
        "epoch": int(sidecar["epoch"]),
        "conditional": conditional,
        "model": cfg.name,
        "dataset": cfg.data.dataset,
        "seconds": round(seconds, 3),
        "protocol": protocol(cfg, k, conditional, int(x.shape[0]), trained.info.binary),
        # what anyone can check: the exact test tensor evaluated (after binarisation and
        # --limit; the fixed-seed binarisation depends on torch's RNG code) and torch's version
        "test_sha256": tensor_sha256(x),
        "torch": torch.__version__,
        "device": dev.type,
        "gemm": gemm_backend() if dev.type == "cpu" else None,  # the float32 GEMM library (vaelab.nets.gemm)
    }
    if not math.isfinite(out["log_likelihood_sem"]):
        out["log_likelihood_sem"] = None  # one test image has no standard error (and JSON has no NaN)
    if not all(math.isfinite(out[n]) for n in ("elbo", "log_likelihood", "recon", "kl")):
        raise VaelabError(f"evaluation of {trained.path} gave non-finite numbers; the model is broken, not the data")
    if write and not trained.bundle:  # eval.json is the run's own protocol; another k or subset: its own file
        own = k == cfg.eval.k and not limit and epoch is None and not every
        run = RunDir(trained.path)
        subset = x.shape[0] if limit or every else None
        atomic_write_json(run.eval_file if own else run.other_eval_file(k, epoch, subset), out)
    return out


def load_images(run_dir: str | Path, which: str, n: int, data_dir=None, device: str = "auto",
                label: int | None = None, seed: int = 0, data: str | Path | None = None
                ) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """:func:`images` of the run in ``run_dir`` (loaded here)."""
    return images(load_run(run_dir, resolve_device(device)), which, n, data_dir, label, seed, data=data)


def images(trained: TrainedRun, which: str, n: int, data_dir=None, label: int | None = None, seed: int = 0,
           dataset: Dataset | None = None, data: str | Path | None = None) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Images for figures from a loaded run: ``samples`` from the prior, or
    ``reconstructions`` of the first n test images stacked above them (originals first).
    ``dataset``: the run's test data when the caller has it loaded already.
    -> ((M, D), image_shape)."""
    model, cfg, info = trained.model, trained.cfg, trained.info
    dev = next(model.parameters()).device
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if which == "samples":
            y = None
            if model.cond_dim and label is not None and not 0 <= label < info.num_classes:
                raise ConfigError(f"--label must be a class 0..{info.num_classes - 1} of {cfg.data.dataset}, "
                                  f"got {label}")
            if model.cond_dim:
                y = torch.full((n,), label, dtype=torch.long, device=dev) if label is not None \
                    else torch.arange(n, device=dev) % info.num_classes
            elif label is not None:
                raise VaelabError(f"--label needs a conditional model; {cfg.name} is not one")
            imgs = model.sample(n, y)
        else:
            ds = dataset if dataset is not None else run_dataset(cfg, trained.data, data, data_dir)
            x, y = ds.test.x[:n].to(dev), ds.test.y[:n].to(dev)
            imgs = torch.cat([x, model.reconstruct(x, y if model.cond_dim else None)])
    return imgs.cpu(), info.image_shape

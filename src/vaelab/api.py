"""vaelab from Python: what ``import vaelab`` offers, and what every command of the CLI calls.

::

    import vaelab

    run = vaelab.train("vae-tuned", data="mnist", overrides={"train.epochs": 5})
    numbers = vaelab.evaluate(run, k=1000, limit=1000)   # elbo, log_likelihood, ...
    model = vaelab.load(run)                             # a torch.nn.Module
    vaelab.export(run, "bundles/vae-tuned")              # a model folder to hand on

Names are checked exactly as on the command line (:func:`vaelab.parts.resolve`); a dataset
is a name (``mnist``, ``frey``, a plugin's) or the path of an ``.npz`` file or an image
folder (:mod:`vaelab.data.formats`); a run is a run directory (a path or the
:class:`~vaelab.runs.RunDir` that :func:`train` returns) or, where only the model is
needed, a bundle written by :func:`export`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from .config import RunConfig, load_config, resolve_dict
from .devices import resolve_device
from .errors import ConfigError
from .evaluation.quality import quality_run
from .evaluation.run import evaluate_run, load_images
from .parts import register, resolve
from .report import build_report
from .runs import RunDir, default_run_path, export_bundle, load_run
from .serve import serve as _serve
from .sweep import SweepResult, load_experiment
from .sweep import run_sweep as _run_sweep
from .sweep.experiment import parse_only
from .sweep.work import score_sweep
from .training import train_run

__all__ = ["build_report", "evaluate", "export", "load", "make_config", "quality", "quality_sweep", "reconstruct",
           "register", "run_sweep", "sample", "serve", "train"]

PathLike = str | os.PathLike


def _is_file_spec(spec: PathLike) -> bool:
    return Path(spec).suffix in (".yaml", ".yml") or Path(spec).is_file()


def make_config(spec: RunConfig | Mapping[str, Any] | PathLike | None = None, *, preset: str | None = None,
                data: PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """The checked, resolved config that :func:`train` would train.

    ``spec``: a model preset's name (``vae-tuned``; ``vaelab models`` lists them), a YAML
    config file, a config as a nested dict, a :class:`~vaelab.config.RunConfig`, or None
    for the defaults.  ``preset``: a preset under a config file (as ``--model``).
    ``data``: the dataset, a name or a path (``data.dataset``).  ``overrides``: dotted
    keys, ``{"model.latent": 2, "train.epochs": 5}``, applied last.
    """
    over = dict(overrides or {})
    if data is not None:
        if "data.dataset" in over and str(over["data.dataset"]) != str(data):
            raise ConfigError("give the dataset once: data= or overrides['data.dataset'], not both")
        over["data.dataset"] = os.fspath(data)
    if isinstance(spec, RunConfig):
        cfg = spec.replace(**over) if over else spec
    elif isinstance(spec, Mapping):
        cfg = RunConfig.from_dict(resolve_dict(dict(spec), preset, over))
    elif spec is None:
        cfg = load_config(None, preset, over)
    elif isinstance(spec, (str, os.PathLike)):
        cfg = load_config(spec, preset, over) if _is_file_spec(spec) else load_config(None, os.fspath(spec), over)
    else:
        raise ConfigError(f"a config is a preset name, a YAML file, a dict or a RunConfig, got {type(spec).__name__}")
    return resolve(cfg)


def train(spec: RunConfig | Mapping[str, Any] | PathLike | None = None, *, preset: str | None = None,
          data: PathLike | None = None, out: PathLike | None = None, overrides: Mapping[str, Any] | None = None,
          resume: bool = False, data_dir: PathLike | None = None, progress: bool = True) -> RunDir:
    """Train one model; returns its run directory (a :class:`~vaelab.runs.RunDir`, usable
    wherever a path is).

    ``spec``, ``preset``, ``data``, ``overrides``: the config, as :func:`make_config` takes
    them.  ``out``: the run directory (default ``runs/NAME-DATASET-zLATENT-sSEED``); it must
    not hold a run unless ``resume``, which continues it from its last checkpoint with its
    saved config (only ``train.epochs`` may change, to train for longer).  ``data_dir``:
    where the built-in datasets' files are (else ``$VAELAB_DATA``, the cache, a download).
    """
    over = dict(overrides or {})
    if resume and out is None:
        raise ConfigError("resume continues a run, but which one? name its directory: "
                          "vaelab train --resume --out RUN_DIR")
    if resume and RunDir(Path(out)).exists():
        cfg = RunDir(Path(out)).resume_config(over.get("train.epochs"))
        ignored = sorted(set(over) - {"train.epochs"}) + (["preset"] if preset else []) \
            + (["config"] if spec is not None else []) + (["data"] if data is not None else [])
        if ignored:
            print(f"vaelab: note: resuming {out} with its saved config; ignoring {', '.join(ignored)}",
                  file=sys.stderr)
    else:
        cfg = make_config(spec, preset=preset, data=data, overrides=over)
        if resume:
            print(f"vaelab: note: {out} holds no run yet; starting one there", file=sys.stderr)
    run = RunDir(Path(out) if out is not None else default_run_path(cfg))
    train_run(cfg, run.path, data_dir, resume=resume, progress=progress)
    return run


def evaluate(run: PathLike, k: int | None = None, limit: int | None = None, *, data: PathLike | None = None,
             data_dir: PathLike | None = None, device: str = "auto", epoch: int | None = None,
             all_test: bool = False, write: bool = True, progress: bool = False) -> dict[str, Any]:
    """Test ELBO and importance-sampled log-likelihood of a run (or bundle) on its own test
    set, as ``vaelab eval --json`` prints them: ``elbo``, ``log_likelihood``,
    ``log_likelihood_sem``, ``recon``, ``kl``, ``active_units``, ``k``, ``n``, ``protocol``,
    ``test_sha256``...

    ``k``: importance samples per image (default the run's ``eval.k``: 5000, Burda et al.'s);
    ``limit``: only the first N test images.  ``data``: a moved copy of a dataset given by
    path (it must have the recorded sha256).  ``write``: keep the result in the run directory
    (``eval.json`` at the run's own protocol, else ``eval-kK[-nN].json``).
    """
    return evaluate_run(run, k, data_dir, device, progress=progress, write=write, limit=limit, epoch=epoch,
                        all_test=all_test, data=data)


def quality(run: PathLike, n: int | None = None, *, data: PathLike | None = None, data_dir: PathLike | None = None,
            device: str = "auto", epoch: int | None = None, seed: int = 0, write: bool = True,
            progress: bool = False) -> dict[str, Any]:
    """Sample quality of a run (or bundle) against its own test images, as ``vaelab
    quality --json`` prints it: ``fd`` (Fréchet distance in the features of a network
    vaelab trains on the dataset, lower is better), ``precision``, ``recall`` (k-NN
    manifolds, k=3), ``classifier_accuracy``, ``label_accuracy`` (conditional models; else
    None), ``fd_reconstruction`` (the test images against their reconstructions), with
    ``n``, ``k``, ``feature_net`` (its sha256...) and ``protocol``.

    ``n``: samples and test images per set (default 5000, at most the run's test images).
    The feature network is trained on first use for each dataset (a few minutes on a CPU)
    and cached.  ``write``: keep the result in the run directory (``quality.json``, or
    ``quality[-eE]-nN.json`` off the default protocol).  See :mod:`vaelab.evaluation.quality`.
    """
    return quality_run(run, n, data=data, data_dir=data_dir, device=device, epoch=epoch, seed=seed, write=write,
                       progress=progress)


def quality_sweep(sweep: PathLike, n: int | None = None, *, data_dir: PathLike | None = None, device: str = "auto",
                  progress: bool = False) -> list[dict[str, Any]]:
    """:func:`quality` of every finished run of a sweep directory whose weights are here,
    each added to the run's stored metrics, so that ``vaelab report`` shows it (for a sweep
    run before sweeps scored sample quality, or at another ``n``).  -> one record per run,
    ``{"run_id", "label", "quality"}`` or ``{"run_id", "label", "skipped": why}``."""
    return score_sweep(sweep, n, data_dir, device, progress)


def load(run: PathLike, *, device: str = "cpu", epoch: int | None = None) -> torch.nn.Module:
    """The trained model of a run directory (its newest good checkpoint, or ``epoch``'s) or
    of a bundle, in eval mode.  ``model(x, k)`` returns its log weights (:class:`vaelab.models.LogWeights`);
    ``model.sample(n)``, ``model.reconstruct(x)`` and ``model.latent_means(x)`` are there too."""
    return load_run(run, resolve_device(device), epoch).model


def _as_images(flat: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    return flat.reshape(-1, *shape).clamp(0, 1)


def sample(run: PathLike, n: int = 64, *, label: int | None = None, seed: int = 0,
           device: str = "cpu") -> torch.Tensor:
    """``n`` images decoded from prior samples (the mean of p(x | z)), (n, C, H, W) in [0, 1].
    A conditional model draws ``label`` (every class in turn when None).  Needs no data."""
    flat, shape = load_images(run, "samples", n, None, device, label, seed)
    return _as_images(flat, shape)


def reconstruct(run: PathLike, n: int = 16, *, data: PathLike | None = None, data_dir: PathLike | None = None,
                device: str = "cpu") -> torch.Tensor:
    """The first ``n`` test images followed by their reconstructions, (2n, C, H, W)."""
    flat, shape = load_images(run, "reconstructions", n, data_dir, device, data=data)
    return _as_images(flat, shape)


def export(run: PathLike, out: PathLike) -> Path:
    """Write a self-contained model bundle of a run into the new folder ``out``:
    ``model.safetensors``, ``config.json`` and a model card ``README.md`` (laid out as a
    Hugging Face model repository).  :func:`load`, :func:`sample` and ``vaelab sample``
    work on it alone."""
    return export_bundle(run, out)


def serve(target: PathLike, *, host: str | None = None, port: int = 8765, device: str = "cpu",
          data_dir: PathLike | None = None) -> None:
    """Serve the explorer page of a run directory, bundle or sweep directory until
    interrupted (``vaelab serve``): a latent pad decoded live, samples, reconstructions
    of test images and of drawings.  ``host`` None: 127.0.0.1 only.  Needs the ``serve``
    extra (``pip install 'vaelab[serve]'``)."""
    _serve(target, host, port, device=device, data_dir=data_dir)


def run_sweep(experiment: PathLike, *, effort: str = "quick", out: PathLike | None = None,
              overrides: Mapping[str, Any] | None = None, only: Sequence[str] = (), workers: int | None = None,
              executor: str = "local", address: str | None = None, retry_failed: bool = False,
              data_dir: PathLike | None = None, progress: bool = True) -> SweepResult:
    """Run an experiment's grid (a shipped one by name, or a YAML file) as ``vaelab sweep``
    does: resumable, results in ``OUT/store.sqlite``.  ``only``: ``--only`` filters
    (``"model=cvae,latent=5"``).  Parts registered in this process only cannot be used:
    the workers are new processes (make them a plugin)."""
    exp = load_experiment(experiment, effort, overrides, [parse_only(o) for o in only])
    sweep_dir = Path(out) if out is not None else Path("sweeps") / f"{exp.name}-{effort}"
    return _run_sweep([exp], sweep_dir, workers=workers, executor=executor, address=address,
                      retry_failed=retry_failed, data_dir=data_dir, progress=progress)

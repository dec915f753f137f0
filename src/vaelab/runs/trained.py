"""A trained model back from its run directory or a model bundle: what evaluation and figures
start from, and how a run becomes a bundle.

A **bundle** (``vaelab export RUN DIR``) is a self-contained model folder laid out as a
Hugging Face model repository is::

    DIR/model.safetensors   the model's tensors by parameter name (no optimiser state)
    DIR/config.json         {"format": "vaelab-bundle", "bundle_format", "vaelab_version", "config",
                             "data_info", "architecture", "data", "epoch", "weights_sha256",
                             "evaluation": the run's eval.json, when it has one}
    DIR/README.md           a model card: what the model is, its numbers and their protocol
    DIR/eval.json           the run's evaluation, when it has one

It holds everything :func:`load_run` needs (the architecture record also lets plain torch
rebuild it); the data stays where it is, named by path and sha256 in ``data``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..config import RunConfig
from ..data import DataInfo
from ..errors import CheckpointError, ConfigError, first_line
from ..io import atomic_write_json, atomic_write_text, sha256_file
from ..models import VAE, build_model
from ..version import __version__
from .checkpoint import find_checkpoint, load_latest
from .layout import CONFIG, EVAL, RunDir

BUNDLE_WEIGHTS = "model.safetensors"
BUNDLE_CARD = "README.md"
BUNDLE_MARK, BUNDLE_FORMAT = "vaelab-bundle", 1


@dataclass
class TrainedRun:
    """A run's model (in eval mode) from its newest good checkpoint, or from a bundle, with
    its config, data info, data record and the checkpoint's commit record (``sidecar["epoch"]``...)."""

    model: VAE
    cfg: RunConfig
    info: DataInfo
    sidecar: dict[str, Any]
    path: Path
    data: dict[str, Any] | None = None  # config.json's "data" (vaelab.runs.data)
    bundle: bool = False


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / BUNDLE_WEIGHTS).is_file() and (Path(path) / CONFIG).is_file()


def _build(cfg: RunConfig, info: DataInfo, state: dict[str, torch.Tensor], where: Path, device) -> VAE:
    model = build_model(cfg.model, info)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{where} does not fit the model in {CONFIG}: {first_line(err)}") from None
    return model.to(device).eval()


def _read_bundle(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path / CONFIG} is unreadable ({type(err).__name__}); the bundle cannot be used") from None
    if not isinstance(raw, dict) or raw.get("format") != BUNDLE_MARK or raw.get("bundle_format") != BUNDLE_FORMAT:
        raise CheckpointError(f"{path} is not a vaelab model bundle this version can read (no "
                              f"format: {BUNDLE_MARK} / bundle_format: {BUNDLE_FORMAT} in {CONFIG})")
    return raw


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> TrainedRun:
    path = Path(path)
    raw = _read_bundle(path)
    weights = path / BUNDLE_WEIGHTS
    if sha256_file(weights) != raw.get("weights_sha256"):
        raise CheckpointError(f"{weights}: sha256 does not match the one in {CONFIG} (truncated or altered)")
    try:
        cfg, info = RunConfig.from_dict(raw["config"]), DataInfo.from_dict(raw["data_info"])
        state = load_file(str(weights))
    except (ConfigError, KeyError, TypeError, ValueError, SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} holds an invalid bundle ({first_line(err)})") from None
    model = _build(cfg, info, state, weights, device)
    return TrainedRun(model, cfg, info, {"epoch": raw.get("epoch")}, path, raw.get("data"), bundle=True)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", epoch: int | None = None) -> TrainedRun:
    """Read a run directory's config.json, build the model it names and load the newest
    checkpoint whose hash verifies (or that of ``epoch``); or read a bundle.
    CheckpointError when the directory holds neither."""
    if is_bundle(run_dir):
        if epoch is not None:
            raise CheckpointError(f"{run_dir} is a model bundle: it holds one epoch's weights, not --epoch {epoch}")
        return load_bundle(run_dir, device)
    run = RunDir(Path(run_dir))
    cfg, info = run.read_config()
    loaded = load_latest(run.ckpt_dir) if epoch is None else find_checkpoint(run.ckpt_dir, epoch)
    if loaded is None:
        raise CheckpointError(f"{run.path} has no checkpoint yet; train it first")
    model = _build(cfg, info, loaded.model_state(), loaded.path, device)
    return TrainedRun(model, cfg, info, loaded.sidecar, run.path, run.data_record())


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu") -> VAE:
    """The trained model of a run directory or bundle, in eval mode."""
    return load_run(run_dir, device).model


# --- export -------------------------------------------------------------------------------


def _card(raw: dict[str, Any], evaluation: dict[str, Any] | None) -> str:
    cfg = raw["config"]
    model, data, objective = cfg["model"], cfg["data"], cfg["objective"]
    source = raw.get("data") or {}
    shape = "x".join(str(v) for v in raw["data_info"]["image_shape"])
    tags = dict.fromkeys(["vae", "variational-autoencoder", "vaelab", model["kind"], model["arch"], model["prior"]])
    lines = ["---", "library_name: vaelab", "tags:", *[f"- {t}" for t in tags], "---", "",
             f"# {cfg.get('name', 'vae')}: a vaelab model on {source.get('dataset', data['dataset'])}", "",
             f"A {model['kind']} with a {model['arch']} network, a {model['latent']}-dimensional latent "
             f"(prior {model['prior']}), trained on the objective {objective['name']!r} for {raw.get('epoch')} epochs "
             f"on {shape} (C x H x W) images. The full configuration and the architecture (enough to rebuild the "
             f"model in plain torch) are in `config.json`; the weights in `model.safetensors`.", ""]
    if source.get("sha256") or source.get("test_sha256"):
        lines += [f"Data: `{source.get('dataset', data['dataset'])}`"
                  + (f", sha256 `{source['sha256']}`" if source.get("sha256") else "")
                  + (f"; test tensor sha256 `{source['test_sha256']}`" if source.get("test_sha256") else "") + ".", ""]
    if evaluation:
        lines += ["## Evaluation", "", "| quantity | nats per image |", "| --- | ---: |",
                  f"| test ELBO | {evaluation['elbo']:.2f} |",
                  f"| importance-sampled log-likelihood (k = {evaluation['k']}) | {evaluation['log_likelihood']:.2f} |",
                  f"| active units | {evaluation.get('active_units', '')} of {model['latent']} |", "",
                  f"Protocol: {evaluation.get('protocol', '')}", ""]
    else:
        lines += ["## Evaluation", "", "Not evaluated when exported (`vaelab eval` the run, then export it again).", ""]
    lines += ["## Use", "", "```python", "import vaelab", "", "model = vaelab.load(\"PATH/TO/THIS/FOLDER\")  # a torch.nn.Module",
              "images = vaelab.sample(\"PATH/TO/THIS/FOLDER\", n=16)  # (16, C, H, W) in [0, 1]", "```", "",
              "or `vaelab sample PATH/TO/THIS/FOLDER -o samples.png`.", ""]
    return "\n".join(lines)


def export_bundle(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the bundle of a run directory's newest good checkpoint into ``out_dir`` (new or
    empty).  Written into a temporary folder beside it and renamed at the end, so a failed
    export leaves nothing behind.  Returns ``out_dir``."""
    run = RunDir(Path(run_dir))
    if is_bundle(run.path):
        raise ConfigError(f"{run.path} is a bundle already; copy the folder to hand it on")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty folder; choose a new one")
    trained = load_run(run.path)
    raw = run.read_raw()
    evaluation = json.loads(run.eval_file.read_text(encoding="utf-8")) if run.eval_file.exists() else None
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        state = {k: v.detach().cpu().contiguous() for k, v in trained.model.state_dict().items()}
        save_file(state, str(tmp / BUNDLE_WEIGHTS), metadata={"format": BUNDLE_MARK, "vaelab_version": __version__})
        record = {"format": BUNDLE_MARK, "bundle_format": BUNDLE_FORMAT, "vaelab_version": __version__,
                  "config": raw["config"], "data_info": raw["data_info"],
                  "architecture": {**(raw.get("architecture") or {}),
                                   "weights": f"{BUNDLE_WEIGHTS}: one tensor per parameter name given here"},
                  "data": raw.get("data"), "epoch": int(trained.sidecar["epoch"]),
                  "weights_sha256": sha256_file(tmp / BUNDLE_WEIGHTS), "evaluation": evaluation}
        atomic_write_json(tmp / CONFIG, record)
        atomic_write_text(tmp / BUNDLE_CARD, _card(record, evaluation))
        if evaluation is not None:
            atomic_write_json(tmp / EVAL, evaluation)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

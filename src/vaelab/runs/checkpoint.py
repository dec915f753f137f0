"""Checkpoints of a run directory (:mod:`.layout`): weights and optimiser tensors in safetensors, everything else in a JSON
sidecar.  Never pickle: nothing in a run directory can execute code when loaded.

Layout (``RUN/checkpoints``)::

    epoch-000007.safetensors   model.<name>, optim.<param index>.<state name>
    epoch-000007.json          the commit record: epoch, sha256 of the .safetensors,
                               optimiser hyper-parameters, NaN-guard state, metrics so far

The .safetensors file is written first (temp file, fsync, rename), the .json last: a
checkpoint exists only once its sidecar does, and its hash is checked before it is
trusted.  The newest ``KEEP`` checkpoints are kept, so a corrupt newest one falls back
to the one before it.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..version import __version__
from ..errors import CheckpointError, DiskFullError
from ..faults import crash_point
from ..io import atomic_write, atomic_write_json, sha256_file

FORMAT = 1
KEEP = 2
_NAME = re.compile(r"^epoch-(\d{6})\.json$")


@dataclass
class TrainState:
    """What besides tensors a run needs to continue exactly."""

    epoch: int = 0  # epochs completed
    lr_scale: float = 1.0  # NaN-guard halvings so far, as a factor
    retries: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0


def _optim_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_checkpoint(ckpt_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, state: TrainState,
                    keep: tuple[int, ...] = ()) -> Path:
    """Write the checkpoint of ``state.epoch``; then prune all but the newest ``KEEP`` and
    the epochs named in ``keep`` (``train.keep_epochs``: evaluated later, e.g. a budget
    curve)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = _optim_tensors(opt)
    tensors.update(opt_tensors)
    stem = f"epoch-{state.epoch:06d}"
    weights = ckpt_dir / f"{stem}.safetensors"
    try:
        atomic_write(weights, lambda p: save_file(tensors, str(p), metadata={"vaelab_version": __version__}))
    except DiskFullError:
        need = sum(t.numel() * t.element_size() for t in tensors.values()) / 2 ** 20
        raise DiskFullError(
            f"no space left on the device holding {ckpt_dir} for the checkpoint of epoch {state.epoch} "
            f"(about {need:.1f} MiB needed); the earlier checkpoints are intact: free some space, then continue "
            f"with `vaelab train --resume --out {ckpt_dir.parent}`") from None
    crash_point("checkpoint:between_weights_and_sidecar")
    sidecar = {
        "format": FORMAT, "vaelab_version": __version__, "epoch": state.epoch,
        "sha256": sha256_file(weights), "optim": opt_meta, "lr_scale": state.lr_scale,
        "retries": state.retries, "metrics": state.metrics, "train_seconds": state.train_seconds,
    }
    atomic_write_json(ckpt_dir / f"{stem}.json", sidecar)
    _prune(ckpt_dir, keep)
    return weights


def _prune(ckpt_dir: Path, keep: tuple[int, ...] = ()) -> None:
    for old in list_checkpoints(ckpt_dir)[KEEP:]:
        if checkpoint_epoch(old) in keep:
            continue
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    newest = _newest_epoch(ckpt_dir)
    for stray in ckpt_dir.glob("epoch-*.safetensors"):  # weights whose sidecar never landed
        if not stray.with_suffix(".json").exists() and stray.stem < f"epoch-{newest:06d}":
            stray.unlink(missing_ok=True)


def _newest_epoch(ckpt_dir: Path) -> int:
    found = list_checkpoints(ckpt_dir)
    return checkpoint_epoch(found[0]) if found else -1


def checkpoint_epoch(sidecar: Path) -> int:
    return int(_NAME.match(sidecar.name).group(1))


def find_checkpoint(ckpt_dir: Path, epoch: int) -> Loaded:
    """The checkpoint of one epoch (kept with ``train.keep_epochs``, or among the newest),
    hash-checked.  CheckpointError naming the epochs there are when it is not there."""
    found = {checkpoint_epoch(p): p for p in list_checkpoints(ckpt_dir)}
    if epoch not in found:
        have = ", ".join(str(e) for e in sorted(found)) or "none"
        raise CheckpointError(f"{ckpt_dir} holds no checkpoint of epoch {epoch} (it holds: {have}); "
                              f"train with train.keep_epochs listing the epochs to keep")
    return _try_load(found[epoch])


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Sidecars, newest first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted((p for p in ckpt_dir.iterdir() if _NAME.match(p.name)), reverse=True)


@dataclass
class Loaded:
    tensors: dict[str, torch.Tensor]
    sidecar: dict[str, Any]
    path: Path

    def model_state(self) -> dict[str, torch.Tensor]:
        return {k[len("model."):]: v for k, v in self.tensors.items() if k.startswith("model.")}

    def optim_state(self) -> dict[str, Any]:
        meta = self.sidecar["optim"]
        state: dict[int, dict[str, Any]] = {}
        for key, value in self.tensors.items():
            if key.startswith("optim."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, scalars in meta.get("scalars", {}).items():
            state.setdefault(int(pid), {}).update(scalars)
        return {"state": state, "param_groups": meta["param_groups"]}

    def train_state(self) -> TrainState:
        s = self.sidecar
        return TrainState(epoch=int(s["epoch"]), lr_scale=float(s["lr_scale"]), retries=int(s["retries"]),
                          metrics=list(s["metrics"]), train_seconds=float(s.get("train_seconds", 0.0)))


def _try_load(sidecar_path: Path) -> Loaded:
    """Load one checkpoint or raise CheckpointError saying why it cannot be trusted."""
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{sidecar_path.name}: unreadable sidecar ({err.__class__.__name__})") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise CheckpointError(
            f"{sidecar_path.name}: checkpoint format {sidecar.get('format') if isinstance(sidecar, dict) else '?'} "
            f"from vaelab {sidecar.get('vaelab_version', '?') if isinstance(sidecar, dict) else '?'} "
            f"is not this version's format {FORMAT}")
    weights = sidecar_path.with_suffix(".safetensors")
    if not weights.exists():
        raise CheckpointError(f"{weights.name}: missing")
    actual = sha256_file(weights)
    if actual != sidecar.get("sha256"):
        raise CheckpointError(f"{weights.name}: sha256 {actual[:12]}... does not match the recorded "
                              f"{str(sidecar.get('sha256'))[:12]}... (truncated or corrupt)")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights.name}: unreadable ({err})") from None
    return Loaded(tensors, sidecar, weights)


def load_latest(ckpt_dir: Path, warn=lambda msg: print(msg, file=sys.stderr)) -> Loaded | None:
    """The newest checkpoint whose hash verifies, falling back past corrupt ones with a
    warning.  None if there is none at all; CheckpointError if all are corrupt."""
    problems = []
    for sidecar_path in list_checkpoints(ckpt_dir):
        try:
            loaded = _try_load(sidecar_path)
        except CheckpointError as err:
            problems.append(str(err))
            warn(f"vaelab: warning: skipping checkpoint {err}")
            continue
        return loaded
    if problems:
        raise CheckpointError(f"no usable checkpoint in {ckpt_dir}: " + "; ".join(problems)
                              + ". Delete the run directory and train again.")
    return None

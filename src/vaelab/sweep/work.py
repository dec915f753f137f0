"""One run's life in a sweep: train (resuming), evaluate (likelihood and sample quality), and
the result written to the store.

:func:`compute` runs in whatever process an executor gives it (a local worker, a Ray
task) and never raises for a failure of the run itself; :func:`record` writes its result
to the store, in one transaction.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Mapping

from ..config import RunConfig
from ..errors import VaelabError, first_line
from ..evaluation.quality import check_n, quality_run
from ..evaluation.run import evaluate_run
from ..io import atomic_write_text
from ..runs import RunDir, list_checkpoints, run_label, run_path, store_path
from ..store import Store
from ..training import train_run
from ..training.select import read_choice


def compute(config: Mapping[str, Any], path: str | Path, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Train (resuming from any checkpoint) and evaluate one run.  Never raises for a
    failure of the run itself: returns ``{"ok": False, "error": one line}`` instead, so
    one diverging model does not stop a sweep.  Programming errors keep their traceback
    in ``RUN/error.txt``."""
    path = Path(path)
    try:
        cfg = RunConfig.from_dict(config)
        state = train_run(cfg, path, data_dir, resume=True, progress=False)
        t0 = time.perf_counter()
        metrics = evaluate_run(path, None, data_dir, cfg.train.device, progress=False, write=True)
        metrics = {**metrics, **sample_quality(path, cfg, data_dir)}
        by_epoch = evaluate_kept(path, cfg, state.epoch, data_dir)
        if by_epoch:
            metrics = {**metrics, "by_epoch": by_epoch}
        choice = read_choice(path)
        if choice is not None:  # what the selection stage chose, for the report
            metrics = {**metrics, "selected": f"{choice['key']}={choice['chosen']:g}"}
        return {"ok": True, "metrics": metrics, "epochs": state.epoch, "train_seconds": state.train_seconds,
                "eval_seconds": time.perf_counter() - t0}
    except VaelabError as err:
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    except Exception as err:  # a bug: keep it loud, but in this run's row, not the whole sweep's
        tb = traceback.format_exc()
        try:
            atomic_write_text(RunDir(path).error_file, tb)
        except OSError:
            pass
        print(tb, file=sys.stderr, flush=True)
        return {"ok": False, "error": f"internal error {type(err).__name__}: {first_line(err, '')} "
                                      f"(traceback in {RunDir(path).error_file})"}


def sample_quality(path: Path, cfg: RunConfig, data_dir: str | Path | None = None) -> dict[str, Any]:
    """``{"quality": RUN/quality.json}`` at its default protocol, or ``{"quality_error": why}``
    where the run's data cannot be scored (too few test images...): the likelihood is
    stored either way."""
    try:
        return {"quality": quality_run(path, None, data_dir=data_dir, device=cfg.train.device, progress=False)}
    except VaelabError as err:
        return {"quality_error": f"{type(err).__name__}: {first_line(err)}"}


def score_sweep(sweep_dir: str | Path, n: int | None = None, data_dir: str | Path | None = None,
                device: str = "auto", progress: bool = True) -> list[dict[str, Any]]:
    """Score the sample quality of every finished run of a sweep whose weights are here,
    and add it to the run's stored metrics (so that reports show it): for sweeps run before
    quality was part of a run's evaluation, or at another N.  -> one record per run:
    ``{"run_id", "label", "quality"}`` or ``{"run_id", "label", "skipped": why}``."""
    check_n(n)
    out: list[dict[str, Any]] = []
    with Store(store_path(sweep_dir), create=False) as store:
        for row in store.runs(status="done"):
            path = run_path(sweep_dir, row.id)
            record: dict[str, Any] = {"run_id": row.id, "label": run_label(row.config)}
            if not list_checkpoints(RunDir(path).ckpt_dir):
                out.append({**record, "skipped": "no weights here"})
                continue
            try:
                quality = quality_run(path, n, data_dir=data_dir, device=device, progress=progress)
            except VaelabError as err:
                out.append({**record, "skipped": f"{type(err).__name__}: {first_line(err)}"})
                continue
            store.add_metrics(row.id, {"quality": quality}, drop=("quality_error",))
            out.append({**record, "quality": quality})
    return out


def evaluate_kept(path: Path, cfg: RunConfig, last: int, data_dir: str | Path | None = None
                  ) -> dict[str, dict[str, Any]]:
    """The run's protocol (its eval.k, its test images) at each epoch of
    ``train.keep_epochs`` before the last: ``{"13": {"log_likelihood", "log_likelihood_sem",
    "elbo"}}``, for a budget curve.  Each result is kept as ``eval-eE-kK.json`` and reused
    when the sweep resumes."""
    out = {}
    for epoch in sorted(e for e in set(cfg.train.keep_epochs) if e < last):
        done = RunDir(path).other_eval_file(cfg.eval.k, epoch)
        res = json.loads(done.read_text(encoding="utf-8")) if done.exists() else \
            evaluate_run(path, None, data_dir, cfg.train.device, progress=False, write=True, epoch=epoch)
        out[str(epoch)] = {k: res[k] for k in ("log_likelihood", "log_likelihood_sem", "elbo")}
    return out


def record(store: Store, run_id: str, result: Mapping[str, Any]) -> str:
    """Write a :func:`compute` result to the store; returns the final status."""
    if result.get("ok"):
        row = store.finish(run_id, result["metrics"], epochs=result.get("epochs"),
                           train_seconds=result.get("train_seconds"), eval_seconds=result.get("eval_seconds"))
        return row.status
    store.fail(run_id, str(result.get("error") or "failed"))
    return "failed"

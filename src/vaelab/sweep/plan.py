"""``vaelab sweep EXPERIMENT --plan``: each run's time, estimated before anything runs.

Every distinct shape of run (model, objective, batch size, data) is measured once on this
machine through the real entry points, on a sliver of the data:

* ``Trainer._train_epoch`` on a few batches (after one warm-up pass), scaled to the
  epoch's batches;
* ``Trainer._valid_elbo`` on one chunk of validation images, scaled to the validation set
  and to the epochs that validate (``train.valid_every``);
* ``evaluate_model`` (the IS log-likelihood, the run's ``eval.k``) on one chunk of test
  images, scaled to the test set.

The measurements run in as many processes at a time as the sweep has workers, each on the
threads the sweep would give it, so they see the machine as the sweep's runs will (two
1-thread runs side by side slow each other down).  The wall time replays the sweep's own
schedule: runs in grid order, each to the first free worker.  Nothing is written outside a
temporary directory, and no run starts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..config import RunConfig
from ..evaluation.likelihood import DEFAULT_ROWS_PER_CHUNK, evaluate_model
from ..runs import config_dataset
from ..training import Trainer
from .executors import core_shares, default_workers, threads_per_worker
from .experiment import Run

# Fixed costs per run besides loading the data twice (training, then evaluation; measured
# per shape): the run directory, the first and last checkpoints, active units (~1 s on 2
# cores); and per epoch the checkpoint and metrics files (~0.05 s).
RUN_OVERHEAD_S = 1.0
EPOCH_OVERHEAD_S = 0.06
TRAIN_BATCHES = 4  # timed batches per shape (after a warm-up pass over the same batches)


@dataclass
class ShapeTiming:
    step_s: float  # one training step
    epoch_fixed_s: float  # per-epoch work that does not scale with batches (binarise, permute)
    valid_s: float  # one validation pass over the run's validation set
    eval_s: float  # the IS evaluation over the run's test set
    measure_s: float  # how long measuring took


@dataclass
class RunEstimate:
    run: Run
    train_s: float
    eval_s: float

    @property
    def total_s(self) -> float:
        return self.train_s + self.eval_s


def shape_key(cfg) -> str:
    """What a run's cost depends on: its model, objective shape, batch size and data sizes;
    not its learning rate, beta, seed or name."""
    d = cfg.to_dict()
    key = {"model": d["model"], "objective": {k: d["objective"][k] for k in ("name", "k", "noise")},
           "batch_size": d["train"]["batch_size"], "device": d["train"]["device"], "data": d["data"],
           "eval": {k: d["eval"][k] for k in ("k", "batch_size")}}
    return json.dumps(key, sort_keys=True)


def _measure(cfg_dict: dict[str, Any], data_dir: str | None, threads: int) -> dict[str, float]:
    """Time one shape (in a fresh process: its own threads, nothing cached from another)."""
    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    cfg = RunConfig.from_dict(cfg_dict)
    t0 = time.perf_counter()
    ds = config_dataset(cfg, data_dir)
    load_s = time.perf_counter() - t0
    n_train, n_valid, n_test = (int(s.x.shape[0]) for s in (ds.train, ds.valid, ds.test))
    bs = cfg.train.batch_size
    steps_epoch = math.ceil(n_train / bs)
    timed = min(TRAIN_BATCHES, steps_epoch)
    valid_chunk = min(1000, n_valid)  # Trainer._valid_elbo's chunk
    k = cfg.eval.k
    eval_bs = cfg.eval.batch_size or max(1, min(n_test, DEFAULT_ROWS_PER_CHUNK // k if k < DEFAULT_ROWS_PER_CHUNK
                                                else 1, 1000))
    eval_imgs = min(n_test, eval_bs)
    small = dataclasses.replace(ds, train=ds.train.head(timed * bs), valid=ds.valid.head(valid_chunk))
    with tempfile.TemporaryDirectory(prefix="vaelab-plan-") as tmp:
        tr = Trainer.open(cfg.replace(**{"train.threads": 0}), Path(tmp) / "run", progress=False).build(dataset=small)
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        tr._train_epoch(0)  # warm-up: allocator, BLAS and kernel choice (and compiling, train.compile)
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        for e in (1, 2):  # the mean of two, not the best: a run sees the machine's load as it comes
            tr._train_epoch(e)
        small_epoch = (time.perf_counter() - t0) / 2
        tr._valid_elbo(0)
        t0 = time.perf_counter()
        tr._valid_elbo(1)
        valid_s = (time.perf_counter() - t0) * n_valid / valid_chunk
        x = ds.test.x[:eval_imgs].to(tr.device)
        y = ds.test.y[:eval_imgs].to(tr.device) if tr.model.cond_dim else None
        evaluate_model(tr.model, x, y, k=min(k, 64), batch_size=eval_bs, progress=False)  # warm-up
        t0 = time.perf_counter()
        evaluate_model(tr.model, x, y, k=k, batch_size=eval_bs, seed=cfg.eval.seed, progress=False)
        eval_s = (time.perf_counter() - t0) * n_test / eval_imgs
    # The per-epoch binarisation and permutation scale with the training set, not with
    # the timed batches: charge them as part of the step (they are ~5% of it).
    step_s = small_epoch / timed
    compile_s = max(0.0, warm - small_epoch) if cfg.train.compile else 0.0  # once per run
    return {"step_s": step_s, "epoch_fixed_s": 0.0, "valid_s": valid_s, "eval_s": eval_s, "load_s": load_s,
            "compile_s": compile_s,
            "steps_epoch": steps_epoch, "measure_s": time.perf_counter() - t_start}


def _measure_many(jobs: list[tuple[str, dict[str, Any]]], data_dir: str | None, threads: int
                  ) -> dict[str, dict[str, float]]:
    return {key: _measure(cfg, data_dir, threads) for key, cfg in jobs}


def measure_shapes(runs: Sequence[Run], workers: int, threads: int, data_dir=None,
                   log=None) -> dict[str, dict[str, float]]:
    """{shape key: timing}, measured in ``workers`` processes at once (round-robin)."""
    shapes: dict[str, dict[str, Any]] = {}
    for r in runs:
        shapes.setdefault(shape_key(r.config), r.config.to_dict())
    items = list(shapes.items())
    if log:
        log(f"plan: measuring {len(items)} distinct run shape(s) in {workers} process(es) of {threads} "
            f"thread(s) each, as the sweep would run them")
    data = None if data_dir is None else str(data_dir)
    groups = [items[i::workers] for i in range(workers)]
    groups = [g for g in groups if g]
    if len(groups) == 1:
        return _measure_many(groups[0], data, threads)
    ctx = mp.get_context("spawn")
    with ctx.Pool(len(groups)) as pool:
        parts = pool.starmap(_measure_many, [(g, data, threads) for g in groups])
    out: dict[str, dict[str, float]] = {}
    for part in parts:
        out.update(part)
    return out


def estimate(runs: Sequence[Run], timings: dict[str, dict[str, float]]) -> list[RunEstimate]:
    out = []
    for r in runs:
        t = timings[shape_key(r.config)]
        cfg = r.config.train
        validated = sum(1 for e in range(cfg.epochs) if (e + 1) % cfg.valid_every == 0 or e + 1 == cfg.epochs)
        train = cfg.epochs * (t["steps_epoch"] * t["step_s"] + t["epoch_fixed_s"] + EPOCH_OVERHEAD_S) \
            + validated * t["valid_s"] + t.get("compile_s", 0.0)
        out.append(RunEstimate(r, train, t["eval_s"] + 2 * t.get("load_s", 0.0) + RUN_OVERHEAD_S))
    return out


def wall_time(estimates: Sequence[RunEstimate], workers: int) -> float:
    """The sweep's schedule replayed: runs in order, each to the first free worker."""
    free = [0.0] * max(1, workers)
    for e in estimates:
        i = min(range(len(free)), key=free.__getitem__)
        free[i] += e.total_s
    return max(free)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def plan(runs: Sequence[Run], workers: int | None = None, data_dir=None, out=print) -> float:
    """Measure, print one line per run and the total; returns the estimated wall seconds."""
    n = max(1, min(workers or default_workers(), len(runs)))
    shares = core_shares(n)
    threads = threads_per_worker(n, len(set().union(*shares)))
    t0 = time.perf_counter()
    timings = measure_shapes(runs, n, threads, data_dir, log=out)
    ests = estimate(runs, timings)
    out(f"{'run':14s} {'label':22s} {'epochs':>6s} {'s/epoch':>8s} {'train':>9s} {'eval':>9s} {'total':>9s}")
    for e in ests:
        t = timings[shape_key(e.run.config)]
        per_epoch = t["steps_epoch"] * t["step_s"]
        out(f"{e.run.id:14s} {e.run.label:22s} {e.run.config.train.epochs:6d} {per_epoch:8.2f} "
            f"{_hms(e.train_s):>9s} {_hms(e.eval_s):>9s} {_hms(e.total_s):>9s}")
    total = sum(e.total_s for e in ests)
    wall = wall_time(ests, n)
    out(f"total: {len(ests)} runs, {_hms(total)} of run time; estimated wall time {_hms(wall)} with {n} "
        f"worker(s) x {threads} thread(s) on this machine (measured in {time.perf_counter() - t0:.0f}s, "
        f"load average {os.getloadavg()[0]:.1f})")
    return wall

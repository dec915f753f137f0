"""``vaelab sweep EXPERIMENT --plan``: each run's time and the packing it runs with,
measured before anything runs.

Every distinct shape of run (model, objective, batch size, data) is measured on this
machine through the real entry points, on a sliver of the data:

* ``Trainer._train_epoch`` on a few batches (after one warm-up pass), scaled to the
  epoch's batches;
* ``Trainer._valid_elbo`` on one chunk of validation images, scaled to the validation set
  and to the epochs that validate (``train.valid_every``);
* ``evaluate_model`` (the IS log-likelihood, the run's ``eval.k``) on one chunk of test
  images, after one warm-up pass over the same chunk, scaled to the test set.

A *packing* is how a sweep shares the machine: W worker processes, each on its own share
of the cores with T torch threads (on a GPU: W processes sharing the device).  Each shape
is measured under every candidate packing (:func:`packings`: on 2 cores, 2 x 1 and 1 x 2)
as the sweep would run it, W copies side by side, each on T threads, since W runs slow
each other down (memory bandwidth, caches) and T threads of one run wait for each other.
Each shape gets the packing with the most runs per hour (training and evaluation
together); a sweep of the same experiment in the same directory runs it (``plan.json``,
the one file the plan writes).  The wall time replays that schedule: the runs grouped by
packing, each group in grid order on its workers, each run to the first free worker, and
each group paying once for its workers' start (a fresh interpreter importing torch and
vaelab, measured: :func:`worker_start_s`).  The sample-quality feature network each run is
scored in is made ready first (trained once per machine and dataset, then cached), so the
sweep that follows does not pay for it either.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..allocator import tune_malloc
from ..config import RunConfig
from ..denormals import flushed
from ..evaluation.likelihood import DEFAULT_ROWS_PER_CHUNK, evaluate_model
from ..evaluation.quality import config_feature_net, every_image
from ..models import wants_binary
from ..runs import config_dataset
from ..training import Trainer
from ..devices import on_cuda
from .executors import MAX_THREADS_ENV, core_shares, threads_per_worker
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
    """What a run's cost depends on: its model, objective shape, batch size, data sizes and
    training precision; not its learning rate, beta, seed or name."""
    d = cfg.to_dict()
    key = {"model": d["model"], "objective": {k: d["objective"][k] for k in ("name", "k", "noise")},
           "batch_size": d["train"]["batch_size"], "device": d["train"]["device"], "data": d["data"],
           "eval": {k: d["eval"][k] for k in ("k", "batch_size")}}
    if "precision" in d["train"]:  # train.precision away from float32 (absent there: older keys hold)
        key["precision"] = d["train"]["precision"]
    return json.dumps(key, sort_keys=True)


def _measure(cfg_dict: dict[str, Any], data_dir: str | None, threads: int) -> dict[str, float]:
    """Time one shape (in a fresh process: its own threads, nothing cached from another)."""
    before = os.environ.get(MAX_THREADS_ENV)
    os.environ[MAX_THREADS_ENV] = str(threads)  # as in a sweep's worker: the run keeps these threads
    try:
        return _measure_in(cfg_dict, data_dir, threads)
    finally:  # measured in the sweep's own process (one worker): leave its environment as it was
        if before is None:
            os.environ.pop(MAX_THREADS_ENV, None)
        else:
            os.environ[MAX_THREADS_ENV] = before


def _measure_in(cfg_dict: dict[str, Any], data_dir: str | None, threads: int) -> dict[str, float]:
    with flushed():  # as the sweep's workers run (denormals.py)
        return _measure_flushed(cfg_dict, data_dir, threads)


def _measure_flushed(cfg_dict: dict[str, Any], data_dir: str | None, threads: int) -> dict[str, float]:
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
        tune_malloc("train")  # as Trainer.fit does (evaluate_model sets its own phase below)
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
        # Warm-up on the same chunk at the full k: a long evaluation reuses its chunks' blocks
        # (tens of MB, allocator.py), and the first chunk's page faults and one-off set-up
        # would otherwise be charged to every chunk (a cold chunk took 1.2-3x a warm one:
        # BENCHMARKS.md section 4).
        evaluate_model(tr.model, x, y, k=k, batch_size=eval_bs, progress=False)
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


Packing = tuple[int, int]  # (worker processes, torch threads per worker)


def packings(cores: int, gpu: bool = False) -> list[Packing]:
    """The candidate packings of ``cores`` CPU cores: one worker per core, two threads per
    worker, and one worker on all cores (on 2 cores: 2 x 1 and 1 x 2).  On a GPU: 1, 2 or
    4 processes sharing the device, each on its share of the CPU cores."""
    if gpu:
        return [(w, max(1, cores // w)) for w in (1, 2, 4)]
    return sorted({(cores // t, t) for t in {1, min(2, cores), cores}}, reverse=True)


def measure_shapes(runs: Sequence[Run], packing: Packing, data_dir=None, log=None) -> dict[str, dict[str, float]]:
    """{shape key: timing} under ``packing`` = (W, T): each shape measured in W processes
    at once, each on T threads (W runs of that shape side by side); the mean of the W."""
    workers, threads = packing
    shapes: dict[str, dict[str, Any]] = {}
    for r in runs:
        shapes.setdefault(shape_key(r.config), r.config.to_dict())
    if log:
        log(f"plan: measuring {len(shapes)} distinct run shape(s) as {workers} run(s) side by side on "
            f"{threads} thread(s) each")
    data = None if data_dir is None else str(data_dir)
    if workers == 1:
        return _measure_many(list(shapes.items()), data, threads)
    out: dict[str, dict[str, float]] = {}
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(workers)
    try:
        for key, cfg in shapes.items():
            copies = pool.starmap(_measure, [(cfg, data, threads)] * workers)
            out[key] = {name: sum(c[name] for c in copies) / workers for name in copies[0]}
        pool.close()  # workers exit on their own: nothing left for the resource tracker to warn about
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return out


def estimate(runs: Sequence[Run], timings: dict[str, dict[str, float]]) -> list[RunEstimate]:
    out = []
    for r in runs:
        t = timings[shape_key(r.config)]
        cfg = r.config.train
        validated = sum(1 for e in range(cfg.epochs) if (e + 1) % cfg.valid_every == 0 or e + 1 == cfg.epochs)
        epoch_s = t["steps_epoch"] * t["step_s"] + t["epoch_fixed_s"] + EPOCH_OVERHEAD_S
        train = cfg.epochs * epoch_s + validated * t["valid_s"] + t.get("compile_s", 0.0)
        sel = r.config.select
        if sel is not None:  # the selection stage's short runs, each validated every epoch
            train += len(sel.values) * (sel.epochs * (epoch_s + t["valid_s"]) + t.get("compile_s", 0.0))
        out.append(RunEstimate(r, train, t["eval_s"] + 2 * t.get("load_s", 0.0) + RUN_OVERHEAD_S))
    return out


def choose(runs: Sequence[Run], by_packing: dict[Packing, list[RunEstimate]]) -> dict[str, Packing]:
    """{shape key: the packing with the most runs of that shape per hour}: W workers
    finishing a run each in S seconds make W runs per S seconds.  Ties go to more workers."""
    best: dict[str, tuple[float, int, Packing]] = {}
    for pack, ests in by_packing.items():
        for e in ests:
            key = shape_key(e.run.config)
            score = (e.total_s / pack[0], -pack[0], pack)
            if key not in best or score < best[key]:
                best[key] = score
    return {key: score[2] for key, score in best.items()}


def wall_time(estimates: Sequence[RunEstimate], workers: int) -> float:
    """The sweep's schedule replayed: runs in order, each to the first free worker."""
    free = [0.0] * max(1, workers)
    for e in estimates:
        i = min(range(len(free)), key=free.__getitem__)
        free[i] += e.total_s
    return max(free)


def groups(runs: Sequence[Run], packing: dict[str, Packing], default: Packing) -> list[tuple[Packing, list[Run]]]:
    """The sweep's phases: its runs grouped by packing (a shape the plan did not see gets
    ``default``), in the order each packing first appears in the grid; grid order within."""
    phases: dict[Packing, list[Run]] = {}
    for r in runs:
        phases.setdefault(tuple(packing.get(shape_key(r.config), default)), []).append(r)
    return list(phases.items())


def phased_wall_time(estimates: Sequence[RunEstimate], packing: dict[str, Packing], default: Packing,
                     start_s: float = 0.0) -> float:
    """The packed sweep's schedule replayed: each phase's wall time, one phase after another,
    each after its workers' start (``start_s``; they start side by side)."""
    by_run = {id(e.run): e for e in estimates}
    return sum(start_s + wall_time([by_run[id(r)] for r in phase], pack[0])
               for pack, phase in groups([e.run for e in estimates], packing, default))


# What a sweep's worker imports before its first run (spawned, so nothing is inherited).
WORKER_IMPORTS = "import vaelab.sweep.executors, vaelab.training, vaelab.evaluation.likelihood, vaelab.runs"


def worker_start_s() -> float:
    """Seconds a fresh worker takes to start on this machine: a new interpreter importing
    torch and vaelab, as the local executor's spawned workers do once per phase (a few
    seconds on 2 cores: nothing to a 20-hour sweep, a sixth of a 20-second one)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", WORKER_IMPORTS], check=True, capture_output=True)
    return time.perf_counter() - t0


PLAN_FILE = "plan.json"


def save_packing(sweep_dir: Path, packing: dict[str, Packing], cores: int) -> Path:
    """``SWEEP/plan.json``: the packing the plan chose per run shape, for the sweep to follow."""
    path = Path(sweep_dir) / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"cores": cores, "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "packing": [{"shape": json.loads(key), "workers": w, "threads": t} for key, (w, t) in packing.items()]}
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    return path


def load_packing(sweep_dir: Path) -> dict[str, Packing]:
    """The packing a plan saved in ``sweep_dir`` ({shape key: (workers, threads)}), or {}
    when there is none, or it was made for a machine with another number of cores."""
    path = Path(sweep_dir) / PLAN_FILE
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if body.get("cores") != usable_cores():
        return {}
    return {json.dumps(p["shape"], sort_keys=True): (int(p["workers"]), int(p["threads"])) for p in body["packing"]}


def usable_cores() -> int:
    return len(set().union(*core_shares(1)))


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def prepare_feature_nets(runs: Sequence[Run], data_dir=None, log=None) -> None:
    """Have the feature network of every dataset the runs use in the cache (trained now
    where it is missing: about a minute on one core for MNIST, once per machine)."""
    seen: set[str] = set()
    for r in runs:
        cfg = r.config
        key = json.dumps([dataclasses.asdict(every_image(cfg.data)), wants_binary(cfg.model)], sort_keys=True,
                         default=str)  # the limits do not change the network: one per dataset
        if key in seen:
            continue
        seen.add(key)
        t0 = time.perf_counter()
        config_feature_net(cfg, data_dir)
        if log:
            log(f"plan: the sample-quality feature network for {cfg.data.dataset} is ready "
                f"({time.perf_counter() - t0:.0f}s; trained once per machine, then cached)")


def plan(runs: Sequence[Run], workers: int | None = None, data_dir=None, out=print,
         sweep_dir: Path | None = None) -> float:
    """Measure each shape under each candidate packing (only ``workers`` x their share of
    the cores when ``workers`` is given), choose, print one line per run and the total,
    save the choice in ``sweep_dir`` (when given); returns the estimated wall seconds."""
    cores = usable_cores()
    gpu = any(on_cuda(r.config.train.device) for r in runs)
    if workers:
        n = max(1, min(workers, len(runs)))
        candidates = [(n, threads_per_worker(n, cores))]
    else:
        candidates = [(w, t) for w, t in packings(cores, gpu) if w <= max(1, len(runs))] or [(1, cores)]
    t0 = time.perf_counter()
    prepare_feature_nets(runs, data_dir, log=out)
    start_s = worker_start_s()
    timings = {pack: measure_shapes(runs, pack, data_dir, log=out) for pack in candidates}
    by_packing = {pack: estimate(runs, timings[pack]) for pack in candidates}
    packing = choose(runs, by_packing)
    chosen = {id(e.run): e for pack, ests in by_packing.items() for e in ests
              if packing[shape_key(e.run.config)] == pack}
    ests = [chosen[id(r)] for r in runs]
    out(f"{'run':14s} {'label':22s} {'packing':>7s} {'epochs':>6s} {'s/epoch':>8s} {'train':>9s} {'eval':>9s} "
        f"{'total':>9s}")
    for e in ests:
        pack = packing[shape_key(e.run.config)]
        t = timings[pack][shape_key(e.run.config)]
        per_epoch = t["steps_epoch"] * t["step_s"]
        out(f"{e.run.id:14s} {e.run.label:22s} {pack[0]:>3d} x {pack[1]:<1d} {e.run.config.train.epochs:6d} "
            f"{per_epoch:8.2f} {_hms(e.train_s):>9s} {_hms(e.eval_s):>9s} {_hms(e.total_s):>9s}")
    if len(candidates) > 1:
        for pack in candidates:
            alone = start_s + wall_time(by_packing[pack], pack[0])
            out(f"  every run as {pack[0]} worker(s) x {pack[1]} thread(s): {_hms(alone)}")
    total = sum(e.total_s for e in ests)
    wall = phased_wall_time(ests, packing, candidates[0], start_s)
    shown = ", ".join(f"{sum(1 for r in runs if packing[shape_key(r.config)] == p)} run(s) as {p[0]} x {p[1]}"
                      for p in candidates if p in packing.values())
    out(f"total: {len(ests)} runs, {_hms(total)} of run time; estimated wall time {_hms(wall)} on this machine "
        f"({shown}; workers x threads; {start_s:.1f}s per phase for its workers to start; "
        f"measured in {time.perf_counter() - t0:.0f}s, "
        f"load average {os.getloadavg()[0]:.1f})")
    if sweep_dir is not None and not workers:
        path = save_packing(sweep_dir, packing, cores)
        out(f"plan: the packing per run shape is in {path}; `vaelab sweep` with the same --out follows it")
    return wall

"""A run shape's training step on core 0 beside other work on core 1: nothing, a copy of
itself, the CNN's training, the CNN's IS evaluation (k = 500).  Do runs side by side slow
each other down, and does the plan's "beside a copy of itself" stand for "beside another
shape"?

    python benchmarks/beside.py iwae      # a label of benchmarks/plan_check.yaml: vae, vae-cnn, iwae

Needs 2 free cores (pause other work).  Prints the median step time per arm, two rounds.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

PLAN_CHECK = Path(__file__).with_name("plan_check.yaml")
BATCHES = 8  # batches per timed epoch
ARMS = [None, "copy", ("train", "vae-cnn"), ("eval", "vae-cnn")]


def setup(core: int) -> None:
    os.sched_setaffinity(0, [core])
    import torch
    torch.set_num_threads(1)


def shape(label: str):
    from vaelab.sweep.experiment import load_experiment
    exp = load_experiment(PLAN_CHECK, "short")
    return next(r.config for r in exp.runs if r.label.startswith(label + " "))


def trainer(cfg, tmp: str):
    from vaelab.runs import config_dataset
    from vaelab.training import Trainer
    ds = config_dataset(cfg, None)
    small = dataclasses.replace(ds, train=ds.train.head(BATCHES * cfg.train.batch_size))
    run = Trainer.open(cfg.replace(**{"train.threads": 0}), Path(tmp) / "run", progress=False)
    return run.build(dataset=small), ds


def victim(label: str, q, go, seconds: float) -> None:
    setup(0)
    with tempfile.TemporaryDirectory() as tmp:
        tr, _ = trainer(shape(label), tmp)
        tr._train_epoch(0)  # warm-up
        go.wait()
        times, epoch, end = [], 1, time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            tr._train_epoch(epoch)
            times.append(time.perf_counter() - t0)
            epoch += 1
    q.put(sorted(times)[len(times) // 2] / BATCHES)


def aggressor(kind: str, label: str, go, stop) -> None:
    setup(1)
    from vaelab.evaluation.likelihood import evaluate_model
    with tempfile.TemporaryDirectory() as tmp:
        tr, ds = trainer(shape(label), tmp)
        tr._train_epoch(0)
        go.wait()
        epoch = 1
        while not stop.is_set():
            if kind == "train":
                tr._train_epoch(epoch)
                epoch += 1
            else:
                evaluate_model(tr.model, ds.test.x[:32], None, k=500, progress=False)


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "iwae"
    ctx = mp.get_context("spawn")
    for rnd in range(2):
        for arm in ARMS:
            other = ("train", label) if arm == "copy" else arm
            q, go, stop = ctx.Queue(), ctx.Event(), ctx.Event()
            procs = [ctx.Process(target=victim, args=(label, q, go, 8.0))]
            if other:
                procs.append(ctx.Process(target=aggressor, args=(*other, go, stop)))
            for p in procs:
                p.start()
            time.sleep(10)  # both built and warm
            go.set()
            step = q.get()
            stop.set()
            for p in procs:
                p.join()
            print(f"round {rnd + 1}: {label} beside {other or 'nothing'}: {1000 * step:.1f} ms per step", flush=True)


if __name__ == "__main__":
    main()

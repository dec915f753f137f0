"""Where one training epoch of a preset goes: its time, then torch.profiler's ops table.

    python benchmarks/profile_epoch.py --model iwae --latent 20 --threads 1 --images 2000

Builds the run as ``vaelab train`` does (the study's fixed binarisation, the preset's own
settings, ``data.train_limit`` = IMAGES), trains one epoch to warm up, times the next one
(printing it scaled to the 50,000-image training set), then profiles a third and prints
its ops by self CPU time (BENCHMARKS.md sections 2 and 5 quote these tables).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.profiler import profile

from vaelab import api
from vaelab.allocator import tune_malloc
from vaelab.cli import _set_pair
from vaelab.denormals import flush_denormals
from vaelab.training.loop import Trainer

TRAIN_IMAGES = 50_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="vae-tuned")
    ap.add_argument("--latent", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--images", type=int, default=TRAIN_IMAGES, help="training images per epoch")
    ap.add_argument("--rows", type=int, default=25, help="ops shown")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--set", dest="sets", action="append", type=_set_pair, default=[], metavar="KEY=VALUE",
                    help="another config key, e.g. train.precision=bfloat16 (repeatable)")
    args = ap.parse_args()

    flush_denormals()
    cfg = api.make_config(args.model, overrides={
        "model.latent": args.latent, "data.binarize": "seed-paper", "train.threads": args.threads,
        "train.epochs": 1, "data.train_limit": args.images, **dict(args.sets)})
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer.open(cfg, f"{tmp}/run", progress=False).build(args.data_dir)
        tune_malloc("train")
        torch.set_num_threads(args.threads)
        tr._train_epoch(0)  # warm-up
        t0 = time.perf_counter()
        tr._train_epoch(1)
        dt = time.perf_counter() - t0
        steps = -(-args.images // cfg.train.batch_size)
        print(f"{args.model} N_z = {args.latent}, {args.threads} thread(s): {dt:.2f} s for {args.images} images, "
              f"{1000 * dt / steps:.1f} ms a step, {dt * TRAIN_IMAGES / args.images:.1f} s for 50,000")
        with profile() as prof:
            tr._train_epoch(2)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()

"""train.precision: a training epoch in float32 against bfloat16, per Table 1 run shape.

    python benchmarks/precision.py                       # the four shapes, 1 thread, 3 rounds
    python benchmarks/precision.py --models iwae --images 2000 --rounds 5

For each preset (N_z = 20, the study's fixed binarisation, ``data.train_limit`` = IMAGES)
two Trainers are built as ``vaelab train`` builds them, one per precision (float32 takes
the default step: the closed step where the model has one), each warmed up by one epoch;
then their epochs alternate, round by round, so that a machine that slows down slows both.
Printed first: the machine, whether it has bfloat16 products in hardware, and the GEMM rate
in each precision (a 2048 x 2048 product and the IWAE step's largest, 5000 x 200 x 784);
then per shape the median time a step in each precision and their ratio.  BENCHMARKS.md section 9 quotes it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from vaelab import api
from vaelab.allocator import tune_malloc
from vaelab.denormals import flush_denormals
from vaelab.training.loop import Trainer
from vaelab.training.precision import native_bf16

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import machine  # noqa: E402

MODELS = ("vae-tuned", "vampprior", "vae-cnn", "iwae")


def trainer(model: str, precision: str, images: int, threads: int, tmp: str, data_dir) -> Trainer:
    cfg = api.make_config(model, overrides={
        "model.latent": 20, "data.binarize": "seed-paper", "train.threads": threads, "train.epochs": 1,
        "data.train_limit": images, "train.precision": precision})
    tr = Trainer.open(cfg, f"{tmp}/{model}-{precision}", progress=False).build(data_dir)
    torch.set_num_threads(threads)
    tr._train_epoch(0)  # warm-up
    return tr


def gemm_rate(m: int, k: int, n: int, dtype: torch.dtype, calls: int = 20) -> float:
    """GFLOP/s of an (m x k) @ (k x n) product in ``dtype``, the best of three batches of calls."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            a @ b
        best = min(best, (time.perf_counter() - t0) / calls)
    return 2 * m * k * n / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--images", type=int, default=3000, help="training images per epoch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    flush_denormals()
    tune_malloc("train")
    mach = machine()
    print(f"machine: {mach['cpu']}, {mach['cores']} cores, torch {mach['torch']}; bfloat16 products in hardware: "
          f"{'yes' if native_bf16(torch.device('cpu')) else 'no (emulated)'}; {args.threads} thread(s), "
          f"{args.images} images an epoch, {args.rounds} rounds")
    torch.set_num_threads(args.threads)
    for shape in ((2048, 2048, 2048), (5000, 200, 784)):
        f32, b16 = (gemm_rate(*shape, dtype) for dtype in (torch.float32, torch.bfloat16))
        print(f"GEMM {' x '.join(map(str, shape))}: float32 {f32:.0f} GFLOP/s, bfloat16 {b16:.0f} GFLOP/s "
              f"({b16 / f32:.1f}x)")
    print(f"{'model':12s} {'float32 ms/step':>16s} {'bfloat16 ms/step':>17s} {'bf16/fp32':>10s}  float32 step")
    steps = -(-args.images // 100)
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            trs = {p: trainer(model, p, args.images, args.threads, tmp, args.data_dir) for p in ("float32", "bfloat16")}
            times: dict[str, list[float]] = {p: [] for p in trs}
            for r in range(args.rounds):
                for p, tr in trs.items():
                    torch.set_num_threads(args.threads)
                    t0 = time.perf_counter()
                    tr._train_epoch(r + 1)
                    times[p].append(1e3 * (time.perf_counter() - t0) / steps)
            a, b = (statistics.median(times[p]) for p in ("float32", "bfloat16"))
            ratios = [y / x for x, y in zip(times["float32"], times["bfloat16"])]
            print(f"{model:12s} {a:16.1f} {b:17.1f} {statistics.median(ratios):10.3f}  {trs['float32'].step_kind}",
                  flush=True)


if __name__ == "__main__":
    main()

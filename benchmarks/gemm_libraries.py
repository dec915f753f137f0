"""The two float32 GEMM libraries in PyTorch's CPU wheel, shape by shape (BENCHMARKS.md
section 3, "Two GEMM libraries").

    python benchmarks/gemm_libraries.py [--threads 1]

For each product of Table 1's nets, ``y = x W^T`` (x M x K, W N x K) and its two backward
products (``g W`` and ``g^T x``), GFLOP/s through torch's own product (MKL on x86) and
through oneDNN (``vaelab.nets.gemm``), the best of 5 x 20 calls each, in one process.
Then the 2048^3 ceiling the same way.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from gemm import products_by_library  # benchmarks/gemm.py
from vaelab.nets import gemm

SHAPES = [  # (M, K, N, whose)
    (5000, 100, 200, "IWAE"), (5000, 200, 200, "IWAE"), (5000, 200, 784, "IWAE"), (5000, 100, 100, "IWAE"),
    (5000, 20, 500, "IS evaluation"), (5000, 500, 784, "IS evaluation"),
    (100, 784, 500, "MLP step"), (100, 500, 784, "MLP step"), (100, 500, 40, "MLP step"),
]


def _best(f, reps: int = 20) -> float:
    f()
    f()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if gemm._onednn_op() is None:
        print("this torch build has no oneDNN linear: nothing to compare", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    print(f"{args.threads} thread(s); GFLOP/s, torch's product (MKL on x86) / oneDNN's")
    print(f"{'M x K x N':>18s}  {'forward':>15s}  {'d x = g W':>15s}  {'d W = g^T x':>15s}")
    for m, k, n, whose in SHAPES:
        x, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
        b, gy = torch.randn(n, generator=g), torch.randn(m, n, generator=g)
        pairs = [(lambda: torch.addmm(b, x, w.t()), lambda: gemm._dnn(x, w, b)),
                 (lambda: gy.mm(w), lambda: gemm._dnn(gy, w.t(), None)),
                 (lambda: gy.t().mm(x), lambda: gemm._dnn(gy.t(), x.t(), None))]
        flops = 2.0 * m * k * n
        cells = [f"{flops / _best(t) / 1e9:6.1f} / {flops / _best(d) / 1e9:6.1f}" for t, d in pairs]
        print(f"{m:>5d} x {k:>4d} x {n:>4d}  " + "  ".join(cells) + f"  ({whose})")
    a, c = torch.randn(2048, 2048, generator=g), torch.randn(2048, 2048, generator=g)
    flops = 2.0 * 2048 ** 3
    ceiling = {name: flops / _best(product, 5) / 1e9 for name, product in products_by_library(a, c).items()}
    print(f"2048^3: {ceiling['torch']:.1f} / {ceiling['onednn']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

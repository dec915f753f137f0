"""The GEMM ceiling as a whole command: N float32 2048 x 2048 products on T threads.

    python benchmarks/gemm.py 20 --threads 1 [--library torch|onednn|fastest]

``--library``: torch's own product (MKL on x86), oneDNN's (the library vaelab's nets use on
AMD CPUs with AVX-512: vaelab/nets/gemm.py), or (default) the faster of the two here,
chosen by one timed product each after the warm-up.

Timed from outside at two values of N (rounds.py: T(2N) - T(N)), it gives the ceiling
without the start-up, in the same rounds as the workloads it is compared with: 2 * 2048^3
* N FLOPs in that difference.  Two copies side by side give the ceiling of a core when its
neighbour is busy too (the packing of a 2-worker sweep).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from vaelab.nets import gemm

SIDE = 2048


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("products", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--library", choices=("fastest", "torch", "onednn"), default="fastest")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(SIDE, SIDE, generator=g), torch.randn(SIDE, SIDE, generator=g)
    products = products_by_library(a, b)
    if args.library != "fastest":
        product = products[args.library]
    else:
        product = min(products.values(), key=_seconds)
    product()  # warm-up: the library's buffers and kernel choice
    for _ in range(args.products):
        product()
    return 0


def products_by_library(a: torch.Tensor, b: torch.Tensor) -> dict:
    """One float32 product a @ b^T per GEMM library this torch has for a's device
    (``torch``; ``onednn`` on the CPU)."""
    out = a.new_empty(a.shape[0], b.shape[0])
    found = {"torch": lambda: torch.mm(a, b.t(), out=out)}
    if a.device.type == "cpu" and gemm._onednn_op() is not None:
        found["onednn"] = lambda: gemm._dnn(a, b, None)
    return found


def _seconds(product) -> float:
    product()
    t0 = time.perf_counter()
    product()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())

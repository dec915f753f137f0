"""The GEMM ceiling as a whole command: N float32 2048 x 2048 products on T threads.

    python benchmarks/gemm.py 20 --threads 1

Timed from outside at two values of N (rounds.py: T(2N) - T(N)), it gives the ceiling
without the start-up, in the same rounds as the workloads it is compared with: 2 * 2048^3
* N FLOPs in that difference.  Two copies side by side give the ceiling of a core when its
neighbour is busy too (the packing of a 2-worker sweep).
"""

from __future__ import annotations

import argparse
import sys

import torch

SIDE = 2048


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("products", type=int)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(SIDE, SIDE, generator=g), torch.randn(SIDE, SIDE, generator=g)
    out = torch.empty(SIDE, SIDE)
    torch.mm(a, b, out=out)  # warm-up: MKL's buffers and kernel choice
    for _ in range(args.products):
        torch.mm(a, b, out=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

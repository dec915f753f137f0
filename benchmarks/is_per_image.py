"""Milliseconds per image of the IS evaluation (k = 5000) of a trained run (unconditional), in-process.

    python benchmarks/is_per_image.py RUN [--images 150] [--threads N] [--rows R [R ...]]
    VAELAB_MALLOC=keep python benchmarks/is_per_image.py RUN   # or bounded (the default), glibc

Random binary images (the time does not depend on which images); one warm-up batch first.
Prints the time per image and the mean log-likelihood, which must not differ between arms.
"""

from __future__ import annotations

import argparse
import time

import torch

import vaelab
from vaelab.evaluation.likelihood import evaluate_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--rows", type=int, nargs="+", default=[0],
                    help="rows (images x samples) per decoder call, one arm each, interleaved over --rounds "
                         "(0: the run's default)")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = vaelab.load(args.run).eval()
    torch.manual_seed(0)
    d = 1
    for n in model.info.image_shape:
        d *= n
    x = (torch.rand(args.images + 3, d) < 0.3).float()
    for rnd in range(args.rounds):
        for rows in args.rows:
            kw = {"rows_per_chunk": rows} if rows else {}
            evaluate_model(model, x[:3], None, args.k, progress=False, **kw)
            t = time.perf_counter()
            r = evaluate_model(model, x[3:], None, args.k, progress=False, **kw)
            dt = time.perf_counter() - t
            print(f"round {rnd + 1} rows {rows or 'default'}: {1000 * dt / args.images:.1f} ms per image "
                  f"({torch.get_num_threads()} threads, k = {args.k}); log-likelihood {r.log_likelihood:.6f}",
                  flush=True)


if __name__ == "__main__":
    main()

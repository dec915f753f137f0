"""How far a trained model's test numbers move from float rounding alone (BENCHMARKS.md section 8).

    python benchmarks/rounding_spread.py --out DIR [--seeds 1 2 3 4 5] [--epochs 100] [--k 5000] [--limit 0]

The same run (``vae-tuned``, N_z = 20, the study's fixed binarisation) is trained twice per
seed, once on two threads and once on one.  Where the two counts give other bits (they do on
a 2-core Intel Xeon with AMX, whose GEMMs round otherwise on two threads:
``training/threads.py``), the two trainings differ by rounding only: the same data, batches,
noise and arithmetic.  Each is then evaluated (IS k = 5000, all 10,000 test images, one
thread, the same seed) and the script prints, per seed, the two IS log-likelihoods and their
difference, beside the spread between seeds.  A speed lever that changes rounding (a fused
kernel, another GEMM) moves a fixed-seed run by about this much, whatever it does to the
model's real quality.

Every part is a whole ``vaelab`` command, run one after another (the two-thread trainings
alone on the machine, the rest two at a time, one thread each); a finished part (its
``done`` mark, its JSON) is kept, so the script resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _vaelab(args: list[str], threads: int, log: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with log.open("w") as f:
        subprocess.run([sys.executable, "-m", "vaelab", *args], env=env, stdout=f, stderr=subprocess.STDOUT,
                       check=True)


def train(out: Path, name: str, seed: int, threads: int, epochs: int) -> Path:
    run = out / name
    if not (run / "done").exists():
        _vaelab(["train", "--model", "vae-tuned", "--latent", "20", "--binarize", "seed-paper", "--epochs",
                 str(epochs), "--seed", str(seed), "--threads", str(threads), "--quiet", "--out", str(run)],
                threads, out / f"{name}.log")
        (run / "done").touch()
    return run


def evaluate(out: Path, run: Path, k: int, limit: int) -> float:
    result = out / f"{run.name}.eval.json"
    if not result.exists():
        args = ["eval", str(run), "--k", str(k), "--json"] + (["--limit", str(limit)] if limit else [])
        tmp = result.with_suffix(".tmp")
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with tmp.open("w") as f:
            subprocess.run([sys.executable, "-m", "vaelab", *args], env=env, stdout=f, check=True)
        tmp.rename(result)
    return float(json.loads(result.read_text())["log_likelihood"])


def same_trajectory(a: Path, b: Path) -> bool:
    """Whether two runs' metrics agree at every epoch (the thread counts gave the same bits)."""
    def rows(run: Path) -> list[tuple]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [(r["train_elbo"], r["valid_elbo"]) for r in map(json.loads, lines)]
    return rows(a) == rows(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="where the runs and their evaluations are kept")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--limit", type=int, default=0, help="test images (0: all 10,000)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    two = {s: train(args.out, f"t2-s{s}", s, 2, args.epochs) for s in args.seeds}  # each alone: both cores
    with ThreadPoolExecutor(2) as pool:  # then two one-thread commands at a time
        one = dict(zip(args.seeds, pool.map(lambda s: train(args.out, f"t1-s{s}", s, 1, args.epochs), args.seeds)))
        runs = [two[s] for s in args.seeds] + [one[s] for s in args.seeds]
        ll = dict(zip((r.name for r in runs), pool.map(lambda r: evaluate(args.out, r, args.k, args.limit), runs)))

    print(f"vae-tuned N_z = 20, {args.epochs} epochs; IS log p(x), k = {args.k}, "
          f"{args.limit or 'all'} test images, evaluated on one thread")
    print("| seed | trained on 2 threads | on 1 thread | difference |\n| ---: | ---: | ---: | ---: |")
    diffs = []
    same = [s for s in args.seeds if same_trajectory(two[s], one[s])]
    if same:
        print(f"seeds {same}: one and two threads gave the same bits on this machine (no rounding to measure)")
    for s in args.seeds:
        a, b = ll[f"t2-s{s}"], ll[f"t1-s{s}"]
        diffs.append(a - b)
        print(f"| {s} | {a:.3f} | {b:.3f} | {a - b:+.3f} |")
    mean_abs = statistics.mean(abs(d) for d in diffs)
    print(f"rounding alone: mean |difference| {mean_abs:.3f} nats over {len(diffs)} seeds")
    if len(args.seeds) > 1:
        for v in ("t2", "t1"):
            vals = [ll[f"{v}-s{s}"] for s in args.seeds]
            print(f"between seeds ({v}): standard deviation {statistics.stdev(vals):.3f} nats, "
                  f"range {max(vals) - min(vals):.3f}")


if __name__ == "__main__":
    main()

"""The dense-algebra work of an experiment at one effort, counted: the FLOP floor of
BENCHMARKS.md ("Table 1 on 2 cores").

    python benchmarks/table1_flops.py                 # table1 at the paper effort
    python benchmarks/table1_flops.py --experiment table1 --effort quick

For every run of the grid, forward hooks (flops.py) count one real training step (batch
and samples as configured, forward and backward), one validation chunk (k = 1) and the IS
evaluation of one test image at a small k (then scaled: the decoder's rows grow linearly
with k, the encoder runs once per chunk either way); the selection stage's short runs
(RunConfig.select) are counted as what they are, epochs of training and validation.  The
totals are grouped by the kind of run.  No data is read: the counts depend on the shapes
only.  Dividing by the GEMM ceiling of the cores gives the time the work takes at 100% of
it, the floor every measured figure is compared with.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flops import count_flops  # noqa: E402

TRAIN, VALID, TEST = 50_000, 10_000, 10_000  # MNIST's splits as vaelab uses them
COUNT_K = 50  # samples per image when counting the IS evaluation (scaled to eval.k)


def kind(cfg) -> str:
    """The group a run's cost belongs to in the report."""
    if cfg.model.arch == "conv":
        return "CNN"
    if cfg.model.kind == "hierarchical":
        return "IWAE k=50" if cfg.objective.k > 1 else "2-layer VAE"
    return "VampPrior" if cfg.model.prior == "vamp" else "MLP VAE"


def counts(cfg) -> dict[str, float]:
    """FLOPs of one training step, one validation pass and one IS evaluation of the test set."""
    from vaelab.models import DataInfo, build_model
    from vaelab.objectives import build_objective

    info = DataInfo((1, 28, 28), True, num_classes=10, pixel_mean=None)
    torch.manual_seed(0)
    model = build_model(cfg.model, info)
    objective = build_objective(cfg.objective)
    bs = cfg.train.batch_size
    x = (torch.rand(bs, 784) > 0.5).float()
    y = torch.randint(0, 10, (bs,))
    with count_flops(model) as step:
        (-objective(model, x, y)["objective"].mean()).backward()
    model.eval()
    with torch.no_grad():
        with count_flops(model) as valid:
            model.log_weights(x[:100], 1, y[:100])
        with count_flops(model) as small:
            model.log_weights(x[:1], COUNT_K, y[:1])
        with count_flops(model) as once:
            model.log_weights(x[:1], 1, y[:1])
    # per image: encoder once (the k = 1 count's share that does not grow with k) plus the
    # k-row part: (small - once) covers COUNT_K - 1 extra samples
    per_sample = (small.total - once.total) / (COUNT_K - 1)
    per_image = once.total - per_sample + cfg.eval.k * per_sample
    return {"step": step.total, "valid": valid.total / 100 * VALID, "eval": per_image * TEST}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="table1")
    ap.add_argument("--effort", default="paper")
    args = ap.parse_args(argv)
    from vaelab.sweep.experiment import load_experiment

    runs = load_experiment(args.experiment, args.effort).runs
    train, evals, epochs, n = defaultdict(float), defaultdict(float), defaultdict(int), defaultdict(int)
    for r in runs:
        cfg = r.config
        c = counts(cfg)
        steps = math.ceil((cfg.data.train_limit or TRAIN) / cfg.train.batch_size)
        e = cfg.train.epochs + (len(cfg.select.values) * cfg.select.epochs if cfg.select else 0)
        g = kind(cfg)
        train[g] += e * (steps * c["step"] + c["valid"] * min(1.0, (cfg.data.test_limit or VALID) / VALID))
        evals[g] += c["eval"] * min(1.0, (cfg.data.test_limit or TEST) / TEST)
        epochs[g] += e
        n[g] += 1
    print(f"{args.experiment} at effort {args.effort}: {len(runs)} runs (hook-counted GEMM/conv FLOPs, "
          f"multiply-add = 2)")
    print(f"{'kind':14s} {'runs':>4s} {'epochs':>6s} {'training':>10s} {'IS eval':>10s}")
    for g in sorted(train, key=lambda g: -(train[g] + evals[g])):
        print(f"{g:14s} {n[g]:4d} {epochs[g]:6d} {train[g]:10.3e} {evals[g]:10.3e}")
    total = sum(train.values()) + sum(evals.values())
    print(f"{'total':14s} {sum(n.values()):4d} {sum(epochs.values()):6d} {sum(train.values()):10.3e} "
          f"{sum(evals.values()):10.3e}   all: {total:.3e} FLOPs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

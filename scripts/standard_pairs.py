"""Burda et al.'s four cells against training budget: the IS log-likelihood of each
`standard` run at the checkpoints kept along its training (``train.keep_epochs``, or
``--kept-dir``), all on the same test images with the same k, and the paired differences
that decide the ranking, with their standard errors.

    python scripts/standard_pairs.py SWEEP_DIR OUT_DIR [--k 1000] [--limit 2000]

Writes OUT_DIR/budget.csv (one line per run and epoch), OUT_DIR/pairs.csv (the paired
differences at each epoch) and OUT_DIR/budget.png; the per-image estimates are cached in
OUT_DIR/per_image/ so a rerun only evaluates what is new.  Per-image estimates are paired: the
same images, the same k; the standard error of a difference is that of the per-image
differences, much smaller than either cell's own (the images' spread cancels).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from vaelab.data import load_dataset
from vaelab.evaluation.likelihood import importance_sampled

from vaelab.runs import checkpoint_epoch, load_run

PUBLISHED = {("vae", "vae"): -86.76, ("iwae", "vae"): -84.78, ("vae", "hierarchical"): -85.33,
             ("iwae", "hierarchical"): -82.90}  # Burda et al. (2015), Table 1, k = 5000, -NLL
LABEL = {("vae", "vae"): "VAE 1 layer", ("iwae", "vae"): "IWAE k=50, 1 layer",
         ("vae", "hierarchical"): "VAE 2 layers", ("iwae", "hierarchical"): "IWAE k=50, 2 layers"}
PAIRS = [(("iwae", "hierarchical"), ("iwae", "vae")), (("iwae", "hierarchical"), ("vae", "hierarchical")),
         (("iwae", "vae"), ("vae", "vae")), (("vae", "hierarchical"), ("vae", "vae"))]


def per_image(run: Path, sidecar: Path, x: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """IS log p(x) per image of the checkpoint ``sidecar`` of ``run``."""
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp)
        shutil.copy(run / "config.json", one / "config.json")
        (one / "checkpoints").mkdir()
        for f in (sidecar, sidecar.with_suffix(".safetensors")):
            (one / "checkpoints" / f.name).symlink_to(f.resolve())
        model = load_run(one, "cpu", checkpoint_epoch(sidecar)).model
    out = []
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for i in range(0, x.shape[0], 100):
            out.append(importance_sampled(model, x[i:i + 100], None, k)["log_likelihood"])
    return torch.cat(out).double()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep")
    ap.add_argument("out")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--kept-dir", default=None, help="more checkpoints, in KEPT_DIR/<run id>/epoch-*.json")
    ap.add_argument("--epochs", type=lambda s: [int(e) for e in s.split(",")], default=None,
                    help="only these epochs, e.g. 1,4,13,40")
    args = ap.parse_args()
    sweep, out = Path(args.sweep), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, values = [], {}
    x = None
    for run in sorted((sweep / "runs").iterdir()):
        cfg = json.loads((run / "config.json").read_text())["config"]
        cell = (cfg["name"], cfg["model"]["kind"])
        if x is None:
            from vaelab.config import RunConfig
            x = load_dataset(RunConfig.from_dict(cfg).data).test.x[:args.limit]
        kept = {}  # epoch -> sidecar: the run's own checkpoints, then any kept elsewhere
        for where in (run / "checkpoints", Path(args.kept_dir) / run.name if args.kept_dir else None):
            if where is not None and where.is_dir():
                kept.update({checkpoint_epoch(p): p for p in where.glob("epoch-*.json")})
        for epoch, sidecar in sorted(kept.items()):
            if epoch == 0 or (args.epochs and epoch not in args.epochs):
                continue
            cache = out / "per_image" / f"{run.name}-e{epoch}-k{args.k}-n{args.limit}.pt"
            if cache.exists():  # a rerun (more epochs kept since) reuses what it evaluated
                ll = torch.load(cache)
            else:
                ll = per_image(run, sidecar, x, args.k, args.seed)
                cache.parent.mkdir(parents=True, exist_ok=True)
                torch.save(ll, cache)
            values[(cell, epoch)] = ll
            sem = float(ll.std() / math.sqrt(ll.numel()))
            rows.append({"run_id": run.name, "objective": cell[0], "layers": 1 if cell[1] == "vae" else 2,
                         "epoch": epoch, "k": args.k, "test_images": ll.numel(),
                         "log_likelihood": f"{float(ll.mean()):.3f}", "sem": f"{sem:.3f}",
                         "burda_3280_epochs": PUBLISHED[cell]})
            print(f"{LABEL[cell]:22s} epoch {epoch:5d}: {float(ll.mean()):8.2f} +- {sem:.2f}", flush=True)
    with open(out / "budget.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    pairs = []
    for epoch in sorted({e for _, e in values}):
        for a, b in PAIRS:
            if (a, epoch) in values and (b, epoch) in values:
                d = values[(a, epoch)] - values[(b, epoch)]
                pairs.append({"epoch": epoch, "better": LABEL[a], "than": LABEL[b],
                              "difference": f"{float(d.mean()):.3f}",
                              "sem": f"{float(d.std() / math.sqrt(d.numel())):.3f}"})
    with open(out / "pairs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["epoch", "better", "than", "difference", "sem"])
        w.writeheader()
        w.writerows(pairs)
    for p in pairs:
        print(f"epoch {p['epoch']:5d}: {p['better']} - {p['than']} = {p['difference']} +- {p['sem']}")
    plot(rows, out / "budget.png", args)
    return 0


def plot(rows, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {("vae", 1): "tab:blue", ("iwae", 1): "tab:orange", ("vae", 2): "tab:green", ("iwae", 2): "tab:red"}
    names = {("vae", 1): "VAE 1 layer", ("iwae", 1): "IWAE k=50, 1 layer", ("vae", 2): "VAE 2 layers",
             ("iwae", 2): "IWAE k=50, 2 layers"}
    for key, colour in colours.items():
        mine = sorted((r["epoch"], float(r["log_likelihood"]), float(r["sem"])) for r in rows
                      if (r["objective"], r["layers"]) == key)
        if not mine:
            continue
        e, ll, se = zip(*mine)
        ax.errorbar(e, ll, yerr=se, color=colour, marker="o", ms=4, capsize=2, label=f"{names[key]} (vaelab)")
        pub = mine and PUBLISHED[(key[0], "vae" if key[1] == 1 else "hierarchical")]
        ax.axhline(pub, color=colour, ls=":", lw=1)
        ax.annotate(f"{pub:.2f}", (3400, pub), color=colour, fontsize=7, ha="left",
                    va="bottom" if pub > -85 else "top")  # -84.78 and -85.33 would overlap
    ax.axvline(3280, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlim(0.8, 9000)
    ax.set_xlabel("epochs of Burda et al.'s schedule (log scale); their models end at 3280 (grey line)")
    ax.set_ylabel(f"test log p(x), nats (IS k={args.k}, first {args.limit} test images)")
    ax.set_title("Burda et al.'s four cells against budget; dotted: their published values")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())

"""Frey Faces at the study's protocol, the parts `vaelab report` does not draw: the IS
log-likelihood of each run against k (has it converged?) and the learning curves on
Kingma & Welling (2014) Figure 2's axes (training samples evaluated, log scale).

    python scripts/frey_k_curve.py SWEEP_DIR OUT_DIR [--ks 1,10,100,1000,5000,20000,50000]

Each k is one `vaelab.evaluation.run.evaluate_run(run, k)` on all 196 test faces; the result
is also kept in the run directory as ``eval-k{K}.json`` (the run's own ``eval.json`` is not
touched).  Writes OUT_DIR/k_curve.csv, OUT_DIR/k_curve.png and OUT_DIR/kw_figure2.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from vaelab.evaluation.run import evaluate_run
from vaelab.runs import RunDir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep")
    ap.add_argument("out")
    ap.add_argument("--ks", type=lambda s: [int(k) for k in s.split(",")], default=[1, 10, 100, 1000, 5000, 20000, 50000])
    args = ap.parse_args()
    sweep, out = Path(args.sweep), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for run in sorted((sweep / "runs").iterdir()):
        cfg = json.loads((run / "config.json").read_text())["config"]
        latent = cfg["model"]["latent"]
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        curves[latent] = metrics
        rd = RunDir(run)
        own = json.loads(rd.eval_file.read_text()) if rd.eval_file.exists() else None  # the run's own protocol
        for k in args.ks:
            cached = rd.other_eval_file(k)
            if own is not None and own["k"] == k:
                res = own
            elif cached.exists():
                res = json.loads(cached.read_text())
            else:
                res = evaluate_run(run, k, progress=False, write=True)
            rows.append({"latent": latent, "run_id": run.name, "epochs": res["epoch"], "k": k,
                         "log_likelihood": f"{res['log_likelihood']:.3f}",
                         "sem": f"{res['log_likelihood_sem']:.3f}", "elbo": f"{res['elbo']:.3f}",
                         "test_images": res["n"], "seconds": res["seconds"]})
            print(f"N_z={latent:3d} k={k:6d}: log p(x) {res['log_likelihood']:9.2f} +- "
                  f"{res['log_likelihood_sem']:.2f}  ELBO {res['elbo']:9.2f}  ({res['seconds']:.0f} s)", flush=True)
    with open(out / "k_curve.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot_k(rows, out / "k_curve.png")
    plot_kw(curves, out / "kw_figure2.png", train_images=1592)
    return 0


def plot_k(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for latent in sorted({r["latent"] for r in rows}):
        mine = [(r["k"], float(r["log_likelihood"])) for r in rows if r["latent"] == latent]
        ks, ll = zip(*sorted(mine))
        ax.plot(ks, ll, marker="o", ms=4, label=f"N_z = {latent}")
    ax.set_xscale("log")
    ax.set_xlabel("importance samples k per test face (log scale)")
    ax.set_ylabel("IS estimate of log p(x), nats per face")
    ax.set_title("Frey Faces, 196 test faces: the IS estimate against k (k = 1 is the ELBO)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_kw(curves, path: Path, train_images: int) -> None:
    """Kingma & Welling's Figure 2 axes: ELBO per face against training samples evaluated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for latent, metrics in sorted(curves.items()):
        seen = [m["epoch"] * train_images for m in metrics]
        line, = ax.plot(seen, [m["valid_elbo"] for m in metrics], lw=1.2, label=f"N_z = {latent}, validation")
        ax.plot(seen, [m["train_elbo"] for m in metrics], lw=0.8, ls="--", color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlim(1e5, 1e8)
    ax.set_ylim(0, 1600)
    ax.set_xlabel("training samples evaluated (log scale, as Kingma & Welling's Figure 2)")
    ax.set_ylabel("ELBO per face, nats")
    ax.set_title("Frey Faces: dashed = training, solid = 177 held-out training faces")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())

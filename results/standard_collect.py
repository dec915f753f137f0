"""Collect Burda et al.'s four `standard` cells, trained on past the `quick` effort's 40
epochs, into results/: each evaluation (`vaelab eval RUN --k 5000 --all-test --json`) under
a name that says its cell and epoch, one table of them, and each run's learning curve.

    python results/standard_collect.py OUT --run RUN_DIR ... --eval EVAL_JSON ...

RUN_DIR holds a run's config.json and metrics.jsonl (the whole curve, epoch 1 on); each
EVAL_JSON is what `vaelab eval --json` printed for one of those runs, named RUN_ID-eEPOCH.json
(as results/gpu_burda.sh names them).  Writes OUT/evals/CELL-eEPOCH.json, OUT/table.csv, OUT/curves.csv and
OUT/curves.png (the training objective and the validation ELBO against epochs, log scale,
with the stage boundaries of Burda et al.'s schedule).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

from standard_budget import LABEL, PUBLISHED  # results/standard_budget.py: keyed by (objective, model.kind)

# The cells in Burda et al.'s order, each with the name its files take ("iwae-2layer").
CELLS = {cell: f"{cell[0]}-{1 if cell[1] == 'vae' else 2}layer"
         for cell in [("vae", "vae"), ("vae", "hierarchical"), ("iwae", "vae"), ("iwae", "hierarchical")]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--run", action="append", default=[], help="a run directory (repeatable)")
    ap.add_argument("--eval", action="append", default=[], help="an eval JSON (repeatable)")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "evals").mkdir(parents=True, exist_ok=True)
    cells = {}  # run id -> (objective, model.kind)
    curves = []
    for run in map(Path, args.run):
        cfg = json.loads((run / "config.json").read_text())["config"]
        cells[run.name] = (cfg["name"], cfg["model"]["kind"])
        for line in (run / "metrics.jsonl").read_text().splitlines():
            m = json.loads(line)
            curves.append({"cell": CELLS[cells[run.name]], "run_id": run.name, "epoch": m["epoch"],
                           "train_objective": f"{m['train_objective']:.4f}",
                           "train_elbo": f"{m['train_elbo']:.4f}", "valid_elbo": f"{m['valid_elbo']:.4f}",
                           "lr": f"{m['lr']:.6g}", "seconds": m.get("seconds", "")})
    table = []
    for path in map(Path, args.eval):
        ev = json.loads(path.read_text())
        cell = cells[path.name.split("-e")[0]]
        shutil.copy(path, out / "evals" / f"{CELLS[cell]}-e{ev['epoch']}.json")
        table.append({"cell": CELLS[cell], "epoch": ev["epoch"], "k": ev["k"], "test_images": ev["n"],
                      "log_likelihood": f"{ev['log_likelihood']:.3f}", "sem": f"{ev['log_likelihood_sem']:.3f}",
                      "elbo": f"{ev['elbo']:.3f}", "active_units": ev["active_units"],
                      "burda_3280_epochs": PUBLISHED[cell],
                      "gap": f"{ev['log_likelihood'] - PUBLISHED[cell]:.3f}",
                      "test_sha256": ev["test_sha256"], "torch": ev["torch"], "seconds": ev["seconds"]})
    table.sort(key=lambda r: (list(CELLS.values()).index(r["cell"]), r["epoch"]))
    label = {name: LABEL[cell] for cell, name in CELLS.items()}
    for name, rows in (("table.csv", table), ("curves.csv", curves)):
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    for r in table:
        print(f"{label[r['cell']]:22s} epoch {r['epoch']:4d}: IS {r['log_likelihood']} +- {r['sem']} "
              f"(k={r['k']}, {r['test_images']} images), Burda {r['burda_3280_epochs']}, gap {r['gap']}")
    plot(curves, label, out / "curves.png")
    return 0


def plot(curves, label: dict[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    colours = {"vae-1layer": "tab:blue", "iwae-1layer": "tab:orange", "vae-2layer": "tab:green",
               "iwae-2layer": "tab:red"}
    panels = (("train_objective", "training objective (ELBO for the VAEs, IWAE bound k=50)"),
              ("valid_elbo", "validation ELBO (k = 1), 10,000 images"))
    for ax, (key, title) in zip(axes, panels):
        for cell, colour in colours.items():
            pts = sorted((r["epoch"], float(r[key])) for r in curves if r["cell"] == cell)
            if pts:
                ax.plot(*zip(*pts), color=colour, lw=1.2, label=label[cell])
        for b in (1, 4, 13, 40):  # Burda et al.'s stages: 3^i epochs at 1e-3 * 10^(-i/7)
            ax.axvline(b + 0.5, color="grey", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_ylim(-125, -85)
        ax.set_xlabel("epoch (log scale; dotted: the learning rate steps down)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("nats per image")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle("Burda et al.'s four cells: their bounds against epochs (1 to 121 of 3280)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())

"""A long run's progress toward its schedule: its validation ELBO at every epoch, the
importance-sampled log p(x) measured at some checkpoints, a reference value, and where a
stage-by-stage extrapolation of the validation curve puts the end of the schedule.

    python scripts/run_progress.py RUN OUT --eval EPOCH=EVAL.json ... [--reference -86.76]

RUN is a run directory (its ``metrics.jsonl`` and ``config.json``); each ``--eval`` names
the JSON that ``vaelab eval RUN --epoch EPOCH --json`` printed.  Writes ``OUT/curve.csv``
(epoch, validation ELBO), ``OUT/progress.json`` (the measured points and the projection)
and ``OUT/progress.png``.

The projection assumes what Burda et al.'s schedule makes likely but nothing guarantees:
stage i runs 3^i epochs at a learning rate 10^(-1/7) times the last, and the validation
ELBO's gain over each stage is the previous stage's gain times the ratio of the last two
complete stages' gains; the gap between the IS log p(x) and the validation ELBO stays at
its last measured value.  It is a guide to how far the run is from its end, not a result.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from itertools import accumulate, pairwise
from pathlib import Path

from vaelab.training.optim import burda_stages


def stage_ends(epochs: int) -> list[int]:
    """Epochs at which Burda et al.'s stages end (1, 4, 13, 40, ...) up to ``epochs``."""
    ends = [end for end in accumulate(burda_stages()) if end < epochs]
    return [*ends, epochs]


def project(valid: dict[int, float], schedule: int) -> dict[int, float]:
    """Validation ELBO at each stage end of the schedule: measured where the run got there,
    extrapolated beyond (geometric decay of the per-stage gain)."""
    ends = stage_ends(schedule)
    done = [e for e in ends if e in valid]
    if len(done) < 3:
        raise SystemExit("run_progress: need at least three complete stages to extrapolate")
    gains = [valid[b] - valid[a] for a, b in pairwise(done)]
    ratio = gains[-1] / gains[-2]
    out = {e: valid[e] for e in done}
    value, gain = valid[done[-1]], gains[-1]
    for e in ends[len(done):]:
        gain *= ratio
        value += gain
        out[e] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("out")
    ap.add_argument("--eval", action="append", default=[], metavar="EPOCH=FILE",
                    help="the JSON of `vaelab eval RUN --epoch EPOCH --json` (repeatable)")
    ap.add_argument("--reference", type=float, default=None, help="a published log p(x) to draw")
    args = ap.parse_args()

    run, out = Path(args.run), Path(args.out)
    for need in ("config.json", "metrics.jsonl"):
        if not (run / need).is_file():
            sys.exit(f"run_progress: {run / need} not found: RUN must be a run directory (vaelab train --out RUN)")
    config = json.loads((run / "config.json").read_text())
    schedule = int(config["config"]["train"]["epochs"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    valid = {int(r["epoch"]): float(r["valid_elbo"]) for r in rows if r.get("valid_elbo") is not None}
    measured = {}
    for item in args.eval:
        epoch, _, path = item.partition("=")
        if not epoch.isdigit() or not path:
            sys.exit(f"run_progress: --eval {item!r} is not EPOCH=FILE (e.g. --eval 543=eval-543.json)")
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            sys.exit(f"run_progress: --eval {item}: cannot read {path} ({e.__class__.__name__}: {e}); "
                     f"write it with `vaelab eval RUN --epoch {epoch} --json > {path}`")
        measured[int(epoch)] = {"log_likelihood": record["log_likelihood"], "sem": record.get("log_likelihood_sem"),
                                "elbo": record.get("elbo"), "k": record.get("k"), "n": record.get("n")}
    projected = project(valid, schedule)
    last = max(measured) if measured else None
    gap = measured[last]["log_likelihood"] - valid[last] if last in valid else None
    end = projected[schedule] + gap if gap is not None else None

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "valid_elbo"])
        for e in sorted(valid):
            w.writerow([e, f"{valid[e]:.4f}"])
    summary = {"run": run.name, "schedule_epochs": schedule, "epochs_done": max(valid),
               "measured": measured, "valid_elbo_at_stage_ends": {str(k): round(v, 3) for k, v in projected.items()},
               "projected_end_log_likelihood": None if end is None else round(end, 2),
               "reference": args.reference}
    (out / "progress.json").write_text(json.dumps(summary, indent=2) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = sorted(valid)
    ax.plot(xs, [valid[e] for e in xs], lw=1, label="validation ELBO")
    beyond = [e for e in sorted(projected) if e > max(valid)]
    if beyond:
        ax.plot([max(valid)] + beyond, [valid[max(valid)]] + [projected[e] for e in beyond], "--", lw=1,
                color="C0", label="validation ELBO, extrapolated by stage")
    if measured:
        es = sorted(measured)
        ax.errorbar(es, [measured[e]["log_likelihood"] for e in es],
                    yerr=[measured[e]["sem"] or 0 for e in es], fmt="o", color="C1", label="IS log p(x), k=5000")
    if end is not None:
        ax.plot([schedule], [end], "s", mfc="none", color="C1", label=f"projected log p(x) at {schedule}: {end:.1f}")
    if args.reference is not None:
        ax.axhline(args.reference, color="k", ls=":", lw=1, label=f"reference {args.reference}")
    ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.set_title(f"{run.name}: {max(valid)} of {schedule} epochs")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "progress.png", dpi=110)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""Run records: a report keeps the evidence behind what it shows, so it can be built again.

``vaelab report`` writes, beside its tables, one JSON record per finished run it shows
(``REPORT/records/<run id>.json``: the run's store row, its learning curve, its selection
stage, the sweep it came from) and ``REPORT/records/experiments.json`` (each experiment's
effort and spec, and its runs in grid order).  A report directory holding them can be
given to ``vaelab report --sweep`` like a sweep directory: the records are loaded into a
temporary store and run directories (no weights), so tables, curves and runs.csv come out
as the sweeps that trained them would give them, and a new sweep's cells can join cells
whose sweeps are gone (the sweep directories of another machine, say).  Figures drawn from
weights are taken from that report's own ``figures/`` when they show exactly the same
runs (:func:`vaelab.report.figures.drawn_elsewhere`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Sequence

from ..io import atomic_write_json
from ..runs import RunDir, read_metrics, report_path, run_path, store_path, write_metrics
from ..store import RunRow, Store

RECORDS = "records"
EXPERIMENTS = "experiments.json"
FORMAT = 1


def has_records(path: Path) -> bool:
    return (path / RECORDS / EXPERIMENTS).is_file()


def write_records(out: Path, experiments: Sequence[tuple[dict[str, Any], Sequence[RunRow]]],
                  sweep_of: dict[str, Path], origin: dict[str, str]) -> None:
    """The records of every finished run in ``experiments`` (as the report shows them)."""
    folder = out / RECORDS
    folder.mkdir(parents=True, exist_ok=True)
    listing, kept = [], set()
    for exp, runs in experiments:
        done = [r for r in runs if r.status == "done"]
        listing.append({"name": exp["name"], "effort": exp["effort"], "spec": exp["spec"],
                        "runs": [r.id for r in done]})
        for r in done:
            run = RunDir(run_path(sweep_of[r.id], r.id))
            record: dict[str, Any] = {"format": FORMAT, "experiment": exp["name"], "sweep": origin[r.id],
                                      "run": dataclasses.asdict(r), "curve": read_metrics(run.path)}
            if run.select_file.is_file():
                record["select"] = json.loads(run.select_file.read_text(encoding="utf-8"))
            atomic_write_json(folder / f"{r.id}.json", record)
            kept.add(f"{r.id}.json")
    atomic_write_json(folder / EXPERIMENTS, {"format": FORMAT, "experiments": listing})
    for stale in folder.glob("*.json"):  # records of runs this report no longer shows
        if stale.name != EXPERIMENTS and stale.name not in kept:
            stale.unlink()


def load_records(source: Path, into: Path) -> dict[str, str]:
    """Rebuild, in the new folder ``into``, the sweep directory a report's records describe:
    its store, each run's metrics.jsonl and select.json, and (as the sweep's own report)
    the source report's figures.  -> {run id: the sweep it was recorded from}."""
    folder = source / RECORDS
    listing = json.loads((folder / EXPERIMENTS).read_text(encoding="utf-8"))
    origin: dict[str, str] = {}
    with Store(store_path(into)) as store:
        for exp in listing["experiments"]:
            records = [json.loads((folder / f"{rid}.json").read_text(encoding="utf-8")) for rid in exp["runs"]]
            store.add_experiment(exp["name"], exp["effort"], exp["spec"],
                                 [(r["run"]["id"], r["run"]["name"], r["run"]["config"]) for r in records])
            for r in records:
                store.restore(r["run"])
                run = RunDir(run_path(into, r["run"]["id"]))
                write_metrics(run.path, r["curve"])
                if "select" in r:
                    atomic_write_json(run.select_file, r["select"])
                origin[r["run"]["id"]] = r["sweep"]
    if (source / "figures").is_dir():
        shutil.copytree(source / "figures", report_path(into) / "figures", copy_function=shutil.copy)
    return origin

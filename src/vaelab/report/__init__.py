"""Reports: tables and figures built only from stored results.

:func:`build_report` reads a sweep directory's store (the experiments, their report
specs, every run's status and metrics) and the run directories (learning curves and
checkpoints for the images), and writes::

    REPORT/index.html        every table and figure, each captioned with its protocol
    REPORT/NAME.md, .csv     one pair per table of each experiment's report spec
    REPORT/runs.csv          every run of the sweep: id, experiment, status, metrics, timings
    REPORT/figures/*.png     the figures
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

from .. import __version__
from ..io import atomic_write_text
from ..runs import report_path, run_label, store_path
from ..store import Store
from .figures import Context, FigureSkipped, draw
from .html import FigureEntry, Section, render
from .spec import matches, validate_report_spec
from .tables import build_table, protocol_text, to_csv, to_markdown

__all__ = ["build_report", "validate_report_spec"]


def _runs_csv(store: Store) -> str:
    buf = io.StringIO()
    fields = ["experiment", "run_id", "name", "dataset", "latent", "status", "elbo", "log_likelihood", "k",
              "test_images", "epochs", "train_seconds", "eval_seconds", "wall_seconds", "attempts", "error"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for exp in store.experiments():
        for r in store.experiment_runs(exp["name"]):
            m = r.metrics or {}
            w.writerow({"experiment": exp["name"], "run_id": r.id, "name": r.config.get("name"),
                        "dataset": r.config["data"]["dataset"], "latent": r.config["model"]["latent"],
                        "status": r.status, "elbo": m.get("elbo", ""), "log_likelihood": m.get("log_likelihood", ""),
                        "k": m.get("k", ""), "test_images": m.get("n", ""), "epochs": r.epochs or "",
                        "train_seconds": r.train_seconds or "", "eval_seconds": r.eval_seconds or "",
                        "wall_seconds": r.wall_seconds or "", "attempts": r.attempts, "error": r.error or ""})
    return buf.getvalue()


def build_report(sweep_dir: str | Path, out_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 progress: bool = True) -> Path:
    """Write the report of a sweep directory; returns the path of index.html."""
    sweep_dir = Path(sweep_dir)
    store = Store(store_path(sweep_dir), create=False)
    out = Path(out_dir) if out_dir is not None else report_path(sweep_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: set[Path] = set()
    sections = []
    t0 = time.time()
    loaded_runs: dict = {}  # run id -> its model, loaded once for every figure of every experiment

    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    try:
        for exp in store.experiments():
            spec = exp["spec"]
            report = spec.get("report") or {}
            validate_report_spec(report, f"stored experiment {exp['name']}")
            runs = store.experiment_runs(exp["name"])
            labels = {str(k): str(v) for k, v in (report.get("labels") or {}).items()}
            counts = {"queued": 0, "running": 0, "done": 0, "failed": 0}
            for r in runs:
                counts[r.status] += 1
            section = Section(
                name=exp["name"], title=report.get("title") or exp["name"],
                description=" ".join(str(spec.get("description", "")).split()), effort=exp["effort"],
                protocol=protocol_text(runs, exp["effort"]), counts=counts,
                failures=[(r.id, run_label(r.config), r.error or "")
                          for r in runs if r.status == "failed"])
            for tspec in report.get("tables") or []:
                table = build_table(tspec, runs, labels, exp["effort"])
                md, cs = f"{tspec['name']}.md", f"{tspec['name']}.csv"
                atomic_write_text(out / md, to_markdown(table))
                atomic_write_text(out / cs, to_csv(table))
                section.tables.append((table, md, cs))
            references = {cell.run.id: cell.reference for table, _, _ in section.tables
                          for cell in table.cells.values() if cell.run is not None and cell.reference is not None}
            ctx = Context(sweep_dir, fig_dir, data_dir, labels, runs=loaded_runs, references=references)
            for fspec in report.get("figures") or []:
                chosen = [r for r in runs if matches(r.config, fspec.get("select"))]
                entry = FigureEntry(fspec["name"], " ".join(str(fspec.get("caption", "")).split()),
                                    protocol_text(chosen or runs, exp["effort"]))
                try:
                    paths = draw(fspec, runs, ctx)
                    written.update(paths)
                    entry.paths = [p.relative_to(out).as_posix() for p in paths]
                    say(f"report: {exp['name']}: drew {', '.join(entry.paths)}")
                except FigureSkipped as why:
                    entry.skipped = str(why)
                    say(f"report: {exp['name']}: figure {fspec['name']} not drawn: {why}")
                section.figures.append(entry)
            sections.append(section)
        atomic_write_text(out / "runs.csv", _runs_csv(store))
    finally:
        store.close()
    for stale in fig_dir.glob("*.png"):  # figures of an earlier report that this one did not draw
        if stale not in written:
            stale.unlink(missing_ok=True)
    meta = (f"Built by vaelab {__version__} on {time.strftime('%Y-%m-%d %H:%M')} from "
            f"{store_path(sweep_dir)} (stored results and run directories only). Every number is in nats "
            f"per image, higher is better. All runs: runs.csv.")
    index = out / "index.html"
    atomic_write_text(index, render("vaelab report: " + ", ".join(s.title for s in sections)
                                    if len(sections) == 1 else "vaelab report", sections, meta))
    say(f"report: wrote {index} in {time.time() - t0:.1f}s")
    return index

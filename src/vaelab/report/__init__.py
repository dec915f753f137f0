"""Reports: tables and figures built only from stored results.

:func:`build_report` reads a sweep directory's store (the experiments, their report
specs, every run's status and metrics) and the run directories (learning curves and
checkpoints for the images), and writes::

    REPORT/index.html        every table and figure, each captioned with its protocol
    REPORT/NAME.md, .csv     one pair per table of each experiment's report spec
    REPORT/runs.csv          every run of the sweep: id, experiment, status, metrics (sample quality
                             too), timings
    REPORT/figures/*.png     the figures
    REPORT/records/          the evidence behind every finished run shown (records.py)

Several sweep directories make one report over all their runs (the same experiment run in
parts, say some cells on a GPU and the rest on a laptop).  Runs are taken in the order the
directories are given: a run id met again is skipped, and where two runs fall in one table
cell, a finished run beats an unfinished one and otherwise the earlier directory wins (the
table notes the runs it left out; runs.csv names every run's directory).  The figures
then show only the runs the tables show.  A figure drawn from models whose weights stayed
on the machine that trained them (a sweep back from a GPU machine) is taken from that
sweep's own report when it shows exactly the same runs, and its caption says so.

A report directory can stand in for a sweep directory: its run records (:mod:`.records`)
are loaded as the sweeps that trained them would give them, so a table assembled from
sweeps of several machines is rebuilt, and extended by a new sweep, from its own files.
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ..version import __version__
from ..io import atomic_write_text
from ..runs import report_path, run_label, store_path
from ..store import RunRow, Store
from .figures import Context, FigureSkipped, draw
from .html import FigureEntry, Section, render
from .records import has_records, load_records, write_records
from .spec import matches, validate_report_spec
from .tables import build_table, protocol_text, to_csv, to_markdown

__all__ = ["build_report", "validate_report_spec"]


def _runs_csv(experiments: Sequence[tuple[str, Sequence[RunRow]]], origin: dict[str, str]) -> str:
    buf = io.StringIO()
    fields = ["experiment", "run_id", "name", "dataset", "latent", "status", "elbo", "log_likelihood", "k",
              "test_images", "epochs", "train_seconds", "eval_seconds", "wall_seconds", "attempts", "error", "sweep",
              "fd", "precision", "recall", "label_accuracy", "fd_reconstruction"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for name, runs in experiments:
        for r in runs:
            m = r.metrics or {}
            q = m.get("quality") or {}  # sample quality, where the sweep scored it
            w.writerow({"experiment": name, "run_id": r.id, "name": r.config.get("name"),
                        "dataset": r.config["data"]["dataset"], "latent": r.config["model"]["latent"],
                        "status": r.status, "elbo": m.get("elbo", ""), "log_likelihood": m.get("log_likelihood", ""),
                        "k": m.get("k", ""), "test_images": m.get("n", ""), "epochs": r.epochs or "",
                        "train_seconds": r.train_seconds or "", "eval_seconds": r.eval_seconds or "",
                        "wall_seconds": r.wall_seconds or "", "attempts": r.attempts, "error": r.error or "",
                        "sweep": origin[r.id],
                        **{k: "" if q.get(k) is None else q[k] for k in ("fd", "precision", "recall", "label_accuracy",
                                                                       "fd_reconstruction")}})
    return buf.getvalue()


def _gather(stores: Sequence[tuple[Path, Store]]) -> tuple[list[tuple[dict, list[RunRow]]], dict[str, Path]]:
    """Each experiment (its spec from the first store that holds it) with the runs of every
    store, first store first; and the sweep directory each run is taken from."""
    experiments: dict[str, tuple[dict, list[RunRow]]] = {}
    sweep_of: dict[str, Path] = {}
    for sweep_dir, store in stores:
        for exp in store.experiments():
            _, runs = experiments.setdefault(exp["name"], (exp, []))
            for r in store.experiment_runs(exp["name"]):
                if r.id not in sweep_of:
                    sweep_of[r.id] = sweep_dir
                    runs.append(r)
    return list(experiments.values()), sweep_of


def build_report(sweep_dir: str | Path | Sequence[str | Path], out_dir: str | Path | None = None,
                 data_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Write the report of one sweep directory, or of several together, each a sweep
    directory or a report directory with run records (the module's docstring says how);
    returns the path of index.html.  The default report directory is the first sweep's."""
    sweep_dirs = [Path(sweep_dir)] if isinstance(sweep_dir, (str, Path)) else [Path(d) for d in sweep_dir]
    if not sweep_dirs:
        raise ValueError("build_report needs at least one sweep directory")
    stores: list[tuple[Path, Store]] = []
    scratch = tempfile.TemporaryDirectory(prefix="vaelab-records-")
    origin: dict[str, str] = {}  # run id -> the sweep it was trained in, for runs.csv and the records
    shown_as: dict[Path, Path] = {}  # a loaded report's temporary sweep directory -> the report
    try:  # every store opens (and every record is read) before anything is written
        for i, d in enumerate(sweep_dirs):
            if not store_path(d).exists() and has_records(d):
                into = Path(scratch.name) / str(i)
                for rid, sweep in load_records(d, into).items():
                    origin.setdefault(rid, sweep)
                shown_as[into] = d
                d = into
            stores.append((d, Store(store_path(d), create=False)))
    except BaseException:
        for _, store in stores:
            store.close()
        scratch.cleanup()
        raise
    out = Path(out_dir) if out_dir is not None else report_path(sweep_dirs[0])
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
        experiments, sweep_of = _gather(stores)
        for rid, d in sweep_of.items():
            origin.setdefault(rid, d.as_posix())
        shown_runs = []
        for exp, runs in experiments:
            spec = exp["spec"]
            report = spec.get("report") or {}
            validate_report_spec(report, f"stored experiment {exp['name']}")
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
            if len(sweep_dirs) > 1 and section.tables:  # figures show the tables' runs, no other sweep's
                shown = {cell.run.id for table, _, _ in section.tables for cell in table.cells.values()
                         if cell.run is not None}
                runs = [r for r in runs if r.id in shown]
            ctx = Context(stores[0][0], fig_dir, data_dir, labels, runs=loaded_runs, references=references,
                          sweep_of=sweep_of, stores=dict(stores))
            for fspec in report.get("figures") or []:
                chosen = [r for r in runs if matches(r.config, fspec.get("select"))]
                entry = FigureEntry(fspec["name"], " ".join(str(fspec.get("caption", "")).split()),
                                    protocol_text(chosen or runs, exp["effort"]))
                try:
                    paths = draw(fspec, runs, ctx)
                    written.update(paths)
                    entry.paths = [p.relative_to(out).as_posix() for p in paths]
                    home = next((ctx.drawn_by[p] for p in paths if p in ctx.drawn_by), None)
                    if home is not None:
                        home = shown_as.get(home, home)
                        entry.source = (f"Drawn by the report of {home.name}, which holds these runs "
                                        f"(their weights are not here).")
                    say(f"report: {exp['name']}: {'took' if home else 'drew'} {', '.join(entry.paths)}"
                        + (f" from {home}" if home else ""))
                except FigureSkipped as why:
                    entry.skipped = str(why)
                    say(f"report: {exp['name']}: figure {fspec['name']} not drawn: {why}")
                section.figures.append(entry)
            sections.append(section)
            shown_runs.append((exp, runs))
        atomic_write_text(out / "runs.csv", _runs_csv([(exp["name"], runs) for exp, runs in experiments], origin))
        write_records(out, shown_runs, sweep_of, origin)
    finally:
        for _, store in stores:
            store.close()
        scratch.cleanup()
    for stale in fig_dir.glob("*.png"):  # figures of an earlier report that this one did not draw
        if stale not in written:
            stale.unlink(missing_ok=True)
    meta = (f"Built by vaelab {__version__} on {time.strftime('%Y-%m-%d %H:%M')} from "
            f"{', '.join(str(d) for d in sweep_dirs)} (stored results, run records and run directories only). Every number is in nats "
            f"per image, higher is better. All runs: runs.csv.")
    index = out / "index.html"
    atomic_write_text(index, render("vaelab report: " + ", ".join(s.title for s in sections)
                                    if len(sections) == 1 else "vaelab report", sections, meta))
    say(f"report: wrote {index} in {time.time() - t0:.1f}s")
    return index

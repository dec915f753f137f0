"""Tables from the store: rows x columns of stored test results, with published
reference numbers beside ours.

Written as ``NAME.md`` (for people: an ELBO table with the reference and the difference,
and a log-likelihood table) and ``NAME.csv`` (for programs: one line per cell, every
number).  Only stored results are read; a cell whose run is not done says why.

What a reader needs beside a surprising number comes from the runs' own parts
(:meth:`vaelab.models.VAE.notes`, :meth:`vaelab.objectives.Objective.notes`: a 2-layer
model's N_z, a weighted KL, corrupted inputs): each such note is marked on the rows,
columns or cells it concerns and printed under the table.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..config import RunConfig
from ..errors import ConfigError
from ..models import MODELS
from ..objectives import OBJECTIVES
from ..store import RunRow
from .spec import PROTOCOL_FACTS, lookup

# Config keys that change what a cell's model learns or how long it trained, yet may differ
# between the cells of one row when its runs come from several sweeps or code versions; the
# table notes every row whose shown cells differ in one (a table spec may list its own as
# ``flag_keys``).
FLAG_KEYS = ("objective.kl", "model.init", "train.epochs")


@dataclass
class Cell:
    row: Any
    column: Any
    run: RunRow | None = None
    reference: float | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        return (self.run.metrics or {}) if self.run is not None and self.run.status == "done" else {}

    def value(self, metric: str) -> float | None:
        v = self.metrics.get(metric)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    def quality(self, key: str) -> float | None:
        """A number of the run's stored sample quality (``fd``, ``precision``...), or None."""
        v = (self.metrics.get("quality") or {}).get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    def difference(self, metric: str) -> float | None:
        ours = self.value(metric)
        if ours is None or self.reference is None:
            return None
        return ours - self.reference


@dataclass
class Table:
    name: str
    title: str
    row_title: str
    column_title: str
    rows: list[Any]
    columns: list[Any]
    row_labels: dict[Any, str]
    column_labels: dict[Any, str]
    cells: dict[tuple[Any, Any], Cell]
    reference: dict[str, Any] | None
    protocol: str
    expected_gap: str | None = None  # the reference's expected_gap for this table's effort
    notes: list[str] = field(default_factory=list)
    # How our protocol differs from the reference's ("epochs: 1 here, 100 in the reference"); non-empty
    # means the differences are for orientation, not a verdict, and the report says so.
    mismatches: list[str] = field(default_factory=list)
    # The runs' own notes on their numbers (part_notes), each once, and where each is marked:
    # ("row", r), ("column", c) or ("cell", (r, c)) -> indices into footnotes.
    footnotes: list[str] = field(default_factory=list)
    marks: dict[tuple[str, Any], list[int]] = field(default_factory=dict)

    def marker(self, where: tuple[str, Any]) -> str:
        """The footnote numbers at a row, column or cell, as superscripts ("¹²")."""
        return "".join(superscript(i + 1) for i in self.marks.get(where, []))

    @property
    def ref_metric(self) -> str | None:
        return (self.reference or {}).get("metric")

    @property
    def comparable(self) -> bool:
        """False when the reference measures another quantity (``comparable: false`` in
        the spec): both numbers are shown, their difference never."""
        return bool(self.reference) and self.reference.get("comparable", True) is not False

    @property
    def verdict(self) -> bool:
        """Differences may be read (and coloured) as better/worse: same quantity, same protocol."""
        return self.comparable and not self.mismatches

    def banner(self) -> str | None:
        """One sentence for the top of the table when its numbers and the reference's
        must not be read as a verdict; None when they may."""
        if not self.reference:
            return None
        if not self.comparable:
            return ("Not comparable with the reference: it measures a different quantity (see the note "
                    "below), so both numbers are shown and no difference is computed.")
        if self.mismatches:
            gap = f" {self.expected_gap}" if self.expected_gap else ""
            return ("Protocol differs from the reference's: " + "; ".join(self.mismatches) + ". The "
                    "differences (Δ) are not a verdict on the models; compare under the paper effort." + gap)
        return None

    @property
    def has_quality(self) -> bool:
        """Whether any cell's run stored a sample-quality score (then an FD column shows)."""
        return any(c.quality("fd") is not None for c in self.cells.values())

    def quality_protocol(self) -> str | None:
        """One sentence on how the FD column was made, from the stored scores; None without any."""
        scores = [c.metrics["quality"] for c in self.cells.values() if c.quality("fd") is not None]
        if not scores:
            return None
        ns = "/".join(sorted({str(q.get("n")) for q in scores}, key=lambda v: (len(v), v)))
        nets = sorted({str((q.get("feature_net") or {}).get("sha256", "?"))[:12] for q in scores})
        kinds = "/".join(sorted({str((q.get("feature_net") or {}).get("kind", "?")) for q in scores}))
        return (f"FD: Fréchet distance (Heusel et al. 2017) between {ns} model samples (decoder means) and as many "
                f"test images, in the features of the {kinds} vaelab trained on the dataset (sha256 "
                f"{', '.join(nets)}); lower is better, comparable within this table only. Precision, recall "
                f"(Kynkäänniemi et al. 2019), label accuracy and the FD of reconstructions are in the CSV.")

    def cell(self, row: Any, column: Any) -> Cell:
        return self.cells.get((row, column)) or Cell(row, column)


def _key(value: Any) -> Any:
    """Axis values compare as given, but YAML keys arrive as ints or strs: normalise
    ints written as strings ('3' -> 3) so reference tables line up with configs."""
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value


def _axis(spec: Mapping[str, Any], runs: Sequence[RunRow], labels: Mapping[str, str]) -> tuple[list, dict]:
    key = spec["key"]
    present = []
    for r in runs:
        v = _key(lookup(r.config, key))
        if v not in present:
            present.append(v)
    values = _ordered(spec, present)
    own = {_key(k): str(v) for k, v in (spec.get("labels") or {}).items()}
    out_labels = {v: own.get(v) or (labels.get(v) if isinstance(v, str) else None) or str(v) for v in values}
    return values, out_labels


def _ordered(spec: Mapping[str, Any], values: Sequence[Any]) -> list[Any]:
    """An axis's values in its spec's ``order``, then the rest sorted (numbers by value)."""
    order = [_key(v) for v in spec.get("order", [])]
    return [v for v in order if v in values] + sorted((v for v in values if v not in order), key=_sort_key)


def _sort_key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def superscript(n: int) -> str:
    return str(n).translate(SUPERSCRIPTS)


def part_notes(config: Mapping[str, Any]) -> list[str]:
    """What the run's model and objective say a reader needs beside its numbers
    (:meth:`vaelab.models.VAE.notes`); none for a config this version cannot read or a
    plugin's part that is not installed here."""
    try:
        cfg = RunConfig.from_dict(config)
        parts = ((MODELS.get(cfg.model.kind), cfg.model), (OBJECTIVES.get(cfg.objective.name), cfg.objective))
    except ConfigError:
        return []
    return [note for part, section in parts if hasattr(part, "notes") for note in part.notes(section)]


def _budget(run: RunRow) -> tuple[Any, Any]:
    return lookup(run.config, "train.epochs"), lookup(run.config, "data.train_limit") or "all"


def budget_notes(runs: Sequence[RunRow]) -> Callable[[RunRow], list[str]]:
    """A note for each run trained on another budget (epochs, training images) than most
    of the table's: an effort may give its slowest models less (``by_name``), and a row's
    numbers then say so beside them."""
    counts: dict[tuple[Any, Any], int] = {}
    for r in runs:
        counts[_budget(r)] = counts.get(_budget(r), 0) + 1
    if len(counts) < 2:
        return lambda run: []
    epochs, images = max(counts, key=counts.get)

    def note(run: RunRow) -> list[str]:
        e, n = _budget(run)
        if (e, n) == (epochs, images):
            return []
        return [f"Trained {e} epoch{'s' if e != 1 else ''} on {n} training images at this effort, "
                f"where most of the table trained {epochs} on {images}."]

    return note


def place_notes(cells: Mapping[tuple[Any, Any], Cell], rows: Sequence[Any], cols: Sequence[Any],
                notes_of: Callable[[RunRow], list[str]]) -> tuple[list[str], dict[tuple[str, Any], list[int]]]:
    """Each distinct note of the table's runs (``notes_of``), marked where it belongs: on the
    rows whose every run has it when those are all its runs, else likewise on columns (the
    2-layer column of Burda et al.'s table), else on its cells."""
    where: dict[str, list[tuple[Any, Any]]] = {}  # note -> its cells, in row-major order
    for r in rows:
        for c in cols:
            cell = cells.get((r, c))
            if cell is not None and cell.run is not None:
                for note in notes_of(cell.run):
                    where.setdefault(note, []).append((r, c))
    with_runs = [(r, c) for r in rows for c in cols if (cell := cells.get((r, c))) and cell.run is not None]
    notes: list[str] = []
    marks: dict[tuple[str, Any], list[int]] = {}
    for note, spots in where.items():
        mine = set(spots)
        whole_rows = [r for r in rows if (line := {rc for rc in with_runs if rc[0] == r}) and line <= mine]
        whole_cols = [c for c in cols if (line := {rc for rc in with_runs if rc[1] == c}) and line <= mine]
        if {rc for rc in with_runs if rc[0] in whole_rows} == mine:
            places = [("row", r) for r in whole_rows]
        elif {rc for rc in with_runs if rc[1] in whole_cols} == mine:
            places = [("column", c) for c in whole_cols]
        else:
            places = [("cell", rc) for rc in spots]
        for place in places:
            marks.setdefault(place, []).append(len(notes))
        notes.append(note)
    return notes, marks


def protocol_text(runs: Sequence[RunRow], effort: str | None = None) -> str:
    """One sentence saying how the numbers were made, from the runs' own configs and the
    evaluation records: data, binarisation, training set, epochs, k, test images."""
    done = [r for r in runs if r.status == "done" and r.metrics]
    if not runs:
        return "no runs"

    def values(get) -> str:
        seen = []
        for r in runs:
            v = get(r)
            if v not in seen:
                seen.append(v)
        return "/".join(str(v) for v in seen)

    datasets = values(lambda r: lookup(r.config, "data.dataset"))
    binar = values(lambda r: lookup(r.config, "data.binarize"))
    limit = values(lambda r: lookup(r.config, "data.train_limit") or "all")
    epochs = values(lambda r: lookup(r.config, "train.epochs"))
    k = values(lambda r: (r.metrics or {}).get("k") or lookup(r.config, "eval.k"))  # as evaluated
    n_test = "/".join(sorted({str(r.metrics.get("n")) for r in done})) or "?"
    parts = [f"{effort} effort" if effort else None,
             f"{datasets} ({binar} binarisation)" if "mnist" in datasets else datasets,
             f"{limit} training images", f"{epochs} epochs",
             f"test ELBO and importance-sampled log-likelihood with k={k} on {n_test} test images",
             "nats per image, higher is better"]
    return "; ".join(p for p in parts if p) + "."


# The facts of a run's training budget: a run whose budget differs from most of its table's
# gets a note beside its numbers (budget_notes), which the banner then points at.
BUDGET_FACTS = ("epochs", "train_images")


def protocol_mismatches(runs: Sequence[RunRow], reference: Mapping[str, Any] | None,
                        row_of: Callable[[RunRow], str] | None = None) -> list[str]:
    """How the runs' protocol differs from the one the reference declares, one phrase per
    fact ("epochs: 1 here, 100 in the reference").  Where the runs differ among themselves,
    the phrase gives the most common value and names the rows (``row_of``) that differ ("k:
    100 here (1000 for IWAE), 5000 in the reference"), or for a budget says that their notes
    do.  A reference that declares no protocol cannot be vouched for."""
    if not reference or reference.get("comparable", True) is False:
        return []
    declared = reference.get("protocol")
    if not declared:
        return ["the reference's protocol is not stated"]
    done = [r for r in runs if r.status == "done" and r.metrics]
    out = []
    for key, want in declared.items():
        label, read = PROTOCOL_FACTS[key]
        rows_by_value: dict[Any, list[str]] = {}
        for r in done or runs:
            v = read(r)
            if v is not None:
                names = rows_by_value.setdefault(v, [])
                row = row_of(r) if row_of else None
                if row is not None and row not in names:
                    names.append(row)
        ours = list(rows_by_value)
        if not ours or [str(v) for v in ours] == [str(want)]:
            continue
        if len(ours) > 1 and row_of is not None:
            common = max(ours, key=lambda v: len(rows_by_value[v]))
            others = ("other budgets noted beside their rows" if key in BUDGET_FACTS else
                      "; ".join(f"{v} for {', '.join(rows_by_value[v])}" for v in ours if v != common))
            out.append(f"{label}: {common} here ({others}), {want} in the reference")
        else:
            out.append(f"{label}: {'/'.join(map(str, ours))} here, {want} in the reference")
    return out


def _flag_value(config: Mapping[str, Any], key: str) -> str:
    """A config value for the notes; a key absent from an older run's config reads as the
    value its absence means (RunConfig.QUIET_DEFAULTS), else 'unset'."""
    v = lookup(config, key)
    if v is None:
        v = RunConfig.QUIET_DEFAULTS.get(key, "unset")
    return str(v)


def device_of(config: Mapping[str, Any], evaluation: Mapping[str, Any]) -> str:
    """The device a cell's run trained on: its ``train.device``, where that is ``auto`` the
    device its evaluation recorded (runs evaluate where they trained), and for records older
    than that, ``cpu`` where the recorded torch is a CPU-only build (nothing else was
    possible)."""
    name = lookup(config, "train.device")
    if name not in (None, "auto"):
        return str(name)
    if evaluation.get("device"):
        return str(evaluation["device"])
    if str(evaluation.get("torch", "")).endswith("+cpu"):
        return "cpu"
    return "" if name is None else str(name)


def row_differences(cells: Mapping[tuple[Any, Any], Cell], rows: Sequence[Any], cols: Sequence[Any],
                    row_labels: Mapping[Any, str], col_labels: Mapping[Any, str],
                    keys: Sequence[str], column_title: str = "") -> list[str]:
    """One note per row and key whose finished cells differ in that key's value, e.g.
    "VAE tuned: objective.kl analytic at N_z 200; sampled at N_z 3, 5, 10, 20", so that a row mixing
    runs of two protocols says so next to the numbers."""
    notes = []
    at = f"at {column_title} " if column_title else "at "
    for r in rows:
        done = [(c, cell.run) for c in cols
                if (cell := cells.get((r, c))) is not None and cell.run is not None and cell.run.status == "done"]
        for key in keys:
            by_value: dict[str, list[str]] = {}
            for c, run in done:
                by_value.setdefault(_flag_value(run.config, key), []).append(str(col_labels.get(c, c)))
            if len(by_value) > 1:
                groups = sorted(by_value.items(), key=lambda kv: len(kv[1]))  # the exceptions first
                notes.append(f"{row_labels.get(r, r)}: {key} " +
                             "; ".join(f"{v} {at}{', '.join(where)}" for v, where in groups))
    return notes


def build_table(spec: Mapping[str, Any], runs: Sequence[RunRow], labels: Mapping[str, str] | None = None,
                effort: str | None = None) -> Table:
    labels = dict(labels or {})
    rows, row_labels = _axis(spec["rows"], runs, labels)
    cols, col_labels = _axis(spec["columns"], runs, labels)
    ref = spec.get("reference")
    ref_values = {_key(r): {_key(c): float(v) for c, v in cols_.items()}
                  for r, cols_ in ((ref or {}).get("values") or {}).items()}
    for r, cols_ in ref_values.items():  # reference rows/columns with no run still show, in the axis order
        if r not in rows:
            rows.append(r)
            row_labels[r] = labels.get(r, str(r)) if isinstance(r, str) else str(r)
        for c in cols_:
            if c not in cols:
                cols.append(c)
                col_labels[c] = str(c)
    rows, cols = _ordered(spec["rows"], rows), _ordered(spec["columns"], cols)
    cells: dict[tuple[Any, Any], Cell] = {}
    notes = []
    hidden = 0  # unfinished runs in cells that show another run
    for run in sorted(runs, key=lambda r: r.status != "done"):  # a finished run first; else store order
        key = (_key(lookup(run.config, spec["rows"]["key"])), _key(lookup(run.config, spec["columns"]["key"])))
        if key in cells and cells[key].run is not None:
            if run.status == "done":
                notes.append(f"runs {cells[key].run.id} and {run.id} share the cell {key}; showing the first")
            else:
                hidden += 1
            continue
        cells[key] = Cell(*key, run=run)
    if hidden:
        notes.append(f"{hidden} unfinished run(s) share a cell with another run and are not shown (runs.csv lists them)")
    for r in rows:
        for c in cols:
            cell = cells.setdefault((r, c), Cell(r, c))
            cell.reference = ref_values.get(r, {}).get(c)
    notes += row_differences(cells, rows, cols, row_labels, col_labels, spec.get("flag_keys", FLAG_KEYS),
                             spec["columns"].get("title", spec["columns"]["key"]))
    chosen = [(row_labels.get(r, r), col_labels.get(c, c), cell.metrics["selected"])
              for (r, c), cell in cells.items() if cell.metrics.get("selected")]
    if chosen:  # a selection stage ran before these runs (RunConfig.select)
        notes.append("values chosen by the selection stage (best validation ELBO of short runs, never the "
                     "test set): " + "; ".join(f"{rl} / {cl}: {v}" for rl, cl, v in chosen))
    by_budget = budget_notes([cell.run for cell in cells.values() if cell.run is not None])
    footnotes, marks = place_notes(cells, rows, cols, lambda run: part_notes(run.config) + by_budget(run))
    for r, note in ((_key(k), " ".join(str(v).split())) for k, v in ((ref or {}).get("notes") or {}).items()):
        if r in rows:  # what the reference's numbers of a row need (the experiment file says)
            marks.setdefault(("row", r), []).append(len(footnotes))
            footnotes.append(note)
    return Table(name=spec["name"], title=spec.get("title", spec["name"]),
                 row_title=spec["rows"].get("title", spec["rows"]["key"]),
                 column_title=spec["columns"].get("title", spec["columns"]["key"]),
                 rows=rows, columns=cols, row_labels=row_labels, column_labels=col_labels, cells=cells,
                 reference=dict(ref) if ref else None, protocol=protocol_text(runs, effort), notes=notes,
                 mismatches=protocol_mismatches(runs, ref, lambda run: row_labels.get(
                     _key(lookup(run.config, spec["rows"]["key"])), "")),
                 expected_gap=((ref or {}).get("expected_gap") or {}).get(effort),
                 footnotes=footnotes, marks=marks)


# --- formatting ------------------------------------------------------------------------


def fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return ""
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def _missing(cell: Cell) -> str:
    if cell.run is None:
        return "–"  # no run in this sweep
    return {"queued": "queued", "running": "running", "failed": "failed"}.get(cell.run.status, "?")


def cell_text(cell: Cell, metric: str) -> str:
    """The number, with ± its standard error where the evaluation stored one."""
    v = cell.value(metric)
    if v is None:
        return _missing(cell)
    sem = cell.metrics.get(f"{metric}_sem")
    if isinstance(sem, (int, float)) and not isinstance(sem, bool) and math.isfinite(sem):
        return f"{fmt(v)} ± {sem:.2f}"
    return fmt(v)


def _md_table(header: list[str], lines: list[list[str]], align: list[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    out += ["| " + " | ".join(x.replace("|", "\\|") for x in line) + " |" for line in lines]
    return "\n".join(out)


def grids(table: Table) -> list[tuple[str, list[str], list[list[str]], list[str]]]:
    """The tables to show, as (heading, header, lines, alignment).  Shared by the
    Markdown and the HTML writers, so both always say the same."""
    ref = table.reference
    metric = table.ref_metric
    out = []
    name = {"elbo": "test ELBO", "log_likelihood": "IS log-likelihood"}
    quality = table.has_quality
    for m in ("elbo", "log_likelihood"):
        k = _ks(table)
        heading = f"{name[m]} (nats{f', k={k}' if m == 'log_likelihood' else ''})"
        if m == "log_likelihood" and quality:
            heading += ", beside each column its samples' FD (lower is better)"
        header = [table.row_title]
        align = ["l"]
        for c in table.columns:
            label = table.column_labels[c]
            header.append((label if label != str(c) or not table.column_title else f"{table.column_title}={label}")
                          + table.marker(("column", c)))
            align.append("r")
            if ref and metric == m:
                header.append("study" if "study" in str(ref.get("source", "")) else "reference")
                align.append("r")
                if table.comparable:
                    header.append("Δ")
                    align.append("r")
            if m == "log_likelihood" and quality:
                header.append("FD")
                align.append("r")
        lines = []
        for r in table.rows:
            line = [table.row_labels[r] + table.marker(("row", r))]
            for c in table.columns:
                cell = table.cell(r, c)
                line.append(cell_text(cell, m) + table.marker(("cell", (r, c))))
                if ref and metric == m:
                    line.append(fmt(cell.reference))
                    if table.comparable:
                        line.append(fmt(cell.difference(m), signed=True))
                if m == "log_likelihood" and quality:
                    fd = cell.quality("fd")
                    line.append(fmt(fd) if fd is not None else ("–" if cell.metrics else _missing(cell)))
            lines.append(line)
        out.append((heading, header, lines, align))
    return out


def _ks(table: Table) -> str:
    ks = sorted({str(c.metrics.get("k")) for c in table.cells.values() if c.metrics})
    return "/".join(ks) if ks else "?"


def to_markdown(table: Table) -> str:
    parts = [f"# {table.title}", "", f"Protocol: {table.protocol}", ""]
    if table.banner():
        parts += [f"**{table.banner()}**", ""]
    for heading, header, lines, align in grids(table):
        parts += [f"## {heading}", "", _md_table(header, lines, align), ""]
    if table.footnotes:
        parts += [f"- {superscript(i + 1)} {note}" for i, note in enumerate(table.footnotes)] + [""]
    if table.quality_protocol():
        parts += [table.quality_protocol(), ""]
    if table.reference:
        ref = table.reference
        parts += [f"Reference: {ref.get('source', '')}. " + " ".join(str(ref.get("note", "")).split()), ""]
    parts += ["Cells: a number (± its standard error over test images, where stored), or the run's status "
              "(queued; running: started and unfinished when its sweep last wrote the store, so also a run "
              "stopped midway; failed); – means no run.", ""]
    parts += ["Notes:", ""] + [f"* {n}" for n in table.notes] if table.notes else []
    return "\n".join(parts).rstrip() + "\n"


CSV_FIELDS = ["row", "row_label", "column", "column_label", "run_id", "status", "test_elbo",
              "test_log_likelihood", "log_likelihood_sem", "k", "test_images", "reference_metric",
              "reference", "difference", "active_units", "epochs", "train_seconds", "eval_seconds", "selected", "error",
              "kl_estimator", "seed", "device", "torch", "test_sha256",  # where the number came from, and on which test images
              # sample quality (vaelab.evaluation.quality): N samples against N test images
              "fd", "precision", "recall", "classifier_accuracy", "label_accuracy", "fd_reconstruction", "quality_n",
              "feature_net_sha256"]


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    metric = table.ref_metric
    for r in table.rows:
        for c in table.columns:
            cell = table.cell(r, c)
            run, m = cell.run, cell.metrics
            w.writerow({
                "row": r, "row_label": table.row_labels[r], "column": c, "column_label": table.column_labels[c],
                "run_id": run.id if run else "", "status": run.status if run else "missing",
                "test_elbo": _num(cell.value("elbo")), "test_log_likelihood": _num(cell.value("log_likelihood")),
                "log_likelihood_sem": _num(m.get("log_likelihood_sem")), "k": m.get("k", ""),
                "test_images": m.get("n", ""), "reference_metric": metric or "",
                "reference": _num(cell.reference),
                "difference": _num(cell.difference(metric)) if metric and table.comparable else "",
                "active_units": m.get("active_units", ""), "epochs": run.epochs if run and run.epochs else "",
                "train_seconds": _num(run.train_seconds if run else None, 1),
                "eval_seconds": _num(run.eval_seconds if run else None, 1),
                "selected": m.get("selected", ""),
                "error": (run.error or "") if run else "",
                "kl_estimator": _flag_value(run.config, "objective.kl") if run else "",
                "seed": lookup(run.config, "train.seed") if run else "",
                "device": device_of(run.config, m) if run else "",
                "torch": m.get("torch", ""), "test_sha256": m.get("test_sha256", ""),
                "fd": _num(cell.quality("fd")), "precision": _num(cell.quality("precision")),
                "recall": _num(cell.quality("recall")),
                "classifier_accuracy": _num(cell.quality("classifier_accuracy")),
                "label_accuracy": _num(cell.quality("label_accuracy")),
                "fd_reconstruction": _num(cell.quality("fd_reconstruction")),
                "quality_n": (m.get("quality") or {}).get("n", ""),
                "feature_net_sha256": ((m.get("quality") or {}).get("feature_net") or {}).get("sha256", ""),
            })
    return buf.getvalue()


def _num(v: Any, digits: int = 4) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return ""
    return f"{v:.{digits}f}"

"""The ``report:`` section of an experiment file: which tables and figures to draw.

::

    report:
      title: "Table 1 of the study"
      labels: {vae: VAE, vae-tuned: VAE tuned}        # display names of run names
      tables:
        - name: table1                                 # -> table1.md, table1.csv
          title: ...
          rows: {key: name, order: [vae, vae-tuned]}   # a dotted config key per axis
          columns: {key: model.latent, title: N_z}
          reference:                                   # published numbers to compare with
            source: "..."
            metric: elbo                               # elbo | log_likelihood
            note: "..."
            values: {vae: {3: -137.64}}                # row value -> column value -> number
            protocol: {epochs: 100, test_images: 10000}  # how they were made; a difference from
                                                       # ours puts a banner on the table
            comparable: true                           # false: another quantity, no difference shown
            notes: {vae: "..."}                        # a row's reference numbers need a word
      figures:
        - {name: fig1-curves, kind: curves, select: {name: [vae, vae-tuned]}, caption: "..."}

``select`` keeps the runs whose dotted config keys equal the given value (or one of the
given list).  Checked when the experiment is loaded, so a typo fails before any training.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import ConfigError

# kind -> its own options (besides name, kind, select, caption)
FIGURE_KINDS: dict[str, set[str]] = {
    "curves": {"panels", "lines", "labels"},  # learning curves, one panel per value of `panels`
    "reconstructions": {"n", "rows", "labels"},  # originals, then one row of reconstructions per run
    "samples": {"n", "rows", "condition", "labels"},  # one row of prior samples per run
    "class_samples": {"n"},  # a conditional model: one row per class
    "latent_map": {"n"},  # E_q[z|x] of test images coloured by label (2-D or 3-D latents)
    "manifold": {"size"},  # decoded grid over a 2-D latent (Kingma & Welling, fig. 4)
    "budget": {"labels"},  # test log p(x) at the epochs of train.keep_epochs and at the end
}
METRICS = ("elbo", "log_likelihood")
REFERENCE_KEYS = {"source", "metric", "note", "notes", "values", "protocol", "comparable", "expected_gap"}
# notes: {ROW: one sentence}: what a reader needs about the reference's numbers of one row (a
# published number that cannot be the quantity compared), marked on that row.
# expected_gap: {EFFORT: a sentence or two}: what to expect of that effort's budget against the
# reference's protocol, printed in the table's banner after the differences of protocol, which
# are read from the runs (so the banner's numbers are the runs', never typed here).
# What a reference may declare about how its numbers were made (``reference.protocol``): each
# fact's words and how a stored run (config and metrics) reads it.
PROTOCOL_FACTS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "epochs": ("epochs", lambda r: lookup(r.config, "train.epochs")),
    "binarize": ("binarisation", lambda r: lookup(r.config, "data.binarize")),
    "train_images": ("training images", lambda r: lookup(r.config, "data.train_limit") or "all"),
    "k": ("k", lambda r: (r.metrics or {}).get("k") if r.metrics else lookup(r.config, "eval.k")),
    "test_images": ("test images", lambda r: (r.metrics or {}).get("n")),
}
PROTOCOL_KEYS = tuple(PROTOCOL_FACTS)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _fail(path, where: str, msg: str) -> None:
    raise ConfigError(f"{path}: report.{where}: {msg}")


def _check_name(path, where: str, name: Any) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        _fail(path, where, f"name must be letters, digits, '.', '_' or '-' (a file name), got {name!r}")


def _check_axis(path, where: str, axis: Any) -> None:
    if not isinstance(axis, Mapping) or not isinstance(axis.get("key"), str):
        _fail(path, where, f"expected {{key: dotted.config.key, ...}}, got {axis!r}")
    extra = set(axis) - {"key", "order", "labels", "title"}
    if extra:
        _fail(path, where, f"unknown key(s) {sorted(extra)}; known: key, order, labels, title")
    if "order" in axis and not isinstance(axis["order"], list):
        _fail(path, f"{where}.order", "expected a list")
    if "labels" in axis and not isinstance(axis["labels"], Mapping):
        _fail(path, f"{where}.labels", "expected a mapping value -> label")


def validate_report_spec(report: Any, path: str | Path = "experiment") -> None:
    if not isinstance(report, Mapping):
        raise ConfigError(f"{path}: 'report' must be a mapping, got {type(report).__name__}")
    extra = set(report) - {"title", "labels", "tables", "figures"}
    if extra:
        _fail(path, "", f"unknown key(s) {sorted(extra)}; known: title, labels, tables, figures")
    if not isinstance(report.get("labels", {}), Mapping):
        _fail(path, "labels", "expected a mapping run name -> display name")
    names: set[str] = set()
    for i, table in enumerate(report.get("tables") or []):
        where = f"tables[{i}]"
        if not isinstance(table, Mapping):
            _fail(path, where, f"expected a mapping, got {table!r}")
        extra = set(table) - {"name", "title", "rows", "columns", "reference", "flag_keys"}
        if extra:
            _fail(path, where, f"unknown key(s) {sorted(extra)}; known: name, title, rows, columns, reference, "
                               "flag_keys")
        flags = table.get("flag_keys", [])
        if not isinstance(flags, list) or not all(isinstance(k, str) for k in flags):
            _fail(path, f"{where}.flag_keys", f"expected a list of dotted config keys, got {flags!r}")
        _check_name(path, where, table.get("name"))
        if table["name"] in names:
            _fail(path, where, f"name {table['name']!r} used twice")
        names.add(table["name"])
        _check_axis(path, f"{where}.rows", table.get("rows"))
        _check_axis(path, f"{where}.columns", table.get("columns"))
        ref = table.get("reference")
        if ref is not None:
            if not isinstance(ref, Mapping) or not isinstance(ref.get("values"), Mapping):
                _fail(path, f"{where}.reference", "expected {source, metric, note, values: {row: {column: number}}}")
            if ref.get("metric") not in METRICS:
                _fail(path, f"{where}.reference.metric",
                      f"must be one of {', '.join(METRICS)}, got {ref.get('metric')!r}")
            extra = set(ref) - REFERENCE_KEYS
            if extra:
                _fail(path, f"{where}.reference", f"unknown key(s) {sorted(extra)}; known: "
                                                  f"{', '.join(sorted(REFERENCE_KEYS))}")
            row_notes = ref.get("notes", {})
            if not isinstance(row_notes, Mapping) or not all(isinstance(v, str) for v in row_notes.values()):
                _fail(path, f"{where}.reference.notes", "expected {ROW: one sentence}")
            gap = ref.get("expected_gap", {})
            if not isinstance(gap, Mapping) or not all(isinstance(v, str) for v in gap.values()):
                _fail(path, f"{where}.reference.expected_gap", "expected {EFFORT: one sentence}")
            if not isinstance(ref.get("comparable", True), bool):
                _fail(path, f"{where}.reference.comparable", f"must be true or false, got {ref['comparable']!r}")
            proto = ref.get("protocol", {})
            if not isinstance(proto, Mapping) or set(proto) - set(PROTOCOL_KEYS):
                _fail(path, f"{where}.reference.protocol",
                      f"expected a mapping with keys among {', '.join(PROTOCOL_KEYS)}, got {proto!r}")
            for row, cols in ref["values"].items():
                if not isinstance(cols, Mapping) or not all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) for v in cols.values()):
                    _fail(path, f"{where}.reference.values.{row}", f"expected {{column: number}}, got {cols!r}")
    for i, fig in enumerate(report.get("figures") or []):
        where = f"figures[{i}]"
        if not isinstance(fig, Mapping):
            _fail(path, where, f"expected a mapping, got {fig!r}")
        _check_name(path, where, fig.get("name"))
        if fig["name"] in names:
            _fail(path, where, f"name {fig['name']!r} used twice")
        names.add(fig["name"])
        kind = fig.get("kind")
        if kind not in FIGURE_KINDS:
            _fail(path, f"{where}.kind", f"unknown figure kind {kind!r}; known: {', '.join(FIGURE_KINDS)}")
        extra = set(fig) - {"name", "kind", "select", "caption"} - FIGURE_KINDS[kind]
        if extra:
            _fail(path, where, f"unknown option(s) {sorted(extra)} for a {kind} figure; known: "
                               f"select, caption, {', '.join(sorted(FIGURE_KINDS[kind]))}")
        if not isinstance(fig.get("select", {}), Mapping):
            _fail(path, f"{where}.select", "expected a mapping dotted.key -> value or [values]")
        if not isinstance(fig.get("labels", {}), Mapping):
            _fail(path, f"{where}.labels", "expected a mapping config value -> display text")
        for opt in ("n", "size"):
            if opt in fig and (not isinstance(fig[opt], int) or isinstance(fig[opt], bool) or fig[opt] < 1):
                _fail(path, f"{where}.{opt}", f"must be a positive integer, got {fig[opt]!r}")


def lookup(config: Mapping[str, Any], dotted: str) -> Any:
    """``lookup(cfg, "model.latent")`` on a config dict; None when absent."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b or (a is not None and b is not None and str(a) == str(b))


def matches(config: Mapping[str, Any], select: Mapping[str, Any] | None) -> bool:
    """True when every ``key: value`` (or ``key: [values]``) of ``select`` holds."""
    for key, want in (select or {}).items():
        have = lookup(config, key)
        options = want if isinstance(want, list) and not isinstance(have, (list, tuple)) else [want]
        if not any(_same(have, w) for w in options):
            return False
    return True

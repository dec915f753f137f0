"""Experiments as data: a YAML file -> a list of resolved, validated runs.

An experiment file (``configs/experiments/*.yaml``)::

    name: table1
    description: one paragraph
    base: {preset: vae, data.binarize: seed-paper}       # every run starts from this
    runs:                                                # the grid, built from combinators
      product:
        - sweep: {preset: [vae, vae-tuned, cvae]}
        - sweep: {model.latent: [3, 5, 10, 20, 200]}
    efforts:                                             # how much compute: dotted overrides
      smoke: {data.train_limit: 1000, train.epochs: 1, eval.k: 20}
      paper: {eval.k: 5000}
    report: {tables: [...], figures: [...]}              # see vaelab.report

The grid combinators follow disentanglement_lib's ``sweep / product / zip / chain``; a
node is one of

* ``sweep: {KEY: [v1, v2, ...]}``   one point per value of one dotted key
* ``set: {KEY: value, ...}``        one point setting several keys
* ``product: [node, ...]``          every combination (later nodes win on shared keys)
* ``zip: [node, ...]``              element-wise, all nodes the same length
* ``chain: [node, ...]``            one after another

Each point is layered as defaults < model preset (its ``preset`` key) < ``base`` < the
point < the effort's overrides < ``--set`` flags (:func:`vaelab.config.resolve_dict`), then
checked by :class:`~vaelab.config.RunConfig`.  A run's id is the first 12 hex digits of
the sha256 of its resolved config's canonical JSON: the same config always gets the same
id, in any experiment, on any machine.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..config import EXPERIMENT_DIR, RunConfig, read_yaml, resolve_dict, unflatten
from ..errors import ConfigError
from ..parts import resolve
from ..report.spec import validate_report_spec
from ..runs import run_label
from ..store import canonical_json

TOP_KEYS = ("name", "description", "base", "runs", "efforts", "report")
# An experiment's name and effort become a directory (sweeps/NAME-EFFORT): a file from a
# colleague must not write where it likes, so no path separators, no '..', no dotfiles.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# An effort may also name ``grid: {KEY: [values]}``: it then keeps only the grid's runs whose
# resolved config has one of those values (the ``demo`` effort runs two latent sizes); and
# ``by_name: {NAME: {KEY: value}}``: overrides for the runs of one model (config ``name``),
# applied after the effort's own (the ``demo`` effort gives the slow IWAE fewer epochs).
EFFORT_GRID, EFFORT_BY_NAME = "grid", "by_name"
Point = dict[str, Any]


# --- combinators ----------------------------------------------------------------------


def sweep(key: str, values: Sequence[Any]) -> list[Point]:
    return [{key: v} for v in values]


def fixed(settings: Mapping[str, Any]) -> list[Point]:
    return [dict(settings)]


def _merged(combo: Sequence[Point]) -> Point:
    """One point from several, later keys winning."""
    point: Point = {}
    for p in combo:
        point.update(p)
    return point


def product(parts: Sequence[list[Point]]) -> list[Point]:
    return [_merged(combo) for combo in itertools.product(*parts)]


def zip_(parts: Sequence[list[Point]]) -> list[Point]:
    lengths = {len(p) for p in parts}
    if len(lengths) > 1:
        raise ConfigError(f"zip needs parts of one length, got lengths {sorted(len(p) for p in parts)}")
    return [_merged(combo) for combo in zip(*parts)]


def chain(parts: Sequence[list[Point]]) -> list[Point]:
    return [dict(p) for part in parts for p in part]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Point:
    """``{"model": {"latent": 3}}`` -> ``{"model.latent": 3}``; dotted keys pass through.
    ``by_latent`` tables stay whole (they are a layer of their own, see config.py)."""
    out: Point = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and key != "by_latent":
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def expand(node: Any, where: str = "runs") -> list[Point]:
    """Parse one combinator node of an experiment file into its points."""
    if isinstance(node, list):
        return chain([expand(n, f"{where}[{i}]") for i, n in enumerate(node)])
    if not isinstance(node, Mapping) or len(node) != 1:
        raise ConfigError(f"experiment '{where}': expected one of sweep, set, product, zip or chain, "
                          f"got {node!r}")
    (op, arg), = node.items()
    if op == "sweep":
        if not isinstance(arg, Mapping) or len(arg) != 1:
            raise ConfigError(f"experiment '{where}.sweep': expected {{KEY: [values]}} with one key, got {arg!r}")
        (key, values), = arg.items()
        if not isinstance(values, list) or not values:
            raise ConfigError(f"experiment '{where}.sweep.{key}': expected a non-empty list, got {values!r}")
        return sweep(str(key), values)
    if op == "set":
        if not isinstance(arg, Mapping):
            raise ConfigError(f"experiment '{where}.set': expected a mapping of settings, got {arg!r}")
        return fixed(flatten(arg))
    combinators = {"product": product, "zip": zip_, "chain": chain}
    if op not in combinators:
        raise ConfigError(f"experiment '{where}': unknown combinator {op!r}; known: sweep, set, "
                          f"product, zip, chain")
    if not isinstance(arg, list) or not arg:
        raise ConfigError(f"experiment '{where}.{op}': expected a non-empty list of nodes, got {arg!r}")
    return combinators[op]([expand(n, f"{where}.{op}[{i}]") for i, n in enumerate(arg)])


# --- runs and experiments -----------------------------------------------------------


def run_id(cfg: RunConfig) -> str:
    """First 12 hex digits of sha256(canonical JSON of the resolved config)."""
    return hashlib.sha256(canonical_json(cfg.to_dict()).encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Run:
    id: str
    config: RunConfig
    point: Point  # the grid point it came from (before the preset and effort)
    position: int = -1  # its place in the whole grid (kept when --only selects some runs)

    @property
    def label(self) -> str:
        return run_label(self.config)


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    path: Path
    effort: str
    runs: list[Run]
    spec: dict[str, Any] = field(repr=False)  # the file's content, stored with the sweep
    partial: bool = False  # some cells of the grid (--only): they join the stored ones, not replace them

    @property
    def report(self) -> dict[str, Any]:
        return self.spec.get("report") or {}


def experiment_names() -> list[str]:
    return sorted(p.stem for p in EXPERIMENT_DIR.glob("*.yaml"))


def find_experiment(name_or_path: str | Path) -> Path:
    """A shipped experiment by name (``table1``), or a YAML file by path."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"experiment file {path} does not exist")
        return path
    shipped = EXPERIMENT_DIR / f"{text}.yaml"
    if not shipped.exists():
        raise ConfigError(f"unknown experiment {text!r}; known: {', '.join(experiment_names())} "
                          f"(or give a path to a YAML file)")
    return shipped


def _mapping(data: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: '{key}' must be a mapping, got {type(value).__name__}")
    return dict(value)


def _effort_grid(spec: Any, where: str) -> dict[str, list[Any]]:
    if spec is None:
        return {}
    if not isinstance(spec, Mapping) or not all(isinstance(v, list) and v for v in spec.values()):
        raise ConfigError(f"{where}: expected {{KEY: [values, ...]}}, got {spec!r}")
    return {str(k): list(v) for k, v in flatten(spec).items()}


def _kept(cfg: RunConfig, keep: Mapping[str, list[Any]], what: str = "effort grid") -> bool:
    """Whether a resolved config matches every key of ``keep`` (one of its values)."""
    if not keep:
        return True
    flat = flatten(cfg.to_dict())
    for key, values in keep.items():
        if key not in flat:
            raise ConfigError(f"{what} key {key!r} is not a config key")
        value = flat[key]
        if value not in values and not (isinstance(value, (list, tuple)) and list(value) in values):
            return False
    return True


# Short names ``--only`` accepts besides dotted config keys.
ONLY_ALIASES = {"model": "name", "latent": "model.latent"}


def parse_only(text: str) -> dict[str, list[Any]]:
    """``--only model=cvae,latent=5,latent=10`` -> ``{"name": ["cvae"], "model.latent": [5, 10]}``:
    a run is kept when it matches every key, a key given twice matching either value.
    Keys are dotted config keys or ``model`` (the preset name) and ``latent``."""
    keep: dict[str, list[Any]] = {}
    for pair in (p.strip() for p in text.split(",")):
        key, eq, raw = pair.partition("=")
        if not pair or not eq or not key.strip() or not raw.strip():
            raise ConfigError(f"--only expects KEY=VALUE[,KEY=VALUE...], e.g. model=cvae,latent=5; got {text!r}")
        key = key.strip()
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw.strip()
        keep.setdefault(ONLY_ALIASES.get(key, key), []).append(value)
    return keep


def load_experiment(name_or_path: str | Path, effort: str, overrides: Mapping[str, Any] | None = None,
                    only: Sequence[Mapping[str, list[Any]]] = ()) -> Experiment:
    """Read an experiment file and expand it at one effort into resolved runs.

    ``only``: keep just the runs matching one of these filters (:func:`parse_only`), to run
    some cells of a grid (its ids, and so its stored results, are the whole grid's).
    Every problem (unknown key, unknown effort, bad combinator, a point that does not
    make a valid config) is a :class:`ConfigError` naming the file, before anything runs.
    """
    path = find_experiment(name_or_path)
    data = read_yaml(path)
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(TOP_KEYS)}")
    if "runs" not in data:
        raise ConfigError(f"{path}: no 'runs' grid")
    name = str(data.get("name") or path.stem)
    for what, value in (("name", name), ("effort", effort)):
        if not SAFE_NAME.match(value) or len(value) > 100:
            raise ConfigError(f"{path}: experiment {what} {value!r} must be 1-100 letters, digits, '.', '_' "
                              f"or '-' starting with a letter or digit (it names a directory)")
    efforts = _mapping(data, "efforts", path)
    if effort not in efforts:
        known = ", ".join(efforts) or "none"
        raise ConfigError(f"{path}: no effort {effort!r}; this experiment defines: {known}")
    effort_spec = efforts[effort] or {}
    if not isinstance(effort_spec, Mapping):
        raise ConfigError(f"{path}: efforts.{effort} must be a mapping of KEY: value overrides")
    keep = _effort_grid(effort_spec.get(EFFORT_GRID), f"{path}: efforts.{effort}.{EFFORT_GRID}")
    by_name = effort_spec.get(EFFORT_BY_NAME) or {}
    if not isinstance(by_name, Mapping) or not all(isinstance(v, Mapping) for v in by_name.values()):
        raise ConfigError(f"{path}: efforts.{effort}.{EFFORT_BY_NAME} must map model names to KEY: value overrides")
    effort_over = flatten({k: v for k, v in effort_spec.items() if k not in (EFFORT_GRID, EFFORT_BY_NAME)})
    base = flatten(_mapping(data, "base", path))
    points = expand(data["runs"])
    late = {**effort_over, **dict(overrides or {})}

    runs: list[Run] = []
    seen: set[str] = set()
    for i, point in enumerate(points):
        layered = {**base, **point}
        try:
            cfg = RunConfig.from_dict(resolve_dict(unflatten(layered), None, late))
            if cfg.name in by_name:
                cfg = RunConfig.from_dict(resolve_dict(unflatten(layered), None,
                                                       {**effort_over, **flatten(by_name[cfg.name]),
                                                        **dict(overrides or {})}))
            cfg = resolve(cfg)
        except ConfigError as err:
            shown = ", ".join(f"{k}={v}" for k, v in point.items())
            raise ConfigError(f"{path}: run {i + 1} ({shown}) at effort {effort}: {err}") from None
        if not _kept(cfg, keep) or (only and not any(_kept(cfg, o, "--only") for o in only)):
            continue
        rid = run_id(cfg)
        if rid not in seen:  # two grid points may resolve to one config: run it once
            seen.add(rid)
            runs.append(Run(rid, cfg, point, i))
    if not runs:
        raise ConfigError(f"{path}: the grid is empty" + (" after --only; `vaelab sweep NAME --list` shows its runs"
                                                          if only else ""))

    validate_report_spec(data.get("report") or {}, path)  # the report's own section, checked by the report
    return Experiment(name, str(data.get("description") or "").strip(), path, effort, runs, dict(data),
                      partial=bool(only))

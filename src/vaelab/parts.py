"""Every part a config can name, and the check that turns what a user wrote into a run's config.

Each package lists its own parts (``data.DATASETS``, ``nets.NETS``, ...); this module
gathers those tables by kind (:data:`KINDS`) and by config key (:data:`NAMED_FIELDS`).
They are the one source of truth for names: ``config.py`` holds no list of them.
Installed packages add parts through the ``vaelab.parts`` entry points and a notebook
through :func:`register` (:mod:`vaelab.registry` says how).

:func:`resolve` is called on every config a user gives (``vaelab train``, each run of an
experiment, ``vaelab.train``) before anything is written: it checks every name (a
misspelt one stops everything, with a did-you-mean), the parts' options, and replaces the
``auto`` values that depend on the parts (``model.init``, ``objective.kl``) by what they
mean, so that a run's saved config names them.  Parts carry their own behaviour: nothing
here tests a part's name.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .config import RunConfig, part_options
from .data import BINARIZATIONS, DATASETS, NOISES, find_format, is_path
from .distributions import LIKELIHOODS, PRIORS
from .errors import ConfigError
from .models import MODELS
from .nets import ACTIVATIONS, INITS, NETS, resolve_init
from .objectives import OBJECTIVES
from .registry import SESSION, Registry
from .training.optim import OPTIMIZERS, SCHEDULES

T = TypeVar("T")

# kind (what vaelab.register and the entry points call it) -> its table
KINDS: dict[str, Registry] = {
    "dataset": DATASETS, "model": MODELS, "net": NETS, "activation": ACTIVATIONS, "init": INITS,
    "likelihood": LIKELIHOODS, "prior": PRIORS, "objective": OBJECTIVES, "noise": NOISES,
    "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "binarize": BINARIZATIONS,
}

# dotted config key -> (kind, values allowed besides the table's names)
NAMED_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "data.dataset": ("dataset", ()),
    "data.binarize": ("binarize", ()),
    "model.kind": ("model", ()),
    "model.arch": ("net", ()),
    "model.activation": ("activation", ()),
    "model.init": ("init", ("auto",)),
    "model.likelihood": ("likelihood", ("auto",)),
    "model.prior": ("prior", ()),
    "objective.name": ("objective", ()),
    "objective.noise": ("noise", ()),
    "optim.name": ("optimizer", ()),
    "optim.schedule": ("schedule", ()),
}

# The sections whose parts may take options (``model.options``, ``objective.options``).
OPTION_SECTIONS = ("model", "objective")


def _value(cfg: RunConfig, key: str) -> Any:
    section, field = key.split(".")
    return getattr(getattr(cfg, section), field)


def table(kind: str) -> Registry:
    try:
        return KINDS[kind]
    except KeyError:
        raise ConfigError(f"unknown kind of part {kind!r}; the kinds are {', '.join(KINDS)}") from None


def check_names(cfg: RunConfig) -> RunConfig:
    """Raise :class:`ConfigError` naming the key, the unknown value, the known ones and the
    closest match, for the first name-valued field that no table knows.  A ``data.dataset``
    that names no dataset must be the path of an .npz file or an image folder."""
    for key, (kind, extra) in NAMED_FIELDS.items():
        value = _value(cfg, key)
        if value in extra:
            continue
        if key == "data.dataset" and isinstance(value, str) and is_path(value):
            find_format(value)  # DataError: no such file, or of no known format
            continue
        try:
            KINDS[kind].get(value)  # the table's own error names the known parts and the closest
        except ConfigError as err:
            more = ", or the path of an .npz file or an image folder" if key == "data.dataset" else ""
            raise ConfigError(f"config key '{key}': {err}{more}") from None
    return cfg


def _uses(cfg: RunConfig, section: str) -> dict[str, Any]:
    """name -> part, for the parts a config section names (those that can take options)."""
    keys = [k for k in NAMED_FIELDS if k.startswith(section + ".")]
    out = {}
    for key in keys:
        value = _value(cfg, key)
        kind, extra = NAMED_FIELDS[key]
        if value not in extra:
            out[value] = KINDS[kind].get(value)
    return out


def check_options(cfg: RunConfig) -> None:
    """Every ``options`` entry names a part the section uses, and that part's ``Options``
    (a dataclass) accepts it."""
    for section in OPTION_SECTIONS:
        sec = getattr(cfg, section)
        used = _uses(cfg, section)
        for name in sec.options:
            if name not in used:
                raise ConfigError(f"config key '{section}.options.{name}': this config uses no part named {name!r} "
                                  f"(its {section} parts: {', '.join(sorted(used))})")
            options_cls = getattr(used[name], "Options", None)
            if options_cls is None:
                raise ConfigError(f"config key '{section}.options.{name}': the part {name!r} takes no options")
            part_options(sec, name, options_cls)


def closed_form_kl(cfg: RunConfig) -> bool:
    """Whether the objective can use a closed-form KL and the model and prior have one."""
    return all(getattr(part, "closed_form_kl", False) for part in (
        OBJECTIVES.get(cfg.objective.name), MODELS.get(cfg.model.kind), PRIORS.get(cfg.model.prior)))


def resolve(cfg: RunConfig) -> RunConfig:
    """``cfg`` checked against the part tables, with its part-dependent ``auto`` values
    resolved: ``model.init`` (the architecture's choice) and ``objective.kl`` (the closed
    form where the objective, model and prior all have one, else the sampled KL)."""
    check_names(cfg)
    check_options(cfg)
    updates: dict[str, Any] = {}
    if cfg.model.init == "auto":
        updates["model.init"] = resolve_init(cfg.model)
    closed = closed_form_kl(cfg)
    if cfg.objective.kl == "auto":
        updates["objective.kl"] = "analytic" if closed else "sampled"
    elif cfg.objective.kl == "analytic" and not closed:
        raise ConfigError(f"config key 'objective.kl': 'analytic' needs a closed-form KL, which objective "
                          f"{cfg.objective.name!r} with model {cfg.model.kind!r} and prior {cfg.model.prior!r} "
                          f"has not; use kl: auto or sampled")
    return cfg.replace(**updates) if updates else cfg


def session_parts(cfg: RunConfig) -> list[str]:
    """The parts ``cfg`` names that exist only in this process (:func:`register`), as
    ``"prior 'mine'"``: a sweep's workers, new processes, cannot see them."""
    out = []
    for key, (kind, _) in NAMED_FIELDS.items():
        value = _value(cfg, key)
        if isinstance(value, str) and KINDS[kind].origin(value) == SESSION:
            out.append(f"{kind} {value!r}")
    return out


def register(kind: str, name: str, obj: Any = None) -> Any:
    """Add a part of ``kind`` under ``name`` for this process: ``register("prior", "mine",
    MyPrior)``, or as a decorator, ``@register("prior", "mine")``.  Returns the part (the
    decorator returns it unchanged).  See :data:`KINDS` for the kinds and what each part
    must provide (the built-in parts of the same kind show it)."""
    reg = table(kind)
    if obj is not None:
        return reg.register(name, obj)

    def decorate(part: T) -> T:
        return reg.register(name, part)

    return decorate



"""Every part a config can name, and the check that a config names only known ones.

Each package lists its own parts (``data.DATASETS``, ``nets.NETS``, ...); this module
gathers those lists by config key.  Loaders call :func:`check_names` as soon as a config
is resolved (``vaelab train``, every run of an experiment), so a misspelt name stops
everything before anything is written, with a did-you-mean.
"""

from __future__ import annotations

from .config import RunConfig
from .data import DATASETS, NOISES
from .distributions import LIKELIHOODS, PRIORS
from .errors import ConfigError
from .models import MODELS
from .nets import NETS
from .objectives import OBJECTIVES
from .registry import Registry
from .train.optim import OPTIMIZERS

# dotted config key -> the registry its value must be in ("auto" is also allowed where noted)
NAMED_FIELDS: dict[str, tuple[Registry, tuple[str, ...]]] = {
    "data.dataset": (DATASETS, ()),
    "model.kind": (MODELS, ()),
    "model.arch": (NETS, ()),
    "model.likelihood": (LIKELIHOODS, ("auto",)),
    "model.prior": (PRIORS, ()),
    "objective.name": (OBJECTIVES, ()),
    "objective.noise": (NOISES, ()),
    "optim.name": (OPTIMIZERS, ()),
}


def check_names(cfg: RunConfig) -> RunConfig:
    """Raise :class:`ConfigError` naming the key, the unknown value, the known ones and the
    closest match, for the first name-valued field that no registry knows."""
    for key, (registry, extra) in NAMED_FIELDS.items():
        section, field = key.split(".")
        value = getattr(getattr(cfg, section), field)
        if value in extra:
            continue
        try:
            registry.get(value)  # the registry's own error names the known parts and the closest
        except ConfigError as err:
            raise ConfigError(f"config key '{key}': {err}") from None
    return cfg

"""Every part a config can name, and the check that a config names only known ones.

Importing this module imports the packages that register the parts (datasets and noises
in ``data``, architectures in ``nets``, likelihoods and priors in ``distributions``,
models, objectives, optimisers), so :func:`check_names` sees all of them.  Loaders call
it as soon as a config is resolved (``vaelab train``, every run of an experiment), so a
misspelt name stops everything before anything is written, with a did-you-mean.
"""

from __future__ import annotations

from . import data, distributions, models, nets, objectives  # noqa: F401  (register the parts)
from .config import RunConfig
from .errors import ConfigError
from .registry import DATASETS, LIKELIHOODS, MODELS, NETS, NOISES, OBJECTIVES, OPTIMIZERS, PRIORS, Registry
from .train import optim  # noqa: F401  (register the optimisers)

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

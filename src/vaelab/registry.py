"""Name -> class registries, one per kind of part.

Parts register themselves with a decorator::

    @PRIORS.register("normal")
    class StandardNormal(nn.Module): ...

and are looked up by the name written in a config.  An unknown name is a
:class:`~vaelab.errors.ConfigError` that lists the known ones, never an ``if name ==``
chain.
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            close = difflib.get_close_matches(str(name), list(self._items), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown {self.kind} {name!r}{hint}; choose from {known}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)


DATASETS: Registry = Registry("dataset")
DATA_FILES: Registry = Registry("dataset")  # name -> files(data_dir, download=...) -> [Path]
NETS: Registry = Registry("architecture")
LIKELIHOODS: Registry = Registry("likelihood")
PRIORS: Registry = Registry("prior")
MODELS: Registry = Registry("model")
OBJECTIVES: Registry = Registry("objective")
NOISES: Registry = Registry("noise")
OPTIMIZERS: Registry = Registry("optimizer")
EXECUTORS: Registry = Registry("executor")

"""Name -> part tables, one per kind of part a user names (in a config or on the command line).

A package lists its own parts explicitly, next to their code::

    PRIORS = Registry("prior", {"normal": StandardNormalPrior, "vamp": VampPrior})

(``distributions/__init__.py``), and callers look them up by the name written in a
config.  Nothing is registered by the side effect of an import.  An unknown name is a
:class:`~vaelab.errors.ConfigError` that lists the known ones with a did-you-mean, never
an ``if name ==`` chain.  :mod:`vaelab.parts` gathers the registries a config can name.
"""

from __future__ import annotations

import difflib
from typing import Generic, Iterator, Mapping, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, items: Mapping[str, T]):
        self.kind = kind
        self._items: dict[str, T] = dict(items)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
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

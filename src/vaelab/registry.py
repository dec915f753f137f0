"""Name -> part tables, one per kind of part a user names (in a config or on the command line).

A package lists its own parts explicitly, next to their code::

    PRIORS = Registry("prior", {"normal": StandardNormalPrior, "vamp": VampPrior}, plugins="prior")

(``distributions/__init__.py``), and callers look them up by the name written in a
config.  Nothing of vaelab's is registered by the side effect of an import.  An unknown
name is a :class:`~vaelab.errors.ConfigError` that lists the known ones with a
did-you-mean, never an ``if name ==`` chain.  :mod:`vaelab.parts` gathers the registries a
config can name.

Two ways in from outside (``plugins`` names the kind a registry takes):

* an installed package declares entry points in the group :data:`ENTRY_POINT_GROUP`
  (``vaelab.parts``), each named ``KIND.NAME`` and pointing at the part
  (``prior.mog = "vaelab_mog:MixturePrior"``).  Their names are read from the package
  metadata the first time a registry of that kind is asked for a name it does not hold, or
  for its list; the object itself is imported only when first used.  Every process does
  this for itself, so sweep workers and Ray tasks see the same parts as the command that
  started them;
* :meth:`Registry.register` (``vaelab.register`` in a notebook) adds a part to this
  process only.
"""

from __future__ import annotations

import difflib
import functools
from importlib import metadata
from typing import Any, Generic, Iterator, Mapping, TypeVar

from .errors import ConfigError

T = TypeVar("T")

ENTRY_POINT_GROUP = "vaelab.parts"

# Where a registered part came from (Registry.origin).
BUILTIN, PLUGIN, SESSION = "built-in", "plugin", "session"


_OPEN: list["Registry"] = []  # the tables that take plugins, for rescan_plugins()


def rescan_plugins() -> None:
    """Read the installed packages' entry points again (a plugin installed while this
    process runs, e.g. from a notebook); parts already loaded stay."""
    plugin_entries.cache_clear()
    for reg in _OPEN:
        reg._scanned = False
        reg._entries.clear()


@functools.lru_cache(maxsize=1)
def plugin_entries() -> dict[str, dict[str, metadata.EntryPoint]]:
    """{kind: {name: entry point}} of every installed package's ``vaelab.parts`` entry points,
    read once per process.  A malformed entry name is one ConfigError naming the package."""
    out: dict[str, dict[str, metadata.EntryPoint]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        kind, dot, name = ep.name.partition(".")
        if not dot or not kind or not name:
            package = getattr(ep.dist, "name", "an installed package")
            raise ConfigError(f"{package}: entry point {ep.name!r} in group {ENTRY_POINT_GROUP} must be named "
                              f"KIND.NAME (e.g. prior.mog); fix that package's metadata or uninstall it")
        out.setdefault(kind, {})[name] = ep
    return out


class Registry(Generic[T]):
    """Parts of one kind by name.  ``plugins``: the kind name under which installed packages
    and :meth:`register` may add parts (None: this table is closed)."""

    def __init__(self, kind: str, items: Mapping[str, T], plugins: str | None = None):
        self.kind = kind
        self.plugins = plugins
        self._items: dict[str, T] = dict(items)
        self._origin: dict[str, str] = {name: BUILTIN for name in items}
        self._entries: dict[str, metadata.EntryPoint] = {}
        self._scanned = plugins is None
        if plugins is not None:
            _OPEN.append(self)

    def _scan(self) -> None:
        if not self._scanned:
            self._scanned = True
            for name, ep in plugin_entries().get(self.plugins, {}).items():
                if name not in self._items:  # a built-in or session part keeps its name
                    self._entries[name] = ep

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            pass
        self._scan()
        if isinstance(name, str) and name in self._entries:
            return self._load(name)
        known = ", ".join(self.names()) or "none"
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown {self.kind} {name!r}{hint}; choose from {known}")

    def _load(self, name: str) -> T:
        ep = self._entries[name]
        try:
            obj = ep.load()
        except Exception as err:  # a broken plugin: one line naming it, not a traceback
            raise ConfigError(f"the plugin part {self.plugins}.{name} = {ep.value} could not be loaded "
                              f"({type(err).__name__}: {err}); fix or uninstall the package that provides it"
                              ) from None
        self._items[name] = obj
        self._origin[name] = PLUGIN
        del self._entries[name]
        return obj

    def register(self, name: str, obj: T) -> T:
        """Add ``obj`` under ``name`` in this process (a notebook's own part).  A built-in or
        plugin name cannot be taken; registering the same name again replaces a session part."""
        if self.plugins is None:
            raise ConfigError(f"{self.kind} parts cannot be added; the kinds that can: see vaelab.parts.KINDS")
        if not isinstance(name, str) or not name or name.strip() != name or "=" in name or "," in name:
            raise ConfigError(f"a {self.kind} name must be a non-empty string without spaces, '=' or ',', "
                              f"got {name!r}")
        self._scan()
        taken = self._origin.get(name) or (PLUGIN if name in self._entries else None)
        if taken in (BUILTIN, PLUGIN):
            raise ConfigError(f"{self.kind} {name!r} is a {taken} part already; register yours under another name")
        self._items[name] = obj
        self._origin[name] = SESSION
        return obj

    def origin(self, name: str) -> str | None:
        """``built-in``, ``plugin`` or ``session`` (registered in this process), None if unknown."""
        self._scan()
        if name in self._entries:
            return PLUGIN
        return self._origin.get(name)

    def __contains__(self, name: object) -> bool:
        if name in self._items:
            return True
        self._scan()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        self._scan()
        return sorted({*self._items, *self._entries})

    def items(self) -> list[tuple[str, Any]]:
        """(name, part) for every part, loading plugin parts."""
        return [(name, self.get(name)) for name in self.names()]

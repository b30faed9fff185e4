"""The plugin host: a typed facade over ``pluggy.PluginManager`` and the registries it fills.

Built-in plugins are registered first, by dotted name, then the entry points of
group ``persist_hooks`` (each loaded in its own ``try`` with a warning naming the
entry point and its distribution, so one broken plugin never breaks the host),
then plugins registered at run time with :func:`register`.  No plugin manager is
created at import time; :func:`reset` drops it (tests use this).

The core's own storage backends (:data:`CORE_BACKENDS`) cannot be replaced by a
plugin, so :func:`backend_class` resolves them without building the host: reading
an npy item in a fresh interpreter loads no plugin (finding and importing every
installed plugin took ~60 ms here, against 0.5 ms for the read itself).
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import pluggy

from . import hookspecs
from .errors import BackendError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .backends.base import Backend
    from .rep import Representer

__all__ = [
    "BUILTIN_PLUGINS",
    "CORE_BACKENDS",
    "KNOWN_BACKEND_DISTRIBUTIONS",
    "backend_class",
    "backends",
    "plugin_manager",
    "register",
    "representer_chain",
    "representer_for",
    "representers",
    "reset",
    "safe_callables",
    "unregister",
]

BUILTIN_PLUGINS: tuple[str, ...] = (
    "persist_hooks.representers.builtins",
    "persist_hooks.representers.stdlib",
    "persist_hooks.representers.numpy",
    "persist_hooks.representers.dask_array",
    "persist_hooks.backends.npy",
)
"""Dotted names of the plugins the core registers, in this order, before any other."""

CORE_BACKENDS: Mapping[str, str] = {"npy": "persist_hooks.backends.npy:NpyBackend"}
"""The core's storage backends, ``name -> "module:class"``: no plugin replaces them."""

KNOWN_BACKEND_DISTRIBUTIONS: Mapping[str, str] = {
    "npy": "persist-hooks",
    "hdf5": "persist-hooks-hdf5",
    "zarr": "persist-hooks-zarr",
}
"""Backend names whose distribution we know, for the install hint in errors."""

DISABLE_AUTOLOAD_ENV = "PERSIST_HOOKS_DISABLE_PLUGIN_AUTOLOAD"

_lock = threading.RLock()


class _Host:
    """One plugin manager plus the registries computed from it (built once, on first use)."""

    def __init__(self) -> None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        for dotted in BUILTIN_PLUGINS:
            pm.register(importlib.import_module(dotted), name=dotted)
        if not os.environ.get(DISABLE_AUTOLOAD_ENV):
            self._load_entry_points(pm)
        pm.check_pending()
        self.pm = pm
        self._representers: dict[type | str, tuple[Representer, str, int]] | None = None
        self._by_type: dict[type, Representer | None] = {}
        self._backends: dict[str, type[Backend]] | None = None

    @staticmethod
    def _load_entry_points(pm: pluggy.PluginManager) -> None:
        for ep in entry_points(group=hookspecs.PROJECT):
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
                try:
                    pm.check_pending()  # a misspelt hook name is this plugin's fault alone
                except Exception:
                    pm.unregister(name=ep.name)
                    raise
            except Exception as exc:  # one broken plugin never breaks the host
                warnings.warn(
                    f"persist_hooks: skipping plugin entry point {ep.name!r} = {ep.value!r} "
                    f"from {dist}: {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _representer_table(self) -> dict[type | str, tuple[Representer, str, int]]:
        if self._representers is None:
            merged: dict[type | str, tuple[Representer, str, int]] = {}
            # hookimpls come in registration order: merging in that order lets later win;
            # the rank also decides between a type key and a lazy "module.QualName" key
            impls = self.pm.hook.persist_hooks_representers.get_hookimpls()
            for rank, impl in enumerate(impls):
                table = cast("Mapping[type | str, Representer]", impl.function())
                for key, rep in table.items():
                    merged[key] = (rep, impl.plugin_name, rank)
            self._representers = merged
        return self._representers

    def registered_representers(self) -> dict[type | str, Representer]:
        return {key: entry[0] for key, entry in self._representer_table().items()}

    def plugin_names(self) -> dict[type | str, str]:
        return {key: entry[1] for key, entry in self._representer_table().items()}

    def _lookup(self, cls: type) -> Representer | None:
        table = self._representer_table()
        by_type = table.get(cls)
        by_name = table.get(f"{cls.__module__}.{cls.__qualname__}")
        if by_type is None or (by_name is not None and by_name[2] > by_type[2]):
            by_type = by_name
        return None if by_type is None else by_type[0]

    def representer_for(self, cls: type) -> Representer | None:
        try:
            return self._by_type[cls]
        except KeyError:
            pass
        found: Representer | None = None
        for base in cls.__mro__:
            found = self._lookup(base)
            if found is not None:
                break
        self._by_type[cls] = found
        return found

    def representers_chain(self, cls: type) -> list[Representer]:
        chain: list[Representer] = []
        for base in cls.__mro__:
            rep = self._lookup(base)
            if rep is not None and rep not in chain:
                chain.append(rep)
        return chain

    def backends(self) -> dict[str, type[Backend]]:
        if self._backends is None:
            merged: dict[str, type[Backend]] = {}
            for result in reversed(self.pm.hook.persist_hooks_backends()):
                for cls in result:
                    core = _core_backend(cls.name)
                    if core is not None and cls is not core:
                        warnings.warn(
                            f"persist_hooks: ignoring storage backend {cls.__module__}."
                            f"{cls.__qualname__}: {cls.name!r} is a backend of the core, "
                            "which plugins cannot replace; register it under another name",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        continue
                    merged[cls.name] = cls
            self._backends = merged
        return self._backends

    def invalidate(self) -> None:
        self._representers = None
        self._by_type.clear()
        self._backends = None


def entry_points(*, group: str) -> Iterable[EntryPoint]:
    """``importlib.metadata.entry_points(group=group)``, imported on first use: importing
    ``importlib.metadata`` takes ~25 ms (it brings the ``email`` package)."""
    from importlib.metadata import entry_points as installed

    return installed(group=group)


_host: _Host | None = None


def _get_host() -> _Host:
    global _host
    host = _host
    if host is None:
        with _lock:
            if _host is None:
                _host = _Host()
            host = _host
    return host


def plugin_manager() -> pluggy.PluginManager:
    """Return the plugin manager, creating it (and loading plugins) on first use.

    Example:
        >>> pm = plugin_manager()
        >>> pm.project_name
        'persist_hooks'
    """
    return _get_host().pm


def register(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object at run time; it overrides everything registered before.

    Example:
        >>> import types
        >>> from persist_hooks import Rep, hookimpl
        >>> class Celsius(float): pass
        >>> mod = types.SimpleNamespace(persist_hooks_representers=hookimpl(
        ...     lambda: {Celsius: lambda c: Rep("Celsius(v)", {"v": float(c)}, [("t", "Celsius")])}))
        >>> register(mod, name="celsius-doc")
        >>> representers()[Celsius] is not None
        True
        >>> unregister("celsius-doc")
    """
    host = _get_host()
    with _lock:
        registered = host.pm.register(plugin, name=name)
        try:
            host.pm.check_pending()
        except Exception:
            host.pm.unregister(plugin, name=registered)
            raise
        finally:
            host.invalidate()


def unregister(name: str) -> None:
    """Remove a plugin registered by :func:`register` (or any plugin, by name).

    Example:
        >>> unregister("no-such-plugin")  # unknown names are ignored
    """
    host = _get_host()
    with _lock:
        if host.pm.get_plugin(name) is not None:
            host.pm.unregister(name=name)
        host.invalidate()


def reset() -> None:
    """Forget the plugin manager; the next use builds it again (for tests).

    Example:
        >>> reset()
    """
    global _host
    with _lock:
        _host = None


def representers() -> dict[type | str, str]:
    """Map every registered type (or lazy ``"module.QualName"``) to the plugin representing it.

    Example:
        >>> from fractions import Fraction
        >>> representers()[Fraction]
        'persist_hooks.representers.stdlib'
    """
    return _get_host().plugin_names()


def representer_for(cls: type) -> Representer | None:
    """Return the representer for ``cls`` (exact type, then MRO), cached per type.

    Example:
        >>> representer_for(bool) is not None
        True
    """
    return _get_host().representer_for(cls)


def representer_chain(cls: type) -> list[Representer]:
    """Every representer applicable to ``cls``, most specific first (for declining ones).

    Example:
        >>> len(representer_chain(bool)) >= 1
        True
    """
    return _get_host().representers_chain(cls)


def backends() -> list[str]:
    """List the names of the installed storage backends.

    Example:
        >>> "npy" in backends()
        True
    """
    return sorted(_get_host().backends())


def backend_class(name: str) -> type[Backend]:
    """Return the backend class registered as ``name``.

    Raises :class:`persist_hooks.BackendError` naming the installed backends and
    the distribution to install when ``name`` is unknown.

    Example:
        >>> backend_class("npy").name
        'npy'
    """
    core = _core_backend(name)
    if core is not None:  # no plugin replaces it: no need to load them
        return core
    table = _get_host().backends()
    try:
        return table[name]
    except KeyError:
        pass
    installed = ", ".join(sorted(table)) or "none"
    dist = KNOWN_BACKEND_DISTRIBUTIONS.get(name)
    hint = (
        f"install it with `pip install {dist}`"
        if dist
        else "check the spelling, or install the distribution that provides it"
    )
    raise BackendError(f"storage backend {name!r} is not installed ({hint}); installed backends: {installed}")


def _core_backend(name: str) -> type[Backend] | None:
    """The core's backend class called ``name`` (imported now), or ``None``."""
    target = CORE_BACKENDS.get(name)
    if target is None:
        return None
    module, _, qualname = target.partition(":")
    return cast("type[Backend]", getattr(importlib.import_module(module), qualname))


def safe_callables() -> frozenset[str]:
    """The union of callables that registered plugins declare safe to call on load.

    Example:
        >>> "fractions.Fraction" in safe_callables()
        True
    """
    out: set[str] = set()
    for result in _get_host().pm.hook.persist_hooks_safe_callables():
        out.update(result)
    return frozenset(out)



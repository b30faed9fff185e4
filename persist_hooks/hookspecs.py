"""Hook specifications: the only way the core learns about types and backends.

Every hook of project ``persist_hooks`` is declared here, and these docstrings are
the plugin author's reference.  A plugin is any module (or object) with functions
named like the hooks below, decorated with :data:`hookimpl`; a distribution makes
it known through an entry point::

    [project.entry-points.persist_hooks]
    mytypes = "mypackage.persist_plugin"

Built-in behaviour is registered exactly the same way (see
``persist_hooks.plugins.BUILTIN_PLUGINS``), first, so a plugin registered later
overrides a built-in for the same type or backend name.

Hooks are called with keyword arguments and collect every plugin's answer (none is
first-result).  The host merges the answers in registration order: for the same
type or backend name the plugin registered last wins.

Representers and cycles
-----------------------
A representer ``representer(obj) -> Rep`` returns :class:`persist_hooks.Rep`
(or ``None`` to decline, letting a less specific representer in the type's MRO
try).  ``Rep.expr`` must rebuild the whole object from ``Rep.args``.  A
representer of a *mutable* object that can sit on a reference cycle (a container
holding its parent, an instance referring back to its owner) should also give
``new`` and ``fill``::

    Rep("Node(name, children)", {"name": n.name, "children": n.children},
        [("mytree", "Node")],
        new="Node.__new__(Node)",
        fill="self.name = name; self.children = children")

``new`` builds the object before its contents (it may use the ``args`` that cannot
lead back to the object, usually none); ``fill`` completes it with the object
bound to ``self``.  The archive emits ``expr`` whenever it can and the two phases
only when a cycle must be closed at this object.  A cycle that passes only
through objects without ``new``/``fill`` (tuples, frozensets, objects whose
constructor needs the cycle) cannot be built and is reported as
:class:`persist_hooks.UnbuildableCycleError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

import pluggy

if TYPE_CHECKING:
    from .backends.base import Backend
    from .rep import Representer

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "persist_hooks"

_F = TypeVar("_F", bound=Callable[..., object])
_hookspec = pluggy.HookspecMarker(PROJECT)
_hookimpl = pluggy.HookimplMarker(PROJECT)


def hookspec(function: _F) -> _F:
    """Mark a function as a hook specification of project ``persist_hooks``.

    Example:
        >>> @hookspec
        ... def persist_hooks_example() -> None: ...
    """
    return _hookspec(function)


def hookimpl(function: _F) -> _F:
    """Mark a function as an implementation of a ``persist_hooks`` hook.

    Example:
        >>> from persist_hooks import Rep
        >>> @hookimpl
        ... def persist_hooks_representers():
        ...     return {complex: lambda z: Rep("complex(r, i)", {"r": z.real, "i": z.imag})}
    """
    return _hookimpl(function)


@hookspec
def persist_hooks_representers() -> Mapping[type | str, Representer]:  # type: ignore[empty-body]
    """Contribute representers for types.

    Return a mapping from a type (or a ``"module.QualName"`` string, resolved
    lazily so the plugin need not import the type's package) to a representer
    ``representer(obj) -> Rep | None``.

    Dispatch is by type: the exact type first, then the type's MRO; it is
    computed once per type and cached, so the number of plugins never costs
    anything per object.  Among plugins, the one registered last wins for the
    same key.

    Example:
        >>> from persist_hooks import Rep, hookimpl
        >>> class Point:
        ...     def __init__(self, x, y): self.x, self.y = x, y
        >>> @hookimpl
        ... def persist_hooks_representers():
        ...     return {Point: lambda p: Rep("Point(x, y)", {"x": p.x, "y": p.y},
        ...                                  [("geometry", "Point")])}
    """


@hookspec
def persist_hooks_backends() -> Iterable[type[Backend]]:  # type: ignore[empty-body]
    """Contribute storage backend classes (subclasses of ``persist_hooks.backends.Backend``).

    Each class has a unique ``name`` (``"npy"``, ``"hdf5"``, ``"zarr"``); the one
    registered last wins for the same name.  A backend module must import its
    heavy dependencies (h5py, zarr) lazily, inside its methods, so that listing
    backends stays cheap.

    Example:
        >>> from persist_hooks import hookimpl
        >>> @hookimpl
        ... def persist_hooks_backends():
        ...     from persist_hooks.backends.npy import NpyBackend
        ...     return [NpyBackend]
    """


@hookspec
def persist_hooks_safe_callables() -> Iterable[str]:  # type: ignore[empty-body]
    """Declare the callables that this plugin's representers emit.

    Return dotted names (``"fractions.Fraction"``, ``"numpy.array"``).  Safe
    loading (``restore(src, safe=True)``, ``DataSet(..., trusted=False)``) calls
    only callables in the union of these declarations plus the user's
    ``safe_callables=``.

    Example:
        >>> from persist_hooks import hookimpl
        >>> @hookimpl
        ... def persist_hooks_safe_callables():
        ...     return ["geometry.Point"]
    """

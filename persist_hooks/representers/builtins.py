"""Representers for builtin types: containers, classes, functions and builtin singletons.

The archive builds ``list``, ``tuple``, ``dict``, ``set`` and ``frozenset`` natively
(as displays, fast) as long as the representer registered for them is the one
defined here; a plugin that registers its own takes over.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any

from ..hookspecs import hookimpl
from ..rep import Rep, Representer
from ._naming import global_rep

__all__ = [
    "represent_dict",
    "represent_frozenset",
    "represent_list",
    "represent_set",
    "represent_tuple",
]


def represent_list(obj: list[Any]) -> Rep | None:
    """Represent a list (subclasses are declined: they go through ``__reduce_ex__``).

    Example:
        >>> represent_list([1, 2]).expr
        '[*items]'
    """
    if type(obj) is not list:
        return None
    return Rep("[*items]", {"items": tuple(obj)}, new="[]", fill="self.extend(items)")


def represent_tuple(obj: tuple[Any, ...]) -> Rep | None:
    """Represent a tuple (namedtuples have their own representer).

    Example:
        >>> represent_tuple((1,)).expr
        '(*items,)'
    """
    if type(obj) is not tuple:
        return None
    return Rep("(*items,)", {"items": list(obj)})


def represent_dict(obj: dict[Any, Any]) -> Rep | None:
    """Represent a dict.

    Example:
        >>> represent_dict({"a": 1}).fill
        'self.update(items)'
    """
    if type(obj) is not dict:
        return None
    return Rep("dict(items)", {"items": list(obj.items())}, new="{}", fill="self.update(items)")


def represent_set(obj: set[Any]) -> Rep | None:
    """Represent a set.

    Example:
        >>> represent_set({1}).new
        'set()'
    """
    if type(obj) is not set:
        return None
    return Rep("set(items)", {"items": list(obj)}, new="set()", fill="self.update(items)")


def represent_frozenset(obj: frozenset[Any]) -> Rep | None:
    """Represent a frozenset.

    Example:
        >>> represent_frozenset(frozenset({1})).expr
        'frozenset(items)'
    """
    if type(obj) is not frozenset:
        return None
    return Rep("frozenset(items)", {"items": list(obj)})


def _bytearray(obj: bytearray) -> Rep | None:
    if type(obj) is not bytearray:
        return None
    return Rep(f"bytearray({bytes(obj)!r})")


def _range(obj: range) -> Rep:
    return Rep(f"range({obj.start!r}, {obj.stop!r}, {obj.step!r})")


def _slice(obj: slice) -> Rep:
    return Rep("slice(start, stop, step)", {"start": obj.start, "stop": obj.stop, "step": obj.step})


def _singleton(obj: Any) -> Rep:
    return Rep("Ellipsis" if obj is ... else "NotImplemented")


def _global(obj: Any) -> Rep:
    return global_rep(obj)


def _method(obj: types.MethodType) -> Rep:
    func = obj.__func__
    if isinstance(obj.__self__, type) or not isinstance(func, types.FunctionType):
        # classmethods and wrapped callables: look the method up on its owner again
        return Rep("getattr(owner, name)", {"owner": obj.__self__, "name": func.__name__})
    return Rep("MethodType(func, owner)", {"func": func, "owner": obj.__self__}, [("types", "MethodType")])


def _builtin_method(obj: types.BuiltinMethodType) -> Rep:
    owner = getattr(obj, "__self__", None)
    if owner is None or isinstance(owner, types.ModuleType):
        return global_rep(obj)
    return Rep("getattr(owner, name)", {"owner": owner, "name": obj.__name__})


def _module(obj: types.ModuleType) -> Rep:
    return Rep("import_module(name)", {"name": obj.__name__}, [("importlib", "import_module")])


@hookimpl
def persist_hooks_representers() -> Mapping[type | str, Representer]:
    """The builtin types' representers."""
    return {
        list: represent_list,
        tuple: represent_tuple,
        dict: represent_dict,
        set: represent_set,
        frozenset: represent_frozenset,
        bytearray: _bytearray,
        range: _range,
        slice: _slice,
        type(...): _singleton,
        type(NotImplemented): _singleton,
        type: _global,
        types.FunctionType: _global,
        types.BuiltinFunctionType: _builtin_method,
        types.MethodType: _method,
        types.ModuleType: _module,
    }


@hookimpl
def persist_hooks_safe_callables() -> Iterable[str]:
    """Callables the builtin representers emit."""
    return [
        "builtins.bytearray",
        "builtins.range",
        "builtins.slice",
        "builtins.set",
        "builtins.frozenset",
        "builtins.dict",
        "builtins.float",
        "builtins.complex",
        "builtins.object.__new__",
        "builtins.object.__setattr__",
        "types.MethodType",
    ]

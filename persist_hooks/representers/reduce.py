"""The last resort: rebuild an object through its ``__reduce_ex__`` protocol, as readable calls.

``copyreg.__newobj__`` becomes ``Cls.__new__(Cls, ...)``; state goes through
``__setstate__`` when the class defines one, else into ``__dict__`` and
``__slots__``; list and dict items become ``extend``/``update`` calls.  The
object is built in two phases (create, then fill), so instances may sit on
reference cycles.
"""

from __future__ import annotations

import copyreg
from typing import Any

from ..errors import UnrepresentableError
from ..rep import Rep
from ._naming import importable_name

__all__ = ["represent_by_reduce"]


def _callable_ref(func: Any, args: dict[str, object], imports: list[tuple[str, str]]) -> str:
    """Source naming ``func``: an import when it has an importable name, else an argument."""
    try:
        module, qualname = importable_name(func)
    except UnrepresentableError:
        args["func"] = func  # let the archive represent it (e.g. a bound method)
        return "func"
    head = qualname.partition(".")[0]
    if module != "builtins":
        imports.append((module, head))
    return qualname


def represent_by_reduce(obj: Any) -> Rep:
    """Represent ``obj`` from ``obj.__reduce_ex__(4)``.

    Raises :class:`UnrepresentableError` for objects that refuse to be reduced
    (open files, generators, locks) or whose reconstructor has no importable
    name.

    Example:
        >>> import decimal
        >>> rep = represent_by_reduce(decimal.Context(prec=5))
        >>> rep.imports
        (('decimal', 'Context'),)
    """
    try:
        reducer = copyreg.dispatch_table.get(type(obj))
        rv = reducer(obj) if reducer is not None else obj.__reduce_ex__(4)
    except Exception as exc:
        raise UnrepresentableError(
            f"{type(obj).__qualname__} objects cannot be rebuilt ({exc}); give the type a "
            "representer plugin or a __persist_rep__ method"
        ) from exc
    if isinstance(rv, str):
        module = getattr(obj, "__module__", None) or type(obj).__module__
        head = rv.partition(".")[0]
        return Rep(rv, imports=[(module, head)])
    if not isinstance(rv, tuple) or not 2 <= len(rv) <= 6:
        raise UnrepresentableError(f"{type(obj).__qualname__}.__reduce_ex__ returned {rv!r}")
    func, fargs, state, listitems, dictitems, setter = (tuple(rv) + (None,) * 4)[:6]
    args: dict[str, object] = {}
    imports: list[tuple[str, str]] = []
    fargs = tuple(fargs or ())
    if func is getattr(copyreg, "__newobj__", None):
        cls = fargs[0]
        cname = _callable_ref(cls, args, imports)
        rest = fargs[1:]
        for i, a in enumerate(rest):
            args[f"a{i}"] = a
        expr = f"{cname}.__new__({', '.join([cname, *(f'a{i}' for i in range(len(rest)))])})"
    elif func is getattr(copyreg, "__newobj_ex__", None):
        cls, cargs, ckwargs = fargs
        cname = _callable_ref(cls, args, imports)
        args["args"] = tuple(cargs)
        args["kwargs"] = dict(ckwargs)
        expr = f"{cname}.__new__({cname}, *args, **kwargs)"
    elif func is copyreg._reconstructor:  # type: ignore[attr-defined]
        cls, base, bstate = fargs
        cname = _callable_ref(cls, args, imports)
        if base is object:
            expr = f"object.__new__({cname})"
        else:
            args["base"] = base
            args["bstate"] = bstate
            expr = f"base.__new__({cname}, bstate)"
    else:
        fname = _callable_ref(func, args, imports)
        for i, a in enumerate(fargs):
            args[f"a{i}"] = a
        expr = f"{fname}({', '.join(f'a{i}' for i in range(len(fargs)))})"
    fill: list[str] = []
    if state is not None:
        if setter is not None:
            args["setter"] = setter
            args["state"] = state
            fill.append("setter(self, state)")
        elif getattr(type(obj), "__setstate__", None) is not None and not _default_setstate(obj):
            args["state"] = state
            fill.append("self.__setstate__(state)")
        else:
            slotstate = None
            if isinstance(state, tuple) and len(state) == 2:
                state, slotstate = state
            if state:
                args["state"] = state
                fill.append("self.__dict__.update(state)")
            if slotstate:
                for i, (key, value) in enumerate(slotstate.items()):
                    args[f"s{i}"] = value
                    fill.append(f"object.__setattr__(self, {key!r}, s{i})")
    if listitems is not None:
        items = list(listitems)
        if hasattr(obj, "extend"):
            args["listitems"] = items
            fill.append("self.extend(listitems)")
        else:  # like pickle's APPEND
            for i, item in enumerate(items):
                args[f"li{i}"] = item
                fill.append(f"self.append(li{i})")
    if dictitems is not None:
        for i, (key, value) in enumerate(dictitems):  # like pickle's SETITEMS
            args[f"dk{i}"] = key
            args[f"dv{i}"] = value
            fill.append(f"self[dk{i}] = dv{i}")
    if not fill:
        return Rep(expr, args, imports)
    return Rep(expr, args, imports, fill="\n".join(fill))


def _default_setstate(obj: Any) -> bool:
    """True when ``__setstate__`` is ``object``'s default (Python >= 3.11 has none on object)."""
    return getattr(type(obj), "__setstate__", None) is getattr(object, "__setstate__", None)

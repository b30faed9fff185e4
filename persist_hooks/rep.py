"""`Rep`: what a representer returns, the unit of the plugin contract."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeAlias

__all__ = ["Import", "Rep", "Representer"]

Import: TypeAlias = tuple[str, str] | tuple[str, str, str]

_EMPTY: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True, init=False)
class Rep:
    """How to rebuild one object: a Python expression plus what it needs.

    ``expr`` is a Python expression.  It may use the names in ``args`` (objects
    the archive represents in turn, so sharing and cycles are preserved) and the
    names bound by ``imports``: ``("numpy", "array")`` binds ``array`` and
    ``("numpy", "array", "np_array")`` binds ``np_array``.

    Objects that can sit on a reference cycle (mutable containers, instances)
    may also say how to build them in two phases: ``new`` is an expression that
    creates the object before its contents exist (it may use those ``args``
    that cannot refer back, typically none), and ``fill`` is one or more
    statements (separated by newlines or ``;``) that complete it, with the
    object bound to ``self``.  The archive uses the one-phase ``expr`` whenever
    it can and the two phases only to close a cycle.  A ``fill`` without
    ``new`` means the object is always built in two phases: ``expr`` creates it
    and ``fill`` completes it (the form used for objects rebuilt through
    ``__reduce_ex__``).

    Example:
        >>> from fractions import Fraction
        >>> r = Rep("Fraction(n, d)", {"n": 1, "d": 3}, [("fractions", "Fraction")])
        >>> r.expr, dict(r.args), r.imports
        ('Fraction(n, d)', {'n': 1, 'd': 3}, (('fractions', 'Fraction'),))
        >>> Rep("[]", new="[]", fill="self.extend(items)", args={"items": (1,)}).fill
        'self.extend(items)'
    """

    expr: str
    args: Mapping[str, object]
    imports: tuple[Import, ...]
    new: str | None
    fill: str | None

    def __init__(
        self,
        expr: str,
        args: Mapping[str, object] = _EMPTY,
        imports: Iterable[Import] = (),
        *,
        new: str | None = None,
        fill: str | None = None,
    ) -> None:
        if not isinstance(expr, str):
            raise TypeError(f"Rep.expr must be a str, not {type(expr).__name__}")
        if new is not None and fill is None:
            raise ValueError("Rep(new=...) needs `fill` too: the statements that complete the object")
        imps = tuple(tuple(i) for i in imports)
        for imp in imps:
            if len(imp) not in (2, 3) or not all(isinstance(p, str) for p in imp):
                raise TypeError(
                    f"Rep import {imp!r} must be (module, name) or (module, name, alias)"
                )
        object.__setattr__(self, "expr", expr)
        object.__setattr__(self, "args", args if args is _EMPTY else dict(args))
        object.__setattr__(self, "imports", imps)
        object.__setattr__(self, "new", new)
        object.__setattr__(self, "fill", fill)


Representer: TypeAlias = Callable[[Any], "Rep | None"]
"""A callable ``representer(obj) -> Rep`` (or ``None`` to decline the object)."""

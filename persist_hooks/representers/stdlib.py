"""Representers for common standard-library values (datetime, decimal, collections, ...)."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import fractions
import keyword
import pathlib
import re
import types
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from ..hookspecs import hookimpl
from ..rep import Rep, Representer
from ._naming import global_rep, importable_name

__all__ = ["represent_dataclass", "represent_namedtuple"]


def _date(d: dt.date) -> Rep | None:
    if type(d) is not dt.date:
        return None  # subclasses keep their type through __reduce_ex__
    return Rep(f"date({d.year}, {d.month}, {d.day})", imports=[("datetime", "date")])


def _time_args(t: dt.time | dt.datetime) -> tuple[str, dict[str, object]]:
    parts = [str(t.hour), str(t.minute), str(t.second), str(t.microsecond)]
    while len(parts) > 2 and parts[-1] == "0":
        parts.pop()
    args: dict[str, object] = {}
    if t.tzinfo is not None:
        args["tz"] = t.tzinfo
        parts.append("tzinfo=tz")
    if t.fold:
        parts.append("fold=1")
    return ", ".join(parts), args


def _datetime(d: dt.datetime) -> Rep | None:
    if type(d) is not dt.datetime:
        return None
    rest, args = _time_args(d)
    if rest == "0, 0" and not args:
        return Rep(f"datetime({d.year}, {d.month}, {d.day})", imports=[("datetime", "datetime")])
    return Rep(f"datetime({d.year}, {d.month}, {d.day}, {rest})", args, [("datetime", "datetime")])


def _time(t: dt.time) -> Rep | None:
    if type(t) is not dt.time:
        return None
    rest, args = _time_args(t)
    return Rep(f"time({rest})", args, [("datetime", "time")])


def _timedelta(d: dt.timedelta) -> Rep | None:
    if type(d) is not dt.timedelta:
        return None
    return Rep(
        f"timedelta(days={d.days}, seconds={d.seconds}, microseconds={d.microseconds})",
        imports=[("datetime", "timedelta")],
    )


def _timezone(tz: dt.timezone) -> Rep:
    if tz is dt.UTC:
        return Rep("timezone.utc", imports=[("datetime", "timezone")])
    offset = tz.utcoffset(None)
    name = tz.tzname(None)
    default = dt.timezone(offset)
    if name == default.tzname(None):
        return Rep("timezone(offset)", {"offset": offset}, [("datetime", "timezone")])
    return Rep("timezone(offset, name)", {"offset": offset, "name": name}, [("datetime", "timezone")])


def _zoneinfo(z: Any) -> Rep:
    return Rep("ZoneInfo(key)", {"key": z.key}, [("zoneinfo", "ZoneInfo")])


def _decimal(d: decimal.Decimal) -> Rep | None:
    if type(d) is not decimal.Decimal:
        return None
    return Rep(f"Decimal({str(d)!r})", imports=[("decimal", "Decimal")])


def _fraction(f: fractions.Fraction) -> Rep | None:
    if type(f) is not fractions.Fraction:
        return None
    return Rep(f"Fraction({f.numerator}, {f.denominator})", imports=[("fractions", "Fraction")])


def _path(p: pathlib.PurePath) -> Rep | None:
    cls = type(p)
    if cls.__module__ != "pathlib":
        return None
    return Rep(f"{cls.__name__}({str(p)!r})", imports=[("pathlib", cls.__name__)])


def _uuid(u: uuid.UUID) -> Rep | None:
    if type(u) is not uuid.UUID:
        return None
    return Rep(f"UUID({str(u)!r})", imports=[("uuid", "UUID")])


def _ordered_dict(d: collections.OrderedDict[Any, Any]) -> Rep | None:
    if type(d) is not collections.OrderedDict:
        return None
    return Rep(
        "OrderedDict(items)",
        {"items": dict(d)},
        [("collections", "OrderedDict")],
        new="OrderedDict()",
        fill="self.update(items)",
    )


def _counter(c: collections.Counter[Any]) -> Rep | None:
    if type(c) is not collections.Counter:
        return None
    return Rep(
        "Counter(items)",
        {"items": dict(c)},
        [("collections", "Counter")],
        new="Counter()",
        fill="self.update(items)",
    )


def _defaultdict(d: collections.defaultdict[Any, Any]) -> Rep | None:
    if type(d) is not collections.defaultdict:
        return None
    return Rep(
        "defaultdict(factory, items)",
        {"factory": d.default_factory, "items": dict(d)},
        [("collections", "defaultdict")],
        new="defaultdict(factory)",
        fill="self.update(items)",
    )


def _deque(d: collections.deque[Any]) -> Rep | None:
    if type(d) is not collections.deque:
        return None
    if d.maxlen is None:
        return Rep("deque(items)", {"items": list(d)}, [("collections", "deque")],
                   new="deque()", fill="self.extend(items)")
    return Rep(
        "deque(items, maxlen)",
        {"items": list(d), "maxlen": d.maxlen},
        [("collections", "deque")],
        new="deque(maxlen=maxlen)",
        fill="self.extend(items)",
    )


def _simple_namespace(ns: types.SimpleNamespace) -> Rep | None:
    if type(ns) is not types.SimpleNamespace:
        return None
    return Rep(
        "SimpleNamespace(**state)",
        {"state": dict(vars(ns))},
        [("types", "SimpleNamespace")],
        new="SimpleNamespace()",
        fill="self.__dict__.update(state)",
    )


def _enum(e: enum.Enum) -> Rep:
    cls = type(e)
    cls_rep = global_rep(cls)
    name = e.name
    if name is not None and name.isidentifier() and cls.__members__.get(name) is e:
        return Rep(f"{cls_rep.expr}.{name}", imports=cls_rep.imports)
    # composite or empty Flag values have no member name: call the class with the value
    return Rep(f"{cls_rep.expr}(value)", {"value": e.value}, cls_rep.imports)


def _pattern(p: re.Pattern[Any]) -> Rep:
    return Rep("compile(pattern, flags)", {"pattern": p.pattern, "flags": p.flags}, [("re", "compile")])


def represent_namedtuple(t: tuple[Any, ...]) -> Rep | None:
    """Represent an instance of a ``collections.namedtuple``/``typing.NamedTuple`` class.

    Example:
        >>> from collections import namedtuple
        >>> represent_namedtuple(namedtuple("P", "x y")(1, 2)) is None  # local class: declined
        True
    """
    cls = type(t)
    fields = getattr(cls, "_fields", None)
    if not isinstance(fields, tuple) or not hasattr(cls, "_make"):
        return None
    try:
        module, qualname = importable_name(cls)
    except Exception:
        return None
    head = qualname.partition(".")[0]
    imports = [] if module == "builtins" else [(module, head)]
    args = {f"v{i}": v for i, v in enumerate(t)}
    call = ", ".join(f"{name}=v{i}" if name.isidentifier() else f"v{i}" for i, name in enumerate(fields))
    return Rep(f"{qualname}({call})", args, imports)


def represent_dataclass(obj: Any) -> Rep | None:
    """Represent a dataclass instance by its constructor, with two phases for cycles.

    Declined (so ``__reduce_ex__`` is used) when the constructor would not
    rebuild the instance exactly: fields with ``init=False``, a
    ``__post_init__``, or ``InitVar`` pseudo-fields.

    Example:
        >>> import dataclasses
        >>> @dataclasses.dataclass
        ... class P:
        ...     x: int
        >>> P.__module__ = "builtins"; P.__qualname__ = "P"
        >>> represent_dataclass(P(1)) is None  # not importable: declined
        True
    """
    cls = type(obj)
    if not dataclasses.is_dataclass(cls) or isinstance(obj, type):
        return None
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or any(not f.init for f in fields):
        return None
    try:
        module, qualname = importable_name(cls)
    except Exception:
        return None
    head = qualname.partition(".")[0]
    imports = [] if module == "builtins" else [(module, head)]
    args: dict[str, object] = {}
    call: list[str] = []
    fill: list[str] = []
    taken = {"self", "object", head}
    for i, f in enumerate(fields):
        arg = f.name if f.name not in taken and not keyword.iskeyword(f.name) else f"f{i}"
        taken.add(arg)
        args[arg] = getattr(obj, f.name)
        call.append(f"{f.name}={arg}")
        fill.append(f"object.__setattr__(self, {f.name!r}, {arg})")
    extra = getattr(obj, "__dict__", None)
    field_names = {f.name for f in fields}
    if extra and set(extra) - field_names:
        return None  # attributes beyond the fields: let __reduce_ex__ keep them
    return Rep(
        f"{qualname}({', '.join(call)})",
        args,
        imports,
        new=f"{qualname}.__new__({qualname})",
        fill="\n".join(fill) if fill else "pass",
    )


def _dataclass_or_namedtuple(obj: Any) -> Rep | None:
    if isinstance(obj, tuple):
        return represent_namedtuple(obj)
    return represent_dataclass(obj)


@hookimpl
def persist_hooks_representers() -> Mapping[type | str, Representer]:
    """The standard library's representers."""
    table: dict[type | str, Representer] = {
        dt.date: _date,
        dt.datetime: _datetime,
        dt.time: _time,
        dt.timedelta: _timedelta,
        dt.timezone: _timezone,
        "zoneinfo.ZoneInfo": _zoneinfo,
        decimal.Decimal: _decimal,
        fractions.Fraction: _fraction,
        pathlib.PurePath: _path,
        uuid.UUID: _uuid,
        collections.OrderedDict: _ordered_dict,
        collections.Counter: _counter,
        collections.defaultdict: _defaultdict,
        collections.deque: _deque,
        types.SimpleNamespace: _simple_namespace,
        enum.Enum: _enum,
        re.Pattern: _pattern,
        object: _dataclass_or_namedtuple,
    }
    return table


@hookimpl
def persist_hooks_safe_callables() -> Iterable[str]:
    """Callables the standard-library representers emit."""
    return [
        "datetime.date",
        "datetime.datetime",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "zoneinfo.ZoneInfo",
        "decimal.Decimal",
        "fractions.Fraction",
        "pathlib.Path",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "uuid.UUID",
        "collections.OrderedDict",
        "collections.Counter",
        "collections.defaultdict",
        "collections.deque",
        "types.SimpleNamespace",
        "re.compile",
    ]

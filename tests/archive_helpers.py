"""Importable test types and strict comparison helpers for the archive test suites.

Archived classes and functions must be importable by their qualified name, so
every type the archive tests store lives here (module ``archive_helpers``; the
tests directory is on ``sys.path`` under pytest, and subprocesses get it on
``PYTHONPATH``).

``assert_same(original, restored)`` compares two object graphs strictly: same
types, same values (floats bit for bit, numpy dtype/shape/order/bytes), and the
same identity graph (an object reached twice in the original is the same object
in the restore, and distinct mutable objects stay distinct).  It is iterative,
so 100,000-deep chains compare without recursion.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import fractions
import math
import os
import pathlib
import re
import struct
import subprocess
import sys
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import persist_hooks as ph
from persist_hooks import Rep

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
PYTHON = sys.executable

# ---------------------------------------------------------------------------------
# types the tests archive
# ---------------------------------------------------------------------------------


class Plain:
    """An ordinary instance with a ``__dict__`` (rebuilt through ``__reduce_ex__``)."""

    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)

    def method(self) -> str:
        return "method"

    @classmethod
    def cmethod(cls) -> str:
        return cls.__name__

    @staticmethod
    def smethod() -> str:
        return "static"


class WithState:
    """Custom ``__getstate__``/``__setstate__``: the archive must call ``__setstate__``."""

    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b
        self.cache = "not archived"
        self.setstate_called = False

    def __getstate__(self) -> dict[str, Any]:
        return {"pair": (self.a, self.b)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.a, self.b = state["pair"]
        self.cache = "rebuilt"
        self.setstate_called = True


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b


class SlottedPartly:
    """``__slots__`` with one slot left unset, plus a ``__dict__``."""

    __slots__ = ("__dict__", "set_slot", "unset_slot")

    def __init__(self, v: Any) -> None:
        self.set_slot = v
        self.extra = "in dict"


class Parent:
    def __init__(self, name: str) -> None:
        self.name = name
        self.children: list[Child] = []

    def add(self, name: str) -> Child:
        child = Child(name, self)
        self.children.append(child)
        return child


class Child:
    def __init__(self, name: str, parent: Parent | None) -> None:
        self.name = name
        self.parent = parent


class Linked:
    """A singly linked list cell."""

    def __init__(self, value: Any, nxt: Linked | None = None) -> None:
        self.value = value
        self.nxt = nxt


class Holder:
    """Holds anything under ``handle`` (for error-path tests)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle


@dataclasses.dataclass
class DNode:
    name: str
    parent: DNode | None = None
    children: list[DNode] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FrozenPoint:
    x: float
    y: float


@dataclasses.dataclass(slots=True)
class SlotPoint:
    x: Any
    y: Any


@dataclasses.dataclass(frozen=True, slots=True)
class FrozenSlotPoint:
    x: Any
    y: Any


@dataclasses.dataclass
class WithPostInit:
    a: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.doubled = 2 * self.a


@dataclasses.dataclass
class DHolder:
    name: str
    handle: Any = None


class Outer:
    class Inner:
        class Deepest:
            pass

        def __init__(self, v: Any = None) -> None:
            self.v = v


class Color(enum.Enum):
    RED = 1
    GREEN = "green"
    BLUE = (3, 4)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


PointNT = collections.namedtuple("PointNT", "x y")
DefaultsNT = collections.namedtuple("DefaultsNT", ["a", "b", "c"], defaults=[None, "d"])


class TypedNT(NamedTuple):
    x: int
    label: str = "none"


class AttrList(list):  # type: ignore[type-arg]
    """A list subclass that carries attributes."""

    def __init__(self, items: Any = (), tag: str = "") -> None:
        super().__init__(items)
        self.tag = tag


class AttrDict(dict):  # type: ignore[type-arg]
    """A dict subclass that carries attributes."""

    def __init__(self, items: Any = (), tag: str = "") -> None:
        super().__init__(items)
        self.tag = tag


class SelfDescribed:
    """Describes itself with ``__persist_rep__`` (the classmethod records that it was used)."""

    built_by_rep = 0

    def __init__(self, text: str) -> None:
        self.text = text

    def __persist_rep__(self) -> Rep:
        return Rep(
            "SelfDescribed.from_rep(text)",
            {"text": self.text},
            [("archive_helpers", "SelfDescribed")],
        )

    @classmethod
    def from_rep(cls, text: str) -> SelfDescribed:
        cls.built_by_rep += 1
        obj = cls(text)
        obj.via_rep = True  # type: ignore[attr-defined]
        return obj

    def __reduce__(self) -> Any:  # pragma: no cover - must not be used
        raise AssertionError("__persist_rep__ must win over __reduce_ex__")


class ReduceSelfTuple:
    """``__reduce__`` whose arguments contain the object itself through a tuple: unbuildable."""

    def __init__(self) -> None:
        self.me = (self,)

    def __reduce__(self) -> Any:
        return (rebuild_reduce_self_tuple, (self.me,))


def rebuild_reduce_self_tuple(me: tuple[Any, ...]) -> ReduceSelfTuple:
    obj = ReduceSelfTuple.__new__(ReduceSelfTuple)
    obj.me = me
    return obj


class HandsOut:
    """``__reduce__`` hands out containers that only ``holder`` refers to (so the walk
    has already written them in place when it meets them again here)."""

    def __init__(self, holder: dict[str, Any]) -> None:
        self.holder = holder

    def __reduce__(self) -> Any:
        return (rebuild_hands_out, (self.holder["l"], self.holder["d"]))


def rebuild_hands_out(items: list[Any], table: dict[str, Any]) -> types.SimpleNamespace:
    return types.SimpleNamespace(items=items, table=table)


class Celsius:
    """A type with no built-in representer, for plugin tests."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other: object) -> bool:
        return type(other) is Celsius and other.degrees == self.degrees

    def __hash__(self) -> int:
        return hash(self.degrees)


def module_function(x: Any) -> Any:
    return x


def make_local_class() -> type:
    class Local:
        pass

    return Local


# ---------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------

FORMATS = (True, False)
FORMAT_IDS = ("scoped", "flat")


def archive_of(scoped: bool, **objs: Any) -> ph.Archive:
    archive = ph.Archive(scoped=scoped)
    assert archive.insert(**objs) == list(objs)
    return archive


def roundtrip(scoped: bool, **objs: Any) -> dict[str, Any]:
    """Archive ``objs``, restore them from the source (with ``restore`` and plain
    ``exec``), check the result strictly and return the restored names."""
    archive = archive_of(scoped, **objs)
    src = str(archive)
    restored = ph.restore(src, arrays=archive.data)
    assert sorted(restored) == sorted(objs), src
    assert_same(objs, {k: restored[k] for k in objs}, src)
    env: dict[str, Any] = {"_arrays": archive.data} if archive.data else {}
    exec(compile(src, "<archive>", "exec"), env)
    leftovers = {k for k in env if k != "__builtins__"} - set(objs) - {"_arrays"}
    assert not leftovers, f"temporaries left in the namespace: {leftovers}\n{src}"
    assert_same(objs, {k: env[k] for k in objs}, src)
    return restored


# ---------------------------------------------------------------------------------
# strict comparison
# ---------------------------------------------------------------------------------

_ATOMS = (int, str, bytes, bool, type(None), float, complex)
_IMMUTABLE = (tuple, frozenset, range, slice)
_SINGLETONS = (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType, enum.Enum)


def float_bits(v: float) -> bytes:
    return struct.pack("<d", v)


def _float_same(a: float, b: float) -> bool:
    return float_bits(a) == float_bits(b)


def short(x: Any) -> str:
    """A short repr that never fails (huge ints, broken __repr__)."""
    try:
        r = repr(x)
    except Exception:
        r = f"<{type(x).__qualname__}>"
    return r if len(r) <= 50 else r[:47] + "..."


def canon(x: Any, depth: int = 0) -> str:
    """A deterministic structural key (to pair set elements that hash by identity).

    Shallow on purpose: containers below the top level contribute their type and size
    only, so graphs full of back-references stay cheap to key.
    """
    t = type(x)
    if isinstance(x, _ATOMS):
        return f"{t.__name__}:{x!r}" if t is not int or x.bit_length() < 10000 else f"int:{hex(x)}"
    if depth >= 2:
        try:
            return f"{t.__qualname__}#{len(x)}"
        except TypeError:
            return t.__qualname__
    if t in (tuple, list):
        return f"{t.__name__}[" + ",".join(canon(v, depth + 1) for v in x) + "]"
    if t in (set, frozenset):
        return f"{t.__name__}{{" + ",".join(sorted(canon(v, depth + 1) for v in x)) + "}"
    if t is dict:
        return "{" + ",".join(f"{canon(k, depth + 1)}:{canon(v, depth + 1)}" for k, v in x.items()) + "}"
    d = getattr(x, "__dict__", None)
    if isinstance(d, dict) and not isinstance(x, type):
        return f"{t.__qualname__}(" + ",".join(f"{k}={canon(v, depth + 1)}" for k, v in sorted(d.items())) + ")"
    r = short(x)
    return f"{t.__qualname__}:{r if ' at 0x' not in r else ''}"


class _Cmp:
    def __init__(self, context: str) -> None:
        self.context = context
        self.memo: dict[int, Any] = {}
        self.rmemo: dict[int, Any] = {}
        self.keep: list[Any] = []
        self.work: list[tuple[Any, Any, str]] = []

    def fail(self, path: Any, why: str) -> None:
        steps: list[str] = []
        while path is not None:
            path, step = path
            steps.append(step)
        where = "".join(reversed(steps)) or "<root>"
        raise AssertionError(f"at {where}: {why}\n--- source ---\n{self.context[:4000]}")

    def push(self, a: Any, b: Any, path: Any) -> None:
        self.work.append((a, b, path))

    def run(self, a: Any, b: Any) -> None:
        self.push(a, b, None)
        while self.work:
            self.one(*self.work.pop())

    def one(self, a: Any, b: Any, path: Any) -> None:
        ta, tb = type(a), type(b)
        if ta is not tb:
            self.fail(path, f"type {ta!r} restored as {tb!r} ({short(a)} vs {short(b)})")
        if isinstance(a, _ATOMS) and ta in _ATOMS:
            self.atom(a, b, path)
            return
        seen = self.memo.get(id(a))
        if seen is not None:
            if seen is not b:
                self.fail(path, "a shared object was restored as two objects (`is` lost)")
            return
        self.memo[id(a)] = b
        self.keep.append(a)
        if not isinstance(a, (*_IMMUTABLE, *_SINGLETONS, np.generic)):
            other = self.rmemo.get(id(b))
            if other is not None and other is not a:
                self.fail(path, "two distinct mutable objects were restored as one object")
            self.rmemo[id(b)] = a
        self.compare(a, b, path)

    def atom(self, a: Any, b: Any, path: Any) -> None:
        if type(a) is float:
            ok = _float_same(a, b)
        elif type(a) is complex:
            ok = _float_same(a.real, b.real) and _float_same(a.imag, b.imag)
        else:
            ok = a == b
        if not ok:
            self.fail(path, f"{short(a)} restored as {short(b)}")

    def compare(self, a: Any, b: Any, path: Any) -> None:
        push = self.push
        if isinstance(a, types.BuiltinMethodType) and not isinstance(
            getattr(a, "__self__", None), (types.ModuleType, type(None))
        ):
            if a.__name__ != b.__name__:
                self.fail(path, f"{a!r} restored as {b!r}")
            push(a.__self__, b.__self__, (path, ".__self__"))
            return
        if isinstance(a, _SINGLETONS) or a is Ellipsis or a is NotImplemented:
            if a is not b:
                self.fail(path, f"{a!r} restored as a different object {b!r}")
            return
        if isinstance(a, np.ndarray):
            self.array(a, b, path)
            return
        if isinstance(a, np.generic):
            self.scalar(a, b, path)
            return
        if isinstance(a, types.MethodType):
            if a.__func__ is not b.__func__:
                self.fail(path, "method restored with another function")
            push(a.__self__, b.__self__, (path, ".__self__"))
            return
        if isinstance(a, decimal.Decimal):
            if str(a) != str(b):
                self.fail(path, f"Decimal {a} restored as {b}")
            return
        if isinstance(a, (dt.datetime, dt.time)):
            if a.fold != b.fold or a.replace(tzinfo=None) != b.replace(tzinfo=None):
                self.fail(path, f"{a!r} restored as {b!r}")
            push(a.tzinfo, b.tzinfo, (path, ".tzinfo"))
            return
        if isinstance(a, dt.tzinfo):
            if a != b or a.tzname(None) != b.tzname(None) or a.utcoffset(None) != b.utcoffset(None):
                self.fail(path, f"{a!r} restored as {b!r}")
            return
        if isinstance(a, (dt.date, dt.timedelta, fractions.Fraction, pathlib.PurePath, uuid.UUID, bytearray)):
            if a != b:
                self.fail(path, f"{a!r} restored as {b!r}")
            return
        if isinstance(a, re.Pattern):
            if (a.pattern, a.flags) != (b.pattern, b.flags):
                self.fail(path, f"{a!r} restored as {b!r}")
            return
        if isinstance(a, (range, slice)):
            push((a.start, a.stop, a.step), (b.start, b.stop, b.step), path)
            return
        if isinstance(a, (list, tuple, collections.deque)):
            if len(a) != len(b):
                self.fail(path, f"length {len(a)} restored as {len(b)}")
            if isinstance(a, collections.deque) and a.maxlen != b.maxlen:
                self.fail(path, f"deque maxlen {a.maxlen} restored as {b.maxlen}")
            for i in range(len(a) - 1, -1, -1):
                push(a[i], b[i], (path, f"[{i}]"))
        elif isinstance(a, dict):
            ka, kb = list(a), list(b)
            if len(ka) != len(kb):
                self.fail(path, f"{len(ka)} keys restored as {len(kb)}")
            if isinstance(a, collections.defaultdict):
                push(a.default_factory, b.default_factory, (path, ".default_factory"))
            for k1, k2 in zip(ka, kb, strict=True):
                push(k1, k2, (path, f"<key {short(k1)}>"))
                push(a[k1], b[k2], (path, f"[{short(k1)}]"))
        elif isinstance(a, (set, frozenset)):
            self.set(a, b, path)
        if isinstance(a, (list, tuple, dict, set, frozenset, collections.deque)) and type(a) in (
            list, tuple, dict, set, frozenset, collections.deque, collections.OrderedDict,
            collections.Counter, collections.defaultdict,
        ):
            return
        if isinstance(a, tuple) and hasattr(type(a), "_fields"):
            return  # namedtuples: the fields were compared as items
        self.instance(a, b, path)

    def set(self, a: Any, b: Any, path: Any) -> None:
        if len(a) != len(b):
            self.fail(path, f"{len(a)} elements restored as {len(b)}")
        try:
            if a == b and all(isinstance(x, (*_ATOMS, tuple, frozenset)) for x in a):
                lookup = {x: x for x in b}
                for x in a:
                    self.push(x, lookup[x], (path, f"{{{short(x)}}}"))
                return
        except TypeError:
            pass
        ka = sorted(a, key=canon)
        kb = sorted(b, key=canon)
        for x, y in zip(ka, kb, strict=True):
            self.push(x, y, (path, f"{{{canon(x)[:50]}}}"))

    def instance(self, a: Any, b: Any, path: Any) -> None:
        da = getattr(a, "__dict__", None)
        db = getattr(b, "__dict__", None)
        if (da is None) != (db is None):
            self.fail(path, "__dict__ presence differs")
        if da is not None and not isinstance(a, type):
            if list(da) != list(db):
                self.fail(path, f"attributes {list(da)} restored as {list(db)}")
            for k in reversed(list(da)):
                self.push(da[k], db[k], (path, f".{k}"))
        for cls in type(a).__mro__:
            for slot in cls.__dict__.get("__slots__", ()):
                if slot in ("__dict__", "__weakref__"):
                    continue
                va = getattr(a, slot, _MISSING)
                vb = getattr(b, slot, _MISSING)
                if (va is _MISSING) != (vb is _MISSING):
                    self.fail(path, f"slot {slot} set in one object only")
                if va is not _MISSING:
                    self.push(va, vb, (path, f".{slot}"))

    def array(self, a: np.ndarray[Any, Any], b: Any, path: Any) -> None:
        if a.dtype != b.dtype or a.dtype.str != b.dtype.str or a.dtype.names != b.dtype.names:
            self.fail(path, f"dtype {a.dtype!r} restored as {b.dtype!r}")
        if a.dtype.fields is not None and a.dtype.descr != b.dtype.descr:
            self.fail(path, f"dtype {a.dtype.descr!r} restored as {b.dtype.descr!r}")
        if a.shape != b.shape:
            self.fail(path, f"shape {a.shape} restored as {b.shape}")
        if a.ndim > 1 and a.size > 1:
            fa = a.flags.f_contiguous and not a.flags.c_contiguous
            fb = b.flags.f_contiguous and not b.flags.c_contiguous
            if fa != fb:
                self.fail(path, f"memory order (Fortran={fa}) restored as Fortran={fb}")
        if a.dtype.hasobject:
            fa_, fb_ = a.reshape(-1), b.reshape(-1)
            for i in range(fa_.size - 1, -1, -1):
                self.push(fa_[i], fb_[i], (path, f".flat[{i}]"))
            return
        if not _bits_equal(a, b):
            self.fail(path, f"array data differs: {short(a)} restored as {short(b)}")

    def scalar(self, a: np.generic, b: Any, path: Any) -> None:
        if a.dtype != b.dtype or a.dtype.str != b.dtype.str:
            self.fail(path, f"dtype {a.dtype!r} restored as {b.dtype!r}")
        if not _bits_equal(np.asarray(a), np.asarray(b)):
            self.fail(path, f"scalar {a!r} restored as {b!r}")


_MISSING = object()


def _bits_equal(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    """Bit-exact comparison; long doubles compare their significant bytes only (padding
    bytes are undefined)."""
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    kind, size = a.dtype.kind, a.dtype.itemsize
    if (kind == "f" and size > 8) or (kind == "c" and size > 16):
        fa = a.view(a.dtype.base).astype(a.dtype) if kind == "f" else a
        parts_a = [fa] if kind == "f" else [fa.real, fa.imag]
        parts_b = [b] if kind == "f" else [b.real, b.imag]
        for pa, pb in zip(parts_a, parts_b, strict=True):
            same = (pa == pb) | (np.isnan(pa) & np.isnan(pb))
            if not bool(np.all(same)) or not np.array_equal(np.signbit(pa), np.signbit(pb)):
                return False
        return True
    return a.tobytes() == b.tobytes()


def assert_same(original: Any, restored: Any, context: str = "") -> None:
    """Assert that ``restored`` is a strict, identity-preserving copy of ``original``."""
    _Cmp(context).run(original, restored)


# ---------------------------------------------------------------------------------
# subprocesses
# ---------------------------------------------------------------------------------


def run_python(
    code: str,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    flags: tuple[str, ...] = (),
    python: str = PYTHON,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; fail with its output when it exits non-zero."""
    full_env = dict(os.environ)
    full_env.pop("PYTHONHASHSEED", None)
    extra = dict(env or {})
    paths = [str(TESTS_DIR), extra.pop("PYTHONPATH", ""), full_env.get("PYTHONPATH", "")]
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    full_env.update(extra)
    proc = subprocess.run(
        [python, *flags, "-c", code, *(args or [])],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"subprocess failed ({proc.returncode})\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def numpy_site_dir() -> str:
    """The directory that holds the ``numpy`` package (site-packages of the test venv)."""
    return str(Path(np.__file__).resolve().parent.parent)


def non_finite_floats() -> list[float]:
    return [math.inf, -math.inf, math.nan, -math.nan, 0.0, -0.0, 5e-324, 1.7976931348623157e308, 0.1]


Maker = Callable[[], Any]


class Expr:
    """An object represented by an arbitrary expression (for template/substitution tests)."""

    def __init__(self, expr: str, args: dict[str, Any] | None = None, imports: Any = (), **kw: Any) -> None:
        self.expr = expr
        self.args = args or {}
        self.imports = imports
        self.kw = kw

    def __persist_rep__(self) -> Rep:
        return Rep(self.expr, self.args, self.imports, **self.kw)


# ---------------------------------------------------------------------------------
# plugin objects (loaded through fake entry points in tests/test_plugins.py)
# ---------------------------------------------------------------------------------


def represent_celsius(c: Celsius) -> Rep:
    return Rep("Celsius(d)", {"d": c.degrees}, [("archive_helpers", "Celsius")])


class CelsiusPlugin:
    """A plugin object (a class with static hook implementations)."""

    @staticmethod
    @ph.hookimpl
    def persist_hooks_representers() -> dict[Any, Any]:
        return {Celsius: represent_celsius}

    @staticmethod
    @ph.hookimpl
    def persist_hooks_safe_callables() -> list[str]:
        return ["archive_helpers.Celsius"]


class MisspeltPlugin:
    """A plugin whose hook name is misspelt (must be reported, not break the host)."""

    @staticmethod
    @ph.hookimpl
    def persist_hooks_representer() -> dict[Any, Any]:  # missing "s"
        return {}


# ---------------------------------------------------------------------------------
# more __reduce_ex__ shapes
# ---------------------------------------------------------------------------------


class TaggedStr(str):
    __slots__ = ("__dict__",)


class TaggedInt(int):
    pass


class TaggedFloat(float):
    pass


class TaggedTuple(tuple):  # type: ignore[type-arg]
    pass


class TaggedSet(set):  # type: ignore[type-arg]
    pass


class TaggedFrozenset(frozenset):  # type: ignore[type-arg]
    pass


class TaggedBytes(bytes):
    pass


class Sentinel:
    """Pickled by name: ``__reduce__`` returns the global's name."""

    def __reduce__(self) -> str:
        return "SENTINEL"


SENTINEL = Sentinel()


class KwOnlyNew:
    """``__new__`` with keyword-only arguments (``copyreg.__newobj_ex__``)."""

    def __new__(cls, *, a: Any) -> KwOnlyNew:
        obj = super().__new__(cls)
        obj.a = a
        return obj

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (), {"a": self.a}


def _set_state(obj: Any, state: dict[str, Any]) -> None:
    obj.v = state["v"]
    obj.set_by = "setter"


class WithStateSetter:
    """``__reduce__`` with the sixth element (a state setter)."""

    def __init__(self, v: Any) -> None:
        self.v = v

    def __reduce__(self) -> Any:
        return (WithStateSetter, (None,), {"v": self.v}, None, None, _set_state)


class AppendOnly:
    """Gives list items in ``__reduce__`` but has only ``append`` (pickle then appends)."""

    def __init__(self, items: Any = ()) -> None:
        self.items = list(items)

    def append(self, x: Any) -> None:
        self.items.append(x)

    def __reduce__(self) -> Any:
        return (AppendOnly, (), None, iter(self.items))


class SetItemOnly:
    """Gives dict items in ``__reduce__`` and supports only ``obj[key] = value`` (as pickle uses)."""

    def __init__(self, items: Any = ()) -> None:
        self.d = dict(items)

    def __setitem__(self, k: Any, v: Any) -> None:
        self.d[k] = v

    def __reduce__(self) -> Any:
        return (SetItemOnly, (), None, None, iter(self.d.items()))


class NoUpdateDict(dict):  # type: ignore[type-arg]
    """A dict subclass whose ``update`` refuses: pickle fills it with ``obj[key] = value``."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("NoUpdateDict.update is disabled; use item assignment")


class MyDatetime(dt.datetime):
    pass


class MyDate(dt.date):
    pass


class MyTime(dt.time):
    pass


class MyTimedelta(dt.timedelta):
    pass

"""Safe loading gives the same objects as normal loading, for everything the emitter writes.

Every round-trip case of ``test_representers`` (builtins, globals, stdlib, instances,
arrays, scalars) plus the graph-shape cases below (sharing, cycles, chunking, deep
nesting, shadowing names, single-item mode, the array table) is archived in both
formats and restored twice: ``restore(src)`` and ``restore(src, safe=True)``.  The
two results are compared strictly with :func:`archive_helpers.assert_same`.

User classes need ``safe_callables``: the tests pass every public name of the test
modules, as a user would list their own types.  Sources using the constructs safe
mode refuses by design (``getattr(owner, name)`` for bound methods,
``import_module(name)`` for modules, ``__import__('struct')`` for odd NaN payloads)
must be refused with :class:`UnsafeArchiveError`, never loaded differently.
"""

from __future__ import annotations

import collections
import dataclasses
import decimal
import inspect
from collections.abc import Callable
from typing import Any

import archive_helpers
import numpy as np
import pytest
import test_representers as tr
from archive_helpers import (
    FORMAT_IDS,
    FORMATS,
    Child,
    Color,
    DNode,
    Linked,
    Parent,
    Plain,
    assert_same,
)

import persist_hooks as ph
from persist_hooks.errors import UnsafeArchiveError

fmt = pytest.mark.parametrize("scoped", FORMATS, ids=FORMAT_IDS)


def _public_names(module: Any) -> list[str]:
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", None) == module.__name__:
            out.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):  # nested classes (Outer.Inner.Deepest)
                stack = [(f"{module.__name__}.{name}", obj)]
                while stack:
                    dotted, cls = stack.pop()
                    for sub, val in vars(cls).items():
                        if inspect.isclass(val) and not sub.startswith("_"):
                            out.append(f"{dotted}.{sub}")
                            stack.append((f"{dotted}.{sub}", val))
    return out


TRUSTED = [
    *_public_names(archive_helpers),
    *_public_names(tr),
    *(f"decimal.{n}" for n in ("Context", "InvalidOperation", "DivisionByZero", "Overflow",
                               "Underflow", "Inexact", "Rounded", "Subnormal", "Clamped",
                               "FloatOperation")),
    "collections.ChainMap", "array._array_reconstructor", "array.array", "functools.partial",
    "numpy.ma.core._mareconstruct", "numpy.ma.core.MaskedArray", "numpy.ndarray",
    "numpy.core.records.recarray", "numpy.rec.recarray", "numpy.record",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "builtins.len", "builtins.print", "builtins.ValueError", "builtins.str.join", "math.sqrt",
    "posixpath.join", "numpy.concatenate", "archive_helpers.Plain.smethod",
    "archive_helpers.Plain.method",
]  # fmt: skip
"""What a user would list for their own types; never anything that runs arbitrary code."""

REFUSED_BY_DESIGN = ("getattr(", "import_module(", "= max\n", "(max)")


def _safe_equals_normal(objs: dict[str, Any], scoped: bool, **kw: Any) -> str:
    archive = ph.Archive(scoped=scoped, **kw)
    archive.insert(**objs)
    src = str(archive)
    normal = ph.restore(src, arrays=archive.data)
    if any(tok in src for tok in REFUSED_BY_DESIGN):
        with pytest.raises(UnsafeArchiveError):
            ph.restore(src, arrays=archive.data, safe=True, safe_callables=TRUSTED)
        return src
    safe = ph.restore(src, arrays=archive.data, safe=True, safe_callables=TRUSTED)
    assert sorted(safe) == sorted(normal), src
    assert_same({k: normal[k] for k in objs}, {k: safe[k] for k in objs}, src)
    assert_same(objs, {k: safe[k] for k in objs}, src)
    return src


ALL_CASES: list[tuple[str, Callable[[], Any]]] = [
    (f"{group}-{name}", make)
    for group in ("BUILTIN", "GLOBAL", "STDLIB", "INSTANCE", "ARRAY", "SCALAR")
    for name, make in getattr(tr, f"{group}_CASES", [])
]


@fmt
@pytest.mark.parametrize("make", [c[1] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES])
def test_representer_cases_load_identically(scoped: bool, make: Callable[[], Any]) -> None:
    value = make()
    _safe_equals_normal({"v": value}, scoped)
    _safe_equals_normal({"inlist": [value, 1], "indict": {"k": value}}, scoped)


def _self_list() -> dict[str, Any]:
    a: list[Any] = [1]
    a.append(a)
    return {"a": a}


def _mutual() -> dict[str, Any]:
    d: dict[str, Any] = {}
    lst: list[Any] = [d]
    d["l"] = lst
    return {"d": d, "l": lst}


def _parent_child() -> dict[str, Any]:
    p = Parent("p")
    p.children = [Child("c1", p), Child("c2", p)]
    return {"p": p}


def _dataclass_cycle() -> dict[str, Any]:
    root = DNode("root")
    child = DNode("child", parent=root)
    root.children.append(child)
    return {"root": root}


def _tuple_in_list_cycle() -> dict[str, Any]:
    lst: list[Any] = []
    t = (lst, 1)
    lst.append(t)
    return {"t": t, "lst": lst}


def _stdlib_cycles() -> dict[str, Any]:
    od: collections.OrderedDict[str, Any] = collections.OrderedDict()
    od["me"] = od
    dq: collections.deque[Any] = collections.deque()
    dq.append(dq)
    dd: collections.defaultdict[str, Any] = collections.defaultdict(list)
    dd["x"].append(dd)
    return {"od": od, "dq": dq, "dd": dd}


def _big() -> dict[str, Any]:
    shared = Plain(k=1)
    big = [shared, *range(2500), shared]
    big.append(big)
    return {"big": big, "bt": tuple(range(2500)), "bs": set(range(2100)), "bd": {i: i for i in range(2500)},
            "bf": frozenset(range(1500))}


def _deep() -> dict[str, Any]:
    x: Any = 1
    for _ in range(1000):
        x = [x]
    y: Any = None
    for i in range(300):
        y = Linked(i, y)
    return {"x": x, "y": y}


def _shadowing() -> dict[str, Any]:
    return {"list": [1, {2}], "set": frozenset({1}), "float": float("nan"), "dict": {"a": [1]},
            "Fraction": tr.fractions.Fraction(1, 3), "array": np.arange(3.0), "type": type,
            "object": Plain(a=1), "int": decimal.Decimal("1.5")}


def _shared() -> dict[str, Any]:
    s = {"k": [1, 2]}
    t = (s, s)
    return {"a": [s, t, s], "b": t, "c": {frozenset({1}): s}}


def _misc() -> dict[str, Any]:
    return {"e": [Color.RED, Color.RED], "n": [None, ..., NotImplemented, type(None), type(...)],
            "f": [float("inf"), -float("inf"), float("nan"), -0.0, 1e308, 2**70, -(2**70), 10**4000],
            "ns": tr.types.SimpleNamespace(a=1, b=[2]), "s": "x" * 10000, "b": bytes(range(256)) * 10}


GRAPHS = [_self_list, _mutual, _parent_child, _dataclass_cycle, _tuple_in_list_cycle, _stdlib_cycles,
          _big, _deep, _shadowing, _shared, _misc]  # fmt: skip


@fmt
@pytest.mark.parametrize("make", GRAPHS, ids=[f.__name__.strip("_") for f in GRAPHS])
def test_graph_shapes_load_identically(scoped: bool, make: Callable[[], dict[str, Any]]) -> None:
    _safe_equals_normal(make(), scoped)


@fmt
def test_array_table_and_single_item_mode(scoped: bool) -> None:
    objs = {"x": [np.arange(50.0), np.arange(3), {"a": np.ones((4, 5))}]}
    src = _safe_equals_normal(objs, scoped, array_threshold=10)
    assert "_arrays[" in src
    src = _safe_equals_normal({"item": [1, Plain(a=2)]}, scoped, single_item_mode=True)
    assert "_sys.modules[__name__]" in src


@fmt
def test_assignment_source_metadata_block(scoped: bool) -> None:
    from persist_hooks.archive import assignment_source
    from persist_hooks.safe import execute

    value = {"units": "m", "when": tr.dt.date(2020, 1, 2), "shared": [Plain(a=1)] * 2}
    src = "_info_dict = {}\n" + assignment_source("_info_dict['x']", value, scoped=scoped)
    ns: dict[str, Any] = {}
    execute(src, ns, safe_callables=TRUSTED)
    plain: dict[str, Any] = {}
    exec(src, plain)
    assert_same(plain["_info_dict"], ns["_info_dict"], src)


@dataclasses.dataclass
class _Local:
    x: int


def test_refused_by_design_are_refused_not_misloaded() -> None:
    for obj in (np,):  # a module: import_module (NaN payloads load safely, test_safe.py)
        archive = ph.Archive()
        archive.insert(v=obj)
        src = str(archive)
        with pytest.raises(UnsafeArchiveError) as info:
            ph.restore(src, safe=True, safe_callables=TRUSTED)
        assert "line" in str(info.value)


@pytest.mark.parametrize("scoped", [True, False])
def test_bound_methods_load_safely_as_method_type(scoped: bool) -> None:
    obj = Plain(a=1)
    archive = ph.Archive(scoped=scoped)
    archive.insert(m=obj.method, o=obj)
    src = str(archive)
    assert "MethodType" in src and "getattr(" not in src
    got = ph.restore(src, safe=True, safe_callables=TRUSTED)
    assert got["m"].__self__ is got["o"] and got["m"].__func__ is Plain.method


# -- DataSets read with trusted=False -------------------------------------------------


@pytest.mark.parametrize("scoped", FORMATS, ids=FORMAT_IDS)
def test_dataset_untrusted_reads_identically(tmp_path: Any, scoped: bool) -> None:
    values = {
        "a": [np.arange(500.0), {"k": (1, 2.5, "s")}, tr.fractions.Fraction(1, 3)],
        "b": {"when": tr.dt.datetime(2020, 1, 2, 3, 4), "arr": np.ones((20, 30), dtype="f4")},
        "c": "just text",
        "d": [np.arange(5), collections.OrderedDict(a=1), decimal.Decimal("2.5")],
    }
    ds = ph.DataSet("dsafe", "w", path=tmp_path, scoped=scoped, array_threshold=10)
    for key, value in values.items():
        setattr(ds, key, value)
    ds["a"] = {"units": "m", "scale": 1.5}
    ds["meta_only"] = [1, 2, {"x": None}]
    ds.close()
    trusted = ph.DataSet("dsafe", path=tmp_path)
    untrusted = ph.DataSet("dsafe", path=tmp_path, trusted=False)
    for key in values:
        assert_same(getattr(trusted, key), getattr(untrusted, key), key)
    assert untrusted["a"] == {"units": "m", "scale": 1.5}
    assert untrusted["meta_only"] == trusted["meta_only"]
    assert sorted(untrusted) == sorted(trusted)


def test_dataset_untrusted_refuses_hostile_item(tmp_path: Any) -> None:
    ds = ph.DataSet("dhostile", "w", path=tmp_path)
    ds.x = [1, 2]
    ds.close()
    item = tmp_path / "dhostile" / "x.py"
    text = item.read_text()
    item.write_text(text.replace("x = [1, 2]", "import os\nx = os.system('echo pwned')"))
    with pytest.raises(UnsafeArchiveError, match=r"x\.py line \d+: import of 'os'"):
        _ = ph.DataSet("dhostile", path=tmp_path, trusted=False).x

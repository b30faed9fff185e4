"""Round trips of every type issue #2 lists, in both formats, compared strictly.

Each case archives a value, restores it with ``persist_hooks.restore`` and with
plain ``exec``, and compares with :func:`archive_helpers.assert_same`: types,
values bit for bit (nan signs, -0.0, numpy bytes, dtypes, memory order) and the
identity graph.
"""

from __future__ import annotations

import array
import collections
import datetime as dt
import decimal
import fractions
import functools
import math
import os
import pathlib
import re
import struct
import types
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from archive_helpers import (
    FORMAT_IDS,
    FORMATS,
    SENTINEL,
    AppendOnly,
    AttrDict,
    AttrList,
    Color,
    DefaultsNT,
    DNode,
    FrozenPoint,
    FrozenSlotPoint,
    KwOnlyNew,
    Level,
    MyDate,
    MyDatetime,
    MyTime,
    MyTimedelta,
    NoUpdateDict,
    Outer,
    Perm,
    Plain,
    PointNT,
    SelfDescribed,
    SetItemOnly,
    SlotPoint,
    Slotted,
    SlottedPartly,
    TaggedBytes,
    TaggedFloat,
    TaggedFrozenset,
    TaggedInt,
    TaggedSet,
    TaggedStr,
    TaggedTuple,
    TypedNT,
    WithPostInit,
    WithState,
    WithStateSetter,
    archive_of,
    assert_same,
    module_function,
    non_finite_floats,
    roundtrip,
)

import persist_hooks as ph

fmt = pytest.mark.parametrize("scoped", FORMATS, ids=FORMAT_IDS)

Case = tuple[str, Callable[[], Any]]


def cases(*pairs: Case) -> Any:
    return pytest.mark.parametrize("make", [p[1] for p in pairs], ids=[p[0] for p in pairs])


def check(scoped: bool, make: Callable[[], Any]) -> dict[str, Any]:
    """Round trip the value as a root, inside a list, and as a dict value."""
    value = make()
    out = roundtrip(scoped, v=value)
    roundtrip(scoped, inlist=[value, 1], indict={"k": value})
    return out


# -- builtins -----------------------------------------------------------------------

BUILTIN_CASES: list[Case] = [
    ("int-zero", lambda: 0),
    ("int-neg", lambda: -17),
    ("int-2**64", lambda: 2**64),
    ("int-neg-2**64", lambda: -(2**64) + 1),
    ("int-5000-digits", lambda: 10**5000 + 12345),
    ("int-neg-5000-digits", lambda: -(10**5000) - 7),
    ("int-2**100000", lambda: 2**100000 - 1),
    ("bool-true", lambda: True),
    ("bool-false", lambda: False),
    ("none", lambda: None),
    ("float-0.1", lambda: 0.1),
    ("float-neg-zero", lambda: -0.0),
    ("float-inf", lambda: math.inf),
    ("float-neg-inf", lambda: -math.inf),
    ("float-nan", lambda: math.nan),
    ("float-neg-nan", lambda: -math.nan),
    ("float-nan-payload", lambda: struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\x7f")[0]),
    ("float-subnormal", lambda: 5e-324),
    ("float-max", lambda: 1.7976931348623157e308),
    ("float-list", non_finite_floats),
    ("complex-inf-nan", lambda: complex(math.inf, math.nan)),
    ("complex-neg-zero-neg-nan", lambda: complex(-0.0, -math.nan)),
    ("complex-nan-neg-inf", lambda: complex(math.nan, -math.inf)),
    ("complex-1j", lambda: 1j),
    ("str-empty", lambda: ""),
    ("str-unicode", lambda: "héllo ☃ 𝄞 \u200b"),
    ("str-escapes", lambda: "\x00\n\r\t'\"\\"),
    ("str-lone-surrogate", lambda: "\ud800x"),
    ("bytes-empty", lambda: b""),
    ("bytes-all", lambda: bytes(range(256))),
    ("bytearray", lambda: bytearray(b"\x00abc\xff")),
    ("bytearray-empty", lambda: bytearray()),
    ("tuple-empty", lambda: ()),
    ("tuple-one", lambda: (1,)),
    ("tuple-nested", lambda: (1, (2, (3, [4])), "x")),
    ("list", lambda: [1, "a", None, [2, [3]], (4,)]),
    ("list-empty", lambda: []),
    ("dict", lambda: {"a": 1, "b": [2], "c": {"d": None}}),
    ("dict-empty", lambda: {}),
    (
        "dict-non-str-keys",
        lambda: {
            1: "int",
            2.5: "float",
            (1, "t"): "tuple",
            frozenset({1, 2}): "frozenset",
            None: "none",
            b"k": "bytes",
            -(10**5000): "huge",
            math.nan: "nan",
            1j: "complex",
            Color.RED: "enum",
            int: "type",
        },
    ),
    ("dict-order", lambda: {k: k for k in ["z", "a", "m", "b"]}),
    ("set", lambda: {1, "a", (1, 2), None, 2.5, frozenset({3})}),
    ("set-empty", set),
    ("frozenset", lambda: frozenset({1, "b", (2,)})),
    ("frozenset-empty", frozenset),
    ("frozenset-nested", lambda: frozenset({frozenset({1}), frozenset(), 2})),
    ("range-empty", lambda: range(0)),
    ("range-step", lambda: range(1, 10, 3)),
    ("range-negative", lambda: range(5, -5, -2)),
    ("range-huge", lambda: range(0, 2**70, 3)),
    ("slice-none", lambda: slice(None)),
    ("slice-full", lambda: slice(1, 10, 2)),
    ("slice-objects", lambda: slice("a", [1], (2,))),
    ("ellipsis", lambda: ...),
    ("notimplemented", lambda: NotImplemented),
]


@fmt
@cases(*BUILTIN_CASES)
def test_builtin_values(scoped: bool, make: Callable[[], Any]) -> None:
    check(scoped, make)


@fmt
def test_huge_int_source_stays_compilable_under_int_max_str_digits(scoped: bool) -> None:
    """Ints over CPython's 4300-digit str limit must not go through int->str at all."""
    import sys

    value = 7**20000  # ~16,900 decimal digits
    src = str(archive_of(scoped, v=value, w=[-value], k={value: 1}))
    assert "0x" in src  # written in hex: decimal would exceed sys.get_int_max_str_digits()
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)
    try:
        assert ph.restore(src) == {"v": value, "w": [-value], "k": {value: 1}}
    finally:
        sys.set_int_max_str_digits(limit)


# -- builtin types, functions, classes, methods and modules as values ------------------

GLOBAL_CASES: list[Case] = [
    ("int", lambda: int),
    ("list", lambda: list),
    ("object", lambda: object),
    ("type", lambda: type),
    ("ValueError", lambda: ValueError),
    ("NoneType", lambda: type(None)),
    ("ellipsis-type", lambda: type(...)),
    ("notimplemented-type", lambda: type(NotImplemented)),
    ("len", lambda: len),
    ("print", lambda: print),
    ("math.sqrt", lambda: math.sqrt),
    ("os.path.join", lambda: os.path.join),
    ("module_function", lambda: module_function),
    ("class-Plain", lambda: Plain),
    ("nested-class", lambda: Outer.Inner),
    ("nested-nested-class", lambda: Outer.Inner.Deepest),
    ("staticmethod", lambda: Plain.smethod),
    ("unbound-function", lambda: Plain.method),
    ("str.join-descriptor", lambda: str.join),
    ("OrderedDict-class", lambda: collections.OrderedDict),
    ("Enum-class", lambda: Color),
    ("numpy-function", lambda: np.concatenate),
    ("numpy-type", lambda: np.float32),
    ("module-math", lambda: math),
    ("module-os.path", lambda: os.path),
    ("module-collections.abc", lambda: collections.abc),
    ("module-numpy", lambda: np),
]


@fmt
@cases(*GLOBAL_CASES)
def test_globals_by_qualified_name(scoped: bool, make: Callable[[], Any]) -> None:
    out = check(scoped, make)
    assert out["v"] is make()


@fmt
@pytest.mark.parametrize(
    "make", [lambda: Plain.cmethod, lambda: dict.fromkeys, lambda: [].append], ids=["classmethod", "builtin-classmethod", "builtin-method"]
)
def test_methods_bound_to_classes_and_builtins(scoped: bool, make: Callable[[], Any]) -> None:
    value = make()
    out = roundtrip(scoped, v=value)["v"]
    assert out == value or type(value.__self__) is list
    assert out.__name__ == value.__name__


@fmt
def test_numpy_ufunc_by_name(scoped: bool) -> None:
    """Regression (fixed bug): represent_by_reduce calls obj.__reduce_ex__(4) directly and ignores
    copyreg.dispatch_table, so numpy ufuncs (and any type registered with copyreg.pickle)
    are unrepresentable.
    """
    out = roundtrip(scoped, v=np.add, w=[np.sin])
    assert out["v"] is np.add


@fmt
def test_bound_method_keeps_its_shared_owner(scoped: bool) -> None:
    owner = Plain(x=[1])
    out = roundtrip(scoped, m=owner.method, owner=owner)
    assert out["m"].__self__ is out["owner"]
    assert out["m"]() == "method"


@fmt
def test_insert_builtin_type_as_value(scoped: bool) -> None:
    """`insert(t=int)` (the anchors failed on builtin types themselves as values)."""
    out = roundtrip(scoped, t=int, ts=[int, float, str, bytes, dict, type(None)])
    assert out["t"] is int
    assert out["ts"][-1] is type(None)


# -- standard library ---------------------------------------------------------------

_TZ = dt.timezone(dt.timedelta(hours=-5, minutes=-30), "Odd/Zone")

STDLIB_CASES: list[Case] = [
    ("datetime", lambda: dt.datetime(2020, 1, 2, 3, 4, 5, 6)),
    ("datetime-midnight", lambda: dt.datetime(2020, 1, 2)),
    ("datetime-utc", lambda: dt.datetime(2020, 1, 2, 3, tzinfo=dt.UTC)),
    ("datetime-named-tz", lambda: dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=_TZ)),
    ("datetime-offset-tz", lambda: dt.datetime(2000, 2, 29, tzinfo=dt.timezone(dt.timedelta(hours=3)))),
    ("datetime-fold", lambda: dt.datetime(2021, 11, 7, 1, 30, fold=1)),
    ("datetime-min", lambda: dt.datetime.min),
    ("datetime-max", lambda: dt.datetime.max),
    ("date", lambda: dt.date(2024, 2, 29)),
    ("date-min", lambda: dt.date.min),
    ("time", lambda: dt.time(1, 2, 3, 4)),
    ("time-zero", lambda: dt.time()),
    ("time-tz-fold", lambda: dt.time(1, 2, tzinfo=_TZ, fold=1)),
    ("timedelta", lambda: dt.timedelta(days=-1, seconds=5, microseconds=7)),
    ("timedelta-max", lambda: dt.timedelta.max),
    ("timedelta-min", lambda: dt.timedelta.min),
    ("timezone-utc", lambda: dt.UTC),
    ("timezone-offset", lambda: dt.timezone(dt.timedelta(minutes=90))),
    ("timezone-named", lambda: _TZ),
    ("timezone-zero-named", lambda: dt.timezone(dt.timedelta(0), "GMT")),
    ("decimal", lambda: decimal.Decimal("1.10")),
    ("decimal-nan", lambda: decimal.Decimal("NaN")),
    ("decimal-neg-nan", lambda: decimal.Decimal("-NaN")),
    ("decimal-snan-payload", lambda: decimal.Decimal("sNaN123")),
    ("decimal-neg-zero", lambda: decimal.Decimal("-0")),
    ("decimal-neg-zero-exp", lambda: decimal.Decimal("-0E+3")),
    ("decimal-inf", lambda: decimal.Decimal("-Infinity")),
    ("decimal-huge-exp", lambda: decimal.Decimal("1E+999999")),
    ("decimal-precise", lambda: decimal.Decimal("3.141592653589793238462643383279502884197")),
    ("fraction", lambda: fractions.Fraction(1, 3)),
    ("fraction-neg", lambda: fractions.Fraction(-7, 2)),
    ("fraction-big", lambda: fractions.Fraction(10**50 + 1, 3**40)),
    ("path", lambda: pathlib.Path("/a/b c/d.txt")),
    ("path-relative", lambda: pathlib.Path("rel/x")),
    ("purepath-posix", lambda: pathlib.PurePosixPath("x/y")),
    ("purepath-windows", lambda: pathlib.PureWindowsPath("C:\\x\\y")),
    ("ordereddict", lambda: collections.OrderedDict([("b", 1), ("a", [2])])),
    ("defaultdict-list", lambda: collections.defaultdict(list, {"a": [1], 2: []})),
    ("defaultdict-none", lambda: collections.defaultdict(None, {"a": 1})),
    ("defaultdict-function", lambda: collections.defaultdict(module_function)),
    ("counter", lambda: collections.Counter({"a": 2, "b": -1, (1, 2): 0})),
    ("counter-empty", collections.Counter),
    ("deque", lambda: collections.deque([1, [2], "3"])),
    ("deque-maxlen", lambda: collections.deque([1, 2, 3], maxlen=2)),
    ("deque-maxlen-zero", lambda: collections.deque(maxlen=0)),
    ("namedtuple", lambda: PointNT(1, [2])),
    ("namedtuple-defaults", lambda: DefaultsNT(1)),
    ("typing-namedtuple", lambda: TypedNT(1)),
    ("typing-namedtuple-full", lambda: TypedNT(2, "two")),
    ("enum", lambda: Color.RED),
    ("enum-str-value", lambda: Color.GREEN),
    ("enum-tuple-value", lambda: Color.BLUE),
    ("intenum", lambda: Level.HIGH),
    ("flag-member", lambda: Perm.R),
    ("dataclass", lambda: DNode("root")),
    ("dataclass-frozen", lambda: FrozenPoint(1.0, -0.0)),
    ("dataclass-slots", lambda: SlotPoint(1, [2])),
    ("dataclass-frozen-slots", lambda: FrozenSlotPoint((1,), {"k": math.nan})),
    ("dataclass-post-init", lambda: WithPostInit(3)),
    ("uuid", lambda: uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("uuid-nil", lambda: uuid.UUID(int=0)),
    ("simplenamespace", lambda: types.SimpleNamespace(a=1, b=[2], c=types.SimpleNamespace())),
    ("re-pattern", lambda: re.compile(r"a+\sb", re.IGNORECASE | re.MULTILINE)),
    ("re-bytes-pattern", lambda: re.compile(rb"x\d")),
    ("re-verbose", lambda: re.compile(r"(?x) a  # comment")),
]


@fmt
@cases(*STDLIB_CASES)
def test_stdlib_values(scoped: bool, make: Callable[[], Any]) -> None:
    check(scoped, make)


@fmt
@pytest.mark.parametrize(
    "make",
    [
        lambda: MyDatetime(2020, 1, 2, 3, tzinfo=dt.UTC),
        lambda: MyDate(2020, 1, 2),
        lambda: MyTime(1, 2, 3),
        lambda: MyTimedelta(days=1, seconds=5),
    ],
    ids=["datetime", "date", "time", "timedelta"],
)
def test_datetime_family_subclasses_keep_their_type(scoped: bool, make: Callable[[], Any]) -> None:
    check(scoped, make)


@fmt
def test_zoneinfo(scoped: bool) -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        tz = zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:  # pragma: no cover - no tz database
        pytest.skip("no time zone database")
    value = dt.datetime(2021, 10, 31, 2, 30, tzinfo=tz, fold=1)
    out = roundtrip(scoped, v=value)
    assert out["v"].tzinfo is tz  # ZoneInfo instances are cached per key
    assert out["v"].utcoffset() == value.utcoffset()


@fmt
def test_datetime_tzinfo_shared(scoped: bool) -> None:
    a = dt.datetime(2020, 1, 1, tzinfo=_TZ)
    b = dt.time(3, tzinfo=_TZ)
    out = roundtrip(scoped, a=a, b=b)
    assert out["a"].tzinfo is out["b"].tzinfo


@fmt
def test_defaultdict_factory_still_works(scoped: bool) -> None:
    out = roundtrip(scoped, d=collections.defaultdict(list, {"a": [1]}))
    out["d"]["new"].append(1)
    assert out["d"]["new"] == [1]


@fmt
def test_deque_maxlen_enforced_after_restore(scoped: bool) -> None:
    out = roundtrip(scoped, d=collections.deque(range(5), maxlen=3))
    assert list(out["d"]) == [2, 3, 4]
    out["d"].append(5)
    assert list(out["d"]) == [3, 4, 5]


@fmt
def test_namedtuple_field_access(scoped: bool) -> None:
    out = roundtrip(scoped, p=PointNT(x=1, y=2), t=TypedNT(5))
    assert out["p"].x == 1 and out["t"].label == "none"


@fmt
def test_flag_combination(scoped: bool) -> None:
    """Regression (fixed bug): Flag combinations are emitted as `Perm.R|W` (Enum.name of a composite flag),
    which raises NameError on restore.
    """
    roundtrip(scoped, v=Perm.R | Perm.W)


@fmt
def test_flag_zero(scoped: bool) -> None:
    """Regression (fixed bug): An empty Flag value has name None and is emitted as `Perm.None`
    (UnrepresentableError: invalid syntax).
    """
    roundtrip(scoped, v=Perm(0))


# -- instances: __reduce_ex__, __setstate__, __slots__, subclasses, __persist_rep__ ----

INSTANCE_CASES: list[Case] = [
    ("plain", lambda: Plain(a=1, b=[2, 3], c={"d": (4,)})),
    ("plain-empty", Plain),
    ("nested-class-instance", lambda: Outer.Inner([1])),
    ("slots", lambda: Slotted(1, [2])),
    ("slots-partly-set-and-dict", lambda: SlottedPartly("v")),
    ("attr-list", lambda: AttrList([1, [2]], tag="tagged")),
    ("attr-dict", lambda: AttrDict({"a": 1, 2: "b"}, tag="tagged")),
    ("decimal-context", lambda: decimal.Context(prec=7, rounding=decimal.ROUND_DOWN)),
    ("str-subclass-with-attrs", lambda: _tagged(TaggedStr("abc"))),
    ("int-subclass-with-attrs", lambda: _tagged(TaggedInt(-5))),
    ("float-subclass-neg-nan", lambda: TaggedFloat(-math.nan)),
    ("tuple-subclass", lambda: TaggedTuple((1, [2]))),
    ("set-subclass-with-attrs", lambda: _tagged(TaggedSet({1, "a"}))),
    ("frozenset-subclass", lambda: TaggedFrozenset({1, 2})),
    ("bytes-subclass", lambda: TaggedBytes(b"\x00x")),
    ("kw-only-new", lambda: KwOnlyNew(a=[1, 2])),
    ("partial", lambda: functools.partial(max, 1, key=abs)),
    ("array.array", lambda: array.array("d", [1.5, -0.0, math.inf])),
    ("chainmap", lambda: collections.ChainMap({"a": 1}, {"b": [2]})),
]


def _tagged(obj: Any) -> Any:
    obj.tag = ["t"]
    return obj


@fmt
def test_reduce_to_global_name_keeps_the_singleton(scoped: bool) -> None:
    out = roundtrip(scoped, v=SENTINEL, w=[SENTINEL])
    assert out["v"] is SENTINEL and out["w"][0] is SENTINEL


@fmt
def test_reduce_with_state_setter(scoped: bool) -> None:
    out = roundtrip_plain(scoped, WithStateSetter([1]))
    assert out.v == [1] and out.set_by == "setter"


def roundtrip_plain(scoped: bool, obj: Any) -> Any:
    return ph.restore(str(archive_of(scoped, v=obj)))["v"]


@fmt
@pytest.mark.parametrize(
    "make",
    [lambda: AppendOnly([1, [2]]), lambda: SetItemOnly({"k": [1]}), lambda: _no_update_dict()],
    ids=["append-only", "setitem-only", "dict-subclass-without-update"],
)
def test_reduce_list_and_dict_items_filled_like_pickle(scoped: bool, make: Any) -> None:
    """Regression (fixed bug): list items were filled with `self.extend(...)` and dict items
    with `self.update(...)`; pickle appends when there is no extend and assigns dict items, so
    such objects archived fine but failed on restore."""
    import pickle

    value = make()
    expected = pickle.loads(pickle.dumps(value))
    out = roundtrip_plain(scoped, value)
    assert type(out) is type(expected) and vars(out) == vars(expected)
    if isinstance(value, dict):
        assert dict(out) == dict(value)


def _no_update_dict() -> NoUpdateDict:
    d = NoUpdateDict()
    d["a"] = [1]
    d.tag = "x"  # type: ignore[attr-defined]
    return d


@fmt
@cases(*INSTANCE_CASES)
def test_instances(scoped: bool, make: Callable[[], Any]) -> None:
    check(scoped, make)


@fmt
def test_setstate_is_called(scoped: bool) -> None:
    obj = WithState([1], "b")
    out = roundtrip_state(scoped, obj)
    assert out.setstate_called is True
    assert out.cache == "rebuilt"
    assert out.a == [1] and out.b == "b"


def roundtrip_state(scoped: bool, obj: WithState) -> WithState:
    src = str(archive_of(scoped, v=obj))
    assert "not archived" not in src  # __getstate__ decides what is stored
    value: WithState = ph.restore(src)["v"]
    assert type(value) is WithState
    return value


@fmt
def test_post_init_dataclass_not_run_twice(scoped: bool) -> None:
    obj = WithPostInit(3)
    obj.doubled = 100  # state differs from what __post_init__ would compute
    out = roundtrip(scoped, v=obj)
    assert out["v"].doubled == 100


@fmt
def test_persist_rep_is_used(scoped: bool) -> None:
    before = SelfDescribed.built_by_rep
    obj = SelfDescribed("hello")
    src = str(archive_of(scoped, v=obj, w=[obj]))
    assert "from_rep" in src
    out = ph.restore(src)
    assert out["v"].via_rep is True and out["v"].text == "hello"
    assert out["w"][0] is out["v"]
    assert SelfDescribed.built_by_rep == before + 1


@fmt
def test_list_and_dict_subclass_share_and_keep_attributes(scoped: bool) -> None:
    inner = [1]
    lst = AttrList([inner, inner], tag="t")
    dct = AttrDict({"x": inner}, tag="d")
    out = roundtrip(scoped, lst=lst, dct=dct)
    assert out["lst"].tag == "t" and out["dct"].tag == "d"
    assert out["lst"][0] is out["dct"]["x"]


# -- numpy arrays ---------------------------------------------------------------------

_rng = np.random.default_rng(12345)


def _special_floats(dtype: str) -> np.ndarray[Any, Any]:
    vals = np.array([0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 1e-300, 3.0e38], dtype="f8")
    with np.errstate(over="ignore"):  # 3e38 overflows to inf in float16: intended
        arr = vals.astype(dtype) if dtype != "f8" else vals
    arr = np.append(arr, np.array([-np.nan], dtype=dtype))
    return arr


def _float_with_payload(dtype: str, bits: int) -> np.ndarray[Any, Any]:
    itype = {"f2": "<u2", "f4": "<u4", "f8": "<u8"}[dtype]
    arr = np.array([1.0, 2.0, 3.0], dtype=dtype)
    arr.view(itype)[1] = bits
    return arr


_FLAT = np.dtype([("name", "U8"), ("x", "<f4"), ("id", ">i8"), ("ok", "?")])
_STRUCT = np.dtype([("name", "U8"), ("pos", "<f4", (3,)), ("id", ">i8"), ("ok", "?")])
_NESTED = np.dtype([("a", [("x", "<i2"), ("y", "<f8")]), ("b", "S3")])

ARRAY_CASES: list[Case] = [
    *[
        (f"int-{t}", lambda t=t: np.array([0, 1, np.iinfo(t).min, np.iinfo(t).max], dtype=t))
        for t in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    ],
    ("bool", lambda: np.array([True, False, True])),
    ("float16", lambda: _special_floats("f2")),
    ("float32", lambda: _special_floats("f4")),
    ("float64", lambda: _special_floats("f8")),
    ("float64-random", lambda: _rng.standard_normal(50)),
    ("longdouble", lambda: np.array([1, 1 / 3, -0.0, np.inf, np.nan], dtype=np.longdouble) / 7),
    ("float16-nan-payload", lambda: _float_with_payload("f2", 0x7E01)),
    ("float32-signaling-nan", lambda: _float_with_payload("f4", 0x7F800001)),
    ("float64-nan-payload", lambda: _float_with_payload("f8", 0x7FF8000000000ABC)),
    ("complex64", lambda: np.array([1 + 2j, complex(np.inf, np.nan), complex(-0.0, -np.nan)], dtype="c8")),
    ("complex128", lambda: np.array([1 + 2j, complex(np.nan, -np.inf), -0.0j], dtype="c16")),
    ("clongdouble", lambda: np.array([1 + 2j, 1 / 3 + 0j], dtype=np.clongdouble) / 3),
    ("big-endian-int", lambda: np.arange(5, dtype=">i4")),
    ("big-endian-float", lambda: np.array([1.5, -0.0, np.nan], dtype=">f8")),
    ("big-endian-complex", lambda: np.array([1 + 1j], dtype=">c16")),
    ("unicode", lambda: np.array(["", "a", "héllo ☃", "𝄞𝄞"], dtype="U5")),
    ("unicode-trailing-nul", lambda: np.array(["a\x00b"], dtype="U4")),
    ("bytes", lambda: np.array([b"", b"ab", b"\x00\xff\x01"], dtype="S3")),
    ("datetime64-ns", lambda: np.array(["2020-01-01T00:00:00.123456789", "NaT"], dtype="M8[ns]")),
    ("datetime64-D", lambda: np.array(["1970-01-01", "NaT", "2262-04-11"], dtype="M8[D]")),
    ("datetime64-Y", lambda: np.array(["1", "9999", "NaT"], dtype="M8[Y]")),
    ("datetime64-15m", lambda: np.array(["2020-01-01T00:15"], dtype="M8[15m]")),
    ("datetime64-generic-nat", lambda: np.array([np.datetime64("NaT")])),
    ("timedelta64", lambda: np.array([1, -5, np.timedelta64("NaT")], dtype="m8[s]")),
    ("timedelta64-us", lambda: np.array([10**15, 0], dtype="m8[us]")),
    ("structured", lambda: np.array([("ab", 1.5, 7, True), ("", -0.0, -1, False), ("n", np.nan, 0, True)], dtype=_FLAT)),
    ("structured-nested", lambda: np.array([((1, 2.5), b"xy")], dtype=_NESTED)),
    ("structured-unicode-name", lambda: np.array([(1, 2.0)], dtype=[("é", "<i4"), ("größe", "<f8")])),
    ("structured-0d", lambda: np.array(("a", 2.5, 5, True), dtype=_FLAT)),
    ("structured-empty", lambda: np.zeros(0, dtype=_STRUCT)),
    ("void-raw", lambda: np.frombuffer(b"\x00\x01\x02\x03\x04\x05\x06\x07", dtype="V4")),
    ("0d-int", lambda: np.array(5, dtype="int8")),
    ("0d-float-nan", lambda: np.array(-np.nan)),
    ("0d-datetime", lambda: np.array(np.datetime64("2020-01-01", "D"))),
    ("0d-unicode", lambda: np.array("héllo")),
    ("empty-1d", lambda: np.zeros(0)),
    ("empty-2d", lambda: np.zeros((0, 3), dtype="i2")),
    ("empty-3d-middle", lambda: np.zeros((2, 0, 3), dtype="f4")),
    ("2d", lambda: np.arange(12.0).reshape(3, 4)),
    ("fortran", lambda: np.asfortranarray(np.arange(12).reshape(3, 4))),
    ("fortran-complex", lambda: np.asfortranarray((np.arange(6) + 1j).reshape(2, 3))),
    ("non-contiguous-view", lambda: np.arange(20)[::3]),
    ("object", lambda: np.array([1, "a", None, [1, 2], {"k": 3}], dtype=object)),
    ("object-2d", lambda: np.array([[1, "a"], [None, (1, 2)]], dtype=object)),
    ("object-0d", lambda: np.array(None, dtype=object)),
    ("object-empty", lambda: np.empty((0, 2), dtype=object)),
    ("object-holding-arrays", lambda: _object_of_arrays()),
    ("matrix-shape-1", lambda: np.ones((1, 1, 1), dtype="u2")),
]


def _object_of_arrays() -> np.ndarray[Any, Any]:
    out = np.empty(2, dtype=object)
    out[0] = np.arange(3)
    out[1] = np.zeros((2, 2), dtype="f4")
    return out


@fmt
@cases(*ARRAY_CASES)
def test_numpy_arrays(scoped: bool, make: Callable[[], Any]) -> None:
    check(scoped, make)


@fmt
def test_structured_array_with_datetime_fields(scoped: bool) -> None:
    """Regression (fixed bug): Structured arrays with datetime64/timedelta64 fields are written via
    tolist(), which yields datetime.datetime/int objects whose repr is not valid source
    (NameError).
    """
    arr = np.array([(1, "2020-01-01", 5)], dtype=[("a", "i4"), ("d", "M8[D]"), ("t", "m8[s]")])
    roundtrip(scoped, v=arr)


@fmt
@pytest.mark.parametrize("zero_d", [False, True], ids=["1d", "0d"])
def test_structured_array_with_subarray_field(scoped: bool, zero_d: bool) -> None:
    """Regression (fixed bug): Structured arrays with subarray fields are written via tolist(), which
    yields ndarray objects whose repr `array([...], dtype=float32)` fails (NameError).
    """
    arr = np.array([("ab", (1, 2, 3), 7, True), ("", (0, -0.0, np.nan), -1, False)], dtype=_STRUCT)
    roundtrip(scoped, v=arr[0] if zero_d else arr)


@fmt
def test_structured_array_aligned_dtype(scoped: bool) -> None:
    """Regression (fixed bug): Aligned/padded structured dtypes are written with dtype_to_descr(), whose
    ('', '|V7') padding entry becomes a third field on restore (ValueError).
    """
    arr = np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<i8")], align=True))
    arr["a"] = [1, 2]
    roundtrip(scoped, v=arr)


@fmt
def test_big_endian_datetime64_array(scoped: bool) -> None:
    """Regression (fixed bug): Big-endian datetime64 arrays go through np.datetime_as_string, which
    misreads non-native byte order: the archive silently stores wrong dates.
    """
    roundtrip(scoped, v=np.array(["2020-01-01", "NaT"], dtype=">M8[s]"))


@fmt
@pytest.mark.parametrize("dtype", ["M8[D]", "m8[s]"])
@pytest.mark.parametrize("shape", [(0, 3), (1, 0, 2)], ids=["0x3", "1x0x2"])
def test_empty_multidimensional_datetime_array(scoped: bool, dtype: str, shape: tuple[int, ...]) -> None:
    roundtrip(scoped, v=np.zeros(shape, dtype=dtype))


@fmt
def test_big_endian_timedelta64_array(scoped: bool) -> None:
    roundtrip(scoped, v=np.array([5, -3, np.timedelta64("NaT")], dtype=">m8[s]"))


@fmt
def test_signaling_nan_archives_without_warnings(scoped: bool) -> None:
    import warnings

    arr = _float_with_payload("f4", 0x7F800001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        src = str(archive_of(scoped, v=arr, s=arr[1]))
    assert ph.restore(src)["v"].tobytes() == arr.tobytes()


@fmt
def test_object_array_shares_its_elements(scoped: bool) -> None:
    inner = [1, 2]
    arr = np.empty(3, dtype=object)
    arr[0] = inner
    arr[1] = inner
    arr[2] = "x"
    out = roundtrip(scoped, a=arr, inner=inner)
    assert out["a"][0] is out["a"][1] is out["inner"]


@fmt
def test_shared_array_and_views(scoped: bool) -> None:
    base = np.arange(4.0)
    out = roundtrip(scoped, x=[base, base], y={"b": base})
    assert out["x"][0] is out["x"][1] is out["y"]["b"]


# -- numpy scalars and dtypes ----------------------------------------------------------

SCALAR_CASES: list[Case] = [
    *[
        (f"scalar-{t}", lambda t=t: np.dtype(t).type(np.iinfo(t).max))
        for t in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    ],
    ("bool_", lambda: np.bool_(True)),
    ("float16", lambda: np.float16(0.1)),
    ("float16-neg-nan", lambda: np.float16(-np.nan)),
    ("float32", lambda: np.float32(0.1)),
    ("float32-neg-zero", lambda: np.float32(-0.0)),
    ("float32-inf", lambda: np.float32(-np.inf)),
    ("float32-payload-nan", lambda: _float_with_payload("f4", 0x7FC00123)[1]),
    ("float64", lambda: np.float64(1 / 3)),
    ("float64-neg-nan", lambda: np.float64(-np.nan)),
    ("longdouble", lambda: np.longdouble(1) / np.longdouble(3)),
    ("complex64", lambda: np.complex64(complex(np.inf, -np.nan))),
    ("complex128", lambda: np.complex128(1 / 3 + 2j)),
    ("clongdouble", lambda: np.clongdouble(1) / np.clongdouble(3)),
    ("datetime64", lambda: np.datetime64("2020-01-01T12:00", "m")),
    ("datetime64-nat", lambda: np.datetime64("NaT", "ns")),
    ("datetime64-generic-nat", lambda: np.datetime64("NaT")),
    ("timedelta64", lambda: np.timedelta64(-5, "h")),
    ("timedelta64-nat", lambda: np.timedelta64("NaT", "s")),
    ("str_", lambda: np.str_("héllo")),
    ("bytes_", lambda: np.bytes_(b"a\x00b")),
    ("void-record", lambda: np.array([("ab", 1.5, 7, True)], dtype=_FLAT)[0]),
    ("dtype-float32", lambda: np.dtype("float32")),
    ("dtype-big-endian", lambda: np.dtype(">i2")),
    ("dtype-structured", lambda: _STRUCT),
    ("dtype-datetime", lambda: np.dtype("M8[ms]")),
]


@fmt
@cases(*SCALAR_CASES)
def test_numpy_scalars_and_dtypes(scoped: bool, make: Callable[[], Any]) -> None:
    value = make()
    if isinstance(value, np.dtype):
        out = roundtrip(scoped, v=value)["v"]
        assert out == value and out.str == value.str and out.names == value.names
        return
    check(scoped, make)


@fmt
def test_numpy_scalars_are_not_python_numbers(scoped: bool) -> None:
    """The anchors restored numpy scalars as Python floats/ints (or failed)."""
    values = [np.float32(0.1), np.int16(-3), np.uint64(2**64 - 1), np.float64(np.nan), np.bool_(False)]
    out = roundtrip(scoped, v=values)["v"]
    assert [type(x) for x in out] == [type(x) for x in values]


# -- representers directly ----------------------------------------------------------


def test_dtype_source_and_array_expr_are_readable() -> None:
    from persist_hooks.representers.numpy import dtype_source, represent_array

    assert dtype_source(np.dtype("float32")) == "'float32'"
    assert dtype_source(np.dtype(">i4")) == "'>i4'"
    assert represent_array(np.arange(3.0)).expr == "array([0.0, 1.0, 2.0], dtype='float64')"


def test_reduce_representer_refuses_unreducible() -> None:
    import threading

    from persist_hooks.representers.reduce import represent_by_reduce

    with pytest.raises(ph.UnrepresentableError, match="lock"):
        represent_by_reduce(threading.Lock())


def test_assert_same_detects_differences() -> None:
    """The comparison helper itself must catch what it is meant to catch."""
    with pytest.raises(AssertionError):
        assert_same(-0.0, 0.0)
    with pytest.raises(AssertionError):
        assert_same(math.nan, -math.nan)
    with pytest.raises(AssertionError):
        assert_same(np.arange(3, dtype="<i4"), np.arange(3, dtype=">i4"))
    with pytest.raises(AssertionError):
        assert_same(np.zeros((2, 2)), np.asfortranarray(np.zeros((2, 2))))
    shared = [1]
    with pytest.raises(AssertionError):
        assert_same([shared, shared], [[1], [1]])
    one = [1]
    with pytest.raises(AssertionError):
        assert_same([[1], [1]], [one, one])
    with pytest.raises(AssertionError):
        assert_same(Plain(a=1), Plain(a=2))
    with pytest.raises(AssertionError):
        assert_same(np.float32(1), np.float64(1))
    with pytest.raises(AssertionError):
        assert_same(decimal.Decimal("-0"), decimal.Decimal("0"))

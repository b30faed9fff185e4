"""Rows written in place in batches (``Walker._inline_rows``): the source of row by row.

A list of dict rows that only the list refers to is written in batches: rows with the
same keys whose columns each hold one kind of value (literals, containers of literals,
nodes).  Anything else (nan/inf, huge ints, complex, shared rows or containers, other
keys...) ends a batch and takes the per-row path.  Each graph here is archived twice
from fresh objects, with batches and without (``_ROWS_MIN`` out of reach), and the
sources must be identical; the tests also check that batches ran, and round-trip the
values strictly (types, bit-exact values, identities).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from archive_helpers import FORMAT_IDS, FORMATS, Plain, TaggedStr, assert_same, roundtrip

import persist_hooks as ph
from persist_hooks.archive import graph
from persist_hooks.archive.graph import Walker

fmt = pytest.mark.parametrize("scoped", FORMATS, ids=FORMAT_IDS)

Inserts = list[Any]
"""What a graph builder returns: the keyword arguments of each ``insert``, in order (a
callable: called just before its insert, so that what it refers to is not referred to
earlier)."""


@pytest.fixture
def batched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows each call of ``Walker._inline_rows`` wrote (0: it left them)."""
    calls: list[int] = []
    real = Walker._inline_rows

    def spy(self: Walker, *args: Any) -> tuple[int, int]:
        done, fit = real(self, *args)
        calls.append(done)
        return done, fit

    monkeypatch.setattr(Walker, "_inline_rows", spy)
    return calls


def source(build: Callable[[], Inserts], scoped: bool, array_threshold: int | None = None) -> str:
    archive = ph.Archive(scoped=scoped, array_threshold=array_threshold)
    for objs in build():  # fresh objects: an earlier archive's references change nothing
        archive.insert(**(objs() if callable(objs) else objs))
    return str(archive)


def same_as_per_row(build: Callable[[], Inserts], scoped: bool, array_threshold: int | None = None) -> str:
    """The source of ``build()``'s inserts; assert it is the one written without batches."""
    batched = source(build, scoped, array_threshold)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graph, "_ROWS_MIN", 10**9)
        per_row = source(build, scoped, array_threshold)
    assert batched == per_row
    return batched


def rows(n: int, shared: Any = None) -> list[dict[str, Any]]:
    """Records like the benchmark's (benchmarks/archive.py), all sharing ``shared``."""
    shared = Plain(name="shared", values=[1, 2, 3]) if shared is None else shared
    return [
        {"i": i, "x": i * 0.25, "s": f"item {i}", "l": [i, i + 1, i + 2], "t": (i, "a", 1.5), "o": shared}
        for i in range(n)
    ]


# -- the usual rows: one batch --------------------------------------------------------------


@fmt
def test_records_are_written_in_one_batch(scoped: bool, batched: list[int]) -> None:
    src = same_as_per_row(lambda: [{"data": rows(300)}], scoped)
    assert 300 in batched
    assert "{'i': 7, 'x': 1.75, 's': 'item 7', 'l': [7, 8, 9], 't': (7, 'a', 1.5), 'o': " in src
    out = roundtrip(scoped, data=rows(300))
    assert out["data"][0]["o"] is out["data"][299]["o"]


@fmt
def test_kinds_of_columns(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        shared, other = Plain(a=1), Plain(b=2)
        return [
            {
                "d": [
                    {
                        "none": None,
                        "flag": i % 2 == 0,
                        "raw": b"\x00%r",
                        "mixed": [None, i, 0.5, "s", b"b", True, -0.0, 2**70][i % 8],
                        "zero": -0.0,
                        "d": {"k": i, 2: None, 1.5: "v"},
                        "e": [],
                        "ed": {},
                        "t1": (i,),
                        "var": list(range(i % 5)),
                        "long": list(range(20)),
                        "a": shared,
                        "b": other,
                        "each": Plain(i=i),
                        "c": shared,
                        "%s": "100% %r {}",
                        "'\"": "'\"\\\x00\u2028",
                    }
                    for i in range(100)
                ]
            }
        ]

    same_as_per_row(build, scoped)
    assert 100 in batched
    roundtrip(scoped, d=build()[0]["d"])


@fmt
def test_rows_with_nodes_in_several_columns(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        ps = [Plain(k=k) for k in range(5)]
        return [{"d": [{"p": ps[(i // 50) % 5], "q": ps[i % 5], "i": i, "r": [ps[0]]} for i in range(300)]}]

    same_as_per_row(build, scoped)
    assert sum(batched) == 300


@fmt
def test_arrays_in_rows_keep_their_keys_in_order(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        return [{"d": [{"a": np.arange(i % 7 + 3), "i": i} for i in range(100)]}]

    src = same_as_per_row(build, scoped, array_threshold=4)
    assert sum(batched) == 100 and "_arrays['array_0']" in src


# -- what ends a batch: the per-row path -------------------------------------------------


@fmt
def test_non_finite_floats(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        d = rows(300)
        d[17]["x"] = math.nan
        d[90]["l"].append(math.inf)
        d[150]["t"] = (1, -math.inf)
        d[151]["x"] = -math.nan
        d[200]["l"] = [1e308, 1e308]  # finite, but their sum is not
        d[201]["x"] = 1.7976931348623157e308
        return [{"d": d}]

    src = same_as_per_row(build, scoped)
    assert 0 < sum(batched) < 300
    assert "'x': float('nan')" in src and "'x': -float('nan')" in src
    assert_same(build()[0], ph.restore(src), src)


@fmt
def test_big_ints(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        d = rows(300)
        d[3]["i"] = 10**5000  # over the str digit limit
        d[120]["l"][1] = 2**12000
        d[125]["i"] = 2**100
        d[200]["i"] = -(2**64)
        d[201]["l"][0] = 10**3611
        d[250]["t"] = (-(10**4000), "a", 1.5)
        return [{"d": d}]

    src = same_as_per_row(build, scoped)
    assert 0 < sum(batched) < 300
    assert_same(build()[0], ph.restore(src), src)


@fmt
def test_complex_values(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        d = rows(300)
        d[12]["x"] = 1 + 2j
        d[122]["l"] = [1j]
        d[233]["t"] = (complex(math.nan, -0.0),)
        return [{"d": d}]

    src = same_as_per_row(build, scoped)
    assert 0 < sum(batched) < 300
    assert_same(build()[0], ph.restore(src), src)


@fmt
def test_row_referenced_twice(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        d = rows(300)
        d[70] = d[30]
        d[200] = d[299]
        d.append(d[5])
        return [{"d": d}]

    same_as_per_row(build, scoped)
    assert 0 < sum(batched) < 300
    d = build()[0]["d"]
    out = roundtrip(scoped, d=d)["d"]
    assert out[70] is out[30] and out[200] is out[299] and out[300] is out[5]


@fmt
def test_containers_shared_between_rows(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        d = rows(300)
        d[50]["l"] = d[90]["l"]
        d[230]["t"] = d[20]["t"]
        d[240]["l"] = d[241]["l"]
        return [{"d": d}]

    same_as_per_row(build, scoped)
    assert 0 < sum(batched) < 300
    out = roundtrip(scoped, d=build()[0]["d"])["d"]
    assert out[50]["l"] is out[90]["l"] and out[230]["t"] is out[20]["t"] and out[240]["l"] is out[241]["l"]


@fmt
def test_rows_of_other_keys(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        d = rows(300)
        d[100]["extra"] = 1
        del d[120]["x"]
        d[125] = {"x": 1, "i": 2}  # other order
        d[130] = {}
        d[150] = {**d[150]}
        d[150].pop("i")
        d[150][TaggedStr("i")] = 3  # equal key, another type
        d[160] = {"".join(["i"]): 0, "x": 0.0, "s": "", "l": [], "t": (0,), "o": None}  # equal, not the same
        d[170] = {1: 2, None: [3]}
        return [{"d": d + [{"a": i, "b": [i]} for i in range(100)]}]

    src = same_as_per_row(build, scoped)
    assert 0 < sum(batched) < 400
    assert_same(build()[0], ph.restore(src), src)


@fmt
def test_rows_holding_their_list(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        d = rows(300)
        for r in d[::37]:
            r["me"] = d
        everywhere = rows(100)
        for r in everywhere:
            r["me"] = everywhere
        return [{"d": d, "e": everywhere}]

    src = same_as_per_row(build, scoped)
    assert 100 in batched
    out = ph.restore(src)
    assert out["d"][37]["me"] is out["d"] and out["e"][99]["me"] is out["e"]
    assert_same(build()[0], out, src)


# -- memo entries: later inserts and representers meet the rows again ---------------------


@fmt
def test_later_inserts_share_what_rows_hold(scoped: bool, batched: list[int]) -> None:
    def build() -> Inserts:
        d = rows(100)
        for i, r in enumerate(d):
            r["d"] = {"k": i}
        return [
            {"rows": d},
            lambda: {"l": d[5]["l"], "row": d[7], "t": d[9]["t"]},
            lambda: {"dd": d[11]["d"], "row2": d[11]},
            lambda: {"again": [d[20], d[20]["l"]]},
        ]

    src = same_as_per_row(build, scoped)
    assert 100 in batched
    out = ph.restore(src)
    assert out["l"] is out["rows"][5]["l"] and out["row"] is out["rows"][7] and out["t"] is out["rows"][9]["t"]
    assert out["dd"] is out["rows"][11]["d"] and out["row2"] is out["rows"][11]
    assert out["again"][0] is out["rows"][20] and out["again"][1] is out["rows"][20]["l"]
    assert_same({"rows": build()[0]["rows"]}, {"rows": out["rows"]}, src)


@fmt
def test_later_inserts_see_rows_as_they_were(scoped: bool, batched: list[int]) -> None:
    d = rows(50)
    a = ph.Archive(scoped=scoped)
    a.insert(rows=d)
    d[3]["l"].append(Plain(a=3))
    d[3]["new"] = 5
    d[4]["t"] = ()
    a.insert(items=d[3]["l"], row=d[3], other=d[4])
    out = ph.restore(str(a))
    assert 50 in batched
    assert out["items"] is out["rows"][3]["l"] and out["items"] == [3, 4, 5]
    assert out["row"] is out["rows"][3] and list(out["row"]) == ["i", "x", "s", "l", "t", "o"]
    assert out["other"] is out["rows"][4] and out["other"]["t"] == (4, "a", 1.5)


class HandsOutLater:
    """``__reduce__`` hands out what rows of ``rows`` hold, met after the rows were written."""

    def __init__(self, rows: list[dict[str, Any]], picks: list[tuple[int, str | None]]) -> None:
        self.rows = rows
        self.picks = picks

    def __reduce__(self) -> Any:
        return (tuple, (tuple(self.rows[i] if k is None else self.rows[i][k] for i, k in self.picks),))


@fmt
def test_representer_handing_out_what_rows_hold(scoped: bool, batched: list[int]) -> None:
    picks: list[tuple[int, str | None]] = [(5, "l"), (7, None), (9, "t"), (60, None), (61, "l")]

    def build() -> Inserts:
        d = rows(100)
        return [{"top": [HandsOutLater(d, picks), d]}]

    src = same_as_per_row(build, scoped)
    assert 100 in batched
    top = ph.restore(src)["top"]
    handed, d = top[0], top[1]
    for got, (i, k) in zip(handed, picks, strict=True):
        assert got is (d[i] if k is None else d[i][k])


@fmt
def test_failed_insert_undoes_batches(scoped: bool, batched: list[int]) -> None:
    d, e = rows(100), rows(100)
    a = ph.Archive(scoped=scoped)
    a.insert(d=d)
    before = str(a)
    with pytest.raises(ph.UnrepresentableError):
        a.insert(bad=[*rows(100), d[5]["l"], d[8], threading.Lock()])
    assert str(a) == before
    a.insert(e=e, x=d[5]["l"], y=d[8])
    out = ph.restore(str(a))
    assert out["x"] is out["d"][5]["l"] and out["y"] is out["d"][8]
    assert batched.count(100) >= 3
    assert_same({"d": d, "e": e}, {"d": out["d"], "e": out["e"]})


# -- random lists of rows ------------------------------------------------------------------


def random_inserts(seed: int) -> Inserts:
    """Rows whose columns each hold one kind of value, but now and then something else."""
    rnd = random.Random(seed)
    shared = [Plain(a=1), [1, 2], (3, 4), {"k": 1}]
    usual: list[Callable[[int], Any]] = [
        lambda i: i,
        lambda i: i * 0.5,
        lambda i: f"s{i}",
        lambda i: None if i % 3 else i,
        lambda i: [i, i + 1],
        lambda i: (i, "a", 1.5),
        lambda i: {"k": i},
        lambda i: [i] * (i % 4),
        lambda i: shared[0],
        lambda i: Plain(i=i),
        lambda i: [Plain(i=i)],
    ]
    odd: list[Callable[[int], Any]] = [
        lambda i: math.nan,
        lambda i: [math.inf],
        lambda i: 2**12000,
        lambda i: 1j,
        lambda i: (1j,),
        lambda i: rnd.choice(shared),
        lambda i: TaggedStr("t"),
        lambda i: [2**12000],
        lambda i: -0.0,
    ]
    keys = rnd.sample(["a", "b", "c", "d", "e"], rnd.randint(1, 5))
    columns = [rnd.choice(usual) for _ in keys]
    out: list[Any] = []
    for i in range(rnd.randint(50, 400)):
        r = rnd.random()
        if r < 0.005 and out:
            out.append(rnd.choice(out))  # a row twice
        elif r < 0.01:
            out.append(rnd.choice([i, "x", None, [i], Plain()]))
        elif r < 0.02:
            keys = rnd.sample(["a", "b", "c", "d", "e"], rnd.randint(1, 5))
            columns = [rnd.choice(usual) for _ in keys]
        if r >= 0.01:
            row = {k: (rnd.choice(odd) if rnd.random() < 0.005 else f)(i) for k, f in zip(keys, columns, strict=True)}
            out.append(row)
    inserts: Inserts = [{"d": out}]
    rows_ = [x for x in out if type(x) is dict and x]
    if rows_:
        row = rnd.choice(rows_)
        inserts.append(lambda: {"later": row, "inner": next(iter(row.values()))})
    return inserts


@pytest.mark.parametrize("seed", range(40))
def test_random_rows(seed: int) -> None:
    for scoped in FORMATS:
        src = same_as_per_row(lambda: random_inserts(seed), scoped)
        assert_same(random_inserts(seed)[0], {"d": ph.restore(src)["d"]}, src)


def test_random_rows_are_mostly_batched(batched: list[int]) -> None:
    total = 0
    for seed in range(40):
        inserts = random_inserts(seed)
        total += sum(type(x) is dict for x in inserts[0]["d"])
        ph.Archive().insert(**inserts[0])
    assert sum(batched) > total // 2

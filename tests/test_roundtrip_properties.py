"""Hypothesis round trips: random nested structures with shared references and cycles.

Structures of lists, dicts, tuples, sets, frozensets, instances and literals are
generated, then some containers are made to refer to others (sharing and
cycles, including cycles through tuples and instances).  Both formats must
restore a strictly equal structure with the same identity graph
(:func:`archive_helpers.assert_same` checks the isomorphism by id).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from archive_helpers import Plain, TaggedFloat, TaggedInt, TaggedStr, assert_same, canon
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import persist_hooks as ph
from persist_hooks.archive import graph

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TRICKY_STRINGS = st.sampled_from(
    ["_g0", "_g1", "_f0", "_arrays", "del _g0", "self", "items", "x = 1", "'", '"', "\\", "array"]
)

floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, math.nan, -math.nan])
hashable_floats = st.floats(allow_nan=False, allow_infinity=True)

_BIG_INTS = (2**64, -(2**64), 10**400, -(10**5000) - 1)  # the last is over the int->str limit
ints = st.integers() | st.integers(0, len(_BIG_INTS) - 1).map(_BIG_INTS.__getitem__)

literals = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats,
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    TRICKY_STRINGS,
    st.binary(max_size=8),
)

hashable_literals = st.one_of(
    st.none(), st.booleans(), ints, hashable_floats, st.text(max_size=6), TRICKY_STRINGS, st.binary(max_size=4)
)

hashables = st.recursive(
    hashable_literals,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3) | st.tuples(inner),
    max_leaves=6,
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.tuples(children),
        st.dictionaries(hashables, children, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(lambda a, b: Plain(a=a, b=b), children, children),
    )


trees = st.recursive(literals, _containers, max_leaves=25)


def _walk(root: Any) -> list[Any]:
    """Every non-literal object reachable from ``root``, once, in a deterministic order."""
    seen: set[int] = set()
    out: list[Any] = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, (int, float, complex, str, bytes, type(None))):
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, dict):
            stack.extend(reversed(list(obj.values())))
        elif isinstance(obj, (list, tuple)):
            stack.extend(reversed(obj))
        elif isinstance(obj, (set, frozenset)):
            stack.extend(sorted(obj, key=canon))
        elif isinstance(obj, Plain):
            stack.extend(reversed(list(vars(obj).values())))
    return out


@st.composite
def graphs(draw: st.DrawFn) -> Any:
    """A random tree, then random extra references between its objects (sharing, cycles)."""
    root = draw(st.lists(trees, min_size=1, max_size=4))
    objects = _walk(root)
    targets = [*objects, root]
    n_links = draw(st.integers(min_value=0, max_value=10))
    for i in range(n_links):
        holders = [o for o in objects if isinstance(o, (list, dict, Plain))] + [root]
        holder = draw(st.sampled_from(holders))
        target = draw(st.sampled_from(targets))
        if draw(st.booleans()) and isinstance(target, (list, dict, Plain)):
            # a cycle through a tuple: holder -> tuple -> target
            target = (target, i)
            objects.append(target)
            targets.append(target)
        if isinstance(holder, list):
            holder.append(target)
        elif isinstance(holder, dict):
            holder[f"link{i}"] = target
        else:
            setattr(holder, f"link{i}", target)
        # hashable objects may also join a set
        sets = [o for o in objects if isinstance(o, set)]
        if sets and draw(st.booleans()):
            hashable = [o for o in objects if isinstance(o, (tuple, frozenset)) and _hashable(o)]
            if hashable:
                draw(st.sampled_from(sets)).add(draw(st.sampled_from(hashable)))
    return root


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj)
    elif isinstance(obj, Plain):
        items = list(vars(obj).values())
    else:
        items = []
    return [c for c in items if not isinstance(c, (int, float, complex, str, bytes, type(None)))]


def _reaches(start: Any, goal: Any) -> bool:
    seen: set[int] = set()
    stack = [start]
    while stack:
        obj = stack.pop()
        if obj is goal:
            return True
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        stack.extend(_children(obj))
    return False


def _insert(a: ph.Archive, **objs: Any) -> None:
    """Every cycle generated here passes through a list, dict or instance, so each one can
    be built in two phases: an UnbuildableCycleError is a bug (it propagates)."""
    a.insert(**objs)


def _check(value: Any, scoped: bool) -> None:
    a = ph.Archive(scoped=scoped)
    _insert(a, v=value, alias=value)
    src = str(a)
    out = ph.restore(src)
    assert out["alias"] is out["v"]
    assert_same(value, out["v"], src)


@SETTINGS
@given(graphs())
def test_random_graphs_round_trip_scoped(value: Any) -> None:
    _check(value, scoped=True)


@SETTINGS
@given(graphs())
def test_random_graphs_round_trip_flat(value: Any) -> None:
    _check(value, scoped=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs(), st.booleans())
def test_equal_graphs_give_identical_source(value: Any, scoped: bool) -> None:
    """Two isomorphic graphs (a deep copy) give byte-identical source."""
    twin = copy.deepcopy(value)
    try:  # deepcopy rebuilds a set on a cycle twice (set(copied items) before memoizing it)
        assert_same(value, twin)
    except AssertionError:
        assume(False)
    first = ph.Archive(scoped=scoped)
    _insert(first, v=value)
    second = ph.Archive(scoped=scoped)
    second.insert(v=twin)
    assert str(first) == str(second)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(graphs(), min_size=2, max_size=3), st.booleans())
def test_inserting_piecewise_equals_inserting_at_once(values: list[Any], scoped: bool) -> None:
    """Sharing across separate inserts is preserved like sharing within one insert."""
    values[-1].append(values[0])
    values[-1].append(_walk(values[0])[-1])
    names = [f"n{i}" for i in range(len(values))]
    a = ph.Archive(scoped=scoped)
    for name, value in zip(names, values, strict=True):
        _insert(a, **{name: value})
    out = ph.restore(str(a))
    assert_same(values, [out[n] for n in names], str(a))


# -- the walk's fast paths against its exact element-by-element paths ---------------------

_flat_literals = st.one_of(literals, st.sampled_from([TaggedStr("s"), TaggedInt(1), TaggedFloat(1.5)]))
_literal_containers = st.one_of(
    st.lists(_flat_literals, max_size=6),
    st.lists(_flat_literals, max_size=6).map(tuple),
    st.dictionaries(hashable_literals, _flat_literals, max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(_literal_containers)
def test_c_repr_of_literal_containers_is_the_exact_text(value: Any) -> None:
    """The C ``repr`` fast path writes what the element-by-element path writes."""
    assert graph._atoms_text(value, type(value)) == graph._leaf_text(value, type(value))


@st.composite
def _rows(draw: st.DrawFn) -> list[Any]:
    shared = Plain(a=1, b=None)
    cell = st.one_of(
        _flat_literals, _literal_containers, st.just(shared), st.builds(lambda: Plain(a=2, b=3)), st.just([shared])
    )
    row = st.one_of(
        st.dictionaries(hashable_literals, cell, max_size=5),
        st.lists(cell, max_size=4),
        st.lists(cell, max_size=4).map(tuple),
    )
    return draw(st.lists(row, max_size=5))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rows(), st.booleans())
def test_c_repr_of_rows_writes_what_the_item_path_writes(rows: list[Any], scoped: bool) -> None:
    """Rows written in place with one C ``repr`` read exactly as when written item by item."""
    fast = ph.Archive(scoped=scoped)
    fast.insert(rows=rows)
    fast_src = str(fast)
    del fast  # its memo refers to the rows' containers: they would not look unreferenced
    saved = graph.Walker._inline
    graph.Walker._inline = graph.Walker._inline_items  # type: ignore[method-assign]
    try:
        slow = ph.Archive(scoped=scoped)
        slow.insert(rows=rows)
        slow_src = str(slow)
    finally:
        graph.Walker._inline = saved  # type: ignore[method-assign]
    assert fast_src == slow_src
    assert_same(rows, ph.restore(fast_src)["rows"], fast_src)


# -- numpy arrays and scalars ---------------------------------------------------------

from hypothesis.extra import numpy as hnp  # noqa: E402

_dtypes = (
    hnp.scalar_dtypes()
    | hnp.byte_string_dtypes(max_len=4)
    | hnp.unicode_string_dtypes(max_len=4)
    | hnp.datetime64_dtypes()
    | hnp.timedelta64_dtypes()
    | hnp.scalar_dtypes().map(lambda d: d.newbyteorder(">") if d.byteorder != "|" else d)
    | hnp.array_dtypes(hnp.scalar_dtypes(), max_size=3)
)
_arrays = hnp.arrays(_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_arrays, min_size=1, max_size=4), st.data(), st.booleans(), st.sampled_from([None, 0, 3]))
def test_random_arrays_round_trip(arrays: list[Any], data: st.DataObject, scoped: bool, threshold: int | None) -> None:
    import numpy as np

    # share some arrays, use some as Fortran-ordered copies and some as 0-d scalars
    value: list[Any] = list(arrays)
    value += data.draw(st.lists(st.sampled_from(arrays), max_size=3))
    value += [np.asfortranarray(a) for a in arrays if a.ndim > 1][:1]
    value += [a.reshape(-1)[0] for a in arrays if a.size][:2]
    a = ph.Archive(scoped=scoped, array_threshold=threshold)
    a.insert(v=value)
    src = str(a)
    out = ph.restore(src, arrays=a.data)["v"]
    assert_same(value, out, src)

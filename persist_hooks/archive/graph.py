"""Walk an object graph once into nodes: identity, sharing, and each object's representation.

Every non-literal object becomes one :class:`Node` (memoised by ``id``, the
object kept alive by the node so ids are never reused), whatever the number of
references to it.  Literals (``int``, ``str``, finite ``float`` ...) become their
source text directly.  Built-in containers are handled natively for speed;
every other object is represented through the plugin registry (exact type,
then MRO, cached per type), its ``__persist_rep__`` method, or last the
``__reduce_ex__`` protocol.  The walk is iterative, so deep structures do not
hit the recursion limit.

A list, tuple or dict that only its container refers to (its reference count
shows it) gets no node: it is written in place, as text (one C ``repr`` where
that is exact) with the nodes it holds in between (see ``Walker._inline``).
It keeps a memo entry, so meeting it again (a later insert, a representer's
output) turns it into a node after all.  Runs of such dicts in a list (records
with the same keys) are written in batches, column by column in C, with the
same result (see ``Walker._inline_rows``).
"""

from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import chain, compress, count, cycle, islice, repeat
from operator import eq, is_, le, not_
from typing import Any

import numpy as np

from .. import plugins
from ..errors import UnrepresentableError
from ..rep import Rep
from ..representers import builtins as core_builtins
from ..representers.reduce import represent_by_reduce
from .templates import Template, template

__all__ = [
    "K_DICT",
    "K_FROZENSET",
    "K_LIST",
    "K_REP",
    "K_SET",
    "K_TEXT",
    "K_TUPLE",
    "Node",
    "Walker",
    "atom_text",
]

K_TEXT, K_LIST, K_TUPLE, K_DICT, K_SET, K_FROZENSET, K_REP = range(7)

_HUGE_INT_BITS = 4000 * 3  # below CPython's int->str digit limit, with margin
_BIG_INT = 1 << 64


def _int_text(v: int) -> str:
    if v.bit_length() < _HUGE_INT_BITS:
        return repr(v)
    return ("-" if v < 0 else "") + hex(abs(v))


def float_text(v: float) -> str:
    """Exact source for a Python float, including nan (with its sign), inf and -0.0.

    Example:
        >>> float_text(0.1), float_text(float("-inf")), float_text(-0.0)
        ('0.1', "-float('inf')", '-0.0')
    """
    r = repr(v)
    if r[-1] not in "nf":
        return r
    if v == math.inf:
        return "float('inf')"
    if v == -math.inf:
        return "-float('inf')"
    # nan: keep the sign; other payloads are emitted exactly from their bits
    import struct

    bits = struct.pack("<d", v)
    if bits == struct.pack("<d", math.nan):
        return "float('nan')"
    if bits == struct.pack("<d", -math.nan):
        return "-float('nan')"
    return f"__import__('struct').unpack('<d', {bits!r})[0]"


def _complex_text(v: complex) -> str:
    return f"complex({float_text(v.real)}, {float_text(v.imag)})"


_ATOM: dict[type, Callable[[Any], str]] = {
    int: _int_text,
    str: repr,
    bool: repr,
    type(None): repr,
    float: float_text,
    bytes: repr,
    complex: _complex_text,
}


def atom_text(v: object) -> str | None:
    """Source text for a literal value, or None when ``v`` is not a literal.

    Example:
        >>> atom_text(3), atom_text("a"), atom_text([1])
        ('3', "'a'", None)
    """
    f = _ATOM.get(type(v))
    return None if f is None else f(v)


def _leaf_text(v: Any, t: type) -> str | None:
    """Display text of a list, tuple or dict holding only literals, else None (the fast path)."""
    if len(v) > CHUNK:
        return None
    if t is dict:
        return _leaf_dict_text(v)
    parts: list[str] = []
    append = parts.append
    for x in v:
        tx = type(x)
        if tx is str:
            append(repr(x))
        elif tx is int:
            append(repr(x) if -_BIG_INT < x < _BIG_INT else _int_text(x))
        elif tx is float:
            r = repr(x)
            append(r if r[-1] not in "nf" else float_text(x))
        else:
            f = _ATOM.get(tx)
            if f is None:
                return None
            append(f(x))
    if t is list:
        return "[" + ", ".join(parts) + "]"
    return "(" + parts[0] + ",)" if len(parts) == 1 else "(" + ", ".join(parts) + ")"


_REPR_EXACT = frozenset({str, int, float, bool, type(None), bytes})
"""Types whose C ``repr`` is their exact source (floats: when finite; ints: when short)."""
_HOLE_TEXT = "\x00"
"""The repr of :data:`_HOLE`: never in the repr of a str or bytes (it escapes it), nor of a number."""
_REPR_MAX = 3000
"""Longer texts take the exact slow path (they might hold an int too big for ``repr``)."""


def _atoms_text(v: Any, t: type) -> str | None:
    """:func:`_leaf_text`, using the C ``repr`` of the whole container when that is exact.

    ``repr`` of a list, tuple or dict whose elements (and keys) are exactly
    ``str``, ``int``, ``float``, ``bool``, ``None`` or ``bytes`` is the source
    :func:`_leaf_text` writes, except for nan/inf (``'nan'``/``'inf'`` in the
    text) and ints beyond the digit limit (a long text): those, and anything
    else, take the exact element-by-element path.
    """
    if len(v) > CHUNK:
        return None
    exact = _REPR_EXACT
    if t is dict:
        for k, x in v.items():
            if type(k) not in exact or type(x) not in exact:
                return _leaf_dict_text(v)
    else:
        for x in v:
            if type(x) not in exact:
                return _leaf_text(v, t)
    try:
        text = repr(v)
    except ValueError:  # an int over the interpreter's str digit limit
        return _leaf_text(v, t)
    if len(text) > _REPR_MAX or "nan" in text or "inf" in text:
        return _leaf_text(v, t)
    return text


def _exact_copy(x: Any, t: type) -> Any:
    """A copy of the list or dict ``x`` (a tuple: itself) whose elements (and keys) are all of
    a type in :data:`_REPR_EXACT`, else ``None``: what :meth:`Walker._inline` keeps of a
    container of literals it writes inside a row."""
    exact = _REPR_EXACT
    if t is dict:
        for k, y in x.items():
            if type(k) not in exact or type(y) not in exact:
                return None
        return x.copy()
    for y in x:
        if type(y) not in exact:
            return None
    return x if t is tuple else x.copy()


def _leaf_dict_text(v: dict[Any, Any]) -> str | None:
    parts: list[str] = []
    append = parts.append
    for k, x in v.items():
        tk = type(k)
        if tk is str:
            key = repr(k)
        else:
            f = _ATOM.get(tk)
            if f is None:
                return None
            key = f(k)
        tx = type(x)
        if tx is str or (tx is int and -_BIG_INT < x < _BIG_INT):
            append(f"{key}: {x!r}")
        else:
            f = _ATOM.get(tx)
            if f is None:
                return None
            append(f"{key}: {f(x)}")
    return "{" + ", ".join(parts) + "}"


_LEAF_KINDS: dict[type, int] = {list: K_LIST, tuple: K_TUPLE, dict: K_DICT}

class _Hole:
    """Stands for a node in the copy of an inline container that is given to ``repr``."""

    __slots__ = ()
    __repr__ = staticmethod(_HOLE_TEXT.__str__)  # called without arguments: the C repr stays C


_HOLE = _Hole()


def _plain_numbers(v: Any, leaves: list[Any]) -> bool:
    """Tell whether the floats in ``v`` and ``leaves`` are finite and their ints not huge.

    (Their ``repr`` is then their exact source text.)
    """
    for c in (v, *leaves):
        for y in [y for kv in c.items() for y in kv] if type(c) is dict else c:
            ty = type(y)
            if ty is float:
                if not math.isfinite(y):
                    return False
            elif ty is int and y.bit_length() >= _HUGE_INT_BITS:
                return False
    return True


_NONE: list[Any] = []
"""No leaves (shared, never modified)."""

_IN = object()
"""First item of the access of a node met inside an inline container: ``(_IN, outer, inner)``."""


def _refcount_baselines() -> tuple[int, int]:
    """The reference count an element has when its container is its only referrer.

    Measured in loops shaped like :meth:`Walker._scan` and :meth:`Walker._scan_dict`,
    so a container met in those loops with exactly this count is referenced by
    nothing but its parent: it cannot be shared and needs no identity memo.
    Returns ``(0, 0)`` (optimisation off) where counts are not exact.
    """
    if not hasattr(sys, "getrefcount") or not getattr(sys, "_is_gil_enabled", lambda: True)():
        return (0, 0)
    seq = dct = 0
    seq_probe: list[list[int]] = [[]]
    for v in seq_probe:
        seq = sys.getrefcount(v)
    dict_probe: dict[int, list[int]] = {0: []}
    for _k, w in dict_probe.items():
        dct = sys.getrefcount(w)
    return (seq, dct)


_SEQ_BASE, _DICT_BASE = _refcount_baselines()


# -- rows written in place in batches (see Walker._inline_rows) ---------------------------

_ROWS_MIN = 16
"""Fewest rows :meth:`Walker._inline_rows` writes in one batch (shorter runs go row by row)."""
_FLAT_MAX = 16
"""Lists and tuples of literals up to this length are written element by element in a
batch's template (a literal that every row holds is then written once, in the template)."""

_ATOMIC, _LEAF, _NODE, _ODD = range(4)
"""What :meth:`Walker._inline` makes of a row's value: a literal, a container of literals
written as text, a node, or something a batch leaves to it (nan/inf, a huge int, complex)."""

_SPECIAL = frozenset({*_ATOM, list, tuple, dict})
"""Types of the values that are not always a node in a row."""

_consume: Callable[[Iterable[Any]], object] = partial(deque, maxlen=0)
"""Exhaust an iterator (in C)."""


def _first_false(flags: Iterable[Any], default: int) -> int:
    """Index of the first false flag, else ``default`` (iterating in C, stopping there)."""
    return next(compress(count(), map(not_, flags)), default)


def _tail_counts(items: list[Any], start: int, stop: int) -> Iterator[int]:
    """Reference counts of ``items[start:stop]``, lazily: the shape :data:`_ROW_BASE` is measured on."""
    return map(sys.getrefcount, islice(items, start, stop))


def _row_table(rows: list[dict[str, Any]], width: int) -> tuple[list[Any], list[list[Any]]]:
    """The values of ``rows`` (each with the same ``width`` keys in the same order): flat, and by column."""
    values = list(chain.from_iterable(map(dict.values, rows)))
    return values, [values[c::width] for c in range(width)]


def _column_counts(columns: list[list[Any]]) -> list[list[int] | None]:
    """Reference counts of the values of each column that starts with a list, tuple or dict.

    Called while the flat values and the columns of :func:`_row_table` are alive: the
    shape :data:`_VALUE_BASE` is measured on.
    """
    return [list(map(sys.getrefcount, col)) if type(col[0]) in _LEAF_KINDS else None for col in columns]


def _batch_baselines() -> tuple[int, int]:
    """Reference counts of a row, and of a value of a row, that only their container refers to.

    A batch counts the rows after the first through :func:`_tail_counts` (the count
    includes the argument ``map`` passes) and the values through :func:`_column_counts`
    (it includes the flat value list and the column of :func:`_row_table`, and the
    argument).  Both are measured here through the same helpers on probe rows built
    like real ones, so nothing is guessed: a row or value with at most this count is
    referenced by its container alone, exactly as ``_SEQ_BASE``/``_DICT_BASE`` tell
    in :meth:`Walker._scan` and :meth:`Walker._inline`.  ``(0, 0)``: batches are off.
    """
    if not _SEQ_BASE:
        return (0, 0)
    probe: list[dict[str, list[int]]] = [{"k": []}, {"k": []}]
    row = next(_tail_counts(probe, 1, 2))
    values, columns = _row_table(probe, 1)
    counts = _column_counts(columns)[0]
    assert counts is not None and len(values) == 2
    return (row, counts[1])


_ROW_BASE, _VALUE_BASE = _batch_baselines()


def _plain(y: Any) -> bool:
    """Whether the literal ``y`` is written by its ``repr``: not a nan/inf float nor a huge int."""
    t = type(y)
    if t is float:
        return math.isfinite(y)
    if t is int:
        return y.bit_length() < _HUGE_INT_BITS  # type: ignore[no-any-return]
    return True


def _all_plain(values: Sequence[Any], types: set[type]) -> bool:
    """:func:`_plain` of every literal in ``values``, whose types are ``types`` (in C where they allow)."""
    if not _floats_finite(values, types):
        return False
    if int not in types:
        return True
    ints = values if len(types) == 1 else compress(values, map(is_, map(type, values), repeat(int)))
    return max(map(int.bit_length, ints)) < _HUGE_INT_BITS


def _floats_finite(values: Sequence[Any], types: set[type]) -> bool:
    """Whether the floats among ``values`` (of ``types``) are finite: their sum is, else one by one."""
    if float not in types:
        return True
    floats = values if len(types) == 1 else list(compress(values, map(is_, map(type, values), repeat(float))))
    return math.isfinite(sum(floats)) or all(map(math.isfinite, floats))


def _value_kind(x: Any, n: int) -> int:
    """What :meth:`Walker._inline` makes of the row value ``x``, whose count is ``n`` (-1: not counted)."""
    t = type(x)
    if t in _REPR_EXACT:
        return _ATOMIC if _plain(x) else _ODD
    if t is list or t is tuple or t is dict:
        if n < 0:
            return _ODD
        if n > _VALUE_BASE or len(x) > CHUNK:
            return _NODE
        elements = [*x, *x.values()] if t is dict else x
        if not set(map(type, elements)) <= _REPR_EXACT:
            return _NODE
        return _LEAF if all(map(_plain, elements)) else _ODD
    return _ODD if t in _ATOM else _NODE


def _atoms_fit(values: list[Any]) -> bool:
    """Whether ``values`` are literals written by their ``repr`` (ints aside: see :func:`_texts_short`)."""
    types = set(map(type, values))
    return types <= _REPR_EXACT and _floats_finite(values, types)


def _column_kind(col: list[Any], counts: list[int] | None) -> tuple[int, int, list[list[Any]] | None]:
    """The kind of a column's first value, how many values from the first are of that kind
    (containers of literals: of its type too), and for lists and tuples of literals of
    one length (at most :data:`_FLAT_MAX`), their elements by position.

    Whole-column checks in C first: of the types, and that the floats are finite (that
    no int is huge is told by the length of the texts, see :func:`_texts_short`);
    where one fails, value by value up to the first value of another kind.
    """
    m = len(col)
    kind = _value_kind(col[0], -1 if counts is None else counts[0])
    if kind == _ODD:
        return kind, 0, None
    types = set(map(type, col))
    if kind == _ATOMIC:
        if types <= _REPR_EXACT and _floats_finite(col, types):
            return kind, m, None
    elif kind == _LEAF:
        assert counts is not None
        if len(types) == 1 and max(counts) <= _VALUE_BASE:
            sizes = set(map(len, col))
            t = type(col[0])
            w = len(col[0])
            if t is not dict and len(sizes) == 1 and 0 < w <= _FLAT_MAX:
                elements = list(chain.from_iterable(col))
                inner = [elements[e::w] for e in range(w)]
                if all(map(_atoms_fit, inner)):
                    return kind, m, inner
            elif max(sizes) <= CHUNK:
                elements = list(chain.from_iterable(col))
                if t is dict:
                    elements += chain.from_iterable(map(dict.values, col))
                if _atoms_fit(elements):
                    return kind, m, None
    elif not types & _SPECIAL:  # no literal, list, tuple or dict: nodes all
        return kind, m, None
    kinds = map(_value_kind, col, repeat(-1) if counts is None else counts)
    fit = _first_false(map(eq, kinds, repeat(kind)), m)
    if kind == _LEAF:  # of one type too (their copies and texts are made alike)
        fit = _first_false(map(is_, map(type, col[:fit]), repeat(type(col[0]))), fit)
    return kind, fit, None


def _leaf_plain(x: Any) -> bool:
    """:func:`_plain` of every literal in the list, tuple or dict ``x``."""
    return all(map(_plain, [*x, *x.values()] if type(x) is dict else x))


def _plain_fit(col: list[Any], inner: list[list[Any]] | None) -> int:
    """How many values from the first of a column of literals or of containers of them
    (``inner``: their elements by position) hold only plain numbers (see :func:`_plain`)."""
    m = len(col)
    if inner is not None:
        return min(_plain_fit(e, None) for e in inner)
    leaves = type(col[0]) in _LEAF_KINDS
    elements = list(chain.from_iterable(col)) if leaves else col
    if leaves and type(col[0]) is dict:
        elements += chain.from_iterable(map(dict.values, col))
    if _all_plain(elements, set(map(type, elements))):
        return m
    return _first_false(map(_leaf_plain if leaves else _plain, col), m)


def _texts_short(texts: list[list[str]], varying: list[bool]) -> bool:
    """Whether no text is longer than :data:`_REPR_MAX` (the digits of a huge int are).
    ``varying``: False for the lists that repeat one text."""
    return all(
        max(map(len, column if many else column[:1]), default=0) <= _REPR_MAX
        for column, many in zip(texts, varying, strict=True)
    )


def _row_texts(templates: list[tuple[str, list[Sequence[Any]]]], m: int) -> list[list[str]] | None:
    """The texts of ``m`` rows, by template (None: an int over the interpreter's str digit limit)."""
    try:
        return [
            list(map(tmpl.__mod__, zip(*fields, strict=True))) if fields else [tmpl % ()] * m
            for tmpl, fields in templates
        ]
    except ValueError:
        return None


def _truncate(
    m: int, rows: list[Any], values: list[Any], columns: list[list[Any]], inners: list[list[list[Any]] | None]
) -> None:
    """Keep the first ``m`` rows of a batch (in place: the templates' fields are these lists)."""
    del rows[m:]
    del values[m * len(columns) :]
    for col in columns:
        del col[m:]
    for inner in inners:
        for elements in inner or ():
            del elements[m:]


class _RowBatch:
    """The memo entries of rows written in place in one batch, queued by column.

    :meth:`Walker._inline` queues ``(row, owner, index, text, snapshot, leaves,
    copies)`` for each row; a batch keeps the same by column and makes the entries
    only when they are indexed (most archives are never looked up again): ``values``
    are the rows' values as walked, flat (:data:`_HOLE` where the text holds a node),
    ``leaves`` the columns of containers of literals with their copies (None: made
    from ``inner``, their elements as walked, by position).  A row's snapshot is a
    tuple of its keys and values alternating (what :meth:`Walker._explode` reads of
    a dict's), cheaper to make than a dict.
    """

    __slots__ = ("index", "keys", "leaves", "owner", "rows", "texts", "values")

    def __init__(
        self,
        rows: list[dict[str, Any]],
        owner: Node,
        index: int,
        texts: list[Any],
        keys: tuple[str, ...],
        values: list[Any],
        leaves: list[tuple[int, Sequence[Any] | None, list[list[Any]]]],
    ) -> None:
        self.rows = rows
        self.owner = owner
        self.index = index
        self.texts = texts
        self.keys = keys
        self.values = values
        self.leaves = leaves

    def index_into(self, memo_leaf: dict[int, Entry]) -> None:
        """Add the entries :meth:`Walker._index_written` makes of the rows' queued tuples."""
        rows = self.rows
        owner = self.owner
        keys = self.keys
        values = self.values
        indices = range(self.index, self.index + len(rows))
        # each row's snapshot: its keys and values alternating, as ``_explode`` reads a dict's
        alternating: list[Any] = [None] * (2 * len(values))
        alternating[::2] = keys * len(rows)
        alternating[1::2] = values
        snapshots = zip(*[iter(alternating)] * (2 * len(keys)), strict=True)
        entries = zip(rows, repeat(owner), indices, self.texts, repeat(None), snapshots, strict=False)
        memo_leaf.update(zip(map(id, rows), entries, strict=True))
        for c, copies, inner in self.leaves:
            if copies is None:  # lists written element by element
                copies = list(map(list, zip(*inner, strict=True)))
            leaves = values[c :: len(keys)]
            entries = zip(leaves, repeat(owner), indices, repeat(None), rows, copies, strict=False)
            memo_leaf.update(zip(map(id, leaves), entries, strict=True))


def _template_field(col: Sequence[Any], frags: list[str], fields: list[Sequence[Any]]) -> None:
    """Add a column of literals to a batch's ``%`` template: its text when every row holds the same object."""
    first = col[0]
    if all(map(is_, col, repeat(first))):
        frags.append(repr(first).replace("%", "%%"))
    else:
        frags.append("%r")
        fields.append(col)


class Node:
    """One object of the graph and how to build it.

    ``parts`` are the object's children as source text (literals) or nodes, in
    the order the emitter uses them; ``deps`` the nodes among them (for a Rep:
    the ones its ``new``/construction needs come first, ``n_new`` of them).
    A part of a list, set or dict node may also be an *inline* container: a
    list, tuple or dict referenced by nothing but this node, written in place
    as a ``list`` of display text pieces alternating with the nodes it holds
    (``["{'k': 1, 'o': ", node, "}"]``); its nodes are among ``deps`` and
    ``framed`` is set.  ``pre`` lists nodes made, after this one was ordered,
    of inline containers met again by a later insert: they are built right
    before it.
    """

    __slots__ = (
        "access",
        "atomic",
        "base_text",
        "deps",
        "depth",
        "fill_tmpl",
        "framed",
        "imports",
        "kind",
        "n_new",
        "name",
        "new_tmpl",
        "noinline",
        "obj",
        "parent",
        "parts",
        "pre",
        "reent",
        "refs",
        "slot",
        "split",
        "splittable",
        "state",
        "text",
        "tmpl",
        "wait",
        "waiters",
    )

    def __init__(self, obj: object, parent: Node | None, access: object) -> None:
        self.obj = obj
        self.parent = parent
        self.access = access
        self.refs = 1
        self.kind = K_TEXT
        self.parts: list[Any] = []
        self.deps: list[Node] = []
        self.n_new = 0
        self.splittable = False
        self.text: str | None = None
        self.base_text: str | None = None
        self.noinline = False
        self.depth = 0
        self.atomic = True
        self.name: str | None = None
        self.tmpl: Template | None = None
        self.new_tmpl: Template | None = None
        self.fill_tmpl: Template | None = None
        self.imports: tuple[tuple[str, str, str], ...] = ()
        self.state = 0
        self.split = False
        self.slot = -1
        self.reent = False
        self.wait: Node | None = None
        self.waiters: list[Node] = []
        self.framed = False
        self.pre: list[Node] | None = None

    def path(self, root_names: dict[int, str] | None = None) -> str:
        """The object's path in the graph, e.g. ``b[1]['k'].handle``."""
        parts: list[str] = []
        node: Node | None = self
        while node is not None:
            parent = node.parent
            if parent is None:
                parts.append(str(node.access))
                break
            parts.append(_access_text(parent, node.access))
            node = parent
        return "".join(reversed(parts))


Entry = tuple[Any, Node, int, Any, Any, Any]
"""The memo entry of a container written in place: ``(obj, owner, index, text, inside, contents)``."""
Written = tuple[Any, Node, int, Any, Any, list[Any], list[Any]]
"""Entries queued by a walk (see ``Walker.written``)."""


def _access_text(parent: Node, access: object) -> str:
    if isinstance(access, tuple) and len(access) == 3 and access[0] is _IN:
        _, outer, inner = access  # inside an inline container of ``parent``
        if isinstance(inner, tuple) and inner and inner[0] == "key":
            return f"{_access_text(parent, outer)}<key {inner[1]!r}>"
        return f"{_access_text(parent, outer)}[{inner!r}]"
    if parent.kind == K_REP and access == "state":
        return ""  # an instance's state dict: its keys read as attributes
    if parent.kind == K_REP and isinstance(access, str):
        return f".{access}" if access.isidentifier() else f"<{access}>"
    if isinstance(access, tuple) and access and access[0] == "key":
        return f"<key {access[1]!r}>"
    if parent.kind in (K_SET, K_FROZENSET):
        return f"{{{access!r}}}"
    if parent.parent is not None and parent.parent.kind == K_REP and parent.access == "state":
        return f".{access}" if isinstance(access, str) and access.isidentifier() else f"[{access!r}]"
    return f"[{access!r}]"


def _sort_key(v: object, depth: int = 0) -> tuple[str, Any]:
    """A key that orders set elements the same way in every run (hash seeds included).

    Objects whose repr shows an address are keyed by their type and attributes
    (a few levels deep), never by memory address.
    """
    t = type(v)
    name = t.__qualname__
    if depth > 4:
        return (name, "")
    if t is tuple:
        return (name, tuple(_sort_key(x, depth + 1) for x in v))  # type: ignore[attr-defined]
    if t is frozenset:
        return (name, tuple(sorted(_sort_key(x, depth + 1) for x in v)))  # type: ignore[attr-defined]
    f = _ATOM.get(t)
    if f is not None:
        return (name, f(v))
    try:
        r = repr(v)
    except Exception:
        r = ""
    if " at 0x" in r:
        attrs = getattr(v, "__dict__", None)
        if isinstance(attrs, dict):
            items = sorted((str(k), _sort_key(x, depth + 1)) for k, x in attrs.items())
            r = repr(items)
        else:
            r = ""
    return (f"{t.__module__}.{name}", r)


# dispatch codes (per type, cached)
_D_NATIVE, _D_REP, _D_ARRAY = range(3)

_NATIVE_KINDS: dict[type, tuple[int, Callable[..., Any]]] = {
    list: (K_LIST, core_builtins.represent_list),
    tuple: (K_TUPLE, core_builtins.represent_tuple),
    dict: (K_DICT, core_builtins.represent_dict),
    set: (K_SET, core_builtins.represent_set),
    frozenset: (K_FROZENSET, core_builtins.represent_frozenset),
}

CHUNK = 1000
"""Containers longer than this are emitted in statements of this many elements
(compiling one giant expression is superlinear)."""


class Walker:
    """Builds nodes for objects, sharing an identity memo across inserts.

    A walk is transactional: :meth:`begin` starts one, :meth:`rollback` undoes
    every node and reference count it made, :meth:`commit` keeps them.
    """

    def __init__(self, array_threshold: int | None) -> None:
        self.memo: dict[int, Node] = {}
        self.array_threshold = array_threshold
        self.arrays: dict[str, np.ndarray] = {}
        self.array_keys: dict[int, str] = {}
        self._dispatch: dict[type, tuple[int, Any]] = {}
        self._created: list[Node] = []
        self._bumped: list[Node] = []
        self._new_arrays: list[str] = []
        self._pending: list[Node] = []
        self.free_names: set[str] = set()
        # Containers written in place (literal-only leaves and inline containers) have
        # no node, only a memo entry ``(obj, owner, index, text, inside, contents)``:
        # they are ``owner.parts[index]`` (``text``: a str, or an inline container's
        # pieces), or sit in the inline container ``inside`` there (``text`` may then
        # be None).  ``contents`` is None for a plain leaf, else a snapshot of the
        # elements as walked (a dict's: a dict, or its keys and values alternating in
        # a tuple).  A second reference to one upgrades it to a node.
        self.memo_leaf: dict[int, Entry] = {}
        # Entries of containers only their owner referred to are indexed lazily: such a
        # container is met again only by a later insert (``begin`` indexes them) or
        # through a representer's output, where the lookup indexes them first when
        # they could match (a list, tuple or dict of one of ``written_lens``).  Queued
        # as ``(obj, owner, index, text, contents, leaves, copies)``: ``leaves`` are
        # the literal-only containers written inside ``obj``, ``copies`` their contents;
        # rows written in a batch as one ``_RowBatch`` that makes the same entries.
        self.written: list[Written] = []
        self.written_rows: list[_RowBatch] = []
        self.written_lens: set[int] = set()
        self.prelude: list[Node] = []
        self._upgrades: list[tuple[Node, Entry, str | None, list[tuple[int, Entry]]]] = []
        self._leaf_ok: bool | None = None
        self._free_before: set[str] = set()

    # -- transactions -------------------------------------------------------------

    def begin(self) -> None:
        self.commit()
        self._index_written()
        self._free_before = set(self.free_names)
        if self._leaf_ok is None:
            self._leaf_ok = all(
                self._resolve(t)[0] == _D_NATIVE for t in _LEAF_KINDS
            )

    def commit(self) -> None:
        self._created = []
        self._bumped = []
        self._new_arrays = []
        self._upgrades = []

    def rollback(self) -> None:
        memo = self.memo
        memo_leaf = self.memo_leaf
        # upgrades first: the inline containers they turned into nodes go back into
        # their owners' parts, so the references inside them are undone below
        for node, entry, owner_text, repointed in reversed(self._upgrades):
            obj, owner, index, text, _, _ = entry
            memo.pop(id(obj), None)
            memo_leaf[id(obj)] = entry
            for leaf_key, old in repointed:
                memo_leaf[leaf_key] = old
            owner.parts[index] = text
            owner.deps.remove(node)
            owner.text = owner.base_text = owner_text
            if node in self.prelude:
                self.prelude.remove(node)
            if owner.pre is not None and node in owner.pre:
                owner.pre.remove(node)
        created = {id(node) for node in self._created}
        for node in self._created:
            memo.pop(id(node.obj), None)
            for part in node.parts:  # references the failed walk added to older nodes
                if part.__class__ is Node:
                    if id(part) not in created:
                        part.refs -= 1
                elif part.__class__ is list:
                    for inner in part:
                        if inner.__class__ is Node and id(inner) not in created:
                            inner.refs -= 1
        for node in self._bumped:  # root-level references
            node.refs -= 1
        for key in self._new_arrays:
            arr = self.arrays.pop(key)
            self.array_keys.pop(id(arr), None)
        for leaf_id in [k for k, e in memo_leaf.items() if id(e[1]) in created]:
            del memo_leaf[leaf_id]  # containers met while scanning the discarded nodes
        self.free_names = self._free_before
        self._pending = []
        self.written.clear()  # all made by the failed walk (``_index_written`` ran in ``begin``)
        self.written_rows.clear()
        self.written_lens.clear()
        self.commit()

    def _index_written(self) -> None:
        """Move the queued entries of containers written in place into :attr:`memo_leaf`."""
        written = self.written  # cleared in place: the scans hold it
        batches = self.written_rows
        if written or batches:
            memo_leaf = self.memo_leaf
            for obj, owner, index, text, contents, leaves, copies in written:
                memo_leaf[id(obj)] = (obj, owner, index, text, None, contents)
                for x, c in zip(leaves, copies, strict=True):
                    memo_leaf[id(x)] = (x, owner, index, None, obj, c)
            for batch in batches:
                batch.index_into(memo_leaf)
            written.clear()
            batches.clear()
            self.written_lens.clear()

    # -- walking ------------------------------------------------------------------

    def root(self, name: str, obj: object) -> str | Node:
        """Walk ``obj`` (inserted as ``name``); return its text or node."""
        f = _ATOM.get(type(obj))
        if f is not None:
            return f(obj)
        node = self.child(obj, None, name)
        pending = self._pending
        while pending:
            self._expand(pending.pop())
        return node

    def child(self, v: object, parent: Node | None, access: object) -> str | Node:
        """Text of a literal child, or the (possibly shared) node of any other object."""
        f = _ATOM.get(type(v))
        if f is not None:
            return f(v)
        node = self.memo.get(id(v))
        if (
            node is None
            and (self.written or self.written_rows)
            and type(v) in _LEAF_KINDS
            and len(v) in self.written_lens  # type: ignore[arg-type]
        ):
            self._index_written()
        if node is None and self.memo_leaf:
            leaf = self.memo_leaf.get(id(v))
            if leaf is not None:
                node = self._upgrade(leaf)
        if node is not None:
            node.refs += 1
            if parent is None:
                self._bumped.append(node)  # a parent's references are undone via its parts
            return node
        node = Node(v, parent, access)
        self.memo[id(v)] = node
        self._created.append(node)
        self._pending.append(node)
        return node

    def _upgrade(self, entry: Entry) -> Node:
        """A container written in place met a second time: give it a node and point its owner at it."""
        if entry[4] is not None:  # it sits in an inline container: that one becomes a node first
            self._upgrade(self.memo_leaf[id(entry[4])])
            entry = self.memo_leaf[id(entry[0])]
        obj, owner, index, text, _, contents = entry
        node = Node(obj, owner, index)
        kind = node.kind = _LEAF_KINDS[type(obj)]
        node.splittable = kind != K_TUPLE
        repointed = [] if contents is None else self._explode(node, contents, text)
        if text.__class__ is str:
            node.text = node.base_text = text
        del self.memo_leaf[id(obj)]
        self.memo[id(obj)] = node
        owner_text = owner.base_text
        owner.parts[index] = node
        owner.deps.append(node)  # (the nodes inside it stay dependencies of the owner too)
        owner.text = owner.base_text = None
        if owner.state:  # the owner was ordered by an earlier insert: build the node before it
            node.state = 2
            if node.deps:
                owner.pre = [*(owner.pre or ()), node]
            else:
                self.prelude.append(node)
        self._upgrades.append((node, entry, owner_text, repointed))
        return node

    def _explode(self, node: Node, contents: Any, text: Any) -> list[tuple[int, Entry]]:
        """Give an upgraded inline container's node its parts; return the memo entries re-pointed to it.

        ``contents`` is the container's snapshot taken when it was walked (a
        dict's: a dict, or a tuple of its keys and values alternating), with
        :data:`_HOLE` where ``text`` (its pieces) holds a node.
        """
        memo = self.memo
        memo_leaf = self.memo_leaf
        parts: list[Any] = []
        deps: list[Node] = []
        repointed: list[tuple[int, Entry]] = []
        holes = iter([p for p in text if p.__class__ is Node] if text.__class__ is list else ())
        elements = [y for kv in contents.items() for y in kv] if type(contents) is dict else contents
        for x in elements:
            if x is _HOLE:
                hole: Node = next(holes)
                parts.append(hole)
                deps.append(hole)
                continue
            atom = atom_text(x)
            if atom is not None:
                parts.append(atom)
                continue
            found = memo.get(id(x))
            if found is not None:
                parts.append(found)
                deps.append(found)
                continue
            old = memo_leaf[id(x)]  # a literal-only container written inside this one
            leaf = old[3] if old[3].__class__ is str else _atoms_text(old[5], type(old[5]))
            repointed.append((id(x), old))
            memo_leaf[id(x)] = (x, node, len(parts), leaf, None, None)
            parts.append(leaf)
        node.parts = parts
        node.deps = deps
        return repointed

    def _expand(self, node: Node) -> None:
        obj = node.obj
        cls = type(obj)
        entry = self._dispatch.get(cls)
        if entry is None:
            entry = self._dispatch[cls] = self._resolve(cls)
        code, data = entry
        if code == _D_NATIVE:
            self._expand_native(node, data)
        elif code == _D_ARRAY and self._externalise(node):
            return
        else:
            self._expand_rep(node, data)

    def _resolve(self, cls: type) -> tuple[int, Any]:
        native = _NATIVE_KINDS.get(cls)
        chain = plugins.representer_chain(cls)
        if native is not None and chain and chain[0] is native[1]:
            return (_D_NATIVE, native[0])
        own = getattr(cls, "__persist_rep__", None)
        if own is not None and callable(own):
            chain = [_call_persist_rep, *chain]
        if cls is np.ndarray or issubclass(cls, np.memmap) or _is_proxy(cls):
            return (_D_ARRAY, chain)
        return (_D_REP, chain)

    def _externalise(self, node: Node) -> bool:
        threshold = self.array_threshold
        arr = node.obj
        if threshold is None or arr.size <= threshold or arr.dtype.hasobject:  # type: ignore[attr-defined]
            return False
        key = f"array_{len(self.arrays)}"
        data = arr if type(arr) is np.ndarray else np.asarray(arr)
        self.arrays[key] = data
        self.array_keys[id(arr)] = key
        self._new_arrays.append(key)
        node.kind = K_TEXT
        node.text = node.base_text = f"_arrays[{key!r}]"
        return True

    def _expand_native(self, node: Node, kind: int) -> None:
        obj: Any = node.obj
        node.kind = kind
        parts: list[Any] = []
        deps: list[Node] = []
        node.parts = parts  # published first: a leaf met twice in this scan patches them
        node.deps = deps
        if kind == K_DICT:
            self._scan_dict(obj, node, parts, deps)
        else:
            items = obj
            if kind in (K_SET, K_FROZENSET):
                items = sorted(obj, key=_sort_key)
            # inline containers only in containers that can be built in two phases:
            # a cycle through one is then closed at its owner
            self._scan(items, node, parts, deps, kind != K_TUPLE and kind != K_FROZENSET)
        node.splittable = kind in (K_LIST, K_DICT, K_SET)
        if not deps and len(parts) <= CHUNK:
            node.text = node.base_text = _native_text(kind, parts)

    def _scan(self, items: Any, node: Node, parts: list[Any], deps: list[Node], inline: bool) -> None:
        """Append each item's text (literals) or node to ``parts``: the walk's hot loop.

        A list, tuple or dict referenced by nothing but ``items`` (its reference
        count shows it) cannot be met again in this walk: it is written in place,
        as text when it holds only literals, else (when ``inline``) as an inline
        container.  It still gets a memo entry, for a later insert or a
        representer that hands it out again.  Any other container gets its node
        at once, where it is first met (so what is written, and in which order,
        does not depend on references from outside the graph).  Runs of dicts
        go to :meth:`_inline_rows` first, which writes them in batches.
        """
        atoms = _ATOM
        append = parts.append
        leaf_ok = self._leaf_ok
        getrefcount = sys.getrefcount
        seq_base = _SEQ_BASE
        written = self.written
        lens = self.written_lens
        # runs of dict rows are written in batches (``_inline_rows``): ``window`` rows at
        # most, the next attempt not before ``retry`` (later after each failed one)
        total = len(items)
        batches = bool(inline and leaf_ok and _ROW_BASE) and total >= _ROWS_MIN
        window = total
        retry = skip = 0
        i = -1
        it = iter(items)
        for v in it:
            i += 1
            t = type(v)
            if t is dict and inline and leaf_ok and getrefcount(v) <= seq_base and len(v) <= CHUNK:
                if batches and i >= retry:
                    done, fit = self._inline_rows(items, i, min(total, i + window), node, parts, deps)
                    if done:
                        _consume(islice(it, done - 1))
                        i += done - 1
                        window = 2 * window if done == window else 4 * _ROWS_MIN
                        skip = 0
                        continue
                    window = 4 * _ROWS_MIN
                    retry = i + max(fit, 1) + skip
                    skip = 2 * skip + 1
                append(self._inline(v, t, node, len(parts), i, deps))  # the common record
                continue
            if t is str:
                append(repr(v))
            elif t is int:
                append(repr(v) if -_BIG_INT < v < _BIG_INT else _int_text(v))
            elif t is float:
                r = repr(v)
                append(r if r[-1] not in "nf" else float_text(v))
            else:
                f = atoms.get(t)
                if f is not None:
                    append(f(v))
                    continue
                if (
                    leaf_ok
                    and (t is dict or t is list or t is tuple)
                    and getrefcount(v) <= seq_base  # referenced by this container only
                    and len(v) <= CHUNK
                ):
                    if inline:
                        append(self._inline(v, t, node, len(parts), i, deps))
                        continue
                    text = _atoms_text(v, t)
                    if text is not None:
                        written.append((v, node, len(parts), text, None, _NONE, _NONE))
                        lens.add(len(v))
                        append(text)
                        continue
                c = self.child(v, node, i)
                append(c)
                if c.__class__ is Node:
                    deps.append(c)

    def _scan_dict(self, obj: dict[Any, Any], node: Node, parts: list[Any], deps: list[Node]) -> None:
        """:meth:`_scan` for a dict's keys and values, alternating."""
        atoms = _ATOM
        append = parts.append
        leaf_ok = self._leaf_ok
        getrefcount = sys.getrefcount
        dict_base = _DICT_BASE
        for k, v in obj.items():
            t = type(k)
            if t is str:
                append(repr(k))
            else:
                f = atoms.get(t)
                if f is not None:
                    append(f(k))
                else:
                    c = self.child(k, node, ("key", k))
                    append(c)
                    if c.__class__ is Node:
                        deps.append(c)
            t = type(v)
            if t is str:
                append(repr(v))
            elif t is int:
                append(repr(v) if -_BIG_INT < v < _BIG_INT else _int_text(v))
            elif t is float:
                r = repr(v)
                append(r if r[-1] not in "nf" else float_text(v))
            else:
                f = atoms.get(t)
                if f is not None:
                    append(f(v))
                    continue
                if (
                    leaf_ok
                    and (t is dict or t is list or t is tuple)
                    and getrefcount(v) <= dict_base  # referenced by this dict only
                    and len(v) <= CHUNK
                ):
                    append(self._inline(v, t, node, len(parts), k, deps))
                    continue
                c = self.child(v, node, k)
                append(c)
                if c.__class__ is Node:
                    deps.append(c)

    def _inline(self, v: Any, t: type, owner: Node, index: int, access: object, deps: list[Node]) -> Any:
        """Source of a list, tuple or dict that only ``owner`` refers to, written in place.

        Literals become text, containers of literals that only ``v`` refers to
        become text too (with a memo entry pointing inside ``v``), anything else
        becomes a node, appended to ``deps``.  Returns the text when there is no
        node, else the pieces: text alternating with nodes.  The memo entry of
        ``v`` (at ``owner.parts[index]``) keeps a snapshot of its elements.

        The usual case is one C ``repr`` of ``v`` (of a copy with :data:`_HOLE`
        in place of the nodes): it is exact when every key and element is of
        a type in :data:`_REPR_EXACT` (or such a container of them), checked
        first, and no float is nan/inf nor int huge, checked on the text.
        Nothing is recorded until the text is known to be exact; other cases
        take :meth:`_inline_items`.
        """
        exact = _REPR_EXACT
        getrefcount = sys.getrefcount
        leaves: list[Any] = []
        copies: list[Any] = []  # their contents now
        holes: list[Any] = []  # keys or indices of the elements that are nodes
        if t is dict:
            base = _DICT_BASE
            for k, x in v.items():
                tx = type(x)
                tk = type(k)
                if tk is not str and tk not in exact:
                    return self._inline_items(v, t, owner, index, access, deps)
                if tx in exact:
                    continue
                if (
                    (tx is list or tx is tuple or tx is dict)
                    and getrefcount(x) <= base
                    and len(x) <= CHUNK
                    and (copy := _exact_copy(x, tx)) is not None
                ):
                    leaves.append(x)
                    copies.append(copy)
                    continue
                elif tx in _ATOM:  # complex: its text is not its repr
                    return self._inline_items(v, t, owner, index, access, deps)
                holes.append(k)
        else:
            base = _SEQ_BASE
            i = -1
            for x in v:
                i += 1
                tx = type(x)
                if tx in exact:
                    continue
                if (
                    (tx is list or tx is tuple or tx is dict)
                    and getrefcount(x) <= base
                    and len(x) <= CHUNK
                    and (copy := _exact_copy(x, tx)) is not None
                ):
                    leaves.append(x)
                    copies.append(copy)
                    continue
                elif tx in _ATOM:
                    return self._inline_items(v, t, owner, index, access, deps)
                holes.append(i)
        snapshot: Any
        if holes:
            snapshot = v.copy() if t is dict else list(v)
            for h in holes:
                snapshot[h] = _HOLE
            shown = tuple(snapshot) if t is tuple else snapshot
        else:
            snapshot = shown = v
        try:
            text = repr(shown)
        except ValueError:  # an int over the interpreter's str digit limit
            return self._inline_items(v, t, owner, index, access, deps)
        if (
            ("n" in text and ("nan" in text or "inf" in text)) or len(text) > _REPR_MAX
        ) and not _plain_numbers(v, leaves):
            return self._inline_items(v, t, owner, index, access, deps)
        if holes:
            pieces: Any = text.split(_HOLE_TEXT)
            if len(pieces) != len(holes) + 1:  # cannot happen: repr escapes the character
                return self._inline_items(v, t, owner, index, access, deps)
        elif t is not tuple:
            snapshot = v.copy()
        if holes:
            memo = self.memo
            j = 0
            for h in holes:
                x = v[h]
                node = memo.get(id(x))
                if node is None:
                    node = self.child(x, owner, (_IN, access, h))  # type: ignore[assignment]
                else:
                    node.refs += 1
                if not deps or deps[-1] is not node:  # rows sharing one object: depend once
                    deps.append(node)  # type: ignore[arg-type]
                j += 1
                pieces.insert(j, node)  # text, node, text, ...
                j += 1
            owner.framed = True
            text = pieces
        self.written.append((v, owner, index, text, snapshot, leaves, copies))
        lens = self.written_lens
        lens.add(len(v))
        if leaves:
            lens.update(map(len, leaves))
        return text

    def _inline_rows(
        self, items: list[Any], start: int, stop: int, owner: Node, parts: list[Any], deps: list[Node]
    ) -> tuple[int, int]:
        """:meth:`_inline` for the dict rows ``items[start:stop]`` at once, or for none.

        ``items[start]`` is a dict :meth:`_scan` found referenced by ``items`` only; the
        batch takes the rows after it that are too and have its keys (all ``str``, the
        same objects in the same order), up to the first row where a column changes
        kind (a literal, a container of literals, a node: see :func:`_value_kind`) or
        holds what :meth:`_inline` would not write by ``repr`` (nan/inf, a huge int,
        complex).  The rows' texts come from one ``%`` template per stretch between
        nodes, with the keys (and the literals every row holds) written into it.  The
        rest is what :meth:`_inline` makes row by row: the same parts, node references
        and dependencies, in the same order, and the same memo entries (queued as a
        :class:`_RowBatch`).  Returns ``(written, fit)``: the number of rows written
        (0 when fewer than :data:`_ROWS_MIN` fit) and of leading rows found to fit.
        """
        keys = tuple(items[start])
        width = len(keys)
        if not width or set(map(type, keys)) != {str}:
            return 0, 0
        # rows referenced by ``items`` only, of as many keys: checked in C over the run,
        # and where a check fails, up to the first row failing it
        first = start + 1
        n = stop - first
        if set(map(type, islice(items, first, stop))) != {dict}:
            n = _first_false(map(is_, map(type, islice(items, first, stop)), repeat(dict)), n)
        if n and max(_tail_counts(items, first, first + n)) > _ROW_BASE:
            n = _first_false(map(le, _tail_counts(items, first, first + n), repeat(_ROW_BASE)), n)
        if n and set(map(len, islice(items, first, first + n))) != {width}:
            n = _first_false(map(eq, map(len, islice(items, first, first + n)), repeat(width)), n)
        m = n + 1
        if m < _ROWS_MIN:
            return 0, m
        rows: list[dict[str, Any]] = items[start : start + m]
        if not all(map(is_, chain.from_iterable(rows), cycle(keys))):
            m = _first_false(map(is_, chain.from_iterable(rows), cycle(keys)), m * width) // width
            if m < _ROWS_MIN:
                return 0, m
            del rows[m:]
        values, columns = _row_table(rows, width)
        counts = _column_counts(columns)  # first, while nothing else refers to the values
        kinds: list[int] = []
        inners: list[list[list[Any]] | None] = []
        for col, col_counts in zip(columns, counts, strict=True):
            kind, fit, inner = _column_kind(col, col_counts)
            kinds.append(kind)
            inners.append(inner)
            m = min(m, fit)
            if m < _ROWS_MIN:
                return 0, m
        if m < len(rows):
            _truncate(m, rows, values, columns, inners)
        # the texts: one ``%`` template per stretch of columns between two nodes
        templates: list[tuple[str, list[Sequence[Any]]]] = []
        frags = ["{"]
        fields: list[Sequence[Any]] = []
        node_columns: list[int] = []
        leaf_columns: list[int] = []
        for c, key in enumerate(keys):
            col = columns[c]
            kind = kinds[c]
            inner = inners[c]
            if c:
                frags.append(", ")
            frags.append(repr(key).replace("%", "%%") + ": ")
            if kind == _NODE:
                templates.append(("".join(frags), fields))
                frags = []
                fields = []
                node_columns.append(c)
            elif kind == _ATOMIC:
                _template_field(col, frags, fields)
            elif inner is None:
                leaf_columns.append(c)
                frags.append("%r")
                fields.append(col)
            else:
                leaf_columns.append(c)
                t = type(col[0])
                frags.append("[" if t is list else "(")
                for e, elements in enumerate(inner):
                    if e:
                        frags.append(", ")
                    _template_field(elements, frags, fields)
                frags.append("]" if t is list else ",)" if len(inner) == 1 else ")")
        frags.append("}")
        templates.append(("".join(frags), fields))
        texts = _row_texts(templates, m)
        if texts is None or not _texts_short(texts, [bool(f) for _, f in templates]):
            # an int may be huge (or a str is long): check the numbers
            fits = [_plain_fit(columns[c], inners[c]) for c in range(width) if kinds[c] != _NODE]
            fit = min(fits, default=m)
            if fit < _ROWS_MIN:
                return 0, fit
            if fit < m:
                m = fit
                _truncate(m, rows, values, columns, inners)
                texts = _row_texts(templates, m)
            if texts is None:  # an int over the interpreter's str digit limit: row by row
                return 0, m
        # the memo entries' contents: copies of the lists and dicts (tuples are their own;
        # lists written element by element are copied from ``inner`` if ever indexed)
        lens = self.written_lens
        lens.add(width)
        leaves: list[tuple[int, Sequence[Any] | None, list[list[Any]]]] = []
        for c in leaf_columns:
            col = columns[c]
            t = type(col[0])
            inner = inners[c]
            if inner is not None:
                lens.add(len(inner))
                leaves.append((c, col if t is tuple else None, inner))
            else:
                lens.update(map(len, col))
                leaves.append((c, col if t is tuple else list(map(t.copy, col)), []))
        out: list[Any] = texts[0]
        if node_columns:
            node_keys = [keys[c] for c in node_columns]
            nodes = self._row_nodes([columns[c] for c in node_columns], node_keys, start, owner, deps)
            pieces: list[list[Any]] = [texts[0]]
            for c, column_nodes, text in zip(node_columns, nodes, texts[1:], strict=True):
                pieces.append(column_nodes)
                pieces.append(text)
                values[c::width] = [_HOLE] * m  # the snapshots show the nodes as holes
            out = list(map(list, zip(*pieces, strict=True)))
            owner.framed = True
        self.written_rows.append(_RowBatch(rows, owner, len(parts), out, keys, values, leaves))
        parts.extend(out)
        return m, m

    def _row_nodes(
        self, cols: list[list[Any]], keys: list[str], start: int, owner: Node, deps: list[Node]
    ) -> list[list[Node]]:
        """The nodes of the node columns ``cols`` of a batch (rows from ``items[start]``), by column.

        Looked up or made, counted and depended on row by row, key by key, as
        :meth:`_inline` does; when every row holds the same objects, the first row
        does and the others repeat its effect.
        """
        memo = self.memo
        m = len(cols[0])
        same = all(all(map(is_, col, repeat(col[0]))) for col in cols)
        out: list[list[Node]] = [[] for _ in cols]
        for j, objs in enumerate(zip(*cols, strict=True)):
            for x, key, column_nodes in zip(objs, keys, out, strict=True):
                node = memo.get(id(x))
                if node is None:
                    node = self.child(x, owner, (_IN, start + j, key))  # type: ignore[assignment]
                else:
                    node.refs += 1
                if not deps or deps[-1] is not node:  # rows sharing one object: depend once
                    deps.append(node)  # type: ignore[arg-type]
                column_nodes.append(node)  # type: ignore[arg-type]
            if same:
                break
        if same:
            again: list[Node] = []  # what each further row appends to ``deps``
            last = deps[-1]
            for column_nodes in out:
                node = column_nodes[0]
                node.refs += m - 1
                if node is not last:
                    again.append(node)
                    last = node
            deps.extend(again * (m - 1))
            out = [column_nodes * m for column_nodes in out]
        return out

    def _written(self, v: Any, owner: Node, index: int, text: Any, contents: Any, leaves: list[Any], copies: list[Any]) -> None:
        """Queue the memo entries of ``v``, written in place, and of the ``leaves`` written inside it."""
        self.written.append((v, owner, index, text, contents, leaves, copies))
        lens = self.written_lens
        lens.add(len(v))
        if leaves:
            lens.update(map(len, leaves))

    def _inline_items(self, v: Any, t: type, owner: Node, index: int, access: object, deps: list[Node]) -> Any:
        """:meth:`_inline` element by element, for what the C ``repr`` does not write exactly."""
        atoms = _ATOM
        memo = self.memo
        leaves: list[Any] = []
        copies: list[Any] = []
        getrefcount = sys.getrefcount
        items: list[str] = []
        add = items.append
        pieces: list[Any] | None = None
        carry = ""  # text owed after the last node (a key node's value)
        if t is dict:
            base = _DICT_BASE
            for k, x in v.items():
                tk = type(k)
                kt: str | None
                if tk is str:
                    kt = repr(k)
                else:
                    f = atoms.get(tk)
                    kt = f(k) if f is not None else None
                tx = type(x)
                xt: str | None
                if tx is str:
                    xt = repr(x)
                elif tx is int:
                    xt = repr(x) if -_BIG_INT < x < _BIG_INT else _int_text(x)
                elif tx is float:
                    xt = repr(x)
                    if xt[-1] in "nf":
                        xt = float_text(x)
                else:
                    f = atoms.get(tx)
                    if f is not None:
                        xt = f(x)
                    elif (
                        (tx is list or tx is tuple or tx is dict)
                        and getrefcount(x) <= base
                        and (xt := _atoms_text(x, tx)) is not None
                    ):
                        leaves.append(x)
                        copies.append(x if tx is tuple else x.copy())
                    else:
                        xt = None
                if kt is not None:
                    if xt is not None:
                        add(f"{kt}: {xt}")
                        continue
                    node = memo.get(id(x))
                    if node is None:
                        node = self.child(x, owner, (_IN, access, k))  # type: ignore[assignment]
                    else:
                        node.refs += 1
                    deps.append(node)  # type: ignore[arg-type]
                    if pieces is None:
                        pieces = ["{" + ", ".join(items) + ", " + kt + ": " if items else "{" + kt + ": ", node]
                    else:
                        pieces.append(carry + ", " + ", ".join(items) + ", " + kt + ": " if items else carry + ", " + kt + ": ")
                        pieces.append(node)
                        carry = ""
                    items = []
                    add = items.append
                    continue
                # a key that is not a literal (rare): a node, its value text or a node
                key = self.child(k, owner, (_IN, access, ("key", k)))
                deps.append(key)  # type: ignore[arg-type]
                lead = "{" if pieces is None else carry + ", "
                if pieces is None:
                    pieces = []
                pieces.append(lead + ", ".join(items) + ", " if items else lead)
                pieces.append(key)
                if xt is not None:
                    carry = ": " + xt
                else:
                    value = self.child(x, owner, (_IN, access, k))
                    deps.append(value)  # type: ignore[arg-type]
                    pieces.append(": ")
                    pieces.append(value)
                    carry = ""
                items = []
                add = items.append
            if pieces is None:
                text = "{" + ", ".join(items) + "}"
                self._written(v, owner, index, text, v.copy(), leaves, copies)
                return text
            pieces.append(carry + ", " + ", ".join(items) + "}" if items else carry + "}")
            owner.framed = True
            self._written(v, owner, index, pieces, v.copy(), leaves, copies)
            return pieces
        base = _SEQ_BASE
        done = 0  # elements before ``items``
        for x in v:
            tx = type(x)
            if tx is str:
                add(repr(x))
            elif tx is int:
                add(repr(x) if -_BIG_INT < x < _BIG_INT else _int_text(x))
            elif tx is float:
                r = repr(x)
                add(r if r[-1] not in "nf" else float_text(x))
            else:
                f = atoms.get(tx)
                if f is not None:
                    add(f(x))
                    continue
                if (tx is list or tx is tuple or tx is dict) and getrefcount(x) <= base:
                    leaf = _atoms_text(x, tx)
                    if leaf is not None:
                        leaves.append(x)
                        copies.append(x if tx is tuple else x.copy())
                        add(leaf)
                        continue
                node = memo.get(id(x))
                if node is None:
                    node = self.child(x, owner, (_IN, access, done + len(items)))  # type: ignore[assignment]
                else:
                    node.refs += 1
                deps.append(node)  # type: ignore[arg-type]
                if pieces is None:
                    lead = "[" if t is list else "("
                    pieces = [lead + ", ".join(items) + ", " if items else lead, node]
                else:
                    pieces.append(", " + ", ".join(items) + ", " if items else ", ")
                    pieces.append(node)
                done += len(items) + 1
                items = []
                add = items.append
        close = "]" if t is list else ",)" if len(v) == 1 else ")"
        snapshot = v if t is tuple else v.copy()
        if pieces is None:
            text = ("[" if t is list else "(") + ", ".join(items) + close
            self._written(v, owner, index, text, snapshot, leaves, copies)
            return text
        pieces.append(", " + ", ".join(items) + close if items else close)
        owner.framed = True
        self._written(v, owner, index, pieces, snapshot, leaves, copies)
        return pieces

    def _expand_rep(self, node: Node, chain: list[Callable[[Any], Rep | None]]) -> None:
        obj = node.obj
        rep: Rep | None = None
        try:
            for representer in chain:
                rep = representer(obj)
                if rep is not None:
                    break
            if rep is None:
                rep = represent_by_reduce(obj)
        except UnrepresentableError as exc:
            raise _with_path(exc, node) from exc.__cause__
        except RecursionError:
            raise
        except Exception as exc:
            raise UnrepresentableError(
                f"cannot archive {_type_name(obj)} at {node.path()}: {type(exc).__name__}: {exc}",
                path=node.path(),
                type_name=_type_name(obj),
            ) from exc
        if not isinstance(rep, Rep):
            raise UnrepresentableError(
                f"the representer for {_type_name(obj)} at {node.path()} returned "
                f"{type(rep).__name__}, not a persist_hooks.Rep",
                path=node.path(),
                type_name=_type_name(obj),
            )
        self._apply_rep(node, rep)

    def _apply_rep(self, node: Node, rep: Rep) -> None:
        node.kind = K_REP
        imports = tuple((i[0], i[1], i[2] if len(i) == 3 else i[1]) for i in rep.imports)
        node.imports = imports
        argnames = tuple(rep.args)
        bound = tuple(i[2] for i in imports)
        try:
            node.tmpl = tmpl = template(rep.expr, argnames, bound)
            if rep.fill is not None:
                node.fill_tmpl = template(rep.fill, argnames, bound, "exec")
                node.splittable = True
                if rep.new is not None:
                    node.new_tmpl = template(rep.new, argnames, bound)
        except SyntaxError as exc:
            raise UnrepresentableError(
                f"the representation of {_type_name(node.obj)} at {node.path()} is invalid: {exc}",
                path=node.path(),
                type_name=_type_name(node.obj),
            ) from None
        node.atomic = tmpl.atomic
        free = self.free_names
        for t in (tmpl, node.new_tmpl, node.fill_tmpl):
            if t is not None and not t.free <= free:
                free |= t.free
        # construction dependencies first: the args that `new` (or `expr`, when
        # the object is always built in two phases) needs
        first = node.new_tmpl if node.new_tmpl is not None else tmpl
        first_names = set(first.names) if node.splittable else set(argnames)
        child = self.child
        parts: list[Any] = []
        early: list[Node] = []
        late: list[Node] = []
        for name in argnames:
            value = child(rep.args[name], node, name)
            parts.append(value)
            if value.__class__ is Node:
                (early if name in first_names else late).append(value)
        node.parts = parts
        node.deps = early + late
        node.n_new = len(early)


def _native_text(kind: int, parts: list[str]) -> str:
    if kind == K_LIST:
        return "[" + ", ".join(parts) + "]"
    if kind == K_TUPLE:
        if len(parts) == 1:
            return "(" + parts[0] + ",)"
        return "(" + ", ".join(parts) + ")"
    if kind == K_DICT:
        it = iter(parts)
        return "{" + ", ".join(f"{k}: {v}" for k, v in zip(it, it, strict=True)) + "}"
    if kind == K_SET:
        return "{" + ", ".join(parts) + "}" if parts else "set()"
    return "frozenset({" + ", ".join(parts) + "})" if parts else "frozenset()"


def _is_proxy(cls: type) -> bool:
    """Lazy array handles of our backends (archived as the arrays they stand for)."""
    return cls.__module__.startswith("persist_hooks.backends") and hasattr(cls, "__array__")


def _call_persist_rep(obj: Any) -> Rep | None:
    rep = obj.__persist_rep__()
    return rep  # type: ignore[no-any-return]


def _type_name(obj: object) -> str:
    t = type(obj)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _with_path(exc: UnrepresentableError, node: Node) -> UnrepresentableError:
    if exc.path:
        return exc
    path = node.path()
    name = exc.type_name or _type_name(node.obj)
    new = type(exc)(f"cannot archive {name} at {path}: {exc}", path=path, type_name=name)
    return new

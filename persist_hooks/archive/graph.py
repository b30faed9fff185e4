"""Walk an object graph once into nodes: identity, sharing, and each object's representation.

Every non-literal object becomes one :class:`Node` (memoised by ``id``, the
object kept alive by the node so ids are never reused), whatever the number of
references to it.  Literals (``int``, ``str``, finite ``float`` ...) become their
source text directly.  Built-in containers are handled natively for speed;
every other object is represented through the plugin registry (exact type,
then MRO, cached per type), its ``__persist_rep__`` method, or last the
``__reduce_ex__`` protocol.  The walk is iterative, so deep structures do not
hit the recursion limit.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
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


class Node:
    """One object of the graph and how to build it.

    ``parts`` are the object's children as source text (literals) or nodes, in
    the order the emitter uses them; ``deps`` the nodes among them (for a Rep:
    the ones its ``new``/construction needs come first, ``n_new`` of them).
    """

    __slots__ = (
        "access",
        "atomic",
        "base_text",
        "deps",
        "depth",
        "fill_tmpl",
        "imports",
        "kind",
        "n_new",
        "name",
        "new_tmpl",
        "noinline",
        "obj",
        "parent",
        "parts",
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


def _access_text(parent: Node, access: object) -> str:
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
        # leaf containers (literals only) are kept as text with a tuple memo entry
        # ``(obj, parent, index, text)`` until a second reference upgrades them to a Node
        self.memo_leaf: dict[int, tuple[Any, Node, int, str]] = {}
        self.prelude: list[Node] = []
        self._upgrades: list[tuple[Node, tuple[Any, Node, int, str], str | None]] = []
        self._leaf_ok: bool | None = None
        self._free_before: set[str] = set()

    # -- transactions -------------------------------------------------------------

    def begin(self) -> None:
        self.commit()
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
        created = {id(node) for node in self._created}
        for node in self._created:
            memo.pop(id(node.obj), None)
            for part in node.parts:  # references the failed walk added to older nodes
                if part.__class__ is Node and id(part) not in created:
                    part.refs -= 1
        for node in self._bumped:  # root-level references
            node.refs -= 1
        for key in self._new_arrays:
            arr = self.arrays.pop(key)
            self.array_keys.pop(id(arr), None)
        for node, entry, parent_text in reversed(self._upgrades):
            _, parent, index, text = entry
            memo.pop(id(node.obj), None)
            self.memo_leaf[id(node.obj)] = entry
            parent.parts[index] = text
            parent.deps.remove(node)
            parent.text = parent.base_text = parent_text
            if node in self.prelude:
                self.prelude.remove(node)
        for leaf_id in [k for k, e in self.memo_leaf.items() if id(e[1]) in created]:
            del self.memo_leaf[leaf_id]  # leaves met while scanning the discarded nodes
        self.free_names = self._free_before
        self._pending = []
        self.commit()

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

    def _upgrade(self, entry: tuple[Any, Node, int, str]) -> Node:
        """A leaf met a second time: give it a node and point its first parent at it."""
        obj, parent, index, text = entry
        node = Node(obj, parent, index)
        node.kind = _LEAF_KINDS[type(obj)]
        node.text = node.base_text = text
        node.splittable = node.kind != K_TUPLE
        del self.memo_leaf[id(obj)]
        self.memo[id(obj)] = node
        parent_text = parent.base_text
        parent.parts[index] = node
        parent.deps.append(node)
        parent.text = parent.base_text = None
        if parent.state:  # the parent was ordered by an earlier insert: build the leaf first
            node.state = 2
            self.prelude.append(node)
        self._upgrades.append((node, entry, parent_text))
        return node

    def _leaf(self, v: Any, t: type, node: Node, index: int) -> str | None:
        """Text of ``v`` if it is a literal-only container seen for the first time."""
        key = id(v)
        if key in self.memo_leaf or key in self.memo:
            return None
        text = _leaf_text(v, t)
        if text is not None:
            self.memo_leaf[key] = (v, node, index, text)
        return text

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
            self._scan(items, node, parts, deps)
        node.splittable = kind in (K_LIST, K_DICT, K_SET)
        if not deps and len(parts) <= CHUNK:
            node.text = node.base_text = _native_text(kind, parts)

    def _scan(self, items: Any, node: Node, parts: list[Any], deps: list[Node]) -> None:
        """Append each item's text (literals) or node to ``parts``: the walk's hot loop."""
        atoms = _ATOM
        append = parts.append
        leaf_ok = self._leaf_ok
        getrefcount = sys.getrefcount
        seq_base = _SEQ_BASE
        memo_leaf = self.memo_leaf
        i = -1
        for v in items:
            i += 1
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
                if leaf_ok and (t is list or t is tuple):
                    if getrefcount(v) <= seq_base:  # referenced by this container only
                        text = _leaf_text(v, t)
                        if text is not None:  # in no memo yet (a memo would hold a reference)
                            memo_leaf[id(v)] = (v, node, len(parts), text)
                    else:
                        text = self._leaf(v, t, node, len(parts))
                    if text is not None:
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
        memo_leaf = self.memo_leaf
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
                if leaf_ok and (t is list or t is tuple):
                    if getrefcount(v) <= dict_base:  # referenced by this dict only
                        text = _leaf_text(v, t)
                        if text is not None:  # in no memo yet (a memo would hold a reference)
                            memo_leaf[id(v)] = (v, node, len(parts), text)
                    else:
                        text = self._leaf(v, t, node, len(parts))
                    if text is not None:
                        append(text)
                        continue
                c = self.child(v, node, k)
                append(c)
                if c.__class__ is Node:
                    deps.append(c)

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

"""Fuzz the safe loader with mutated real archives: it returns or raises ArchiveError, never else.

Seeds are archives the emitter really writes (both formats, cycles, instances,
arrays in the source and in the array table, the single-item tail).  Hypothesis
mutates them at the token level (swap, delete, duplicate, insert hostile tokens),
at the AST level (rename names, swap attributes for dunders, replace callees, wrap
expressions in calls) and by truncation.  Each mutant goes to
:func:`persist_hooks.safe.execute`, which must return normally or raise an
:class:`persist_hooks.errors.ArchiveError` subclass — never another exception type
and never hang (an alarm bounds each example; the interpreter's own step budget is
what makes it unnecessary).  The whole module runs in well under 60 s.
"""

from __future__ import annotations

import ast
import collections
import datetime as dt
import decimal
import fractions
import io
import signal
import tokenize
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from archive_helpers import Color, DNode, FrozenPoint, Plain, WithState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persist_hooks as ph
from persist_hooks import safe
from persist_hooks.errors import ArchiveError

ALLOWED = [f"archive_helpers.{n}" for n in ("Plain", "WithState", "DNode", "FrozenPoint", "Color")]


def _seed_objects() -> list[dict[str, Any]]:
    lst: list[Any] = [1, "a"]
    lst.append(lst)
    d: dict[str, Any] = {}
    d["me"] = d
    root = DNode("root")
    root.children.append(DNode("child", parent=root))
    shared = Plain(a=1, b=[2.5, float("nan")])
    return [
        {"x": [1, -2.5, float("inf"), -float("inf"), complex(1, 2), b"b", None, ..., 2**80, -(10**30)]},
        {"x": lst, "d": d, "s": {1, 2, frozenset({3})}, "t": (1, (2, [3]))},
        {"p": [shared, shared], "w": WithState(1, 2), "f": FrozenPoint(1, 2), "c": Color.RED, "n": root},
        {"dt": dt.datetime(2020, 1, 2, 3, 4, tzinfo=dt.UTC), "td": dt.timedelta(1),
         "dec": decimal.Decimal("1.5"), "fr": fractions.Fraction(1, 3),
         "od": collections.OrderedDict(a=1), "dd": collections.defaultdict(list, {1: [2]}),
         "dq": collections.deque([1, 2], maxlen=5), "ns": types.SimpleNamespace(a=1)},
        {"a": np.arange(6.0).reshape(2, 3), "o": np.array([1, "a", None], dtype=object),
         "f": np.asfortranarray(np.ones((2, 2))), "s": np.float32(1.5), "big": np.arange(50)},
        {"r": range(1, 9, 2), "sl": slice(1, None, 2), "ba": bytearray(b"xy"), "nt": type(None)},
    ]  # fmt: skip


def _seeds() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for objs in _seed_objects():
        for scoped in (True, False):
            a = ph.Archive(scoped=scoped, array_threshold=20)
            a.insert(**objs)
            out.append((str(a), dict(a.data)))
    single = ph.Archive(single_item_mode=True)
    single.insert(item=[Plain(a=1), {"k": (1, 2)}])
    out.append((str(single), {}))
    return out


SEEDS = _seeds()

HOSTILE_NAMES = ["os", "eval", "exec", "getattr", "open", "__import__", "globals", "_arrays", "_sys",
                 "__builtins__", "type", "object", "float", "_f0", "_g0", "self", "Plain", "map", "x"]  # fmt: skip
HOSTILE_ATTRS = ["__class__", "__globals__", "__subclasses__", "__dict__", "__new__", "__setstate__",
                 "__init__", "__reduce__", "system", "extend", "update", "reshape", "copy", "utc", "RED"]  # fmt: skip
HOSTILE_TOKENS = [".__class__", "(", ")", "[", "]", ",", "*", "**", "lambda:", " for i in x", "10**100",
                  "()", "[0]", ":=", "import os", "\n", "-", "'*'*99"]  # fmt: skip


@contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError("the safe loader did not finish in time")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _feed(src: str, arrays: dict[str, Any]) -> None:
    ns: dict[str, Any] = {"_arrays": arrays, "__name__": "fuzzed"}
    with _alarm(10):
        try:
            safe.execute(src, ns, filename="fuzz.py", safe_callables=ALLOWED)
        except ArchiveError as exc:
            assert str(exc).startswith("fuzz.py"), str(exc)


def _tokens(src: str) -> list[str]:
    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(src).readline)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return src.split(" ")


def _join(tokens: list[str]) -> str:
    out: list[str] = []
    for tok in tokens:
        out.append(tok if tok in ("\n", "") or tok.isspace() else tok + " ")
    return "".join(out)


FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))  # fmt: skip


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), data=st.data())
def test_token_mutations(seed: int, data: st.DataObject) -> None:
    src, arrays = SEEDS[seed]
    tokens = _tokens(src)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, max(len(tokens) - 1, 0)))
        op = data.draw(st.sampled_from(["swap", "delete", "dup", "insert", "name"]))
        if not tokens:
            break
        if op == "swap":
            j = data.draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "delete":
            del tokens[i]
        elif op == "dup":
            tokens.insert(i, tokens[i])
        elif op == "insert":
            tokens.insert(i, data.draw(st.sampled_from(HOSTILE_TOKENS)))
        elif tokens[i].isidentifier():
            tokens[i] = data.draw(st.sampled_from(HOSTILE_NAMES))
    _feed(_join(tokens), arrays)


class _Mutator(ast.NodeTransformer):
    def __init__(self, data: st.DataObject, rate: int) -> None:
        self.data = data
        self.rate = rate

    def hit(self) -> bool:
        return self.data.draw(st.integers(0, self.rate)) == 0

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if self.hit():
            node.id = self.data.draw(st.sampled_from(HOSTILE_NAMES))
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if self.hit():
            node.attr = self.data.draw(st.sampled_from(HOSTILE_ATTRS))
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if self.hit():
            node.func = ast.Name(self.data.draw(st.sampled_from(HOSTILE_NAMES)), ast.Load())
        elif self.hit() and node.args:
            node.args.reverse()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if self.hit():
            return ast.Call(ast.Name(self.data.draw(st.sampled_from(HOSTILE_NAMES)), ast.Load()), [node], [])
        if self.hit() and isinstance(node.value, int):
            node.value = self.data.draw(st.sampled_from([10**12, -1, 0, 2**70]))
        return node


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), data=st.data())
def test_ast_mutations(seed: int, data: st.DataObject) -> None:
    src, arrays = SEEDS[seed]
    tree = ast.parse(src)
    tree = _Mutator(data, data.draw(st.integers(3, 30))).visit(tree)
    if data.draw(st.booleans()) and tree.body:
        i = data.draw(st.integers(0, len(tree.body) - 1))
        j = data.draw(st.integers(0, len(tree.body) - 1))
        tree.body[i], tree.body[j] = tree.body[j], tree.body[i]
    ast.fix_missing_locations(tree)
    try:
        mutated = ast.unparse(tree)
    except Exception:  # an unparsable tree is not what we test
        return
    _feed(mutated, arrays)


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), cut=st.floats(0, 1))
def test_truncations(seed: int, cut: float) -> None:
    src, arrays = SEEDS[seed]
    _feed(src[: int(len(src) * cut)], arrays)


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_seeds_load(index: int) -> None:
    src, arrays = SEEDS[index]
    ns: dict[str, Any] = {"_arrays": arrays, "__name__": "fuzzed"}
    safe.execute(src, ns, safe_callables=ALLOWED)

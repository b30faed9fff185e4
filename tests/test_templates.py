"""Representation templates (persist_hooks.archive.templates) and the flat substitution.

Names are replaced at the positions ``ast`` reports, never by searching the
text: names inside strings, attribute names and keyword names are left alone,
unicode before a name does not shift positions, and a non-atomic expression put
in place of a name is parenthesised.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from archive_helpers import FORMAT_IDS, FORMATS, Expr, archive_of

import persist_hooks as ph
from persist_hooks.archive.templates import (
    SELF,
    Template,
    is_atomic_expr,
    shadows_builtin,
    template,
)

fmt = pytest.mark.parametrize("scoped", FORMATS, ids=FORMAT_IDS)


# -- parsing and positions ------------------------------------------------------------


def test_template_fields() -> None:
    t = template("Fraction(n, d)", ("n", "d"), ("Fraction",))
    assert isinstance(t, Template)
    assert set(t.names) == {"Fraction", "n", "d"}
    assert t.arg_uses == {"n": 1, "d": 1}
    assert t.atomic is True and t.mode == "eval"
    assert t.substitute({"n": "1", "d": "3", "Fraction": "F"}) == "F(1, 3)"


def test_arg_uses_counts_every_occurrence_and_unused_args() -> None:
    t = template("[x, x, (x, y)]", ("x", "y", "z"), ())
    assert t.arg_uses == {"x": 3, "y": 1, "z": 0}


def test_free_names_are_the_other_loaded_globals() -> None:
    t = template("set(items) | frozenset(x) | other", ("items", "x"), ())
    assert t.free == frozenset({"set", "frozenset", "other"})
    assert "items" not in t.free


@pytest.mark.parametrize(
    ("source", "args", "mapping", "expected"),
    [
        ("f(x, 'x')", ("x",), {"x": "_g1"}, "f(_g1, 'x')"),
        ('f(x, "x + x", b"x")', ("x",), {"x": "A"}, 'f(A, "x + x", b"x")'),
        ("x.x", ("x",), {"x": "obj"}, "obj.x"),
        ("f(x=x, y=x.y)", ("x",), {"x": "Q"}, "f(x=Q, y=Q.y)"),
        ("{'x': x, x: 'x'}", ("x",), {"x": "V"}, "{'x': V, V: 'x'}"),
        ("'é☃𝄞' + x + 'é'", ("x",), {"x": "yy"}, "'é☃𝄞' + yy + 'é'"),
        ("['𝄞𝄞', x, '☃', y]", ("x", "y"), {"x": "1", "y": "2"}, "['𝄞𝄞', 1, '☃', 2]"),
        ("f(é, x)", ("é",), {"é": "1"}, "f(1, x)"),
        ("'''a\nb''' + f(x)", ("x",), {"x": "long_name"}, "'''a\nb''' + f(long_name)"),
        ("f'{x}-{x!r}-x'", ("x",), {"x": "yy"}, "f'{yy}-{yy!r}-x'"),
        ("xx + x + xy", ("x",), {"x": "Z"}, "xx + Z + xy"),
        ("x[x]", ("x",), {"x": "_g0"}, "_g0[_g0]"),
        ("[y for y in items]", ("items",), {"items": "L"}, "[y for y in L]"),
        ("# comment x\nf(x)", ("x",), {"x": "N"}, "# comment x\nf(N)"),
    ],
)
def test_substitution_on_ast_positions(source: str, args: tuple[str, ...], mapping: dict[str, str], expected: str) -> None:
    assert template(source, args, ()).substitute(mapping) == expected


def test_missing_replacements_keep_the_name() -> None:
    t = template("f(a, b)", ("a", "b"), ())
    assert t.substitute({"a": "1"}) == "f(1, b)"


def test_exec_mode_replaces_self_and_keeps_lines() -> None:
    t = template("self.a = x\nself.b = [x,\n    'é', x]", ("x",), (), "exec")
    assert SELF in t.names
    assert t.atomic is False and t.mode == "exec"
    assert t.substitute({"x": "Q", "self": "S"}) == "S.a = Q\nS.b = [Q,\n    'é', Q]"
    t = template("self.extend(items)", ("items",), (), "exec")
    assert t.substitute({"self": "_g0", "items": "[1, 2]"}) == "_g0.extend([1, 2])"


def test_imports_are_placeholders_too() -> None:
    t = template("datetime(2020, 1, 1, tzinfo=tz) - timedelta(1)", ("tz",), ("datetime", "timedelta"))
    out = t.substitute({"tz": "utc", "datetime": "_dt", "timedelta": "td"})
    assert out == "_dt(2020, 1, 1, tzinfo=utc) - td(1)"


def test_templates_are_cached() -> None:
    assert template("g(a)", ("a",), ()) is template("g(a)", ("a",), ())


def test_invalid_source_raises_syntax_error_naming_it() -> None:
    with pytest.raises(SyntaxError, match=r"1 \+"):
        template("1 +", (), ())


@pytest.mark.parametrize(
    ("source", "atomic"),
    [
        ("x", True),
        ("1", True),
        ("1.5", True),
        ("'s'", True),
        ("3j", True),
        ("None", True),
        ("...", True),
        ("f(x)", True),
        ("x.y", True),
        ("x[0]", True),
        ("[1]", True),
        ("{1: 2}", True),
        ("{1}", True),
        ("(1, 2)", True),
        ("[i for i in x]", True),
        ("-1", False),
        ("-3j", False),
        ("-float('inf')", False),
        ("1, 2", False),
        ("a + b", False),
        ("x ** 2", False),
        ("not x", False),
        ("lambda: 1", False),
        ("x if y else z", False),
        ("a < b", False),
        ("a and b", False),
        ("1 +", False),
    ],
)
def test_is_atomic_expr(source: str, atomic: bool) -> None:
    assert is_atomic_expr(source) is atomic


def test_shadows_builtin() -> None:
    assert shadows_builtin("set") and shadows_builtin("list") and shadows_builtin("print")
    assert not shadows_builtin("x") and not shadows_builtin("array")


# -- parentheses in the flat format ---------------------------------------------------


@fmt
@pytest.mark.parametrize(
    ("expr", "arg", "expected"),
    [
        ("x ** 2", -3, 9),
        ("x ** 2", -0.5, 0.25),
        ("x ** 2", -math.inf, math.inf),
        ("x ** 2", -(2**70), 2**140),
        ("x ** 2", -(7**2000), 7**4000),
        ("x ** 2", complex(-1, 0), complex(1, -0.0)),
        ("-x", -1, 1),
        ("x.real", 1.5, 1.5),
        ("x.imag", complex(1, 2), 2.0),
        ("x[1]", (1, 2), 2),
        ("x * 2", Expr("a + b", {"a": 1, "b": 2}), 6),
        ("-x", Expr("a - b", {"a": 1, "b": 2}), 1),
        ("x ** 2", Expr("-a", {"a": 3}), 9),
        ("x + 1", Expr("1 if c else 2", {"c": False}), 3),
        ("x[1]", Expr("a, b", {"a": 1, "b": 2}), 2),
        ("x()", Expr("lambda: a", {"a": 5}), 5),
        ("x.bit_length()", Expr("a + 0", {"a": 255}), 8),
        ("x ** 2", Expr("-float(a)", {"a": "inf"}), math.inf),
    ],
)
def test_non_atomic_substitutions_are_parenthesised(scoped: bool, expr: str, arg: Any, expected: Any) -> None:
    a = archive_of(scoped, v=Expr(expr, {"x": arg}), w=[Expr(expr, {"x": arg}), 0])
    src = str(a)
    out = ph.restore(src)
    assert out["v"] == expected, src
    assert out["w"][0] == expected, src
    assert type(out["v"]) is type(expected)


ARGLESS = [
    ("x * 2", "1 + 2", 6),
    ("x ** 2", "-5", 25),
    ("x()", "lambda: 5", 5),
    ("x ** 2", "-float('inf')", math.inf),
]


@pytest.mark.parametrize(("expr", "inner", "expected"), ARGLESS)
def test_argument_free_non_atomic_representation_scoped(expr: str, inner: str, expected: Any) -> None:
    src = str(archive_of(True, v=Expr(expr, {"x": Expr(inner)})))
    assert ph.restore(src)["v"] == expected, src


@pytest.mark.parametrize(("expr", "inner", "expected"), ARGLESS)
def test_argument_free_non_atomic_representation_flat(expr: str, inner: str, expected: Any) -> None:
    """Regression (fixed bug): A representation without arguments counts as atomic (emit._build_rep:
    `node.atomic = tmpl.atomic or not tmpl.names or self.scoped`), so the flat format writes
    `1 + 2 * 2`, `-5 ** 2`, `lambda: 5()`: silently wrong values.
    """
    src = str(archive_of(False, v=Expr(expr, {"x": Expr(inner)})))
    assert ph.restore(src)["v"] == expected, src


@fmt
def test_tuple_expression_representation_inside_displays(scoped: bool) -> None:
    """Regression (fixed bug): An unparenthesised tuple representation (`Rep('1, 2')`) is put into
    list/dict displays as is: `[1, 2, 3]` instead of `[(1, 2), 3]` (both formats).
    """
    src = str(archive_of(scoped, v=[Expr("1, 2"), 3], d={"k": Expr("a, b", {"a": 1, "b": [2]})}))
    out = ph.restore(src)
    assert out["v"] == [(1, 2), 3], src
    assert out["d"] == {"k": (1, [2])}, src


def test_int_literal_before_attribute_scoped() -> None:
    src = str(archive_of(True, v=Expr("x.bit_length()", {"x": 255}), w=Expr("x.real", {"x": 1})))
    assert ph.restore(src) == {"v": 8, "w": 1}


def test_int_literal_before_attribute_flat() -> None:
    """Regression (fixed bug): An int literal substituted before an attribute gives `1.real` /
    `255.bit_length()` (SyntaxError on restore) in the flat format.
    """
    src = str(archive_of(False, v=Expr("x.bit_length()", {"x": 255}), w=Expr("x.real", {"x": 1})))
    assert ph.restore(src) == {"v": 8, "w": 1}


def test_scoped_format_never_rewrites_a_representation() -> None:
    """The scoped format puts the template verbatim in a function body."""
    expr = "x ** 2 + len('x') + x"
    src = str(archive_of(True, v=Expr(expr, {"x": -3})))
    assert f"return {expr}" in src
    assert ph.restore(src)["v"] == 9 + 1 - 3


def test_flat_substitution_uses_import_aliases() -> None:
    """An import whose name is taken by an inserted name is aliased, on the AST."""
    rep_imports = [("fractions", "Fraction")]
    v = Expr("Fraction(n, 3) + Fraction(1, 3)", {"n": 1}, rep_imports)
    a = archive_of(False, Fraction=v, keep="Fraction(n, 3)")
    src = str(a)
    out = ph.restore(src)
    from fractions import Fraction

    assert out == {"Fraction": Fraction(2, 3), "keep": "Fraction(n, 3)"}
    assert "'Fraction(n, 3)'" in src  # the string data was not touched

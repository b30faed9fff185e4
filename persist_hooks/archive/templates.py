"""Representation templates: a Rep's source parsed once, with the positions of its names.

A :class:`Template` knows where, in a representer's expression (or fill
statements), each argument name and each imported name occurs, as found by
:mod:`ast` — never by searching the text.  The flat emitter joins the text
around those positions with the arguments' expressions and the imports'
aliases; the scoped emitter does not substitute anything and uses the template
as the body of a function.  Templates are cached by their source and names,
so a representer that returns the same expression for a million objects costs
one parse.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["SELF", "Template", "is_atomic_expr", "template"]

SELF = "self"
"""The name ``fill`` statements use for the object being completed."""

_BUILTIN_NAMES = frozenset(dir(builtins))

# Expression node types that need no parentheses when put in place of a name.
_ATOMIC_NODES = (
    ast.Name,
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.List,
    ast.Dict,
    ast.Set,
    ast.ListComp,
    ast.DictComp,
    ast.SetComp,
    ast.GeneratorExp,
)


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed representation source.

    ``pieces`` alternates text and placeholders: a ``str`` is literal text, an
    ``int`` ``i`` stands for the name ``names[i]``.  ``arg_uses`` counts how
    often each argument occurs; ``free`` lists the other global names the
    source reads (builtins such as ``set``), which inserted names must not
    shadow; ``atomic`` tells whether the whole expression can stand in place of
    a name without parentheses.

    Example:
        >>> t = template("Fraction(n, d)", ("n", "d"), ("Fraction",))
        >>> sorted(t.names), t.arg_uses, t.atomic
        (['Fraction', 'd', 'n'], {'n': 1, 'd': 1}, True)
        >>> t.substitute({"n": "1", "d": "3", "Fraction": "F"})
        'F(1, 3)'
    """

    source: str
    names: tuple[str, ...]
    pieces: tuple[str | int, ...]
    arg_uses: dict[str, int]
    free: frozenset[str]
    atomic: bool
    mode: str

    def substitute(self, replacement: dict[str, str]) -> str:
        """Join the pieces, putting ``replacement[name]`` where each name occurs.

        Names missing from ``replacement`` are kept as they are.

        Example:
            >>> template("[x, x]", ("x",), ()).substitute({"x": "_g1"})
            '[_g1, _g1]'
        """
        names = self.names
        pieces = self.pieces
        out: list[str] = []
        for i, piece in enumerate(pieces):
            if piece.__class__ is str:
                out.append(piece)
                continue
            name = names[piece]  # type: ignore[index]
            text = replacement.get(name, name)
            if text[:1].isdigit() and i + 1 < len(pieces):
                after = pieces[i + 1]
                if after.__class__ is str and after.lstrip().startswith("."):
                    text = f"({text})"  # `1.real` would not parse
            out.append(text)
        return "".join(out)


def is_atomic_expr(source: str) -> bool:
    """Tell whether ``source`` can replace a name without parentheses.

    Example:
        >>> is_atomic_expr("f(x)"), is_atomic_expr("-1"), is_atomic_expr("a + b")
        (True, False, False)
    """
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return False
    if isinstance(node, ast.Constant):
        return not (isinstance(node.value, (int, float, complex)) and source.lstrip().startswith("-"))
    if isinstance(node, ast.Tuple):
        return source.lstrip().startswith("(")
    return isinstance(node, _ATOMIC_NODES)


@lru_cache(maxsize=4096)
def template(
    source: str, args: tuple[str, ...], imports: tuple[str, ...], mode: str = "eval"
) -> Template:
    """Parse ``source`` (an expression, or statements with ``mode="exec"``) once.

    ``args`` are the argument names and ``imports`` the names bound by the
    Rep's imports; their occurrences become placeholders.  In ``exec`` mode
    (``fill``), :data:`SELF` is a placeholder as well.  Raises ``SyntaxError``
    with the offending source when it does not parse.

    Example:
        >>> t = template("self.extend(items)", ("items",), (), "exec")
        >>> t.substitute({"self": "_g0", "items": "[1, 2]"})
        '_g0.extend([1, 2])'
    """
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        raise SyntaxError(f"representation {source!r} is not valid Python: {exc.msg}") from None
    wanted = set(args) | set(imports)
    if mode == "exec":
        wanted.add(SELF)
    names: list[str] = []
    index: dict[str, int] = {}
    spots: list[tuple[int, int, int]] = []  # (start byte, end byte, name index)
    uses: dict[str, int] = {}
    free: set[str] = set()
    line_starts = _line_starts(source)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name):
            continue
        ident = node.id
        if ident in wanted:
            if ident not in index:
                index[ident] = len(names)
                names.append(ident)
            start = line_starts[node.lineno - 1] + node.col_offset
            end = line_starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[operator]
            spots.append((start, end, index[ident]))
            uses[ident] = uses.get(ident, 0) + 1
        elif isinstance(node.ctx, ast.Load):
            free.add(ident)
    spots.sort()
    data = source.encode("utf-8")
    pieces: list[str | int] = []
    pos = 0
    for start, end, i in spots:
        if start > pos:
            pieces.append(data[pos:start].decode("utf-8"))
        pieces.append(i)
        pos = end
    if pos < len(data):
        pieces.append(data[pos:].decode("utf-8"))
    atomic = mode == "eval" and is_atomic_expr(source)
    return Template(
        source=source,
        names=tuple(names),
        pieces=tuple(pieces),
        arg_uses={a: uses.get(a, 0) for a in args},
        free=frozenset(free),
        atomic=atomic,
        mode=mode,
    )


def _line_starts(source: str) -> list[int]:
    """Byte offsets at which each line of ``source`` starts (ast columns are UTF-8 bytes)."""
    starts = [0]
    total = 0
    for line in source.encode("utf-8").splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def shadows_builtin(name: str) -> bool:
    """Tell whether binding ``name`` at module level would shadow a builtin.

    Example:
        >>> shadows_builtin("set"), shadows_builtin("x")
        (True, False)
    """
    return name in _BUILTIN_NAMES

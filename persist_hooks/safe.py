"""Safe loading: interpret archive source without ``exec``, accepting only the emitter's language.

The source is parsed with :mod:`ast` and every statement is *interpreted* by this
module (nothing is compiled to a code object).  The accepted language is exactly
what :mod:`persist_hooks.archive` emits (see docs/format.md, "Safe loading"):

* ``from mod import name [as alias]`` for allow-listed ``mod.name``;
* ``name = <expr>``, ``del name, ...``, ``pass``, a docstring;
* ``def _fN(p, ...):`` whose body is ``from``-imports followed by ``return <expr>``
  or by fill statements (the scoped format), bound as an interpreted closure;
* fill statements: ``x.extend(..)`` / ``.update`` / ``.append`` / ``.add`` on
  containers, ``x.__dict__.update(..)``, ``x.__setstate__(..)``,
  ``object.__setattr__(x, 'name', v)``, ``x.attr = v``, ``x.reshape(-1)[:] = v``
  (numpy), ``d['key'] = v`` on a plain dict (``__init__.py`` metadata blocks);
* expressions: literals, ``-number``, tuple/list/set/dict displays, names,
  calls of allow-listed callables (by object identity), ``X.__new__(C, ...)``
  for allow-listed classes, non-dunder attribute reads on allow-listed objects
  (enum members, nested classes, ``timezone.utc``), ``_arrays['key']``,
  ``.reshape(..)``/``.copy()`` on arrays and ``array[()]``;
* the single-item tail ``import sys as _sys`` / ``[if globals().get("__spec__")
  is not None:] _sys.modules[__name__] = x`` (a no-op).

Anything else raises :class:`persist_hooks.errors.UnsafeArchiveError` naming the
file, the line and the construct, before any object is built or any module is
imported (the whole source is validated first).  Failures of allow-listed calls
on well-formed source raise :class:`persist_hooks.errors.FormatError`.  Size,
depth, step and element budgets bound memory and time.
"""

from __future__ import annotations

import ast
import builtins
import collections
import gc
import importlib
import inspect
import re
import types
import unicodedata
from collections.abc import Iterable
from typing import Any

from .errors import FormatError, UnsafeArchiveError

__all__ = [
    "BUILTIN_NAMES",
    "DENIED",
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "MAX_ITEMSIZE",
    "MAX_SOURCE_CHARS",
    "allow_list",
    "check",
    "execute",
]

MAX_SOURCE_CHARS = 256 * 2**20
"""Largest source accepted (characters)."""
MAX_DEPTH = 200
"""Deepest nesting of syntax nodes accepted (the emitter stays far below)."""
MAX_INT_BITS = 400_000
"""Largest integer literal accepted (bits)."""
MAX_ITEMSIZE = 2**20
"""Largest numpy dtype item size accepted (bytes)."""
MAX_ELEMENTS_BASE = 1_000_000
"""Element budget beyond ``4 * len(source)``: what calls and fills may copy or allocate."""
MAX_STEPS_BASE = 1_000_000
"""Interpreter step budget beyond ``64 *`` the number of syntax nodes."""

BUILTIN_NAMES: frozenset[str] = frozenset(
    {
        "float", "complex", "set", "frozenset", "tuple", "bytearray", "range", "slice", "dict",
        "object", "int", "str", "bytes", "bool", "list", "type", "Ellipsis", "NotImplemented",
    }
)  # fmt: skip
"""Builtin names the emitter uses bare (always resolvable, unless bound by the archive)."""

DENIED: frozenset[str] = frozenset(
    f"builtins.{n}"
    for n in (
        "eval", "exec", "compile", "getattr", "setattr", "delattr", "__import__", "open",
        "globals", "locals", "vars", "input", "breakpoint", "help", "exit", "quit",
        "__build_class__", "memoryview", "classmethod", "staticmethod", "property", "super",
        "iter", "next", "map", "filter", "sorted", "min", "max", "aiter", "anext",
    )
) | {"importlib.import_module", "importlib.__import__", "importlib.reload"}  # fmt: skip
"""Dotted names never allowed, whatever plugins or users declare."""

_NOT_CALLABLE = {"builtins.object", "builtins.Ellipsis", "builtins.NotImplemented"}
_FILL_METHODS = frozenset({"extend", "update", "append", "add"})
_ARRAY_METHODS = frozenset({"reshape", "copy"})
_FUNC_NAME = re.compile(r"_f\d+\Z")
_RESERVED = frozenset({"_arrays", "_sys"})
_HINT = "not in the safe allow-list; pass safe_callables=[...] to allow it"


def allow_list(safe_callables: Iterable[str] = ()) -> frozenset[str]:
    """The dotted names safe loading may import and call: plugins' declarations plus yours.

    Names in :data:`DENIED` are removed whoever declares them.

    Example:
        >>> "fractions.Fraction" in allow_list()
        True
        >>> "builtins.getattr" in allow_list(["builtins.getattr"])
        False
    """
    from . import plugins

    names = set(plugins.safe_callables())
    for name in safe_callables:
        if not isinstance(name, str):
            raise TypeError(f"safe_callables must be dotted names (str), not {name!r}")
        names.add(unicodedata.normalize("NFKC", name))
    names.update(f"builtins.{n}" for n in BUILTIN_NAMES)
    return frozenset(n for n in names if n not in DENIED)


def execute(
    source: str,
    namespace: dict[str, Any],
    *,
    filename: str = "<archive>",
    safe_callables: Iterable[str] = (),
) -> None:
    """Interpret archive ``source`` into ``namespace`` (in place, like ``exec``), safely.

    The whole source is validated before anything is imported or built.  Raises
    :class:`persist_hooks.errors.UnsafeArchiveError` (file, line, construct) for
    anything outside the accepted language, :class:`persist_hooks.errors.FormatError`
    when an allowed call fails.

    Example:
        >>> ns: dict = {}
        >>> execute("from fractions import Fraction\\nx = [Fraction(1, 3), -1.5]\\n", ns)
        >>> ns["x"]
        [Fraction(1, 3), -1.5]
        >>> execute("import os\\n", {}, filename="x.py")
        Traceback (most recent call last):
        ...
        persist_hooks.errors.UnsafeArchiveError: x.py line 1: import of 'os' is not allowed ...
    """
    tree, nodes = _parse(source, filename)
    allowed = allow_list(safe_callables)
    budget = 4 * len(source) + MAX_ELEMENTS_BASE
    steps = 64 * nodes + MAX_STEPS_BASE
    _Interpreter(filename, allowed, {}, checking=True, budget=budget, steps=steps).run(
        tree, set(namespace)
    )
    enabled = gc.isenabled()
    gc.disable()  # as for trusted loads: many containers built in a row
    try:
        _Interpreter(filename, allowed, namespace, checking=False, budget=budget, steps=steps).run(
            tree, set(namespace)
        )
    finally:
        if enabled:
            gc.enable()


def check(source: str, *, filename: str = "<archive>", safe_callables: Iterable[str] = ()) -> None:
    """Validate ``source`` against the safe language without importing or building anything.

    Raises :class:`persist_hooks.errors.UnsafeArchiveError` like :func:`execute`
    (checks that need the values, such as budgets, happen only in :func:`execute`).

    Example:
        >>> check("x = [1, 2]\\n")
        >>> check("x = ().__class__\\n")
        Traceback (most recent call last):
        ...
        persist_hooks.errors.UnsafeArchiveError: <archive> line 1: attribute '__class__' ...
    """
    tree, nodes = _parse(source, filename)
    allowed = allow_list(safe_callables)
    _Interpreter(
        filename, allowed, {}, checking=True, budget=4 * len(source) + MAX_ELEMENTS_BASE,
        steps=64 * nodes + MAX_STEPS_BASE,
    ).run(tree, {"_arrays"})


# ------------------------------------------------------------------------------ parsing


def _parse(source: str, filename: str) -> tuple[ast.Module, int]:
    if not isinstance(source, str):
        raise UnsafeArchiveError(f"{filename}: archive source must be str, not {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise UnsafeArchiveError(
            f"{filename}: source of {len(source)} characters is over the safe-loading limit "
            f"({MAX_SOURCE_CHARS})"
        )
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise UnsafeArchiveError(
            f"{filename} line {exc.lineno}: source that is not valid Python is not allowed "
            f"(syntax error: {exc.msg})"
        ) from None
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise UnsafeArchiveError(
            f"{filename} line {_most_nested_line(source)}: source that cannot be parsed safely "
            f"is not allowed ({type(exc).__name__}: nesting too deep or too large, resource limit)"
        ) from None
    # iterative depth and size check: the interpreter recurses, so bound it first
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            line = getattr(node, "lineno", "?")
            raise UnsafeArchiveError(
                f"{filename} line {line}: nesting deeper than {MAX_DEPTH} is not allowed "
                "(resource limit)"
            )
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1))
    return tree, count


# --------------------------------------------------------------------------- values


class _Sym:
    """Check mode: an allow-listed object known only by its dotted name."""

    __slots__ = ("callable", "dotted")

    def __init__(self, dotted: str, callable_: bool) -> None:
        self.dotted = dotted
        self.callable = callable_


class _Unknown:
    """Check mode: a value that exists only at run time."""

    __slots__ = ()


_UNKNOWN = _Unknown()


class _Closure:
    """A scoped-format function ``_fN``, interpreted (never a Python function)."""

    __slots__ = ("body", "imports", "name", "params", "ret")

    def __init__(
        self,
        name: str,
        params: list[str],
        imports: list[ast.ImportFrom],
        body: list[ast.stmt],
        ret: ast.expr | None,
    ) -> None:
        self.name = name
        self.params = params
        self.imports = imports
        self.body = body
        self.ret = ret

    def __repr__(self) -> str:
        return f"<safe archive function {self.name}>"


def _is_dunder(name: str) -> bool:
    name = unicodedata.normalize("NFKC", name)
    return name.startswith("__")


def _describe(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # pragma: no cover - unparse of a depth-checked tree
        text = type(node).__name__
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _dotted_of(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted_of(node.value)}.{node.attr}"
    return _describe(node)


class _Interpreter:
    """One pass over a module: ``checking`` validates with placeholders, else builds."""

    def __init__(
        self,
        filename: str,
        allowed: frozenset[str],
        namespace: dict[str, Any],
        *,
        checking: bool,
        budget: int,
        steps: int,
    ) -> None:
        self.filename = filename
        self.allowed = allowed
        self.prefixes = frozenset(
            ".".join(parts[:i]) for parts in (n.split(".") for n in allowed) for i in range(1, len(parts))
        )
        self.ns = namespace
        self.checking = checking
        self.budget = budget
        self.steps = steps
        self.line = 0
        # identity table of allow-listed objects: id -> (object, dotted name, callable)
        self.table: dict[int, tuple[Any, str, bool]] = {}
        self.builtin_objs: dict[str, Any] = {}
        for name in BUILTIN_NAMES:
            obj = getattr(builtins, name)
            self.builtin_objs[name] = obj
            self.table[id(obj)] = (obj, f"builtins.{name}", f"builtins.{name}" not in _NOT_CALLABLE)
        for dotted in allowed:
            mod, _, name = dotted.rpartition(".")
            if mod == "builtins" and name not in BUILTIN_NAMES and hasattr(builtins, name):
                obj = getattr(builtins, name)
                self.builtin_objs[name] = obj
                self.table[id(obj)] = (obj, dotted, True)
        self.np: Any = None

    # -- errors -------------------------------------------------------------------

    def refuse(self, node: ast.AST | None, what: str, why: str) -> UnsafeArchiveError:
        line = getattr(node, "lineno", None) or self.line
        return UnsafeArchiveError(f"{self.filename} line {line}: {what} is not allowed ({why})")

    def failed(self, node: ast.AST, exc: BaseException) -> FormatError:
        line = getattr(node, "lineno", None) or self.line
        return FormatError(
            f"{self.filename} line {line}: evaluating {_describe(node)!r} failed: "
            f"{type(exc).__name__}: {exc}"
        )

    def tick(self, node: ast.AST) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise self.refuse(node, "more work", "the interpreter's step budget is exhausted")

    def charge(self, node: ast.AST, units: int) -> None:
        self.budget -= units
        if self.budget < 0:
            raise self.refuse(
                node, f"{_describe(node)!r}",
                "it would build or copy more elements than the source holds (resource limit)",
            )

    # -- module ---------------------------------------------------------------------

    def run(self, tree: ast.Module, predefined: set[str]) -> None:
        body = tree.body
        tail = self._tail_start(body)
        if self.checking:
            for name in predefined:
                self.ns.setdefault(name, _UNKNOWN)
        for i, stmt in enumerate(body):
            self.line = stmt.lineno
            if i >= tail:
                continue  # the single-item tail: a no-op
            if isinstance(stmt, ast.FunctionDef):
                self.ns[stmt.name] = self.define(stmt)
                continue
            try:
                self.statement(stmt, None)
            except (UnsafeArchiveError, FormatError):
                raise
            except RecursionError:
                raise self.refuse(stmt, "this statement", "nesting too deep (resource limit)") from None
            except MemoryError:
                raise self.refuse(stmt, "this statement", "out of memory (resource limit)") from None

    def _tail_start(self, body: list[ast.stmt]) -> int:
        """Index of the single-item tail (``import sys as _sys`` ...), or ``len(body)``."""
        n = len(body)
        for k in (2,):
            if n < k:
                continue
            first, last = body[n - k], body[n - 1]
            if not _is_sys_import(first):
                continue
            if _is_modules_store(last) or _is_spec_if(last):
                return n - k
        return n

    # -- statements -----------------------------------------------------------------

    def statement(self, stmt: ast.stmt, scope: dict[str, Any] | None) -> None:
        self.tick(stmt)
        if isinstance(stmt, ast.Assign):
            self.assign(stmt, scope)
        elif isinstance(stmt, ast.Expr):
            value = stmt.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and scope is None:
                return  # a docstring
            if not isinstance(value, ast.Call):
                raise self.refuse(stmt, f"expression statement {_describe(stmt)!r}", "only calls")
            self.expr(value, scope)
        elif isinstance(stmt, ast.ImportFrom):
            self.import_from(stmt, scope)
        elif isinstance(stmt, ast.Delete) and scope is None:
            for target in stmt.targets:
                if not isinstance(target, ast.Name) or _is_dunder(target.id) or target.id in _RESERVED:
                    raise self.refuse(stmt, f"del of {_describe(target)!r}", "only archive names")
                if target.id not in self.ns:
                    raise self.refuse(stmt, f"del of {target.id!r}", "the archive did not bind it")
                del self.ns[target.id]
        elif isinstance(stmt, ast.Pass):
            return
        elif isinstance(stmt, ast.Import):
            raise self.refuse(stmt, f"import of {stmt.names[0].name!r}", _HINT)
        else:
            raise self.refuse(stmt, f"statement {type(stmt).__name__} ({_describe(stmt)!r})",
                              "outside the archive language")

    def assign(self, stmt: ast.Assign, scope: dict[str, Any] | None) -> None:
        if len(stmt.targets) != 1:
            raise self.refuse(stmt, "chained assignment", "outside the archive language")
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            name = target.id
            if _is_dunder(name) or name in _RESERVED:
                raise self.refuse(stmt, f"assignment to {name!r}", "reserved name")
            value = self.expr(stmt.value, scope)
            if isinstance(value, _Closure):
                raise self.refuse(stmt, f"assignment of function {value.name!r}", "functions are not values")
            (self.ns if scope is None else scope)[name] = value
            return
        if isinstance(target, ast.Attribute):
            self.assign_attribute(stmt, target, scope)
            return
        if isinstance(target, ast.Subscript):
            self.assign_subscript(stmt, target, scope)
            return
        raise self.refuse(stmt, f"assignment to {_describe(target)!r}", "only names")

    def assign_attribute(self, stmt: ast.Assign, target: ast.Attribute, scope: dict[str, Any] | None) -> None:
        if not isinstance(target.value, ast.Name) or _is_dunder(target.attr):
            raise self.refuse(stmt, f"assignment to {_describe(target)!r}", "only non-dunder attributes of names")
        obj = self.name(target.value, scope)
        value = self.expr(stmt.value, scope)
        if self.checking:
            return
        self.require_instance(stmt, obj, f"assignment to {_describe(target)!r}")
        try:
            setattr(obj, target.attr, value)
        except Exception as exc:
            raise self.failed(stmt, exc) from exc

    def assign_subscript(self, stmt: ast.Assign, target: ast.Subscript, scope: dict[str, Any] | None) -> None:
        # numpy object-array fill: ``x.reshape(-1)[:] = value``
        sl = target.slice
        tv = target.value
        if (
            isinstance(sl, ast.Slice) and sl.lower is None and sl.upper is None and sl.step is None
            and isinstance(tv, ast.Call) and isinstance(tv.func, ast.Attribute)
            and tv.func.attr == "reshape" and isinstance(tv.func.value, ast.Name)
            and len(tv.args) == 1 and not tv.keywords and _is_minus_one(tv.args[0])
        ):
            obj = self.name(tv.func.value, scope)
            value = self.expr(stmt.value, scope)
            if self.checking:
                return
            np = self.numpy()
            if type(obj) is not np.ndarray or type(value) is not np.ndarray:
                raise self.refuse(stmt, f"{_describe(target)!r} = ...", "only on numpy arrays")
            try:
                obj.reshape(-1)[:] = value
            except Exception as exc:
                raise self.failed(stmt, exc) from exc
            return
        # ``_info_dict['key'] = value`` (metadata blocks), ``self[key] = value`` (reduce's SETITEMS)
        if isinstance(tv, ast.Name) and not isinstance(sl, (ast.Slice, ast.Starred)):
            obj = self.name(tv, scope)
            key = self.expr(sl, scope)
            value = self.expr(stmt.value, scope)
            if self.checking:
                return
            if type(obj) not in (dict, list):
                self.require_instance(stmt, obj, f"assignment to {_describe(target)!r}")
            if type(key) is tuple:
                self.charge(stmt, self.cost(key, 1, False))
            try:
                obj[key] = value
            except Exception as exc:
                raise self.failed(stmt, exc) from exc
            return
        raise self.refuse(stmt, f"assignment to {_describe(target)!r}", "outside the archive language")

    def import_from(self, stmt: ast.ImportFrom, scope: dict[str, Any] | None) -> None:
        mod = stmt.module
        if stmt.level or mod is None:
            raise self.refuse(stmt, "relative import", _HINT)
        for alias in stmt.names:
            dotted = f"{mod}.{alias.name}"
            if alias.name == "*" or (dotted not in self.allowed and dotted not in self.prefixes):
                raise self.refuse(stmt, f"import of {dotted!r}", _HINT)
            bound = alias.asname or alias.name
            if _is_dunder(bound) or bound in _RESERVED:
                raise self.refuse(stmt, f"import as {bound!r}", "reserved name")
            value = self.resolve(stmt, mod, alias.name)
            (self.ns if scope is None else scope)[bound] = value

    def resolve(self, node: ast.AST, mod: str, name: str) -> Any:
        dotted = f"{mod}.{name}"
        callable_ = dotted in self.allowed
        if self.checking:
            return _Sym(dotted, callable_)
        try:
            module = importlib.import_module(mod)
            obj = getattr(module, name)
        except Exception as exc:
            raise self.failed(node, exc) from exc
        self.register(obj, dotted, callable_)
        return obj

    def register(self, obj: Any, dotted: str, callable_: bool) -> None:
        callable_ = callable_ and obj is not object and dotted not in _NOT_CALLABLE
        known = self.table.get(id(obj))
        if known is None or (callable_ and not known[2]):
            self.table[id(obj)] = (obj, dotted, callable_)

    # -- functions ------------------------------------------------------------------

    def define(self, fn: ast.FunctionDef) -> _Closure:
        a = fn.args
        if (
            not _FUNC_NAME.match(fn.name) or fn.decorator_list or fn.returns is not None
            or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.kw_defaults or a.posonlyargs
            or any(p.annotation is not None for p in a.args) or getattr(fn, "type_params", None)
        ):
            raise self.refuse(fn, f"function definition {fn.name!r}", "does not match the scoped template form")
        params = [p.arg for p in a.args]
        if len(set(params)) != len(params) or any(_is_dunder(p) or p in _RESERVED for p in params):
            raise self.refuse(fn, f"parameters of {fn.name!r}", "reserved or repeated names")
        body = list(fn.body)
        imports: list[ast.ImportFrom] = []
        while body:
            first = body[0]
            if not isinstance(first, ast.ImportFrom):
                break
            imports.append(first)
            body.pop(0)
        ret: ast.expr | None = None
        if len(body) == 1 and isinstance(body[0], ast.Return):
            if body[0].value is None:
                raise self.refuse(body[0], "bare return", "outside the archive language")
            ret = body[0].value
            body = []
        else:
            for stmt in body:
                if not isinstance(stmt, (ast.Expr, ast.Assign, ast.Pass)):
                    raise self.refuse(stmt, f"statement {type(stmt).__name__} in {fn.name!r}",
                                      "does not match the scoped template form")
        closure = _Closure(fn.name, params, imports, body, ret)
        if self.checking:  # validate the body once, with placeholders for the parameters
            self.invoke(fn, closure, [_UNKNOWN] * len(params))
        return closure

    def invoke(self, node: ast.AST, closure: _Closure, args: list[Any]) -> Any:
        if len(args) != len(closure.params):
            raise self.refuse(node, f"call of {closure.name!r} with {len(args)} arguments",
                              f"it takes {len(closure.params)}")
        scope: dict[str, Any] = dict(zip(closure.params, args, strict=True))
        for imp in closure.imports:
            self.import_from(imp, scope)
        for stmt in closure.body:
            self.statement(stmt, scope)
        if closure.ret is not None:
            return self.expr(closure.ret, scope)
        return None

    # -- expressions ----------------------------------------------------------------

    def name(self, node: ast.Name, scope: dict[str, Any] | None) -> Any:
        ident = node.id
        if _is_dunder(ident):
            raise self.refuse(node, f"name {ident!r}", "dunder names are not part of the archive language")
        if ident == "_arrays":
            raise self.refuse(node, "'_arrays' other than _arrays['key']", "outside the archive language")
        if scope is not None and ident in scope:
            return scope[ident]
        if ident in self.ns:
            return self.ns[ident]
        obj = self.builtin_objs.get(ident)
        if obj is not None:
            if self.checking:
                entry = self.table[id(obj)]
                return _Sym(entry[1], entry[2])
            return obj
        if hasattr(builtins, ident):
            raise self.refuse(node, f"name {ident!r}", _HINT)
        raise self.refuse(node, f"name {ident!r}", "it is not defined")

    def expr(self, node: ast.expr, scope: dict[str, Any] | None) -> Any:
        self.tick(node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                raise self.refuse(node, f"{_describe(node)!r}", "outside the archive language")
            return self.name(node, scope)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self.refuse(node, f"operator in {_describe(node)!r}", "only unary minus on numbers")
            value = self.expr(node.operand, scope)
            if self.checking:
                return _UNKNOWN
            if type(value) not in (int, float, complex):
                raise self.refuse(node, f"{_describe(node)!r}", "unary minus only on numbers")
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return self.display(node, scope)
        if isinstance(node, ast.Dict):
            return self.dict_display(node, scope)
        if isinstance(node, ast.Call):
            return self.call(node, scope)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, scope)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, scope)
        what = {
            ast.Lambda: "lambda", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
            ast.DictComp: "comprehension", ast.GeneratorExp: "generator expression",
            ast.JoinedStr: "f-string", ast.NamedExpr: "assignment expression (walrus)",
            ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
            ast.BinOp: "binary operator", ast.BoolOp: "boolean operator", ast.Compare: "comparison",
            ast.IfExp: "conditional expression", ast.Starred: "starred expression",
        }.get(type(node), type(node).__name__)  # fmt: skip
        raise self.refuse(node, f"{what} {_describe(node)!r}", "outside the archive language")

    def constant(self, node: ast.Constant) -> Any:
        value = node.value
        if type(value) is int and value.bit_length() > MAX_INT_BITS:
            raise self.refuse(node, f"integer literal of {value.bit_length()} bits",
                              f"over the limit of {MAX_INT_BITS} bits (resource limit)")
        if value is ... or value is None or type(value) in (int, float, complex, str, bytes, bool):
            return value
        raise self.refuse(node, f"constant {_describe(node)!r}", "outside the archive language")

    def display(self, node: ast.List | ast.Tuple | ast.Set, scope: dict[str, Any] | None) -> Any:
        if not isinstance(node.ctx if not isinstance(node, ast.Set) else ast.Load(), ast.Load):
            raise self.refuse(node, f"{_describe(node)!r}", "outside the archive language")
        items: list[Any] = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                value = self.expr(elt.value, scope)
                if self.checking:
                    continue
                if type(value) not in (list, tuple):
                    raise self.refuse(elt, f"starred {_describe(elt)!r}", "only lists and tuples")
                self.charge(elt, len(value))
                items.extend(value)
            else:
                items.append(self.expr(elt, scope))
        if self.checking:
            return _UNKNOWN
        if isinstance(node, ast.List):
            return items
        if isinstance(node, ast.Tuple):
            return tuple(items)
        self.charge(node, sum(self.cost(v, 0, False) for v in items if type(v) is tuple))
        try:
            return set(items)
        except Exception as exc:
            raise self.failed(node, exc) from exc

    def dict_display(self, node: ast.Dict, scope: dict[str, Any] | None) -> Any:
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:
                value = self.expr(v, scope)
                if self.checking:
                    continue
                if type(value) is not dict:
                    raise self.refuse(v, f"'**' of {_describe(v)!r}", "only dicts")
                self.charge(v, len(value))
                out.update(value)
                continue
            key = self.expr(k, scope)
            value = self.expr(v, scope)
            if self.checking:
                continue
            if type(key) is tuple:
                self.charge(k, self.cost(key, 0, False))
            try:
                out[key] = value
            except Exception as exc:
                raise self.failed(k, exc) from exc
        return _UNKNOWN if self.checking else out

    def attribute(self, node: ast.Attribute, scope: dict[str, Any] | None) -> Any:
        """A non-dunder attribute of an allow-listed object (enum member, nested class)."""
        if not isinstance(node.ctx, ast.Load) or _is_dunder(node.attr):
            raise self.refuse(node, f"attribute {node.attr!r}", "dunder attributes are not part of the archive language")
        base = self.expr(node.value, scope)
        if self.checking:
            if isinstance(base, _Sym):
                dotted = f"{base.dotted}.{node.attr}"
                return _Sym(dotted, dotted in self.allowed)
            if isinstance(base, _Unknown):
                return _UNKNOWN
            raise self.refuse(node, f"attribute {node.attr!r} of {_describe(node.value)!r}",
                              "only attributes of allow-listed classes")
        entry = self.table.get(id(base))
        if entry is None or entry[0] is not base:
            raise self.refuse(node, f"attribute {node.attr!r} of {_describe(node.value)!r}",
                              "only attributes of allow-listed classes")
        try:
            value = getattr(base, node.attr)
        except Exception as exc:
            raise self.failed(node, exc) from exc
        dotted = f"{entry[1]}.{node.attr}"
        if dotted in self.allowed or dotted in self.prefixes:
            self.register(value, dotted, dotted in self.allowed)
        elif isinstance(value, type) or inspect.isroutine(value) or isinstance(value, types.ModuleType):
            # a method or class reached by attribute could be called by a higher-order callable
            raise self.refuse(node, f"attribute {dotted!r}", _HINT)
        return value

    def subscript(self, node: ast.Subscript, scope: dict[str, Any] | None) -> Any:
        sl = node.slice
        if isinstance(node.value, ast.Name) and node.value.id == "_arrays":
            if not (isinstance(sl, ast.Constant) and isinstance(sl.value, str)):
                raise self.refuse(node, f"{_describe(node)!r}", "the array table takes a string key")
            if self.checking:
                return _UNKNOWN
            table = self.ns.get("_arrays")
            if table is None:
                raise self.refuse(node, f"{_describe(node)!r}", "no array table was given")
            try:
                return table[sl.value]
            except Exception as exc:
                raise self.failed(node, exc) from exc
        if isinstance(sl, ast.Tuple) and not sl.elts:  # ``array(...)[()]``: a numpy scalar
            base = self.expr(node.value, scope)
            if self.checking:
                return _UNKNOWN
            if type(base) is not self.numpy().ndarray:
                raise self.refuse(node, f"{_describe(node)!r}", "[()] only on numpy arrays")
            return base[()]
        if isinstance(sl, ast.Constant) and type(sl.value) is int and isinstance(node.value, ast.Call):
            base = self.expr(node.value, scope)
            if self.checking:
                return _UNKNOWN
            if type(base) is not tuple:
                raise self.refuse(node, f"{_describe(node)!r}", "indexing only of tuples returned by calls")
            try:
                return base[sl.value]
            except Exception as exc:
                raise self.failed(node, exc) from exc
        raise self.refuse(node, f"subscript {_describe(node)!r}", "only _arrays['key'] and array[()]")

    # -- calls ----------------------------------------------------------------------

    def call(self, node: ast.Call, scope: dict[str, Any] | None) -> Any:
        func = node.func
        if _is_float_from_bits(node):
            # ``__import__('struct').unpack('<d', b'<8 bytes>')``: how the emitter writes a
            # NaN with a payload (float_text); exactly this shape, nothing else of __import__
            if self.checking:
                return _UNKNOWN
            import struct

            bits = node.args[1]
            assert isinstance(bits, ast.Constant) and isinstance(bits.value, bytes)
            return struct.unpack("<d", bits.value)
        if isinstance(func, ast.Attribute):
            attr = func.attr
            if attr == "__new__":
                return self.call_new(node, func, scope)
            if attr == "__setattr__":
                return self.call_setattr(node, func, scope)
            if attr == "update" and isinstance(func.value, ast.Attribute) and func.value.attr == "__dict__":
                return self.call_dict_update(node, func.value, scope)
            if attr == "__setstate__" or attr in _FILL_METHODS:
                return self.call_fill(node, func, scope)
            if attr in _ARRAY_METHODS:
                return self.call_array_method(node, func, scope)
            if _is_dunder(attr):
                raise self.refuse(node, f"call of {_dotted_of(func)!r}", "dunder methods are not part of the archive language")
        elif not isinstance(func, ast.Name):
            raise self.refuse(node, f"call of {_describe(func)!r}", "only calls of allow-listed names")
        callee = self.expr(func, scope)
        if isinstance(callee, _Closure):
            if scope is not None:
                raise self.refuse(node, f"call of {callee.name!r} inside a function", "outside the archive language")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise self.refuse(node, f"call of {callee.name!r}", "archive functions take positional arguments")
            args = [self.expr(a, scope) for a in node.args]
            if self.checking:
                if len(args) != len(callee.params):
                    raise self.refuse(node, f"call of {callee.name!r} with {len(args)} arguments",
                                      f"it takes {len(callee.params)}")
                return _UNKNOWN
            return self.invoke(node, callee, args)
        if self.checking:
            if isinstance(callee, _Sym):
                if not callee.callable:
                    raise self.refuse(node, f"call of {callee.dotted!r}", _HINT)
                if callee.dotted == "builtins.type":
                    self.check_type_call(node)
            elif not isinstance(callee, _Unknown) or scope is None:
                raise self.refuse(node, f"call of {_dotted_of(func)!r}", _HINT)
            self.arguments(node, scope, star=False)
            return _UNKNOWN
        entry = self.table.get(id(callee))
        if entry is None or entry[0] is not callee or not entry[2]:
            raise self.refuse(node, f"call of {_dotted_of(func)!r}", _HINT)
        dotted = entry[1]
        if callee is type:
            self.check_type_call(node)
        elif callee is object:
            raise self.refuse(node, "call of 'object'", "only object.__new__ and object.__setattr__")
        args, kwargs = self.arguments(node, scope, star=False)
        self.guard_call(node, dotted, args, kwargs)
        try:
            return callee(*args, **kwargs)
        except Exception as exc:
            raise self.failed(node, exc) from exc

    def check_type_call(self, node: ast.Call) -> None:
        ok = (
            len(node.args) == 1 and not node.keywords
            and (
                (isinstance(node.args[0], ast.Constant) and node.args[0].value in (None, ...))
                or (isinstance(node.args[0], ast.Name) and node.args[0].id in ("NotImplemented", "Ellipsis"))
            )
        )
        if not ok:
            raise self.refuse(node, f"call {_describe(node)!r}",
                              "type() only as type(None), type(...) or type(NotImplemented)")

    def arguments(self, node: ast.Call, scope: dict[str, Any] | None, *, star: bool) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                if not star:
                    raise self.refuse(a, f"'*' argument {_describe(a)!r}", "only in X.__new__(X, *args, **kwargs)")
                value = self.expr(a.value, scope)
                if self.checking:
                    continue
                if type(value) not in (tuple, list):
                    raise self.refuse(a, f"'*' argument {_describe(a)!r}", "only tuples and lists")
                args.extend(value)
            else:
                args.append(self.expr(a, scope))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            value = self.expr(kw.value, scope)
            if kw.arg is None:
                if self.checking:
                    continue
                if type(value) is not dict or not all(type(k) is str for k in value):
                    raise self.refuse(kw.value, f"'**' argument {_describe(kw.value)!r}", "only dicts with str keys")
                if any(_is_dunder(k) for k in value):
                    raise self.refuse(kw.value, f"'**' argument {_describe(kw.value)!r}", "dunder keyword names")
                kwargs.update(value)
            else:
                if _is_dunder(kw.arg):
                    raise self.refuse(kw, f"keyword {kw.arg!r}", "dunder keyword names")
                kwargs[kw.arg] = value
        return args, kwargs

    def guard_call(self, node: ast.Call, dotted: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        """Resource checks before calling an allow-listed callable."""
        is_np = dotted.startswith("numpy.")
        units = 0
        for v in [*args, *kwargs.values()]:
            units += self.cost(v, 0, is_np)
        if dotted in ("builtins.bytes", "builtins.bytearray") and any(not isinstance(a, (bytes, str)) for a in args):
            raise self.refuse(node, f"call {_describe(node)!r}", "bytes/bytearray only from bytes")
        if is_np:
            np = self.numpy()
            itemsize = 1
            candidates = [kwargs.get("dtype")]
            if dotted == "numpy.dtype" and args:
                candidates.append(args[0])
            elif len(args) > 1 and dotted in ("numpy.array", "numpy.frombuffer", "numpy.empty", "numpy.fromiter"):
                candidates.append(args[1])
            for spec in candidates:
                if spec is None:
                    continue
                try:
                    size = np.dtype(spec).itemsize
                except Exception:
                    continue
                if size > MAX_ITEMSIZE:
                    raise self.refuse(node, f"dtype of item size {size}", f"over {MAX_ITEMSIZE} bytes (resource limit)")
                itemsize = max(itemsize, size)
            if dotted == "numpy.empty" and args:
                units += _shape_size(args[0])
            if dotted == "numpy.fromiter":
                count = kwargs.get("count", args[2] if len(args) > 2 else 0)
                units += count if type(count) is int and count > 0 else 0
            if dotted == "numpy.void" and args and type(args[0]) is int:
                units += max(args[0], 0) // 16
            units *= max(1, itemsize // 16)
        self.charge(node, units)

    def cost(self, value: Any, depth: int, deep_ranges: bool) -> int:
        """Elements a call may touch in ``value`` (paths through shared lists/tuples counted)."""
        memo: dict[int, int] = {}
        limit = max(self.budget, 0) + 1

        def walk(v: Any, d: int) -> int:
            t = type(v)
            if t is range:
                return len(v) if (d == 0 or deep_ranges) else 1
            if t in (str, bytes, bytearray):
                return 1 + len(v) // 8
            if t not in (list, tuple, dict, set, frozenset, collections.deque):
                if deep_ranges and self.np is not None and t is self.np.ndarray:
                    return 1 + int(v.size)
                return 1
            key = id(v)
            found = memo.get(key)
            if found is not None:
                return found
            memo[key] = 1  # a cycle counts once
            total = 1
            if t is dict:
                total += len(v)
                items: Iterable[Any] = (k for k in v if type(k) is tuple)
            else:
                items = v
            for x in items:
                if d + 1 > MAX_DEPTH * 4:
                    return limit
                total += walk(x, d + 1)
                if total > limit:
                    break
            memo[key] = total
            return total

        try:
            return walk(value, depth)
        except RecursionError:
            return limit

    def numpy(self) -> Any:
        if self.np is None:
            import numpy

            self.np = numpy
        return self.np

    def require_instance(self, node: ast.AST, obj: Any, what: str) -> None:
        """``obj`` must be an instance of an allow-listed class (never a class, module, function)."""
        entry = self.table.get(id(type(obj)))
        if isinstance(obj, type) or entry is None or entry[0] is not type(obj) or isinstance(obj, _Closure):
            raise self.refuse(node, what, f"only on instances of allow-listed classes, not {type(obj).__name__}")

    def call_new(self, node: ast.Call, func: ast.Attribute, scope: dict[str, Any] | None) -> Any:
        owner = self.expr(func.value, scope)
        if not node.args or isinstance(node.args[0], ast.Starred):
            raise self.refuse(node, f"call {_describe(node)!r}", "X.__new__ needs the class first")
        args, kwargs = self.arguments(node, scope, star=True)
        if self.checking:
            if isinstance(owner, _Sym) and owner.dotted == "builtins.type":
                raise self.refuse(node, "type.__new__", "creating classes is outside the archive language")
            if not isinstance(owner, (_Sym, _Unknown)):
                raise self.refuse(node, f"call of {_dotted_of(func)!r}", "only on allow-listed classes")
            return _UNKNOWN
        cls = args[0]
        for c, what in ((owner, _dotted_of(func.value)), (cls, _describe(node.args[0]))):
            entry = self.table.get(id(c))
            if not isinstance(c, type) or entry is None or entry[0] is not c:
                raise self.refuse(node, f"{what}.__new__", _HINT)
            if issubclass(c, type):
                raise self.refuse(node, f"{what}.__new__", "creating classes is outside the archive language")
        if not issubclass(cls, owner):
            raise self.refuse(node, f"call {_describe(node)!r}", "the class must be a subclass of the owner")
        self.guard_call(node, "builtins.object.__new__", args[1:], kwargs)
        try:
            return owner.__new__(cls, *args[1:], **kwargs)
        except Exception as exc:
            raise self.failed(node, exc) from exc

    def call_setattr(self, node: ast.Call, func: ast.Attribute, scope: dict[str, Any] | None) -> Any:
        if not (isinstance(func.value, ast.Name) and func.value.id == "object"):
            raise self.refuse(node, f"call of {_dotted_of(func)!r}", "only object.__setattr__(x, 'name', value)")
        owner = self.name(func.value, scope)
        if (
            len(node.args) != 3 or node.keywords or not isinstance(node.args[1], ast.Constant)
            or type(node.args[1].value) is not str or _is_dunder(node.args[1].value)
        ):
            raise self.refuse(node, f"call {_describe(node)!r}", "only object.__setattr__(x, 'name', value) with a non-dunder name")
        target = self.expr(node.args[0], scope)
        value = self.expr(node.args[2], scope)
        if self.checking:
            if not (isinstance(owner, _Sym) and owner.dotted == "builtins.object"):
                raise self.refuse(node, f"call {_describe(node)!r}", "'object' is rebound")
            return _UNKNOWN
        if owner is not object:
            raise self.refuse(node, f"call {_describe(node)!r}", "'object' is rebound")
        self.require_instance(node, target, f"object.__setattr__ on {_describe(node.args[0])!r}")
        try:
            object.__setattr__(target, node.args[1].value, value)
        except Exception as exc:
            raise self.failed(node, exc) from exc
        return None

    def call_dict_update(self, node: ast.Call, dict_attr: ast.Attribute, scope: dict[str, Any] | None) -> Any:
        if not isinstance(dict_attr.value, ast.Name) or len(node.args) != 1 or node.keywords:
            raise self.refuse(node, f"call {_describe(node)!r}", "only x.__dict__.update(state)")
        obj = self.name(dict_attr.value, scope)
        state = self.expr(node.args[0], scope)
        if self.checking:
            return _UNKNOWN
        self.require_instance(node, obj, f"{_describe(dict_attr)}.update")
        if type(state) is not dict or not all(type(k) is str and not _is_dunder(k) for k in state):
            raise self.refuse(node, f"call {_describe(node)!r}", "the state must be a dict with str, non-dunder keys")
        d = getattr(obj, "__dict__", None)
        if type(d) is not dict:
            raise self.refuse(node, f"call {_describe(node)!r}", "the object has no instance dict")
        self.charge(node, len(state))
        d.update(state)
        return None

    def call_fill(self, node: ast.Call, func: ast.Attribute, scope: dict[str, Any] | None) -> Any:
        if not isinstance(func.value, ast.Name) or len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
            raise self.refuse(node, f"call {_describe(node)!r}", "only name.method(argument) fill statements")
        obj = self.name(func.value, scope)
        arg = self.expr(node.args[0], scope)
        if self.checking:
            return _UNKNOWN
        if func.attr == "__setstate__" or not isinstance(obj, (list, dict, set, collections.deque)):
            self.require_instance(node, obj, f"call of {_dotted_of(func)!r}")
        self.charge(node, self.cost(arg, 0, False))
        try:
            method = getattr(obj, func.attr)
            method(arg)
        except Exception as exc:
            raise self.failed(node, exc) from exc
        return None

    def call_array_method(self, node: ast.Call, func: ast.Attribute, scope: dict[str, Any] | None) -> Any:
        obj = self.expr(func.value, scope)
        args, kwargs = self.arguments(node, scope, star=False)
        if self.checking:
            return _UNKNOWN
        np = self.numpy()
        if type(obj) is not np.ndarray or kwargs:
            raise self.refuse(node, f"call of {_dotted_of(func)!r}", "only .reshape(shape) and .copy() of numpy arrays")
        if func.attr == "copy":
            if args:
                raise self.refuse(node, f"call {_describe(node)!r}", ".copy() takes no arguments")
            self.charge(node, int(obj.nbytes) // 16)
            return obj.copy()
        if not all(type(a) is int or (type(a) is tuple and all(type(x) is int for x in a)) for a in args):
            raise self.refuse(node, f"call {_describe(node)!r}", ".reshape takes integers")
        try:
            return obj.reshape(*args)
        except Exception as exc:
            raise self.failed(node, exc) from exc


def _most_nested_line(source: str) -> int:
    """The line with the most nesting characters: where a parser overflow most likely comes from."""
    best, best_line = -1, 1
    for number, line in enumerate(source.splitlines(), 1):
        score = sum(line.count(c) for c in "([{-+~")
        if score > best:
            best, best_line = score, number
    return best_line


def _shape_size(shape: Any) -> int:
    if type(shape) is int:
        return max(shape, 0)
    if type(shape) is tuple and all(type(x) is int for x in shape):
        total = 1
        for x in shape:
            total *= max(x, 0)
            if total > 1 << 62:
                break
        return total
    return 0


def _is_float_from_bits(node: ast.Call) -> bool:
    """Whether ``node`` is ``__import__('struct').unpack('<d', b'<8 bytes>')``."""
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "unpack"
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "__import__"
        and len(func.value.args) == 1
        and not func.value.keywords
        and isinstance(func.value.args[0], ast.Constant)
        and func.value.args[0].value == "struct"
        and len(node.args) == 2
        and not node.keywords
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "<d"
        and isinstance(node.args[1], ast.Constant)
        and type(node.args[1].value) is bytes
        and len(node.args[1].value) == 8
    )


def _is_minus_one(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant) and node.operand.value == 1
        and type(node.operand.value) is int
    )


def _is_sys_import(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Import) and len(stmt.names) == 1
        and stmt.names[0].name == "sys" and stmt.names[0].asname == "_sys"
    )


def _is_modules_store(stmt: ast.stmt) -> bool:
    """``_sys.modules[__name__] = <name>``."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
        return False
    t = stmt.targets[0]
    return (
        isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute)
        and t.value.attr == "modules" and isinstance(t.value.value, ast.Name)
        and t.value.value.id == "_sys" and isinstance(t.slice, ast.Name)
        and t.slice.id == "__name__" and isinstance(stmt.value, ast.Name)
    )


_SPEC_TEST = ast.dump(ast.parse('globals().get("__spec__") is not None', mode="eval").body)


def _is_spec_if(stmt: ast.stmt) -> bool:
    """``if globals().get("__spec__") is not None: _sys.modules[__name__] = <name>``."""
    return (
        isinstance(stmt, ast.If) and not stmt.orelse and len(stmt.body) == 1
        and ast.dump(stmt.test) == _SPEC_TEST and _is_modules_store(stmt.body[0])
    )


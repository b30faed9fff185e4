"""Stable digests of what a memoised result depends on: call keys, function code, identity.

Every digest here is the same in every process and every Python run (no
``hash()``, no ``id()``, no ``PYTHONHASHSEED``): SHA-256 over a canonical,
type-tagged encoding.

* :func:`key_digest` encodes a key (usually the tuple of ``(name, value)``
  pairs of a call's bound arguments).  Built-in scalars, ``str``/``bytes``,
  tuples, lists, dicts and sets (order-free for dicts and sets) and numpy arrays
  and scalars are encoded directly — arrays by dtype, shape and the raw buffer,
  fed to :mod:`hashlib` without a copy when C-contiguous.  Anything else is
  archived with :class:`persist_hooks.Archive` (flat, deterministic source, its
  arrays hashed by content) and that source is hashed, so any archivable object
  can be part of a key.
* :func:`code_digest` hashes a function's *compiled meaning*: its source's AST
  with decorators and docstrings removed (comments are not in the AST), line
  numbers left out, constants and referenced names kept.  Without source, the
  code object (bytecode, constants, names) is hashed instead.
* :func:`identity_digest` distinguishes same-named functions: module, qualified
  name, the script file for ``__main__`` and, for closures, the contents of the
  closure cells.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import struct
import textwrap
import types
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["code_digest", "identity_digest", "key_digest", "keys_equal"]

_MAX_DEPTH = 200


class _Fallback(Exception):
    """The fast encoder met something it does not encode itself (a cycle, deep nesting)."""


class _Encoder:
    """Feeds a canonical, type-tagged encoding of an object into a SHA-256 hash."""

    __slots__ = ("_active", "_buf", "_hash")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._active: set[int] = set()

    def digest(self) -> bytes:
        self._hash.update(self._buf)
        self._buf.clear()
        return self._hash.digest()

    def _raw(self, data: Any) -> None:
        """Feed a large buffer straight to the hash (no copy into the byte buffer)."""
        self._hash.update(self._buf)
        self._buf.clear()
        self._hash.update(data)

    def feed(self, obj: Any, depth: int = 0) -> None:
        buf = self._buf
        t = type(obj)
        if obj is None:
            buf += b"N"
        elif t is bool:
            buf += b"T" if obj else b"F"
        elif t is int:
            buf += b"i%d;" % obj
        elif t is float:
            buf += b"f" + struct.pack("<d", obj)
        elif t is str:
            data = obj.encode("utf-8", "surrogatepass")
            buf += b"s%d:" % len(data)
            buf += data
        elif t is bytes or t is bytearray:
            buf += (b"b%d:" if t is bytes else b"B%d:") % len(obj)
            if len(obj) > 4096:
                self._raw(obj)
            else:
                buf += obj
        elif t is tuple or t is list:
            if depth > _MAX_DEPTH:
                raise _Fallback
            self._enter(obj)
            buf += b"(%d:" % len(obj) if t is tuple else b"[%d:" % len(obj)
            for item in obj:
                self.feed(item, depth + 1)
            self._active.discard(id(obj))
        elif t is dict:
            if depth > _MAX_DEPTH:
                raise _Fallback
            self._enter(obj)
            pairs = sorted(self._sub((k, v), depth) for k, v in obj.items())
            buf += b"{%d:" % len(pairs)
            buf += b"".join(pairs)
            self._active.discard(id(obj))
        elif t is set or t is frozenset:
            if depth > _MAX_DEPTH:
                raise _Fallback
            self._enter(obj)
            items = sorted(self._sub(item, depth) for item in obj)
            buf += (b"S%d:" if t is set else b"Z%d:") % len(items)
            buf += b"".join(items)
            self._active.discard(id(obj))
        elif t is complex:
            buf += b"c" + struct.pack("<dd", obj.real, obj.imag)
        elif isinstance(obj, np.ndarray):
            self._array(obj, depth)
        elif isinstance(obj, np.generic):
            buf += b"g" + _dtype_tag(obj.dtype)
            if obj.dtype.hasobject:
                self.feed(obj.item(), depth + 1)
            else:
                buf += obj.tobytes()
        else:
            self._archived(obj)

    def _enter(self, obj: Any) -> None:
        key = id(obj)
        if key in self._active:
            raise _Fallback  # a reference cycle: the Archive encodes those
        self._active.add(key)

    def _sub(self, obj: Any, depth: int) -> bytes:
        sub = _Encoder()
        sub._active = self._active
        sub.feed(obj, depth + 1)
        return sub.digest()

    def _array(self, arr: np.ndarray[Any, Any], depth: int) -> None:
        buf = self._buf
        buf += b"a" + _dtype_tag(arr.dtype) + b"%r;" % (arr.shape,)
        if arr.dtype.hasobject:
            self.feed(arr.ravel().tolist(), depth + 1)
            return
        if arr.dtype.fields is not None or not arr.dtype.isnative or not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        if arr.size:
            self._raw(arr.reshape(-1).view(np.uint8).data)

    def _archived(self, obj: Any) -> None:
        """Encode any other object by its flat archive source (arrays by content)."""
        from .archive import Archive

        archive = Archive(scoped=False, array_threshold=0)
        archive.insert(k=obj)
        source = str(archive).encode("utf-8", "surrogatepass")
        t = type(obj)
        head = f"{t.__module__}.{t.__qualname__}".encode("utf-8", "surrogatepass")
        self._buf += b"o%d:%s%d:" % (len(head), head, len(source))
        self._buf += source
        for name in sorted(archive.data):
            self._buf += name.encode()
            self._array(np.asarray(archive.data[name]), 0)


def _dtype_tag(dtype: np.dtype[Any]) -> bytes:
    return repr(np.lib.format.dtype_to_descr(dtype)).encode() + b";"


def key_digest(key: Any) -> str:
    """The SHA-256 hex digest of ``key``'s canonical encoding (stable across processes).

    Raises ``TypeError`` (a :class:`persist_hooks.UnrepresentableError`) when
    ``key`` holds something neither encodable nor archivable.

    Example:
        >>> key_digest((("x", 1),)) == key_digest((("x", 1),))
        True
        >>> key_digest({"a": 1, "b": 2}) == key_digest({"b": 2, "a": 1})
        True
        >>> key_digest(1) == key_digest(1.0)
        False
    """
    encoder = _Encoder()
    try:
        encoder.feed(key)
    except (_Fallback, RecursionError):
        encoder = _Encoder()
        encoder._archived(key)
    return encoder.digest().hex()


def keys_equal(a: Any, b: Any) -> bool:
    """Whether two keys are equal (arrays compared by dtype, shape and content).

    Used with ``storekey=True`` to detect hash collisions; never raises.

    Example:
        >>> keys_equal((("x", np.arange(3)),), (("x", np.arange(3)),))
        True
        >>> keys_equal((("x", np.arange(3)),), (("x", np.arange(4)),))
        False
    """
    try:
        return _equal(a, b, 0)
    except Exception:
        return False


def _equal(a: Any, b: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return key_digest(a) == key_digest(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k], depth + 1) for k in a)
    result = a == b
    if isinstance(result, bool):
        return result
    return key_digest(a) == key_digest(b)


# ---------------------------------------------------------------- function code


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                del body[0]
                if not body:
                    body.append(ast.Pass())


def _source_tree(func: Callable[..., Any]) -> ast.AST | None:
    """The AST of ``func``'s own definition (decorators removed), or ``None``."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    name = getattr(func, "__name__", "")
    if name == "<lambda>":
        lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
        return lambdas[0] if len(lambdas) == 1 else None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            node.decorator_list = []
            _strip_docstrings(node)
            return node
    return None


def _code_parts(code: types.CodeType) -> list[Any]:
    consts = [_code_parts(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return [code.co_code.hex(), consts, code.co_names, code.co_varnames, code.co_freevars]


def code_digest(func: Callable[..., Any]) -> str:
    """Digest of ``func``'s compiled meaning: unchanged by comment and docstring edits.

    Example:
        >>> def g(x):
        ...     return x + 1  # a comment
        >>> def h(x):
        ...     return x + 2
        >>> code_digest(g) == code_digest(g), code_digest(g) == code_digest(h)
        (True, False)
    """
    tree = _source_tree(func)
    if tree is not None:
        if isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
            tree.name = ""  # the name is the DataSet's business, not the version's
        text = "ast:" + ast.dump(tree, annotate_fields=False, include_attributes=False)
    else:
        code = getattr(func, "__code__", None)
        if not isinstance(code, types.CodeType):
            text = "repr:" + repr(func)
        else:
            text = "code:" + repr(_code_parts(code))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def identity_digest(func: Callable[..., Any]) -> str:
    """Digest telling apart functions that share a name: module, qualname, closure.

    For ``__main__`` the script's absolute path is included; for closures, the
    contents of the closure cells (functions by module and qualified name).

    Example:
        >>> def make(n):
        ...     def inner(x):
        ...         return x + n
        ...     return inner
        >>> identity_digest(make(1)) == identity_digest(make(2))
        False
    """
    module = getattr(func, "__module__", None) or "?"
    parts: list[Any] = [module, getattr(func, "__qualname__", getattr(func, "__name__", "?"))]
    if module == "__main__":
        code = getattr(func, "__code__", None)
        filename = code.co_filename if isinstance(code, types.CodeType) else ""
        if filename and not filename.startswith("<"):
            filename = os.path.abspath(filename)
        parts.append(filename)
    closure = getattr(func, "__closure__", None) or ()
    cells: list[Any] = []
    for cell in closure:
        try:
            value = cell.cell_contents
        except ValueError:
            cells.append(("<empty>",))
            continue
        cells.append(_cell_value(value))
    parts.append(cells)
    return key_digest(parts)


def _cell_value(value: Any) -> Any:
    """What of a closure cell's value identifies the closure (functions by name)."""
    if callable(value) and hasattr(value, "__qualname__") and not isinstance(value, type):
        return ("<function>", getattr(value, "__module__", "?"), value.__qualname__)
    if isinstance(value, type):
        return ("<class>", value.__module__, value.__qualname__)
    if isinstance(value, types.ModuleType):
        return ("<module>", value.__name__)
    try:
        return ("<value>", key_digest(value))
    except Exception as exc:
        raise TypeError(
            f"cannot tell this closure apart from others: its closure cell holds a "
            f"{type(value).__name__} that cannot be hashed ({exc}); pass funcname= to "
            "memoize to name its cache yourself"
        ) from None

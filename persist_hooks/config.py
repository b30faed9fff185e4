"""Which storage backend writes, with which options: arguments, environment, ``pyproject.toml``.

Precedence, first match wins:

1. the ``backend=`` argument;
2. the environment variable ``PERSIST_HOOKS_BACKEND`` (ignored when empty);
3. ``backend = "..."`` in the ``[tool.persist_hooks]`` table of the nearest
   ``pyproject.toml`` at or above the working directory *that has such a
   table* (files without it are skipped);
4. ``"npy"``.

Options of the chosen backend come from the subtable named after it
(``[tool.persist_hooks.hdf5]``), wherever the backend name came from, updated
by the ``options=`` argument.  ``durable = true`` in the table (or
``PERSIST_HOOKS_DURABLE=1``) makes writes fsync (:func:`durable_default`).

Configuration only chooses how to *write*: what reads an item is recorded in
the item's header.

Example:
    >>> resolve_backend("npy", {})
    ('npy', {})
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import FormatError

if TYPE_CHECKING:  # importing backends costs numpy; configuration is read without it
    from .backends.base import Backend

__all__ = [
    "BACKEND_ENV",
    "DEFAULT_BACKEND",
    "DURABLE_ENV",
    "clear_cache",
    "durable_default",
    "get_backend",
    "project_config",
    "resolve_backend",
]

BACKEND_ENV = "PERSIST_HOOKS_BACKEND"
DURABLE_ENV = "PERSIST_HOOKS_DURABLE"
DEFAULT_BACKEND = "npy"
_FALSE = frozenset({"", "0", "false", "no", "off"})

_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[int, int], dict[str, Any] | None]] = {}


def clear_cache() -> None:
    """Forget every parsed ``pyproject.toml`` (they are re-read when changed anyway).

    Example:
        >>> clear_cache()
    """
    with _lock:
        _cache.clear()


def _tool_table(path: Path) -> dict[str, Any] | None:
    """The ``[tool.persist_hooks]`` table of one file (cached by mtime and size), or ``None``."""
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    with _lock:
        hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get("persist_hooks") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise FormatError(f"{path}: tool.persist_hooks must be a table, not {type(table).__name__}")
    with _lock:
        _cache[path] = (stamp, table)
    return table


def project_config(cwd: Path | None = None) -> tuple[Path | None, dict[str, Any]]:
    """The nearest ``pyproject.toml`` at or above ``cwd`` with a ``[tool.persist_hooks]`` table, and that table.

    Returns ``(None, {})`` when there is none.  A malformed file on the way
    raises :class:`persist_hooks.FormatError` naming it.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "pyproject.toml").write_text('[tool.persist_hooks]\\nbackend = "hdf5"\\n')
        >>> (d / "sub").mkdir()
        >>> path, table = project_config(d / "sub")
        >>> path == d / "pyproject.toml", table
        (True, {'backend': 'hdf5'})
    """
    start = Path.cwd() if cwd is None else Path(cwd)
    start = start.absolute()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        try:
            table = _tool_table(candidate)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        if table is not None:
            return candidate, dict(table)
    return None, {}


def resolve_backend(
    backend: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return the name and options of the backend that should write (see the module docstring).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "pyproject.toml").write_text(
        ...     '[tool.persist_hooks]\\nbackend = "hdf5"\\n[tool.persist_hooks.hdf5]\\ncompression = "gzip"\\n')
        >>> resolve_backend(cwd=d) if not os.environ.get("PERSIST_HOOKS_BACKEND") else ('hdf5', {'compression': 'gzip'})
        ('hdf5', {'compression': 'gzip'})
        >>> resolve_backend("hdf5", {"compression": None}, cwd=d)
        ('hdf5', {'compression': None})
    """
    path, table = project_config(cwd)
    name: object = backend
    source = "the backend argument"
    if name is None:
        name = os.environ.get(BACKEND_ENV) or None
        source = f"environment variable {BACKEND_ENV}"
    if name is None:
        name = table.get("backend")
        source = f"{path}: tool.persist_hooks.backend"
        if name is not None and (not isinstance(name, str) or not name):
            raise FormatError(f"{source} must be a non-empty string, not {name!r}")
    if name is None:
        name = DEFAULT_BACKEND
    if not isinstance(name, str) or not name:
        raise TypeError(f"{source} must be a non-empty str naming a backend, not {name!r}")
    merged: dict[str, Any] = {}
    sub = table.get(name)
    if sub is not None:
        if not isinstance(sub, dict):
            raise FormatError(
                f"{path}: tool.persist_hooks.{name} must be a table of backend options, not {sub!r}"
            )
        merged.update(sub)
    if options:
        merged.update(options)
    return name, merged


def get_backend(name: str, /, **options: Any) -> Backend:
    """Instantiate the installed backend ``name`` with ``options`` (no configuration involved).

    Readers call it with the name and options recorded in an item's header;
    writers with what :func:`resolve_backend` chose:
    ``get_backend(*resolve_backend(backend, options))`` does not work (options
    are keywords), so write ``name, opts = resolve_backend(...)`` then
    ``get_backend(name, **opts)``.  Unknown names raise
    :class:`persist_hooks.BackendError` listing the installed backends and the
    distribution to install; bad options raise it naming the option.

    Example:
        >>> get_backend("npy")
        NpyBackend()
        >>> get_backend("hdf9")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        persist_hooks.errors.BackendError: storage backend 'hdf9' is not installed ...
    """
    from . import plugins

    return plugins.backend_class(name)(**options)


def durable_default(cwd: Path | None = None) -> bool:
    """Whether writes fsync by default: ``PERSIST_HOOKS_DURABLE``, else ``durable`` in pyproject, else False.

    The variable counts as false when empty or one of ``0 false no off``
    (any case), true otherwise.

    Example:
        >>> import os
        >>> os.environ["PERSIST_HOOKS_DURABLE"] = "1"
        >>> durable_default()
        True
        >>> del os.environ["PERSIST_HOOKS_DURABLE"]
    """
    env = os.environ.get(DURABLE_ENV)
    if env is not None:
        return env.strip().lower() not in _FALSE
    path, table = project_config(cwd)
    value = table.get("durable", False)
    if not isinstance(value, bool):
        raise FormatError(
            f"{path}: tool.persist_hooks.durable must be true or false, not {value!r}"
        )
    return value

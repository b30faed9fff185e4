"""Run archive source back into objects (plain ``exec`` with the garbage collector paused)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._exec import ARRAYS_NAME, run_code

__all__ = ["ARRAYS_NAME", "restore", "run_code"]

def restore(
    src: str,
    env: dict[str, Any] | None = None,
    arrays: Mapping[str, Any] | None = None,
    safe: bool = False,
    safe_callables: Iterable[str] = (),
) -> dict[str, Any]:
    """Execute archive source and return the names it defines.

    ``env`` is the namespace to run in (a fresh one by default; it is updated in
    place), ``arrays`` the array table the source refers to as ``_arrays``
    (``Archive.data`` before saving).  ``safe=True`` interprets the source with
    :func:`persist_hooks.safe.execute` instead of ``exec``: only the archive
    language and allow-listed callables (plugins' declarations plus
    ``safe_callables``, dotted names) are accepted, anything else raises
    :class:`persist_hooks.UnsafeArchiveError`.

    Example:
        >>> import persist_hooks as ph
        >>> a = ph.Archive(); _ = a.insert(x=[1, 2], y="y")
        >>> restore(str(a))
        {'x': [1, 2], 'y': 'y'}
        >>> restore("import os", safe=True)
        Traceback (most recent call last):
        ...
        persist_hooks.errors.UnsafeArchiveError: <archive> line 1: import of 'os' is not allowed ...
    """
    namespace: dict[str, Any] = {} if env is None else env
    before = set(namespace)
    had_arrays = ARRAYS_NAME in namespace
    if arrays is not None:
        namespace[ARRAYS_NAME] = arrays
    if safe:
        from ..safe import execute

        execute(src, namespace, filename="<archive>", safe_callables=safe_callables)
    else:
        run_code(compile(src, "<archive>", "exec"), namespace)
    if arrays is not None and not had_arrays:
        namespace.pop(ARRAYS_NAME, None)
    return {
        key: value
        for key, value in namespace.items()
        if key not in before and not key.startswith("_")
    }

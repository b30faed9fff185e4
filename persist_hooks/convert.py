"""``convert``: rewrite a DataSet's stored arrays with another storage backend, item by item.

Each item is converted on its own, under the DataSet's writer lock, by the
same write path as ``ds.x = obj`` (new generation, item ``.py`` as the commit
point, old data removed afterwards).  The archive body of the item is kept
byte for byte: only the arrays move, so values are bit-exact and nothing of the
item's source is re-generated or executed.

``persist_hooks.convert`` is this module and, called, the function
:func:`convert` (the module is callable, like ``persist_hooks.backends``).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._fileio import read_text
from ._format import parse_item
from ._progress import progress
from ._reader import is_dataset_dir, item_names
from .backends.base import Backend, entry_shape_dtype
from .config import get_backend
from .dataset import DataSet
from .errors import BackendError, FormatError

__all__ = ["convert"]


def convert(
    path: str | os.PathLike[str],
    backend: str,
    *,
    options: Mapping[str, Any] | None = None,
    items: Iterable[str] | None = None,
    timeout: float | None = 60,
) -> list[str]:
    """Rewrite the arrays of the DataSet at ``path`` with storage backend ``backend``.

    ``path`` is the DataSet directory itself.  ``options`` are the new
    backend's options (merged over ``[tool.persist_hooks.<backend>]`` of the
    nearest ``pyproject.toml``, as for ``DataSet(backend=...)``).  ``items``
    limits the conversion to those names (default: every item).  Returns the
    names of the items converted, in order.

    Each item is converted atomically under the DataSet's writer lock
    (waiting at most ``timeout`` seconds, else
    :class:`persist_hooks.LockTimeout`): its arrays are written as a new
    generation by the new backend, then its ``.py`` file is replaced (the
    commit point), then the old data is deleted.  A failure leaves that item
    exactly as it was (items converted before it stay converted).  Readers
    need no lock and see the old item or the new one.

    Left alone (and not returned): items without external arrays, items
    already stored by the same backend with the same options, and items
    without a persist_hooks header (persist 3.x or hand-written; re-assign
    them, ``ds.x = ds.x``, to rewrite them).  Arrays are read whole into
    memory (npy: memory-mapped) while their item is converted.

    Raises ``FileNotFoundError`` if there is no DataSet at ``path``,
    ``KeyError`` for a name in ``items`` that is not an item,
    :class:`persist_hooks.BackendError` for an unknown backend or bad options
    (listing the installed backends and the distribution to install), and,
    before anything is converted, :class:`persist_hooks.BackendError` naming
    the item and dtype when the new backend cannot store one of the arrays.

    Example:
        >>> import tempfile, os, numpy as np, persist_hooks as ph
        >>> tmp = tempfile.mkdtemp()
        >>> ds = ph.DataSet("mydata", "w", path=tmp, backend="npy")
        >>> ds.x = [np.arange(1000.0), "small"]; ds.n = 3
        >>> convert(os.path.join(tmp, "mydata"), "hdf5")   # needs persist-hooks-hdf5
        ['x']
        >>> convert(os.path.join(tmp, "mydata"), "npy")
        ['x']
        >>> np.array_equal(ds.x[0], np.arange(1000.0))
        True
    """
    root = Path(os.path.abspath(os.fspath(path)))
    if not is_dataset_dir(root):
        raise FileNotFoundError(f"no DataSet at {root} (no _this_dir_is_a_DataSet file there)")
    ds = DataSet(
        root.name,
        "w",
        path=root.parent,
        backend=backend,
        backend_options=options,
        timeout=timeout,
    )
    try:
        target = ds._backend()  # BackendError for an unknown backend or bad options
        names = _selected(root, items)
        # refuse unstorable dtypes before converting anything
        for name in names:
            header = _header(root, name)
            if header is None:
                continue
            for key, entry in _arrays(header).items():
                _, dtype = entry_shape_dtype(entry)
                _check_dtype(target, dtype, root, name, key)
        converted: list[str] = []
        with progress(len(names), f"converting to {backend}", unit="item") as advance:
            for name in names:
                with ds.locked(timeout):
                    if _convert_item(ds, root, name):
                        converted.append(name)
                advance(1)
        return converted
    finally:
        ds.close()


def _selected(root: Path, items: Iterable[str] | None) -> list[str]:
    """The item names to convert: ``items`` (checked) or every item of the DataSet."""
    present = item_names(root)
    if items is None:
        return present
    if isinstance(items, str):
        items = [items]
    known = set(present)
    names: list[str] = []
    for name in items:
        if name not in known and not (
            isinstance(name, str) and name.isidentifier() and (root / f"{name}.py").is_file()
        ):
            raise KeyError(f"DataSet {root} has no item {name!r}")
        if name not in names:
            names.append(name)
    return names


def _header(root: Path, name: str) -> dict[str, Any] | None:
    """The header of item ``name`` (``None``: no item file, or a foreign file without one)."""
    path = root / f"{name}.py"
    try:
        text, _ = read_text(path)
    except FileNotFoundError:
        return None
    item = parse_item(text, str(path))
    return None if item is None else item.header


def _arrays(header: Mapping[str, Any]) -> dict[str, Any]:
    arrays = header.get("arrays")
    return arrays if isinstance(arrays, dict) else {}


def _check_dtype(target: Backend, dtype: np.dtype[Any], root: Path, name: str, key: str) -> None:
    """:meth:`Backend.check_dtype`, its error naming the item and array too."""
    try:
        target.check_dtype(dtype)
    except BackendError as exc:
        raise BackendError(
            f"cannot convert item {name!r} of DataSet {root}: its array {key!r} has "
            f"dtype {dtype}: {exc}"
        ) from None


def _convert_item(ds: DataSet, root: Path, name: str) -> bool:
    """Convert one item (call under the writer lock); whether it was rewritten."""
    path = root / f"{name}.py"
    try:
        text, _ = read_text(path)
    except FileNotFoundError:
        return False  # deleted meanwhile
    item = parse_item(text, str(path))
    if item is None:
        return False  # foreign: no header to rewrite
    entries = _arrays(item.header)
    if not entries:
        return False
    target = ds._backend()
    old_name = item.header.get("backend")
    old_options = item.header.get("options") or {}
    if not isinstance(old_name, str) or not isinstance(old_options, dict):
        raise FormatError(f"{path}, line 2: header needs a backend name and options")
    if old_name == target.name and old_options == target.options:
        return False
    try:
        source = get_backend(old_name, **old_options)
    except BackendError as exc:
        raise BackendError(f"cannot read item {name!r} of DataSet {root}: {exc}") from None
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for key, entry in entries.items():
        stored = source.open(root, entry, mode="r")
        arrays[key] = stored if isinstance(stored, np.ndarray) else np.asarray(stored)
        _check_dtype(target, arrays[key].dtype, root, name, key)
    # the DataSet's own write: new generation, x.py committed last, old data removed
    ds._write_item(name, item.body, arrays, None)
    return True


class _CallableModule(types.ModuleType):
    def __call__(
        self,
        path: str | os.PathLike[str],
        backend: str,
        *,
        options: Mapping[str, Any] | None = None,
        items: Iterable[str] | None = None,
        timeout: float | None = 60,
    ) -> list[str]:
        return convert(path, backend, options=options, items=items, timeout=timeout)


sys.modules[__name__].__class__ = _CallableModule

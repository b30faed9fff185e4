"""Open DataSet items with their stored arrays as dask arrays, in-memory numpy arrays, or lazy proxies.

:meth:`persist_hooks.DataSet.open` calls :func:`open_item`.  The item's
source runs as usual; only what each ``_arrays[...]`` entry becomes differs:

``"proxy"``
    what ``ds.x`` gives: a memory map (npy) or a lazy
    :class:`~persist_hooks.backends.proxy.ArrayProxy` (hdf5, zarr).
``"numpy"``
    each array read into memory.
``"dask"``
    a ``dask.array.Array`` over the stored data, nothing read yet.  A backend
    may open its own (zarr: ``dask.array.from_zarr``, chunk-aligned, through
    the backend's ``open_dask``); otherwise :class:`StoredArray`, a picklable
    opener that opens the file for each chunk it reads, so the graph runs on
    the workers of a ``dask.distributed`` cluster too (npy reads through a
    fresh memory map, HDF5 through a fresh h5py file).

dask is imported only here, and only for ``as_="dask"``.

Example:
    >>> import tempfile, numpy as np, persist_hooks as ph
    >>> ds = ph.DataSet("d", "w", path=tempfile.mkdtemp(), array_threshold=10)
    >>> ds.x = {"a": np.arange(100.0)}
    >>> lazy = ds.open("x", as_="dask")["a"]
    >>> type(lazy).__name__, float(lazy.sum().compute())
    ('Array', 4950.0)
    >>> type(ds.open("x", as_="numpy")["a"]).__name__
    'ndarray'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from .backends.base import Backend

__all__ = ["AS_CHOICES", "StoredArray", "dask_array", "import_dask_array", "open_item", "zarr_groups"]

AS_CHOICES = ("proxy", "numpy", "dask")
"""What :meth:`DataSet.open` can turn stored arrays into."""

OpenAs = Literal["proxy", "numpy", "dask"]


def import_dask_array() -> Any:
    """Import ``dask.array``, or raise ``ImportError`` saying what to install.

    Example:
        >>> import_dask_array().__name__
        'dask.array'
    """
    try:
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            "opening DataSet items as dask arrays needs dask: pip install 'dask[array]' "
            f"(or pip install 'persist-hooks[dask]'); the import failed with: {exc}"
        ) from None
    return da


class StoredArray:
    """A picklable, read-only handle on one stored array that opens it for each access.

    ``dask.array.from_array`` reads chunks through ``__getitem__``; nothing is
    held open between reads, so the handle travels to dask workers.

    Example:
        >>> import tempfile
        >>> from persist_hooks.backends.npy import NpyBackend
        >>> root = Path(tempfile.mkdtemp()); b = NpyBackend()
        >>> entry = b.write(root, "g1", {"a": np.arange(5)})["a"]
        >>> s = StoredArray(b, root, entry)
        >>> s.shape, s.dtype, s[1:3]
        ((5,), dtype('int64'), array([1, 2]))
    """

    def __init__(
        self, backend: Backend, root: Path, entry: Mapping[str, Any], *, trusted: bool = True
    ) -> None:
        from .backends.base import entry_shape_dtype

        self.backend = backend
        self.root = Path(root)
        self.entry = dict(entry)
        self.trusted = trusted
        self.shape, self.dtype = entry_shape_dtype(entry)
        self.ndim = len(self.shape)

    def _open(self) -> Any:
        return self.backend.open(self.root, self.entry, mode="r", trusted=self.trusted)

    def __getitem__(self, index: Any) -> np.ndarray[Any, Any]:
        arr = self._open()
        try:
            return np.array(arr[index], copy=True)  # a copy: no memory map outlives the read
        finally:
            del arr

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray[Any, Any]:
        out = self[...] if self.shape else self[()]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"<StoredArray {self.entry.get('path')} shape={self.shape} dtype={self.dtype}>"


def dask_array(
    backend: Backend, root: Path, entry: Mapping[str, Any], *, trusted: bool = True, chunks: Any = None
) -> Any:
    """A dask array over one stored array (nothing is read).

    The backend's own ``open_dask(root, entry, trusted=...)`` is used when it
    has one (zarr: chunk-aligned ``from_zarr``), else :class:`StoredArray`
    with ``chunks`` (default ``"auto"``).  ``chunks`` given re-chunks either.

    Example:
        >>> import tempfile
        >>> from persist_hooks.backends.npy import NpyBackend
        >>> root = Path(tempfile.mkdtemp()); b = NpyBackend()
        >>> entry = b.write(root, "g1", {"a": np.arange(6)})["a"]
        >>> dask_array(b, root, entry, chunks=4).chunks
        ((4, 2),)
    """
    da = import_dask_array()
    own = getattr(backend, "open_dask", None)
    if own is not None:
        arr = own(root, entry, trusted=trusted)
        return arr if chunks is None else arr.rechunk(chunks)
    from dask.base import tokenize

    stored = StoredArray(backend, root, entry, trusted=trusted)
    token = tokenize(backend.name, json.dumps(backend.options, sort_keys=True), str(root),
                     json.dumps(stored.entry, sort_keys=True, default=str))
    return da.from_array(
        stored,
        chunks="auto" if chunks is None else chunks,
        name=f"persist_hooks-{token}",
        lock=False,
        asarray=True,
        fancy=False,
        meta=np.empty((0,) * stored.ndim, stored.dtype),
    )


def open_item(
    root: Path,
    name: str,
    as_: str,
    *,
    mode: str = "r",
    trusted: bool = True,
    safe_callables: tuple[str, ...] = (),
    chunks: Any = None,
) -> Any:
    """Load item ``name`` with its arrays opened as ``as_`` (see the module docstring).

    Raises ``ValueError`` for an unknown ``as_``, ``ImportError`` (naming
    what to install) for ``"dask"`` without dask, ``FileNotFoundError`` for a
    missing item.

    Example:
        >>> import tempfile
        >>> open_item(Path(tempfile.mkdtemp()), "x", "pandas")
        Traceback (most recent call last):
        ...
        ValueError: as_ must be one of 'proxy', 'numpy', 'dask', not 'pandas'
    """
    from ._reader import read_item

    if as_ not in AS_CHOICES:
        raise ValueError(
            f"as_ must be one of {', '.join(repr(c) for c in AS_CHOICES)}, not {as_!r}"
        )
    if as_ == "proxy":
        return read_item(root, name, mode=mode, trusted=trusted, safe_callables=safe_callables)
    if as_ == "dask":
        import_dask_array()  # fail before reading anything

        def opener(backend: Backend, root: Path, entry: Mapping[str, Any]) -> Any:
            return dask_array(backend, root, entry, trusted=trusted, chunks=chunks)

    else:

        def opener(backend: Backend, root: Path, entry: Mapping[str, Any]) -> Any:
            arr = backend.open(root, entry, mode="r", trusted=trusted)
            return np.array(arr, copy=True)

    return read_item(
        root, name, mode="r", trusted=trusted, safe_callables=safe_callables, opener=opener
    )


def zarr_groups(dataset: Any, name: str) -> list[str]:
    """The zarr groups (local paths or fsspec URLs) holding item ``name``'s arrays, in header order.

    Each opens with ``xarray.open_zarr(group, consolidated=False)`` or
    ``zarr.open_group(group)``.  Items written by other backends have none.

    Example:
        >>> import tempfile, persist_hooks as ph
        >>> ds = ph.DataSet("d", "w", path=tempfile.mkdtemp(), backend="npy")
        >>> ds.x = np.arange(1000); zarr_groups(ds, "x")
        []
    """
    from ._fileio import read_text
    from ._format import parse_item

    root = Path(dataset._root)
    path = root / f"{name}.py"
    item = parse_item(read_text(path)[0], str(path))
    header = {} if item is None else item.header
    if header.get("backend") != "zarr":
        return []
    groups: list[str] = []
    for entry in (header.get("arrays") or {}).values():
        if entry.get("url") is not None:
            group = f"{str(entry['url']).rstrip('/')}/{entry['path']}"
        else:
            from .backends.base import resolve_path

            group = str(resolve_path(root, entry["path"]))
        if group not in groups:
            groups.append(group)
    return groups

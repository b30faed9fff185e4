"""Arrays computed while a backend writes them (dask arrays), and the hints representers leave backends.

The Archive externalises arrays above ``array_threshold`` by taking
``numpy.asarray`` of them.  A dask array must not be computed there: its
representer (:mod:`persist_hooks.representers.dask_array`) wraps it in a
:class:`LazyArray`, whose ``__array__`` gives a *placeholder* — a read-only
array of the right shape and dtype that takes no memory (every stride 0) —
and registers the dask array as the placeholder's :func:`lazy_source`.  A
backend that sees a placeholder (``lazy_source(arr) is not None``) writes the
source chunk by chunk: zarr with ``dask.array.store`` (on the workers of a
``dask.distributed`` cluster when one is the default scheduler), npy and HDF5
in row blocks computed one at a time.  A backend class that does not declare
``supports_lazy_arrays`` gets the placeholders computed before its ``write``
runs (see :class:`persist_hooks.backends.base.Backend`), so no backend can
ever store a placeholder's zeros.

Representers may also name an externalised array's dimensions
(:func:`set_dims`, e.g. an ``xarray.DataArray``'s ``dims``); a backend that
records dimension names (zarr's ``dimension_names``) reads them with
:func:`dims_of`.

Nothing here imports dask.

Example:
    >>> import numpy as np
    >>> class Source:  # anything with shape, dtype and dask-style ``blocks``/``compute``
    ...     shape, dtype = (3,), np.dtype("f8")
    ...     def compute(self): return np.arange(3.0)
    >>> placeholder = np.asarray(LazyArray(Source()))
    >>> placeholder.shape, placeholder.strides, lazy_source(placeholder) is not None
    ((3,), (0,), True)
    >>> lazy_source(np.zeros(3)) is None
    True
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "BLOCK_BYTES",
    "LazyArray",
    "dims_of",
    "iter_row_blocks",
    "lazy_source",
    "materialise",
    "set_dims",
]

BLOCK_BYTES = 16 << 20
"""Target bytes of one row block computed at a time by :func:`iter_row_blocks`."""

_lock = threading.Lock()
_sources: dict[int, tuple[weakref.ref[Any], Any]] = {}
_dims: dict[int, tuple[weakref.ref[Any], tuple[str, ...]]] = {}


def _remember(table: dict[int, tuple[weakref.ref[Any], Any]], obj: Any, value: Any) -> None:
    key = id(obj)

    def forget(_: Any, key: int = key) -> None:
        with _lock:
            entry = table.get(key)
            if entry is not None and entry[0]() is None:
                del table[key]

    with _lock:
        table[key] = (weakref.ref(obj, forget), value)


def _recall(table: dict[int, tuple[weakref.ref[Any], Any]], obj: Any) -> Any:
    entry = table.get(id(obj))
    if entry is None or entry[0]() is not obj:
        return None
    return entry[1]


class LazyArray:
    """Stands for a lazily computed array (a dask array) while an item is archived.

    ``numpy.asarray(lazy)`` gives the placeholder a backend recognises
    (:func:`lazy_source`), never the data; :meth:`compute` gives the data.
    ``dims`` are dimension names for backends that record them.

    Example:
        >>> class Source:
        ...     shape, dtype = (2, 2), np.dtype("i4")
        ...     def compute(self): return np.eye(2, dtype="i4")
        >>> lazy = LazyArray(Source(), dims=("y", "x"))
        >>> lazy.size, lazy.ndim, dims_of(np.asarray(lazy))
        (4, 2, ('y', 'x'))
    """

    def __init__(self, source: Any, dims: Sequence[str] | None = None) -> None:
        self.source = source
        self.shape: tuple[int, ...] = tuple(int(n) for n in source.shape)
        if any(math.isnan(n) for n in source.shape):  # pragma: no cover - dask unknown chunks
            raise ValueError("cannot archive a dask array of unknown shape; call compute_chunk_sizes()")
        self.dtype: np.dtype[Any] = np.dtype(source.dtype)
        self.dims = tuple(dims) if dims is not None else None
        self._placeholder: np.ndarray[Any, Any] | None = None

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def compute(self) -> np.ndarray[Any, Any]:
        """The data, computed into memory (for arrays small enough to stay in the source)."""
        return np.asarray(self.source.compute())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray[Any, Any]:
        """The placeholder (all strides 0, no memory): the Archive puts it in its array table."""
        placeholder = self._placeholder
        if placeholder is None:
            placeholder = np.broadcast_to(np.zeros((), self.dtype), self.shape)
            _remember(_sources, placeholder, self.source)
            if self.dims is not None:
                _remember(_dims, placeholder, self.dims)
            self._placeholder = placeholder
        return placeholder

    def __repr__(self) -> str:
        return f"<LazyArray shape={self.shape} dtype={self.dtype}>"


def lazy_source(arr: Any) -> Any:
    """The lazy array (dask) a placeholder stands for, or ``None`` for ordinary arrays.

    Example:
        >>> lazy_source(np.arange(3)) is None
        True
    """
    if not isinstance(arr, np.ndarray) or any(arr.strides):
        return None  # placeholders have every stride 0: one check and ordinary arrays are out
    return _recall(_sources, arr)


def set_dims(arr: Any, dims: Sequence[str]) -> None:
    """Record dimension names for ``arr`` (an array a representer is about to externalise).

    Example:
        >>> a = np.zeros((2, 3)); set_dims(a, ("time", "x")); dims_of(a)
        ('time', 'x')
    """
    dims = tuple(str(d) for d in dims)
    if len(dims) != np.ndim(arr):
        raise ValueError(f"{len(dims)} dimension names for an array of {np.ndim(arr)} dimensions")
    _remember(_dims, arr, dims)


def dims_of(arr: Any) -> tuple[str, ...] | None:
    """Dimension names recorded for ``arr`` with :func:`set_dims` (or by a :class:`LazyArray`), else ``None``.

    Example:
        >>> dims_of(np.zeros(2)) is None
        True
    """
    dims = _recall(_dims, arr)
    return dims if isinstance(dims, tuple) else None


def iter_row_blocks(source: Any, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray[Any, Any]]]:
    """Compute ``source`` (a dask array) in blocks of whole rows, in order: ``(first row, block)``.

    One block (about ``block_bytes``) is in memory at a time.  A 0-d source
    gives one block at row 0.

    Example:
        >>> import dask.array as da
        >>> [(start, b.tolist()) for start, b in iter_row_blocks(da.arange(5, chunks=2), 16)]
        [(0, [0, 1]), (2, [2, 3]), (4, [4])]
    """
    shape = tuple(int(n) for n in source.shape)
    if not shape:
        yield 0, np.asarray(source.compute())
        return
    row = max(1, math.prod(shape[1:]) * np.dtype(source.dtype).itemsize)
    step = max(1, block_bytes // row)
    for start in range(0, shape[0], step):
        yield start, np.asarray(source[start : start + step].compute())


def materialise(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """``arrays`` with every placeholder replaced by its computed data (for backends without lazy writes).

    Example:
        >>> materialise({"a": np.arange(2)})["a"]
        array([0, 1])
    """
    out: dict[str, Any] = {}
    for key, arr in arrays.items():
        source = lazy_source(arr)
        out[key] = arr if source is None else np.asarray(source.compute())
    return out

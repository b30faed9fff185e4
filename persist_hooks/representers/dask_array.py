"""Representers for dask arrays: large ones are written by the backend chunk by chunk, never computed here.

A dask array is represented by a :class:`~persist_hooks.backends.lazy.LazyArray`
standing for it.  The Archive treats that like any array: above
``array_threshold`` elements it leaves the source for the storage backend,
which computes and stores it chunk by chunk (zarr: ``dask.array.store`` into
the new zarr array, on the cluster's workers when a ``dask.distributed``
client is active); at or below the threshold it is computed and written into
the source like a numpy array.  Either way the item reads back as numpy data
(a lazy proxy for large arrays); ``DataSet.open(name, as_="dask")`` gives dask
arrays again.

The keys are lazy type names: dask is never imported by this module.

Example:
    >>> import dask.array as da
    >>> import persist_hooks as ph
    >>> a = ph.Archive(scoped=False)
    >>> _ = a.insert(x=da.arange(3, chunks=2))
    >>> print(a, end="")
    from numpy import array
    x = array([0, 1, 2], dtype='int64')
    del array
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..backends.lazy import LazyArray, dims_of
from ..hookspecs import hookimpl
from ..rep import Rep, Representer
from .numpy import represent_array

__all__ = ["represent_dask_array", "represent_lazy_array"]


def represent_dask_array(arr: Any) -> Rep:
    """Represent a dask array by a :class:`LazyArray` over it (nothing is computed).

    Example:
        >>> import dask.array as da
        >>> rep = represent_dask_array(da.zeros(4, chunks=2))
        >>> rep.expr, type(rep.args["data"]).__name__
        ('data', 'LazyArray')
    """
    return Rep("data", {"data": LazyArray(arr, dims=dims_of(arr))})


def represent_lazy_array(lazy: LazyArray) -> Rep | None:
    """A lazy array small enough to stay in the source: computed and written like a numpy array.

    Example:
        >>> import dask.array as da
        >>> represent_lazy_array(LazyArray(da.ones(2, chunks=1))).expr
        "array([1.0, 1.0], dtype='float64')"
    """
    return represent_array(lazy.compute())


@hookimpl
def persist_hooks_representers() -> Mapping[type | str, Representer]:
    """dask's representers (lazy keys: dask is imported only by those who use it)."""
    return {
        "dask.array.core.Array": represent_dask_array,
        "persist_hooks.backends.lazy.LazyArray": represent_lazy_array,
    }


@hookimpl
def persist_hooks_safe_callables() -> Iterable[str]:
    """The dask representers emit only what the numpy representers do."""
    return []

"""dask arrays over stored zarr arrays: ``dask.array.from_zarr``, chunk-aligned, nothing read.

Used by ``DataSet.open(name, as_="dask")`` through :meth:`ZarrBackend.open_dask`.
Numbers come straight from ``from_zarr`` (cast back to a big-endian dtype when
that is what was archived); bytes and unicode, stored as code units on one
more trailing axis, are viewed back block by block.  The graph holds the zarr
array, which pickles, so it runs on ``dask.distributed`` workers (for remote
data: when they can reach the URL; ``memory://`` is per process).

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> from persist_hooks_zarr import ZarrBackend
    >>> root = pathlib.Path(tempfile.mkdtemp()); b = ZarrBackend()
    >>> e = b.write(root, "g1", {"a": np.array(["ab", "c"] * 3)})["a"]
    >>> open_dask(b, root, e).compute()
    array(['ab', 'c', 'ab', 'c', 'ab', 'c'], dtype='<U2')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from persist_hooks.backends.base import Backend, dtype_from_json, resolve_path

from . import _remote
from ._backend import DTYPE_ATTR, _from_storage, _open_array, _units

__all__ = ["open_dask"]


def open_dask(backend: Backend, root: Path, entry: Mapping[str, Any], *, trusted: bool = True) -> Any:
    """A dask array over the zarr array ``entry`` names (checked like ``backend.open``)."""
    from persist_hooks.interop import import_dask_array

    da = import_dask_array()
    backend.open(root, entry, mode="r", trusted=trusted)  # the same checks as every read
    rel = entry["path"]
    url = entry.get("url")
    group: Path | str = resolve_path(Path(root), rel) if url is None else _remote.group_location(url, rel)
    z = _open_array(group, str(entry["key"]))
    dtype = dtype_from_json(z.attrs[DTYPE_ATTR])
    arr = da.from_zarr(z)
    if not _units(dtype):
        return arr if arr.dtype == dtype else arr.astype(dtype)
    arr = arr.rechunk({arr.ndim - 1: -1})
    return arr.map_blocks(_from_storage, dtype, dtype=dtype, drop_axis=arr.ndim - 1)

"""persist_hooks_xarray: archive ``xarray.DataArray`` and ``xarray.Dataset`` as readable calls.

Installing this distribution registers the entry point ``xarray`` in group
``persist_hooks``.  A DataArray is written as
``DataArray(data, dims=..., coords=..., name=..., attrs=...)`` and a Dataset as
``Dataset(data_vars, coords=..., attrs=...)``, each variable as the tuple
``(dims, data, attrs)`` xarray's constructors take.  The arrays are archived
like any array — above ``array_threshold`` elements they go to the storage
backend (dask-backed ones chunk by chunk, without computing them here) — and
their dimension names are handed to the backend
(:func:`persist_hooks.backends.lazy.set_dims`), so the zarr backend writes them
as zarr v3 ``dimension_names`` and ``xarray.open_zarr`` reads the item's group.

The types are registered by name: xarray is imported by this module only
when an xarray object is archived.  ``xarray.DataArray`` and
``xarray.Dataset`` are declared safe callables, so
``DataSet(..., trusted=False)`` loads the items.  Encodings and custom indexes
are not kept.

Example:
    >>> import numpy as np, xarray as xr, persist_hooks as ph
    >>> a = ph.Archive(scoped=False)
    >>> _ = a.insert(t=xr.DataArray(np.arange(3), dims="x", name="t"))
    >>> print(a, end="")
    from numpy import array
    from xarray import DataArray
    t = DataArray(array([0, 1, 2], dtype='int64'), dims=('x',), name='t')
    del array, DataArray
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from persist_hooks.backends.lazy import set_dims
from persist_hooks.hookspecs import hookimpl
from persist_hooks.rep import Rep, Representer

__all__ = [
    "persist_hooks_representers",
    "persist_hooks_safe_callables",
    "represent_data_array",
    "represent_dataset",
]

_XR = "xarray"


def _data(variable: Any) -> Any:
    """A variable's data as numpy or dask (never a pandas adapter), tagged with its dims."""
    data = variable.data
    if not isinstance(data, np.ndarray) and not type(data).__module__.startswith("dask"):
        data = np.asarray(variable.values)
    if (isinstance(data, np.ndarray) and data.ndim == len(variable.dims)) or hasattr(data, "dask"):
        set_dims(data, tuple(str(d) for d in variable.dims))
    return data


def _variable(variable: Any) -> tuple[Any, ...]:
    """``(dims, data)`` or ``(dims, data, attrs)``: what xarray's constructors take."""
    dims = tuple(variable.dims)
    attrs = dict(variable.attrs)
    return (dims, _data(variable), attrs) if attrs else (dims, _data(variable))


def _coords(obj: Any, skip: Iterable[Any] = ()) -> dict[Any, tuple[Any, ...]]:
    skipped = set(skip)
    return {name: _variable(c.variable) for name, c in obj.coords.items() if name not in skipped}


def represent_data_array(arr: Any) -> Rep:
    """``DataArray(data, dims=..., coords=..., name=..., attrs=...)`` (empty parts left out).

    Example:
        >>> import xarray as xr
        >>> rep = represent_data_array(xr.DataArray(np.zeros(2), dims="x", attrs={"u": "m"}))
        >>> rep.expr
        'DataArray(data, dims=dims, attrs=attrs)'
    """
    args: dict[str, Any] = {"data": _data(arr.variable), "dims": tuple(arr.dims)}
    coords = _coords(arr)
    if coords:
        args["coords"] = coords
    if arr.name is not None:
        args["name"] = arr.name
    if arr.attrs:
        args["attrs"] = dict(arr.attrs)
    call = ", ".join(["data", *(f"{k}={k}" for k in args if k != "data")])
    return Rep(f"DataArray({call})", args, [(_XR, "DataArray")])


def represent_dataset(ds: Any) -> Rep:
    """``Dataset(data_vars, coords=..., attrs=...)`` with each variable as ``(dims, data[, attrs])``.

    Example:
        >>> import xarray as xr
        >>> represent_dataset(xr.Dataset({"v": ("x", np.zeros(2))})).expr
        'Dataset(data_vars)'
    """
    args: dict[str, Any] = {
        "data_vars": {name: _variable(v.variable) for name, v in ds.data_vars.items()}
    }
    coords = _coords(ds)
    if coords:
        args["coords"] = coords
    if ds.attrs:
        args["attrs"] = dict(ds.attrs)
    call = ", ".join(["data_vars", *(f"{k}={k}" for k in args if k != "data_vars")])
    return Rep(f"Dataset({call})", args, [(_XR, "Dataset")])


@hookimpl
def persist_hooks_representers() -> Mapping[type | str, Representer]:
    """Representers for xarray's DataArray and Dataset (by name: xarray is not imported here).

    Example:
        >>> sorted(persist_hooks_representers())
        ['xarray.core.dataarray.DataArray', 'xarray.core.dataset.Dataset']
    """
    return {
        "xarray.core.dataarray.DataArray": represent_data_array,
        "xarray.core.dataset.Dataset": represent_dataset,
    }


@hookimpl
def persist_hooks_safe_callables() -> Iterable[str]:
    """The callables these representers emit, for safe loading.

    Example:
        >>> list(persist_hooks_safe_callables())
        ['xarray.DataArray', 'xarray.Dataset']
    """
    return ["xarray.DataArray", "xarray.Dataset"]

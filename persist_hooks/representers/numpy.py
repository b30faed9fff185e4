"""Representers for numpy arrays, scalars and dtypes: readable where exact, bytes where not.

Arrays are written as ``array([...], dtype=...)`` from ``tolist()`` whenever that
round-trips bit for bit (integers, bools, finite or standard non-finite floats,
complex, strings, datetimes, structured records); otherwise (long double,
non-standard NaN payloads, raw void) as ``frombuffer(b'...', dtype)``.  Object
arrays hold their elements as archived objects.  Which arrays leave the source
for a storage backend is the Archive's decision (``array_threshold``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..hookspecs import hookimpl
from ..rep import Rep, Representer

__all__ = ["dtype_source", "represent_array", "represent_scalar"]

_NP = "numpy"
_NAN64 = struct.pack("<d", float("nan"))
_NAN64_NEG = struct.pack("<d", -float("nan"))


def dtype_source(dtype: np.dtype[Any]) -> str:
    """Source text that numpy turns back into exactly ``dtype``.

    Example:
        >>> dtype_source(np.dtype("float32")), dtype_source(np.dtype(">i4"))
        ("'float32'", "'>i4'")
        >>> dtype_source(np.dtype([("a", "<i4"), ("b", "<f8")]))
        "[('a', '<i4'), ('b', '<f8')]"
    """
    if dtype.fields is None and dtype.subdtype is None and dtype.isnative and dtype.kind in "biufcmM":
        return repr(dtype.name) if dtype.kind in "mM" or np.dtype(dtype.name) == dtype else repr(dtype.str)
    descr = np.lib.format.dtype_to_descr(dtype)
    try:
        if np.dtype(descr) == dtype and dtype.itemsize == np.dtype(descr).itemsize:
            return repr(descr)
    except (TypeError, ValueError):
        pass
    return repr(_dtype_spec(dtype))


def _dtype_spec(dtype: np.dtype[Any]) -> Any:
    """A dict spec (names, formats, offsets, itemsize) that keeps padding and alignment exactly."""
    if dtype.fields is None:
        if dtype.subdtype is not None:
            base, shape = dtype.subdtype
            return (_dtype_spec(base), shape)
        return dtype.str
    names = list(dtype.names or ())
    spec: dict[str, Any] = {
        "names": names,
        "formats": [_dtype_spec(dtype.fields[n][0]) for n in names],
        "offsets": [dtype.fields[n][1] for n in names],
        "itemsize": dtype.itemsize,
    }
    if dtype.isalignedstruct:
        spec["aligned"] = True
    return spec


def _float_bits_standard(values: np.ndarray[Any, Any]) -> bool:
    """True when every NaN in a float array is the standard quiet NaN (either sign)."""
    nan = np.isnan(values)
    if not nan.any():
        return True
    with np.errstate(invalid="ignore"):  # signaling NaNs warn when cast
        as64 = values[nan].astype("<f8")
    return all(b in (_NAN64, _NAN64_NEG) for b in {x.tobytes() for x in as64})


def _text_of(v: Any) -> str:
    t = type(v)
    if t is float:
        r = repr(v)
        if r[-1] in "nf":
            if v != v:
                return "-float('nan')" if struct.pack("<d", v)[7] & 0x80 else "float('nan')"
            return "float('inf')" if v > 0 else "-float('inf')"
        return r
    if t is complex:
        return f"complex({_text_of(v.real)}, {_text_of(v.imag)})"
    if t is list:
        return "[" + ", ".join(_text_of(x) for x in v) + "]"
    if t is tuple:
        inner = ", ".join(_text_of(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def _tolist_exact(arr: np.ndarray[Any, Any]) -> bool:
    """Whether ``array(arr.tolist(), dtype)`` gives back ``arr`` bit for bit."""
    kind = arr.dtype.kind
    if kind in "biuUSb?":
        return True
    if kind in "fc":
        if arr.dtype.itemsize > (8 if kind == "f" else 16):
            return False  # long double: tolist() goes through a Python float
        return _float_bits_standard(arr.view(arr.dtype.base).real if kind == "c" else arr) and (
            kind != "c" or _float_bits_standard(arr.imag)
        )
    if kind in "mM":
        return True
    if kind == "V" and arr.dtype.fields is not None:
        # tolist() turns datetime and sub-array fields into objects without a source form
        return all(
            arr.dtype.fields[name][0].subdtype is None
            and arr.dtype.fields[name][0].kind not in "mMV"
            and _tolist_exact(arr[name])
            for name in arr.dtype.names or ()
        ) and np.dtype(np.lib.format.dtype_to_descr(arr.dtype)) == arr.dtype
    return False


def _datetime_list(arr: np.ndarray[Any, Any]) -> str:
    if not arr.dtype.isnative:  # datetime_as_string misreads swapped bytes
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind == "M":
        return _text_of(np.datetime_as_string(arr).tolist())
    return _text_of(arr.astype("<i8").tolist())


def represent_array(arr: np.ndarray[Any, Any]) -> Rep | None:
    """Represent an array in the source.

    Example:
        >>> represent_array(np.arange(3.0)).expr
        "array([0.0, 1.0, 2.0], dtype='float64')"
        >>> represent_array(np.array(5, dtype="int8")).expr
        "array(5, dtype='int8')"
    """
    if type(arr) is not np.ndarray and not isinstance(arr, np.memmap):
        return None  # MaskedArray, recarray, ...: their own state goes through __reduce_ex__
    arr = np.asarray(arr)
    dtype = arr.dtype
    dsrc = dtype_source(dtype)
    if dtype.hasobject:
        return _object_array(arr, dsrc)
    fortran = arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous
    if dtype.kind in "mM" and dtype.fields is None and not (arr.size == 0 and arr.ndim > 1):
        body = f"array({_datetime_list(arr)}, dtype={dsrc})"
        imports: list[tuple[str, str]] = [(_NP, "array")]
    elif _tolist_exact(arr) and not (arr.size == 0 and arr.ndim > 1):
        body = f"array({_text_of(arr.tolist())}, dtype={dsrc})"
        imports = [(_NP, "array")]
    else:
        data = np.ascontiguousarray(arr).tobytes()
        shape = repr(tuple(arr.shape))
        body = f"frombuffer({data!r}, dtype={dsrc}).reshape({shape}).copy()"
        imports = [(_NP, "frombuffer")]
    if fortran:
        body = f"asfortranarray({body})"
        imports.append((_NP, "asfortranarray"))
    return Rep(body, imports=imports)


def _object_array(arr: np.ndarray[Any, Any], dsrc: str) -> Rep:
    shape = tuple(arr.shape)
    items = list(arr.reshape(-1)) if arr.ndim else [arr[()]]
    n = len(items)
    imports = [(_NP, "fromiter"), (_NP, "empty")]
    return Rep(
        f"fromiter(items, dtype=object, count={n}).reshape({shape!r})",
        {"items": items},
        imports,
        new=f"empty({shape!r}, dtype=object)",
        fill=f"self.reshape(-1)[:] = fromiter(items, dtype=object, count={n})",
    )


def represent_scalar(x: np.generic) -> Rep:
    """Represent a numpy scalar exactly (``float32(0.1)``, ``datetime64('2020-01-01', 'D')``).

    Example:
        >>> represent_scalar(np.float32(1.5)).expr
        'float32(1.5)'
    """
    dtype = x.dtype
    name = type(x).__name__
    kind = dtype.kind
    if kind in "biu":
        return Rep(f"{name}({x.item()!r})", imports=[(_NP, name)])
    if kind in "fc" and dtype.itemsize <= (8 if kind == "f" else 16):
        arr = np.asarray(x)
        if _tolist_exact(arr):
            return Rep(f"{name}({_text_of(x.item())})", imports=[(_NP, name)])
    if kind in "mM":
        unit, count = np.datetime_data(dtype)  # type: ignore[arg-type]
        unit_src = f"{count}{unit}" if count != 1 else unit
        if kind == "M":
            text = str(np.datetime_as_string(x))  # type: ignore[arg-type]
            return Rep(f"datetime64({text!r}, {unit_src!r})", imports=[(_NP, "datetime64")])
        value = "'NaT'" if np.isnat(x) else str(int(x.astype("<i8")))
        return Rep(f"timedelta64({value}, {unit_src!r})", imports=[(_NP, "timedelta64")])
    if kind in "US":
        return Rep(f"{name}({x.item()!r})", imports=[(_NP, name)])
    # long double, odd NaN payloads, void/records: through a 0-d array
    rep = represent_array(np.asarray(x))
    assert rep is not None
    return Rep(f"{rep.expr}[()]", rep.args, rep.imports)


def _dtype(d: np.dtype[Any]) -> Rep:
    return Rep(f"dtype({dtype_source(d)})", imports=[(_NP, "dtype")])


@hookimpl
def persist_hooks_representers() -> Mapping[type | str, Representer]:
    """numpy's representers."""
    return {
        np.ndarray: represent_array,
        np.generic: represent_scalar,
        np.dtype: _dtype,
        "persist_hooks.backends.proxy.ArrayProxy": lambda p: represent_array(np.asarray(p)),
        np.memmap: lambda m: represent_array(np.asarray(m)),
    }


@hookimpl
def persist_hooks_safe_callables() -> Iterable[str]:
    """Callables the numpy representers emit."""
    names = ["array", "frombuffer", "asfortranarray", "fromiter", "empty", "dtype", "datetime64", "timedelta64"]
    scalars = sorted({t.__name__ for t in np.sctypeDict.values() if issubclass(t, np.generic)})
    return [f"numpy.{n}" for n in names + scalars]

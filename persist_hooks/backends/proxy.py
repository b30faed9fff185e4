"""ArrayProxy: the lazy, optionally writable handle on a stored array, for every backend.

A backend opened with ``mode="a"`` returns an :class:`ArrayProxy` over a small
:class:`ArrayDriver` it implements (``shape``, ``dtype``, ``read``, ``write``,
``resize``, attributes).  The proxy adds, the same way for every backend, numpy
indexing (ints, slices with any step, ``...``, ``np.newaxis``, integer and
boolean arrays, on any axis), in-place assignment, ``append`` along axis 0,
growth by assignment past the end, ``np.asarray``, iteration in ~1 MiB chunks,
the read-only switch and the writer lock around each write.

Drivers with ``native_indexing = True`` (npy: a memory map does all of numpy's
indexing) receive the user's index unchanged.  Other drivers receive only a
*box*: a tuple of one ``slice(start, stop, step>0)`` per axis, normalised to the
shape; the proxy reads the box and applies the rest of the index in memory, so a
driver for a store that only slices (h5py, zarr) supports all of numpy's
indexing.  Such a read costs O(box); an assignment with integer or boolean
arrays is a read-modify-write of the box, and with basic indices (ints, slices)
a plain write of exactly the selected elements.

The proxy holds no open file of its own: each operation opens what it needs and
closes it (a driver may pin the stored data so that a value read before the item
is rewritten stays readable: npy values are memory maps, the HDF5 driver holds a
file descriptor until the proxy is closed or collected).  Inside one proxy
operation a driver may keep the store open across its calls (``session``): a
slice through the HDF5 driver opens the file once, not once for the shape and
once for the data.

In-place changes and checksums
    Item entries record a checksum of the data as written.  Before a write
    through the proxy changes any byte (assignment, ``append``, ``resize``) it
    creates the companion ``<path>.modified``
    (:func:`~persist_hooks.backends.base.modified_marker`), once per proxy:
    O(1), so appends stay O(rows appended), and ``verify`` knows the recorded
    checksum no longer applies instead of reporting a mismatch.

Growth by assignment
    Every assignment numpy accepts keeps numpy's meaning.  One numpy would
    refuse because it names rows past the end of axis 0 grows the array first:
    an int ``i >= len`` (``p[len] = row``), an integer array with entries
    ``>= len``, or a slice with an explicit ``stop > len`` and positive step
    whose value does not fit the clipped selection (``p[len:len + k] = rows``;
    ``p[:100] = 0`` on a shorter array stays numpy's clipped assignment).  Rows
    between the old end and the written ones read as zeros (the backend's fill
    value).  A failed assignment shrinks the array back.

Cost model (npy; ``n`` rows in the file; times measured on a busy 2-core machine)
    - ``p.shape``, ``len(p)``: open the file and ``pread`` its header (parsed
      headers are memoised): ~25 us.
    - ``p[i]``, ``p[a:b]`` (and anything indexed further after them): the rows
      are read straight into a new array with ``readinto``: O(selection),
      ~40 us plus the copy.
    - ``p[::s]``, ``p[..., j]``, ``p[int_array]``, ``p[mask]``: a short-lived
      memory map, the selection copied out: O(selection) (pages touched).
    - ``p[i] = row``, ``p[a:b] = rows``: the rows are written in place:
      O(rows), ~80 us plus the write.  Other assignments: a short-lived
      read-write map, O(selection).
    - ``p.append(rows)``: the rows are written after the last one, then the
      header is rewritten in place: O(rows), ~130 us plus the write, the same
      for a 1e3- or a 1e7-element file.
    - ``p[n + k] = v``: resize (extend the file with zeros: sparse, O(k) at
      most), rewrite the header, then write.
    - ``p.resize(m)`` with ``m < n``: header rewrite only; the file keeps its
      bytes so readers that have it mapped never fault.
    - ``np.asarray(p)``: O(n), the whole array is read into memory;
      ``iter(p)`` reads ~1 MiB blocks of rows.
    - A Fortran-ordered npy file (written from a Fortran-ordered array) is
      rewritten once in C order, O(n), by the first append or growth.  With
      ``durable=True`` every write also fsyncs (data before header).

Copy policy
    ``copy.copy(p)`` is another handle on the same stored data (same driver,
    same writability); ``copy.deepcopy(p)`` is an in-memory ``numpy.ndarray``
    holding the data now; ``pickle`` gives a *read-only* handle that re-opens
    the file in the receiving process (the writer lock does not travel).
"""

from __future__ import annotations

import abc
import contextlib
import math
import operator
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import numpy as np

from ..errors import BackendError, ReadOnlyError
from .base import WriterLockFactory, mark_modified

__all__ = ["ArrayDriver", "ArrayProxy", "ProxyAttrs", "split_index"]

ITER_CHUNK_BYTES = 1 << 20
"""Bytes of rows that ``iter(proxy)`` reads at a time."""

Box = tuple[slice, ...]


class ArrayDriver(abc.ABC):
    """The per-backend half of an :class:`ArrayProxy`: raw access to one stored array.

    Implement ``shape``, ``dtype`` and ``read``; writable backends also
    ``write`` and ``resize`` (and may override ``append`` for an O(rows)
    path), backends with metadata ``get_attrs``/``set_attrs``.  A driver must
    be picklable by value (a path, a key), re-opening the store when used,
    because pickled proxies travel to other processes.

    Example:
        >>> class Mem(ArrayDriver):
        ...     native_indexing = True
        ...     def __init__(self, a): self.a = a
        ...     shape = property(lambda self: self.a.shape)
        ...     dtype = property(lambda self: self.a.dtype)
        ...     def read(self, index): return self.a[index].copy()
        >>> ArrayProxy(Mem(np.arange(4)), read_only=True)[::-2]
        array([3, 1])
    """

    native_indexing: ClassVar[bool] = False
    """True: ``read``/``write`` take any numpy index.  False: only a box (see module doc)."""

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The current shape (re-read from the store when it may have changed)."""

    @property
    @abc.abstractmethod
    def dtype(self) -> np.dtype[Any]:
        """The stored dtype."""

    @abc.abstractmethod
    def read(self, index: Any) -> Any:
        """Return ``array[index]`` as an in-memory ndarray (or numpy scalar), never a view of the store."""

    def write(self, index: Any, value: Any) -> None:
        """Store ``array[index] = value``.  Called with the writer lock held."""
        raise BackendError(f"{self.location} does not support writes")

    def resize(self, length: int) -> None:
        """Change the length of axis 0 (new rows read as zeros).  Called with the writer lock held."""
        raise BackendError(f"{self.location} cannot be resized")

    def append(self, rows: np.ndarray[Any, Any]) -> None:
        """Add ``rows`` (shape ``(k, *shape[1:])``, the stored dtype) at the end of axis 0.

        The default resizes, then writes; override for a cheaper or safer
        order.  Called with the writer lock held.
        """
        start = self.shape[0]
        self.resize(start + rows.shape[0])
        box = (slice(start, start + rows.shape[0], 1), *(slice(0, n, 1) for n in self.shape[1:]))
        self.write(box, rows)

    def session(self, write: bool = False) -> AbstractContextManager[Any]:
        """A context in which the driver may keep its store open across calls (default: nothing).

        :class:`ArrayProxy` wraps each of its operations (the shape lookup and
        the read or write that follows) in one session; ``write=True`` when
        the operation writes.  Sessions may nest; only the outermost opens.
        """
        return contextlib.nullcontext()

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the driver holds between operations (a pinned file); idempotent."""

    def get_attrs(self) -> dict[str, Any]:
        """The stored attributes (a fresh dict)."""
        return {}

    def set_attrs(self, attrs: dict[str, Any]) -> None:
        """Replace the stored attributes.  Called with the writer lock held."""
        raise BackendError(f"{self.location} does not store attributes")

    @property
    def location(self) -> str:
        """Where the data lives, for messages and ``repr`` (``"npy file x_data/g3_0.npy"``)."""
        return type(self).__name__


# --------------------------------------------------------------------------- index handling


def _normalize_key(key: Any) -> list[Any]:
    """The index as a list of items: None, Ellipsis, slice, bool, int, or ndarray (int or bool)."""
    items = list(key) if isinstance(key, tuple) else [key]
    out: list[Any] = []
    for item in items:
        if item is None or item is Ellipsis or isinstance(item, slice):
            out.append(item)
        elif isinstance(item, (bool, np.bool_)):
            out.append(bool(item))
        elif isinstance(item, (np.ndarray, list)) or (
            hasattr(item, "__array__") and not isinstance(item, (int, np.integer))
        ):
            arr = np.asarray(item)
            if arr.dtype == bool:
                out.append(arr)
            elif arr.dtype.kind in "iu" or (
                arr.size == 0 and arr.dtype.kind == "f" and isinstance(item, list)
            ):
                arr = arr.astype(np.intp)
                out.append(int(arr) if arr.ndim == 0 else arr)
            else:
                _bad_index()
        else:
            try:
                out.append(operator.index(item))
            except TypeError:
                _bad_index()
    if sum(item is Ellipsis for item in out) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    return out


def _bad_index() -> NoReturn:
    raise IndexError(
        "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and "
        "integer or boolean arrays are valid indices"
    )


def _consumed(item: Any) -> int:
    if item is None or item is Ellipsis or isinstance(item, bool):
        return 0
    if isinstance(item, np.ndarray) and item.dtype == bool:
        return item.ndim
    return 1


def split_index(key: Any, shape: tuple[int, ...]) -> tuple[Box, tuple[Any, ...]]:
    """Split a numpy index into a box (one positive-step slice per axis) and the rest.

    ``array[key]`` equals ``array[box][rest]`` for every array of ``shape``,
    with numpy's errors (``IndexError``) for invalid or out-of-bounds indices.
    Drivers without ``native_indexing`` only ever see boxes.

    Example:
        >>> box, rest = split_index((1, slice(None, None, -2)), (3, 5))
        >>> box, rest
        ((slice(1, 2, 1), slice(0, 5, 2)), (0, slice(None, None, -1)))
        >>> a = np.arange(15).reshape(3, 5)
        >>> bool((a[1, ::-2] == a[box][rest]).all())
        True
    """
    items = _normalize_key(key)
    ndim = len(shape)
    used = sum(_consumed(item) for item in items)
    if used > ndim:
        raise IndexError(
            f"too many indices for array: array is {ndim}-dimensional, but {used} were indexed"
        )
    box: list[slice] = []
    rest: list[Any] = []
    axis = 0
    for item in items:
        if item is None or isinstance(item, bool):
            rest.append(item)
        elif item is Ellipsis:
            for _ in range(ndim - used):
                box.append(slice(0, shape[axis], 1))
                axis += 1
            rest.append(Ellipsis)
        elif isinstance(item, slice):
            n = shape[axis]
            r = range(*item.indices(n))
            if len(r) == 0:
                box.append(slice(0, 0, 1))
                rest.append(slice(None))
            elif r.step > 0:
                box.append(slice(r.start, r[-1] + 1, r.step))
                rest.append(slice(None))
            else:
                box.append(slice(r[-1], r.start + 1, -r.step))
                rest.append(slice(None, None, -1))
            axis += 1
        elif isinstance(item, int):
            n = shape[axis]
            if not -n <= item < n:
                raise IndexError(f"index {item} is out of bounds for axis {axis} with size {n}")
            i = item % n
            box.append(slice(i, i + 1, 1))
            rest.append(0)
            axis += 1
        elif item.dtype == bool:
            sub = shape[axis : axis + item.ndim]
            if item.shape != sub:
                raise IndexError(
                    f"boolean index did not match indexed array along axis {axis}; "
                    f"size of axis is {shape[axis] if item.ndim else 0} but size of "
                    f"corresponding boolean axis is {item.shape[0] if item.ndim else 0}"
                )
            for k, nonzero in enumerate(np.nonzero(item)):
                b, r_idx = _int_array_box(nonzero, shape[axis + k], axis + k)
                box.append(b)
                rest.append(r_idx)
            axis += item.ndim
        else:
            b, r_idx = _int_array_box(item, shape[axis], axis)
            box.append(b)
            rest.append(r_idx)
            axis += 1
    while axis < ndim:
        box.append(slice(0, shape[axis], 1))
        axis += 1
    return tuple(box), tuple(rest)


def _int_array_box(
    idx: np.ndarray[Any, Any], n: int, axis: int
) -> tuple[slice, np.ndarray[Any, Any]]:
    if idx.size == 0:
        return slice(0, 0, 1), idx.astype(np.intp)
    lo, hi = int(idx.min()), int(idx.max())
    if lo < -n or hi >= n:
        bad = lo if lo < -n else hi
        raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {n}")
    idx = np.where(idx < 0, idx + n, idx)
    lo, hi = int(idx.min()), int(idx.max())
    return slice(lo, hi + 1, 1), idx - lo


def _box_shape(box: Box) -> tuple[int, ...]:
    return tuple(len(range(b.start, b.stop, b.step)) for b in box)


def _fits(key: Any, value: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> bool:
    """Whether ``array[key] = value`` is a valid numpy assignment for an array of ``shape``."""
    try:
        target = np.broadcast_to(np.zeros((), dtype), shape)[key]
        np.broadcast_to(np.asarray(value), np.shape(target))
    except (IndexError, ValueError):
        return False
    return True


def _rows_needed(key: Any, length: int) -> int | None:
    """The axis-0 length an assignment to ``key`` needs, if it names rows past ``length``."""
    items = key if isinstance(key, tuple) else (key,)
    for item in items:
        if item is None or isinstance(item, (bool, np.bool_)):
            continue
        if item is Ellipsis:
            return None
        if isinstance(item, slice):
            step = 1 if item.step is None else operator.index(item.step)
            if step > 0 and item.stop is not None:
                stop = operator.index(item.stop)
                start = 0 if item.start is None else operator.index(item.start)
                if stop > length and start >= 0 and stop > start:
                    return stop
            return None
        if isinstance(item, (int, np.integer)):
            i = int(item)
            return i + 1 if i >= length else None
        if isinstance(item, (list, np.ndarray)):
            arr = np.asarray(item)
            if arr.dtype.kind in "iu" and arr.size:
                top = int(arr.max())
                return top + 1 if top >= length else None
        return None
    return None


# --------------------------------------------------------------------------- the proxy


class ArrayProxy:
    """A lazy handle on a stored array with numpy indexing, assignment and ``append``.

    ``read_only=True`` makes every write raise :class:`persist_hooks.ReadOnlyError`.
    ``writer_lock``, when given, is called for a context manager held around
    each write.  ``modified_marker``, when given, is the file created before
    the first in-place change (see the module docstring, with the cost model
    and copy policy).

    Example:
        >>> import tempfile, pathlib
        >>> from persist_hooks.backends.npy import NpyBackend
        >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
        >>> e = b.write(root, "g1", {"a": np.arange(6.0).reshape(3, 2)})["a"]
        >>> p = b.open(root, e, mode="a")
        >>> p.append([6.0, 7.0]); p[0, 1] = -1.0
        >>> p.shape, p[::-2, 1]
        ((4, 2), array([7., 3.]))
        >>> np.asarray(p).sum()
        np.float64(26.0)
    """

    __slots__ = ("_driver", "_marked", "_marker", "_read_only", "_writer_lock")

    def __init__(
        self,
        driver: ArrayDriver,
        *,
        read_only: bool = False,
        writer_lock: WriterLockFactory | None = None,
        modified_marker: Path | None = None,
    ) -> None:
        self._driver = driver
        self._read_only = bool(read_only)
        self._writer_lock = writer_lock
        self._marker = modified_marker
        self._marked = False

    def close(self) -> None:
        """Release what the proxy's driver holds (HDF5: the pinned file); later use re-opens by path.

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> p = b.open(root, b.write(root, "g1", {"a": np.zeros(2)})["a"], mode="a")
            >>> p.close(); p.shape
            (2,)
        """
        self._driver.close()

    # ------------------------------------------------------------------ metadata

    @property
    def driver(self) -> ArrayDriver:
        """The backend driver underneath (for backend-specific needs).

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> p = b.open(root, b.write(root, "g1", {"a": np.zeros(2)})["a"], mode="a")
            >>> type(p.driver).__name__
            'NpyDriver'
        """
        return self._driver

    @property
    def read_only(self) -> bool:
        """Whether writes raise :class:`persist_hooks.ReadOnlyError`.

        Example:
            >>> import pickle, tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> p = b.open(root, b.write(root, "g1", {"a": np.zeros(2)})["a"], mode="a")
            >>> p.read_only, pickle.loads(pickle.dumps(p)).read_only
            (False, True)
        """
        return self._read_only

    @property
    def shape(self) -> tuple[int, ...]:
        """The current shape (reflects appends by other handles and processes).

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> b.open(root, b.write(root, "g1", {"a": np.zeros((2, 3))})["a"], mode="a").shape
            (2, 3)
        """
        return self._driver.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The stored dtype.

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> b.open(root, b.write(root, "g1", {"a": np.zeros(2, ">i4")})["a"], mode="a").dtype
            dtype('>i4')
        """
        return self._driver.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions.

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> b.open(root, b.write(root, "g1", {"a": np.zeros((2, 3))})["a"], mode="a").ndim
            2
        """
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements.

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> b.open(root, b.write(root, "g1", {"a": np.zeros((2, 3))})["a"], mode="a").size
            6
        """
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes the elements take in memory (``size * itemsize``).

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> b.open(root, b.write(root, "g1", {"a": np.zeros((2, 3))})["a"], mode="a").nbytes
            48
        """
        return self.size * self.dtype.itemsize

    @property
    def attrs(self) -> ProxyAttrs:
        """Persistent metadata, a dict-like view (writes obey ``read_only`` and the lock).

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> p = b.open(root, b.write(root, "g1", {"a": np.zeros(2)})["a"], mode="a")
            >>> p.attrs["units"] = "m"
            >>> dict(p.attrs)
            {'units': 'm'}
        """
        return ProxyAttrs(self)

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of unsized object")
        return shape[0]

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                "The truth value of an array with more than one element (or none) is ambiguous. "
                "Use a.any() or a.all()"
            )
        return bool(np.asarray(self))

    def __repr__(self) -> str:
        try:
            what = f"shape={self.shape} dtype={self.dtype}"
        except OSError as exc:
            what = f"unavailable: {exc}"
        mode = "read-only" if self._read_only else "writable"
        return f"<ArrayProxy {self._driver.location} {what} {mode}>"

    # ------------------------------------------------------------------ reading

    def __getitem__(self, key: Any) -> Any:
        driver = self._driver
        if driver.native_indexing:
            return driver.read(key)
        with driver.session():
            box, rest = split_index(key, driver.shape)
            block = np.asarray(driver.read(box))
        return block[rest]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        if copy is False:
            raise ValueError(
                "an ArrayProxy cannot be converted to an array without a copy; use copy=None"
            )
        out = np.asarray(self[...])
        if dtype is not None and out.dtype != np.dtype(dtype):
            out = out.astype(dtype)
        return out

    def __iter__(self) -> Iterator[Any]:
        shape = self.shape
        if not shape:
            raise TypeError("iteration over a 0-d array")
        row_bytes = math.prod(shape[1:]) * self.dtype.itemsize
        step = max(1, ITER_CHUNK_BYTES // row_bytes) if row_bytes else max(1, shape[0])
        for start in range(0, shape[0], step):
            yield from self[start : min(start + step, shape[0])]

    # ------------------------------------------------------------------ writing

    def _check_writable(self) -> None:
        if self._read_only:
            raise ReadOnlyError(
                f"{self!r} is read-only (opened with mode 'r', or unpickled); to write, open it "
                "writable: DataSet(name, 'a', ...) or backend.open(root, entry, mode='a')"
            )

    def _locked(self) -> contextlib.AbstractContextManager[Any]:
        return self._writer_lock() if self._writer_lock is not None else contextlib.nullcontext()

    def _modifying(self) -> None:
        """Record, once, that the stored data changes in place (call under the lock, before writing)."""
        if self._marker is not None and not self._marked:
            mark_modified(self._marker, durable=bool(getattr(self._driver, "durable", False)))
            self._marked = True

    def __setitem__(self, key: Any, value: Any) -> None:
        self._check_writable()
        with self._locked(), self._driver.session(write=True):
            driver = self._driver
            shape = driver.shape
            needed = _rows_needed(key, shape[0]) if shape else None
            if needed is not None and _fits(key, value, shape, self.dtype):
                # a valid numpy assignment (a clipped slice) keeps numpy's meaning: no growth
                needed = None
            if needed is None:
                self._modifying()
                self._write(key, value, shape)
                return
            new_shape = (needed, *shape[1:])
            if not _fits(key, value, new_shape, self.dtype):
                raise ValueError(
                    f"could not broadcast a value of shape {np.shape(value)} to the selection "
                    f"{key!r} of an array grown to shape {new_shape}"
                )
            self._modifying()
            driver.resize(needed)
            try:
                self._write(key, value, new_shape)
            except BaseException:
                driver.resize(shape[0])
                raise

    def _write(self, key: Any, value: Any, shape: tuple[int, ...]) -> None:
        driver = self._driver
        if driver.native_indexing:
            driver.write(key, value)
            return
        box, rest = split_index(key, shape)
        box_shape = _box_shape(box)
        advanced = any(isinstance(r, np.ndarray) for r in rest)
        n_box = math.prod(box_shape)
        if advanced and n_box:
            block = np.array(driver.read(box), dtype=self.dtype)
            block[rest] = value
        else:
            block = np.empty(box_shape, self.dtype)
            block[rest] = value  # numpy checks broadcasting and casting here
            if any(r is False for r in rest):
                return  # a False scalar index selects nothing
        if n_box:
            driver.write(box, block)

    def append(self, rows: Any) -> None:
        """Append one row (shape ``shape[1:]``) or many (``(k, *shape[1:])``) along axis 0.

        Arrays are cast with ``same_kind`` casting; other values are converted
        with ``numpy.asarray(rows, dtype=self.dtype)``.  Costs O(rows) for npy.

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> p = b.open(root, b.write(root, "g1", {"a": np.zeros((1, 2))})["a"], mode="a")
            >>> p.append([1, 2]); p.append([[3, 4], [5, 6]])
            >>> p[:, 0]
            array([0., 1., 3., 5.])
        """
        self._check_writable()
        dtype = self.dtype
        if isinstance(rows, np.ndarray):
            arr = rows.astype(dtype, casting="same_kind", copy=False)
        else:
            arr = np.asarray(rows, dtype=dtype)
        with self._locked(), self._driver.session(write=True):
            shape = self._driver.shape
            if not shape:
                raise TypeError("cannot append to a 0-d array")
            if arr.ndim == len(shape) - 1:
                arr = arr[np.newaxis]
            if arr.shape[1:] != shape[1:]:
                raise ValueError(
                    f"cannot append rows of shape {arr.shape} to an array of shape {shape}: "
                    f"give one row of shape {shape[1:]} or rows of shape (k, *{shape[1:]})"
                )
            if arr.shape[0]:
                self._modifying()
                self._driver.append(arr)

    def resize(self, length: int) -> None:
        """Set the length of axis 0; new rows read as zeros (the backend's fill value).

        Example:
            >>> import tempfile, pathlib
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> p = b.open(root, b.write(root, "g1", {"a": np.ones(2)})["a"], mode="a")
            >>> p.resize(4); p[...]
            array([1., 1., 0., 0.])
        """
        self._check_writable()
        length = operator.index(length)
        if length < 0:
            raise ValueError(f"negative length {length}")
        with self._locked(), self._driver.session(write=True):
            if not self._driver.shape:
                raise TypeError("cannot resize a 0-d array")
            self._modifying()
            self._driver.resize(length)

    # ------------------------------------------------------------------ copy policy

    def __copy__(self) -> ArrayProxy:
        return ArrayProxy(
            self._driver,
            read_only=self._read_only,
            writer_lock=self._writer_lock,
            modified_marker=self._marker,
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> np.ndarray[Any, Any]:
        out = np.asarray(self)
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_unpickle_read_only, (self._driver,))


def _unpickle_read_only(driver: ArrayDriver) -> ArrayProxy:
    return ArrayProxy(driver, read_only=True)


class ProxyAttrs(MutableMapping[str, Any]):
    """The ``attrs`` of an :class:`ArrayProxy`: reads the store each time, writes under the lock.

    Example:
        >>> import tempfile, pathlib
        >>> from persist_hooks.backends.npy import NpyBackend
        >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
        >>> p = b.open(root, b.write(root, "g1", {"a": np.zeros(2)})["a"], mode="a")
        >>> p.attrs.update(units="m", scale=2); del p.attrs["scale"]
        >>> p.attrs
        ProxyAttrs({'units': 'm'})
    """

    __slots__ = ("_proxy",)

    def __init__(self, proxy: ArrayProxy) -> None:
        self._proxy = proxy

    def __getitem__(self, key: str) -> Any:
        return self._proxy.driver.get_attrs()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._proxy.driver.get_attrs())

    def __len__(self) -> int:
        return len(self._proxy.driver.get_attrs())

    def _change(self, key: str, value: Any, delete: bool) -> None:
        proxy = self._proxy
        proxy._check_writable()
        with proxy._locked():
            attrs = proxy.driver.get_attrs()
            if delete:
                del attrs[key]
            else:
                attrs[key] = value
            proxy.driver.set_attrs(attrs)

    def __setitem__(self, key: str, value: Any) -> None:
        self._change(key, value, delete=False)

    def __delitem__(self, key: str) -> None:
        self._change(key, None, delete=True)

    def __repr__(self) -> str:
        return f"ProxyAttrs({self._proxy.driver.get_attrs()!r})"

"""The ``hdf5`` storage backend: one ``.h5`` file per item write, one dataset per array.

Files
    ``Backend.write(root, stem, arrays)`` creates ``<stem>.h5`` (``O_EXCL``: an
    existing file is never overwritten) holding one dataset per key.  The
    dataset is named after the key when the key is a plain identifier not
    starting with ``_``, else ``_<position>``; the entry records it as ``key``
    beside ``path``, ``shape`` and ``dtype``.

Layout
    Datasets of one or more dimensions are chunked and resizable along axis 0
    (``maxshape[0] = None``) so proxies can append.  A chunk holds whole rows
    and about 1 MiB (h5py's automatic ~100 kB chunks read 1.4-1.6x slower);
    arrays smaller than that get a chunk of at least 64 KiB rounded to a power
    of two of rows, rows larger than 4 MiB are split along the trailing axes.
    0-d arrays are stored contiguous.  Files are opened with HDF5's chunk
    cache disabled (``rdcc_nbytes=0``): each proxy operation opens the file
    anew, so the cache never serves a second read, and without it whole-array
    reads and writes of uncompressed chunks run at the speed of contiguous
    storage (measured: 15 ms instead of 24 ms to read 1e7 float64).  Compression is opt-in through the
    options ``compression`` (``None``, ``"gzip"``, ``"lzf"``),
    ``compression_opts`` (gzip level 0-9) and ``shuffle``.

Writing
    HDF5 copies every chunk it writes through a chunk buffer: a chunked write
    took 1.35x a contiguous one (4.3 vs 3.2 ms for 1e6 float64, 30 vs 22 ms
    for 1e7).  So an uncompressed, C-contiguous array of a simple dtype is
    written the way HDF5 would lay it out without that copy: the dataset is
    created with every chunk allocated (``ALLOC_TIME_EARLY``) and no fill
    written (``FILL_TIME_NEVER``), HDF5 reports each chunk's file address
    (``H5Dchunk_iter``), and after HDF5 has closed the file the array's bytes
    go there with ``pwrite`` (a chunk of whole rows is one run of the array's
    bytes; adjacent chunks are one write), into space allocated first with
    ``fallocate``: HDF5 only extends the file, and filling its holes took
    ~20% longer.  The file is an ordinary HDF5 file; measured 0.84-1.04x
    h5py's contiguous write (1e7 / 1e6 float64, the DataSet's costs
    included).  Compressed, compound, opaque and non-contiguous arrays are
    written by HDF5 (``ds[...] = arr``).
    Growing such a dataset allocates the new chunks at once (fresh, zeroed
    file space); the rows after the old end in its old last chunk are zeroed
    explicitly, as HDF5 writes no fill there.

dtypes
    Every numeric, bool and complex dtype in either byte order, fixed-width
    bytes (``S``), unstructured void (``V<n>``, an HDF5 opaque type) and
    structured dtypes (HDF5 compound types, offsets and padding kept) are
    stored natively, bit-exact.  Where HDF5 has no matching type the data is
    stored as a same-size view and the dataset's attribute
    ``persist_hooks_view`` holds the numpy dtype to view it back as (JSON
    descr; a plain dtype string for unicode): unicode (``U<n>``) as its
    ``uint32`` code units (same byte order) on one more trailing axis of
    length ``n``, ``datetime64``/``timedelta64`` as ``int64`` (same byte
    order; the unit is in the attribute), and inside compound types unicode
    fields as ``uint32`` sub-arrays and datetime fields as ``int64``.
    Extended-precision floats (``longdouble``) are refused with a
    :class:`persist_hooks.BackendError` naming ``npy``; object arrays stay in
    the Python source.

Checksums
    Each entry records ``checksum`` (CRC-32 of the array's bytes in C order),
    computed in a thread while HDF5 writes the data.

Reading
    ``open(mode="r")`` returns a read-only
    :class:`~persist_hooks.backends.proxy.ArrayProxy`, ``mode="a"`` a writable
    one, over :class:`Hdf5Driver`, which opens the file with h5py for each
    proxy operation (the shape lookup and the read or write share one open)
    and closes it at once, so no HDF5 handle is held between operations.  With
    ``trusted=True`` ``open`` itself does not open the file with h5py (a
    damaged file is reported at the first access); ``trusted=False`` checks
    the dataset's shape and dtype first.

    A proxy *pins* its file: it holds a plain read-only file descriptor (no
    HDF5 handle, no HDF5 lock) from ``open`` until the proxy is closed
    (``p.close()``) or garbage-collected.  When a later write of the item has
    removed (unlinked) the file, reads go through that descriptor (h5py's
    file-object driver), so a value read before a rewrite stays readable, like
    an npy memory map; writes to a removed or replaced file raise
    ``FileNotFoundError`` instead of changing data nobody will read.

    Costs: every operation opens the file (~0.2 ms; reads through h5py's low-level
    API with a cached file-access property list); ``p[box]`` reads only the
    chunks the box touches; ``append`` resizes and writes the new rows in one
    open, O(rows); ``np.asarray(p)`` is O(n).  HDF5 locks a file while a process has it open (readers shared,
    writers exclusive); as every operation holds the file only briefly, an
    open that finds it locked retries for up to 10 s, then raises
    :class:`persist_hooks.LockTimeout`.  Attributes (``p.attrs``) are stored as one JSON string attribute
    ``persist_hooks_attrs`` on the dataset.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()); b = Hdf5Backend()
    >>> b.write(root, "x_data/g1", {"array_0": np.arange(4.0)})
    {'array_0': {'path': 'x_data/g1.h5', 'shape': [4], 'dtype': '<f8', 'key': 'array_0', 'checksum': 'crc...'}}
    >>> import h5py
    >>> with h5py.File(root / "x_data/g1.h5", "r") as f:
    ...     f["array_0"][()]
    array([0., 1., 2., 3.])
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import numpy.lib.format as npformat

from persist_hooks.backends.base import (
    Backend,
    EntryGatherer,
    OnEntries,
    WriterLockFactory,
    describe_entry,
    dtype_from_json,
    dtype_to_json,
    entry_shape_dtype,
    fsync_dir,
    make_dirs,
    make_entry,
    modified_marker,
    preallocate,
    remove_companions,
    report_written,
    resolve_path,
    rollback_on_error,
    same_layout,
    start_checksum,
)
from persist_hooks.backends.lazy import iter_row_blocks, lazy_source
from persist_hooks.backends.proxy import ArrayDriver, ArrayProxy
from persist_hooks.errors import BackendError, FormatError, LockTimeout

__all__ = ["Hdf5Backend", "Hdf5Driver"]

CHUNK_BYTES = 1 << 20
"""Target bytes per chunk for arrays of at least that size."""
MIN_CHUNK_BYTES = 64 << 10
"""Smallest chunk given to a small array (room to append without tiny chunks)."""
MAX_CHUNK_BYTES = 4 << 20
"""Rows larger than this are split along their trailing axes."""
BLOCK_BYTES = 16 << 20
"""Bytes per block when writing a non-contiguous array."""
VIEW_ATTR = "persist_hooks_view"
ATTRS_ATTR = "persist_hooks_attrs"
COMPRESSIONS = (None, "gzip", "lzf")
LOCK_WAIT = 10.0
"""Seconds to wait for HDF5's file lock, held by another process for one operation."""
_SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def _h5py() -> Any:
    """Import h5py (lazily: the core and plain imports of this plugin never pay for it)."""
    import h5py  # type: ignore[import-untyped]

    return h5py


# --------------------------------------------------------------------------- helpers


def _dataset_name(key: str, position: int) -> str:
    """The dataset name for ``key``: the key itself if it is a plain identifier, else ``_<position>``.

    Example:
        >>> _dataset_name("array_0", 0), _dataset_name("weird key/../x", 1)
        ('array_0', '_1')
    """
    return key if _SAFE_NAME.match(key) else f"_{position}"


def _storage_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype HDF5 stores for ``dtype`` (same itemsize; see the module doc).

    Example:
        >>> _storage_dtype(np.dtype(">U2")), _storage_dtype(np.dtype("<M8[ns]"))
        (dtype('>u4'), dtype('int64'))
        >>> _storage_dtype(np.dtype([("t", "<m8[s]"), ("s", "U2")]))
        dtype([('t', '<i8'), ('s', '<u4', (2,))])
    """
    if dtype.kind == "U":
        return np.dtype("u4").newbyteorder(dtype.byteorder)
    if dtype.kind in "mM":
        return np.dtype("i8").newbyteorder(dtype.byteorder)
    if dtype.fields is not None:
        names = list(dtype.names or ())
        return np.dtype(
            {
                "names": names,
                "formats": [_field_storage(dtype.fields[n][0]) for n in names],
                "offsets": [dtype.fields[n][1] for n in names],
                "itemsize": dtype.itemsize,
            }
        )
    return dtype


def _field_storage(sub: np.dtype[Any]) -> Any:
    """The stored form of one field of a structured dtype (unicode fields: a ``uint32`` sub-array)."""
    base, shape = (sub.base, sub.shape) if sub.subdtype is not None else (sub, ())
    if base.kind == "U":
        shape = (*shape, base.itemsize // 4)
    stored = _storage_dtype(base)
    return (stored, shape) if shape else stored


def _needs_view(dtype: np.dtype[Any]) -> bool:
    """Whether ``dtype`` is stored as another dtype (and the dataset records it)."""
    return dtype.kind in "mMU" or _storage_dtype(dtype) != dtype


def _to_storage(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``arr`` as HDF5 stores it (a view: unicode with one more trailing axis)."""
    if not _needs_view(arr.dtype):
        return arr
    flat = np.ascontiguousarray(arr)
    stored = flat.view(_storage_dtype(arr.dtype))
    if arr.dtype.kind == "U":
        return stored.reshape(*arr.shape, arr.dtype.itemsize // 4)
    return stored


def _from_storage(raw: Any, view: np.dtype[Any] | None) -> Any:
    """Inverse of :func:`_to_storage` for data read back."""
    if view is None:
        return raw
    raw = np.asarray(raw)
    store = _storage_dtype(view)
    if raw.dtype != store:
        raw = raw.astype(store)
    raw = np.ascontiguousarray(raw)
    if view.kind == "U":
        return raw.view(view).reshape(raw.shape[:-1])
    return raw.view(view)


def _view_text(dtype: np.dtype[Any]) -> str:
    """The ``persist_hooks_view`` attribute for ``dtype``: its ``str`` for unicode, else a JSON descr."""
    return dtype.str if dtype.kind == "U" else json.dumps(dtype_to_json(dtype))


def _parse_view(text: str) -> np.dtype[Any]:
    """Inverse of :func:`_view_text` (raises :class:`FormatError` when invalid)."""
    if text[:1] in ('"', "["):
        try:
            descr = json.loads(text)
        except ValueError as exc:
            raise FormatError(f"invalid {VIEW_ATTR} {text!r}: {exc}") from None
        return dtype_from_json(descr)
    return dtype_from_json(text)


def _layout(
    shape: tuple[int, ...], itemsize: int, ndim: int
) -> tuple[tuple[int, ...] | None, tuple[int | None, ...] | None]:
    """``(chunks, maxshape)`` for a stored array of ``shape`` whose logical rank is ``ndim``.

    Example:
        >>> _layout((10**7,), 8, 1)
        ((131072,), (None,))
        >>> _layout((3, 0), 8, 2)
        ((8192, 1), (None, None))
        >>> _layout((), 8, 0)
        (None, None)
    """
    if ndim == 0:
        return None, None
    maxshape: tuple[int | None, ...] = (None, *(None if n == 0 else n for n in shape[1:]))
    dims = [max(n, 1) for n in shape[1:]]
    row = math.prod(dims) * itemsize
    if row >= CHUNK_BYTES:
        while math.prod(dims) * itemsize > MAX_CHUNK_BYTES:
            i = max(range(len(dims)), key=dims.__getitem__)
            dims[i] = -(-dims[i] // 2)
        return (1, *dims), maxshape
    target = -(-CHUNK_BYTES // row)
    small = 1 << max(shape[0] - 1, 0).bit_length()
    rows = min(target, max(small, -(-MIN_CHUNK_BYTES // row)))
    return (rows, *dims), maxshape


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _missing(path: Path, what: str = "") -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, f"No such HDF5 {what or 'file'}", str(path))


class _Pin:
    """A plain read-only descriptor of a data file, closed when released or collected."""

    __slots__ = ("fd", "ident")

    def __init__(self, path: str) -> None:
        self.fd = -1
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
        st = os.fstat(fd)
        self.fd = fd
        self.ident = (st.st_dev, st.st_ino)

    def release(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _h5open(
    path: Path, mode: str = "r", target: Any = None, *, check: bool = True, raw: bool = False
) -> Any:
    """Open ``path`` (or ``target``, a file object for it) with h5py; return the ``h5py.File``.

    A missing file raises ``FileNotFoundError`` (checked first unless ``check``
    is false), a damaged one FormatError; a file locked by another process is
    waited for (see the module doc).  ``raw=True`` (read-only, by path): a
    low-level ``h5py.h5f.FileID`` opened with :func:`_fast_fapl`.
    """
    h5py = _h5py()
    if check and target is None and not os.path.exists(path):
        raise _missing(path)
    deadline = time.monotonic() + LOCK_WAIT
    pause = 0.001
    while True:
        try:
            if raw:
                return h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY, fapl=_fast_fapl())
            return h5py.File(str(path) if target is None else target, mode, rdcc_nbytes=0)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if not path.exists():
                raise _missing(path) from None
            if not _is_lock_error(exc):
                raise FormatError(f"{path}: not a readable HDF5 file: {exc}") from None
            # another process has the file open for one operation (HDF5 file locking)
            if time.monotonic() > deadline:
                raise LockTimeout(
                    f"{path}: HDF5 file still locked by another process after {LOCK_WAIT} s"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


@contextlib.contextmanager
def _h5file(path: Path, mode: str = "r", *, target: Any = None) -> Iterator[Any]:
    """:func:`_h5open` as a context manager; errors from the data raise FormatError."""
    f = _h5open(path, mode, target)
    try:
        with f:
            yield f
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise FormatError(f"{path}: damaged HDF5 data: {exc}") from None


_FAST_FAPL: Any = None


def _fast_fapl() -> Any:
    """The file-access property list of low-level read opens (made once): chunk cache off,
    closing the file closes its objects."""
    global _FAST_FAPL
    if _FAST_FAPL is None:
        h5py = _h5py()
        plist = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        plist.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)
        cache = list(plist.get_cache())
        cache[2] = 0  # rdcc_nbytes
        plist.set_cache(*cache)
        plist.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
        _FAST_FAPL = plist
    return _FAST_FAPL


def _open_dataset_id(fid: Any, key: str, path: Path) -> Any:
    """``h5d.open`` of dataset ``key``; a missing one raises ``FileNotFoundError``, anything else
    that is not a dataset FormatError (the caller closes ``fid``)."""
    h5py = _h5py()
    try:
        return h5py.h5d.open(fid, key.encode("utf8"))
    except KeyError:
        raise _missing(path, f"dataset {key!r} in file") from None
    except Exception as exc:
        raise FormatError(f"{path}: {key!r} is not a readable HDF5 dataset: {exc}") from None


def _read_box(dsid: Any, box: tuple[slice, ...], dtype: np.dtype[Any], path: Path) -> Any:
    """Read the box (positive-step slices, one per stored axis) raw into a new array of ``dtype``.

    The file's own datatype is the memory type, so bytes are copied unconverted
    (bit-exact); ``None`` when the sizes do not match (the caller reads with h5py).
    """
    h5py = _h5py()
    ftype = dsid.get_type()
    if ftype.get_size() != dtype.itemsize or len(box) != dsid.rank:
        return None
    try:
        if not box:
            out = np.empty((), dtype)
            dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, out, mtype=ftype)
            return out
        count = tuple(len(range(s.start, s.stop, s.step)) for s in box)
        fspace = dsid.get_space()
        fspace.select_hyperslab(tuple(s.start for s in box), count, tuple(s.step for s in box))
        out = np.empty(count, dtype)
        dsid.read(h5py.h5s.create_simple(count), fspace, out, mtype=ftype)
        return out
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: damaged HDF5 data: {exc}") from None


def _is_lock_error(exc: OSError) -> bool:
    """Whether h5py failed to open a file because another process holds HDF5's lock on it."""
    return "unable to lock file" in str(exc).lower() or exc.errno in (
        errno.EAGAIN,
        errno.EWOULDBLOCK,
    )


def _dataset(f: Any, key: str, path: Path) -> Any:
    h5py = _h5py()
    try:
        ds = f[key]
    except KeyError:
        raise _missing(path, f"dataset {key!r} in file") from None
    if not isinstance(ds, h5py.Dataset):
        raise FormatError(f"{path}: {key!r} is not an HDF5 dataset")
    return ds


def _view_of(ds: Any, path: Path) -> np.dtype[Any] | None:
    """The numpy dtype a dataset stands for when stored as a view, or ``None``; FormatError if inconsistent."""
    attr = ds.attrs.get(VIEW_ATTR)
    if attr is None:
        return None
    if isinstance(attr, bytes):
        attr = attr.decode("utf8")
    try:
        view = _parse_view(str(attr))
    except FormatError as exc:
        raise FormatError(f"{path}: dataset {ds.name!r}: {exc}") from None
    if (
        not _needs_view(view)
        or ds.dtype.itemsize != _storage_dtype(view).itemsize
        or (view.kind == "U" and (not ds.shape or ds.shape[-1] != view.itemsize // 4))
    ):
        raise FormatError(f"{path}: dataset {ds.name!r} has an inconsistent {VIEW_ATTR} attribute")
    return view


# --------------------------------------------------------------------------- the driver


class Hdf5Driver(ArrayDriver):
    """Raw access to one dataset of an ``.h5`` file for an :class:`ArrayProxy` (opens the file per operation).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> e = Hdf5Backend().write(root, "g1", {"a": np.arange(3)})["a"]
        >>> d = Hdf5Driver(root / e["path"], e["path"], e["key"], np.dtype("<i8"))
        >>> d.shape, d.read((slice(1, 3, 1),))
        ((3,), array([1, 2]))
    """

    native_indexing: ClassVar[bool] = False

    def __init__(
        self,
        path: Path,
        relative: str,
        key: str,
        dtype: np.dtype[Any],
        *,
        durable: bool = False,
    ) -> None:
        self.path = Path(path)
        self._spath = str(path)
        self.relative = relative
        self.key = key
        self._dtype = np.dtype(dtype)
        self._view = self._dtype if _needs_view(self._dtype) else None
        self._axis = self._dtype.kind == "U"  # stored with one more trailing axis
        self.durable = durable
        self._pin: _Pin | None = None
        self._local = threading.local()  # the dataset held open by the current session

    def pin(self) -> None:
        """Hold a plain descriptor of the file (see the module doc); ``FileNotFoundError`` if it is gone."""
        if self._pin is None:
            self._pin = _Pin(self._spath)

    def close(self) -> None:
        """Release the pinned descriptor; later operations open the file by its path."""
        pin, self._pin = self._pin, None
        if pin is not None:
            pin.release()

    def _target(self, write: bool) -> Any:
        """``None`` (open by path) or a file object on the pinned file when the path no longer holds it."""
        pin = self._pin
        if pin is None:
            return None
        try:
            st = os.stat(self._spath)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            current = None
        if current == pin.ident:
            return None
        if write:
            raise FileNotFoundError(
                errno.ENOENT,
                f"{self.location} was removed or replaced by a newer write of the item; "
                "re-read the item to change its current data",
                str(self.path),
            )
        return io.FileIO(os.dup(pin.fd), "rb")

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "relative": self.relative,
            "key": self.key,
            "dtype": dtype_to_json(self._dtype),
            "durable": self.durable,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            Path(state["path"]),
            state["relative"],
            state["key"],
            dtype_from_json(state["dtype"]),
            durable=state["durable"],
        )

    @property
    def location(self) -> str:
        """``"HDF5 dataset <file>:/<key>"``."""
        return f"HDF5 dataset {self.relative}:/{self.key}"

    @contextlib.contextmanager
    def _open(self, mode: str = "r") -> Iterator[Any]:
        held = getattr(self._local, "held", None)
        if held is not None and (mode == "r" or held[1]):
            yield held[0]  # inside a session that has the dataset open
            return
        target = self._target(mode != "r")
        try:
            try:
                f = _h5open(self.path, mode, target, check=self._pin is None)
            except FileNotFoundError:
                if mode != "r" or target is not None or self._pin is None:
                    raise
                # removed between the check and the open: read the pinned file
                target = io.FileIO(os.dup(self._pin.fd), "rb")
                f = _h5open(self.path, mode, target)
            try:
                with f:
                    yield _dataset(f, self.key, self.path)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                raise FormatError(f"{self.path}: damaged HDF5 data: {exc}") from None
        finally:
            if target is not None:
                target.close()
        if mode != "r" and self.durable:
            _fsync_file(self.path)

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        """Keep the dataset open for the calls of one proxy operation (one h5py open, not several).

        A read session on the file at its path uses h5py's low-level API (a
        cached file-access property list, ``h5d.open``, hyperslab reads into
        a new array): about 0.2 ms less per operation than ``h5py.File``.
        """
        local = self._local
        if getattr(local, "held", None) is not None or getattr(local, "fast", None) is not None:
            yield
            return
        if not write and self._target(False) is None:
            try:
                fid = _h5open(self.path, "r", None, check=self._pin is None, raw=True)
            except FileNotFoundError:
                if self._pin is None:
                    raise
                fid = None  # removed meanwhile: the high-level path reads the pinned file
            if fid is not None:
                try:
                    local.fast = _open_dataset_id(fid, self.key, self.path)
                    yield
                finally:
                    local.fast = None
                    fid.close()  # CLOSE_STRONG: closes the dataset too
                return
        with self._open("r+" if write else "r") as ds:
            self._local.held = (ds, write)
            try:
                yield
            finally:
                self._local.held = None

    def _stored_box(self, box: tuple[slice, ...]) -> tuple[slice, ...]:
        return (*box, slice(None)) if self._axis else box

    def _in_session(self) -> bool:
        local = self._local
        return getattr(local, "held", None) is not None or getattr(local, "fast", None) is not None

    def _full_box(self, box: tuple[slice, ...]) -> tuple[slice, ...]:
        """The stored box with explicit bounds on the code-unit axis of unicode data."""
        return (*box, slice(0, self._dtype.itemsize // 4, 1)) if self._axis else box

    @property
    def shape(self) -> tuple[int, ...]:
        """The dataset's shape now (without the code-unit axis of unicode data)."""
        if not self._in_session():
            with self.session():
                return self.shape
        fast = getattr(self._local, "fast", None)
        if fast is not None:
            shape = tuple(int(n) for n in fast.shape)
        else:
            with self._open() as ds:
                shape = tuple(int(n) for n in ds.shape)
        return shape[:-1] if self._axis else shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of the stored array."""
        return self._dtype

    def read(self, index: Any) -> Any:
        """Return the box ``index`` (a tuple of positive-step slices) as a new array."""
        if not self._in_session():
            with self.session():
                return self.read(index)
        box = tuple(index)
        if any(len(range(s.start, s.stop, s.step)) == 0 for s in box):
            self.shape  # noqa: B018 - a missing or damaged file still raises
            return np.empty(tuple(len(range(s.start, s.stop, s.step)) for s in box), self._dtype)
        fast = getattr(self._local, "fast", None)
        raw = None
        if fast is not None:
            raw = _read_box(fast, self._full_box(box), _storage_dtype(self._dtype), self.path)
        if raw is None:
            with self._open() as ds:
                raw = ds[self._stored_box(box)] if (box or self._axis) else ds[()]
        out = _from_storage(np.asarray(raw), self._view)
        if out.dtype != self._dtype:  # h5py may report an equivalent dtype differently
            out = out.astype(self._dtype)
        return out

    def write(self, index: Any, value: Any) -> None:
        """Store ``array[box] = value`` (``value`` has the box's shape and the stored dtype)."""
        box = tuple(index)
        block = np.asarray(value, dtype=self._dtype)
        if block.size == 0:
            return
        with self._open("r+") as ds:
            ds[self._stored_box(box) if (box or self._axis) else ()] = _to_storage(block)

    def resize(self, length: int) -> None:
        """Set the length of axis 0 (new rows read as zeros, HDF5's fill value).

        A dataset this backend wrote with its chunks allocated up front (see
        :func:`_raw_spans`) has no fill: new chunks are fresh file space (zeros),
        but the rows after the old end in the old last chunk may hold data of
        an earlier, longer extent, so those rows (one chunk at most) are zeroed.
        """
        with self._open("r+") as ds:
            old = int(ds.shape[0])
            ds.resize(length, axis=0)
            if length > old and ds.chunks is not None and _never_filled(ds):
                rows = int(ds.chunks[0])
                stop = min(length, -(-old // rows) * rows)
                if stop > old:
                    ds[old:stop] = np.zeros((stop - old, *ds.shape[1:]), ds.dtype)

    def append(self, rows: np.ndarray[Any, Any]) -> None:
        """Resize and write the new rows in one opening of the file: O(rows)."""
        with self._open("r+") as ds:
            start = int(ds.shape[0])
            ds.resize(start + rows.shape[0], axis=0)
            ds[start:] = _to_storage(np.asarray(rows, dtype=self._dtype))

    def get_attrs(self) -> dict[str, Any]:
        """The attributes stored as JSON in the dataset's ``persist_hooks_attrs``."""
        with self._open() as ds:
            text = ds.attrs.get(ATTRS_ATTR)
        if text is None:
            return {}
        if isinstance(text, bytes):
            text = text.decode("utf8")
        try:
            attrs = json.loads(str(text))
        except ValueError as exc:
            raise FormatError(f"{self.location}: invalid attributes: {exc}") from None
        if not isinstance(attrs, dict):
            raise FormatError(f"{self.location}: invalid attributes: not a JSON object")
        return attrs

    def set_attrs(self, attrs: dict[str, Any]) -> None:
        """Replace the stored attributes (removed when empty)."""
        try:
            text = json.dumps(attrs, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise BackendError(f"attributes of {self.location} must be JSON-able: {exc}") from None
        with self._open("r+") as ds:
            if attrs:
                ds.attrs[ATTRS_ATTR] = text
            elif ATTRS_ATTR in ds.attrs:
                del ds.attrs[ATTRS_ATTR]


# --------------------------------------------------------------------------- the backend


class Hdf5Backend(Backend):
    """One HDF5 file per item write, one chunked, growable dataset per array (see the module doc).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp()); b = Hdf5Backend(compression="gzip")
        >>> e = b.write(root, "g1", {"a": np.eye(2)})["a"]
        >>> p = b.open(root, e, mode="a"); p.append([[5.0, 6.0]])
        >>> p[...]
        array([[1., 0.],
               [0., 1.],
               [5., 6.]])
    """

    name: ClassVar[str] = "hdf5"
    distribution: ClassVar[str] = "persist-hooks-hdf5"
    supports_append: ClassVar[bool] = True
    supports_partial_writes: ClassVar[bool] = True
    supports_memmap: ClassVar[bool] = False
    supports_attrs: ClassVar[bool] = True
    supports_structured: ClassVar[bool] = True
    supports_datetime: ClassVar[bool] = True
    supports_void: ClassVar[bool] = True
    supports_longdouble: ClassVar[bool] = False
    supports_lazy_arrays: ClassVar[bool] = True
    supports_on_entries: ClassVar[bool] = True
    option_defaults: ClassVar[Mapping[str, Any]] = {
        "compression": None,
        "compression_opts": None,
        "shuffle": False,
    }

    def validate_option(self, key: str, value: Any) -> Any:
        """Check ``compression`` (None, "gzip", "lzf"), ``compression_opts`` (gzip level) and ``shuffle``.

        Example:
            >>> Hdf5Backend(compression="zip")
            Traceback (most recent call last):
            ...
            persist_hooks.errors.BackendError: option 'compression' of storage backend 'hdf5' must be one of None, 'gzip', 'lzf', not 'zip'
        """
        if key == "compression" and value not in COMPRESSIONS:
            raise BackendError(
                f"option 'compression' of storage backend 'hdf5' must be one of "
                f"{', '.join(map(repr, COMPRESSIONS))}, not {value!r}"
            )
        if (
            key == "compression_opts"
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9)
        ):
            raise BackendError(
                f"option 'compression_opts' of storage backend 'hdf5' must be None or a "
                f"gzip level 0-9, not {value!r}"
            )
        if key == "shuffle" and not isinstance(value, bool):
            raise BackendError(
                f"option 'shuffle' of storage backend 'hdf5' must be a bool, not {value!r}"
            )
        return value

    def write(
        self,
        root: Path,
        stem: str,
        arrays: Mapping[str, np.ndarray[Any, Any]],
        *,
        durable: bool = False,
        on_entries: OnEntries | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Write all ``arrays`` to the new file ``<stem>.h5``, one dataset each; see :meth:`Backend.write`.

        ``on_entries`` runs with the last checksum, on its pool thread while the
        last array's bytes are written.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> Hdf5Backend().write(root, "g2", {"a": np.zeros(2, "U3"), "b c": np.ones(1, bool)})
            {'a': {'path': 'g2.h5', 'shape': [2], 'dtype': '<U3', 'key': 'a', 'checksum': 'crc...'}, 'b c': {'path': 'g2.h5', 'shape': [1], 'dtype': '|b1', 'key': '_1', 'checksum': 'crc...'}}
        """
        root = Path(root)
        rel = f"{stem}.h5"
        path = resolve_path(root, rel)
        prepared: list[tuple[str, str, np.ndarray[Any, Any]]] = []
        for i, (key, value) in enumerate(arrays.items()):
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
            self.check_dtype(arr.dtype)
            prepared.append((key, _dataset_name(str(key), i), arr))
        h5py = _h5py()
        opts = self._options
        gatherer = EntryGatherer([key for key, _, _ in prepared], on_entries)
        raw_writes: list[_RawWrite] = []
        checksums: list[Callable[[], str | None]] = []
        with rollback_on_error() as created, _settled(gatherer, checksums):
            make_dirs(path.parent, created)
            # mode "x" creates the file (O_EXCL), never truncates one: truncating a file,
            # even an empty one, makes ext4 start writing the data back when it is
            # closed (auto_da_alloc), and the DataSet's next rename then waits for it
            try:
                h5file = h5py.File(path, "x", rdcc_nbytes=0)
            except FileExistsError:
                raise
            except BaseException:
                created.append(path)  # it may have been created before the failure
                raise
            created.append(path)
            with h5file as f:
                for key, name, arr in prepared:
                    stored_dtype = _storage_dtype(arr.dtype)
                    stored_shape = (
                        (*arr.shape, arr.dtype.itemsize // 4)
                        if arr.dtype.kind == "U"
                        else arr.shape
                    )
                    chunks, maxshape = _layout(stored_shape, stored_dtype.itemsize, arr.ndim)
                    extra: dict[str, Any] = {}
                    if chunks is not None and opts["compression"] is not None:
                        extra["compression"] = opts["compression"]
                        if opts["compression"] == "gzip" and opts["compression_opts"] is not None:
                            extra["compression_opts"] = opts["compression_opts"]
                    if chunks is not None and opts["shuffle"]:
                        extra["shuffle"] = True
                    raw = _raw_source(arr, stored_shape, chunks, extra)
                    if raw is not None:
                        # chunks allocated now, filled below by plain writes (see _raw_spans)
                        extra["fill_time"] = "never"
                        extra["dcpl"] = _early_dcpl(h5py)
                    ds = f.create_dataset(
                        name,
                        shape=stored_shape,
                        dtype=stored_dtype,
                        chunks=chunks,
                        maxshape=maxshape,
                        **extra,
                    )
                    if _needs_view(arr.dtype):
                        ds.attrs[VIEW_ATTR] = _view_text(arr.dtype)
                    spans = None
                    if raw is not None and chunks is not None:
                        spans = _raw_spans(ds, raw, chunks[0])
                    then = gatherer.then(key, _entry_maker(rel, arr, name))
                    if raw is not None and spans is not None:
                        raw_writes.append(_RawWrite(arr, raw, spans, then))
                    else:
                        # h5py releases the GIL
                        checksums.append(start_checksum(arr, then=then))
                        _fill(ds, arr)
                        report_written(int(arr.nbytes))  # progress of the DataSet write
            # after HDF5 closed the file: the data of datasets whose chunks it allocated
            if raw_writes:
                _write_spans(path, raw_writes, checksums)
            gatherer.wait(checksums)
            entries = gatherer.entries()
            if durable:
                _fsync_file(path)
                for directory in sorted({path.parent} | {p.parent for p in created}):
                    fsync_dir(directory)
        return entries

    def open(
        self,
        root: Path,
        entry: Mapping[str, Any],
        *,
        mode: Literal["r", "a"] = "r",
        writer_lock: WriterLockFactory | None = None,
        trusted: bool = True,
        durable: bool = False,
    ) -> Any:
        """A read-only (``mode="r"``) or writable (``"a"``) :class:`ArrayProxy`; see :meth:`Backend.open`.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = Hdf5Backend()
            >>> e = b.write(root, "g1", {"a": np.arange(3)})["a"]
            >>> b.open(root, e)
            <ArrayProxy HDF5 dataset g1.h5:/a shape=(3,) dtype=int64 read-only>
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', not {mode!r}")
        rel = entry.get("path")
        path = resolve_path(Path(root), rel)
        key = entry.get("key")
        if not isinstance(key, str) or not key:
            raise FormatError(f"{path}: the item header names no dataset (key {key!r})")
        want_shape, want_dtype = entry_shape_dtype(entry)
        driver = Hdf5Driver(path, str(rel), key, want_dtype, durable=durable)
        driver.pin()  # FileNotFoundError if the file is gone; keeps the value readable
        if not trusted:  # trusted: the header's dtype; a damaged file shows at first access
            with driver._open() as ds:
                view = _view_of(ds, path)
                stored = tuple(int(n) for n in ds.shape)
                shape = stored[:-1] if view is not None and view.kind == "U" else stored
                dtype = view if view is not None else np.dtype(ds.dtype)
                if dtype.hasobject or dtype.kind == "O":
                    raise FormatError(f"{path}: dataset {key!r} holds variable-length data")
            if not same_layout(want_shape, want_dtype, shape, dtype):
                driver.close()
                raise FormatError(
                    f"{path}: dataset {key!r} holds an array of shape {shape} and dtype {dtype}, "
                    f"but the item header says shape {want_shape} and dtype {want_dtype}"
                )
        return ArrayProxy(
            driver,
            read_only=mode == "r",
            writer_lock=writer_lock,
            modified_marker=modified_marker(Path(root), entry) if mode == "a" else None,
        )

    def delete(self, root: Path, entries: Iterable[Mapping[str, Any]]) -> None:
        """Remove the entries' datasets; a file left without datasets is removed.

        A file whose datasets are all named is unlinked without being opened for
        writing; an unreadable file named by an entry is unlinked too.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = Hdf5Backend()
            >>> es = b.write(root, "g1", {"a": np.arange(3), "b": np.ones(2)})
            >>> b.delete(root, [es["a"]]); sorted(p.name for p in root.iterdir())
            ['g1.h5']
            >>> b.delete(root, es.values()); sorted(p.name for p in root.iterdir())
            []
        """
        by_file: dict[Path, set[str]] = {}
        for entry in entries:
            path = resolve_path(Path(root), entry["path"])
            by_file.setdefault(path, set()).add(str(entry.get("key")))
        for path, keys in by_file.items():
            try:
                with _h5file(path) as f:
                    names = set(f.keys())
            except FileNotFoundError:
                continue
            except FormatError:
                names = set()
            if names <= keys:
                path.unlink(missing_ok=True)
                remove_companions(path)
                continue
            if names & keys:
                with _h5file(path, "r+") as f:
                    for key in names & keys:
                        del f[key]

    def paths(self, entries: Iterable[Mapping[str, Any]]) -> set[str]:
        """The entries' ``.h5`` files.

        Example:
            >>> Hdf5Backend().paths([{"path": "d/g1.h5", "key": "a"}, {"path": "d/g1.h5", "key": "b"}])
            {'d/g1.h5'}
        """
        out: set[str] = set()
        for entry in entries:
            resolve_path(Path("."), entry["path"])
            out.add(entry["path"])
        return out

    def plain_loader(self, entries: Mapping[str, Mapping[str, Any]]) -> str:
        """Source binding ``_arrays`` with h5py: each dataset read into memory with ``[()]``.

        Example:
            >>> print(Hdf5Backend().plain_loader({"array_0": {"path": "x_data/g1.h5", "key": "array_0", "shape": [3], "dtype": "<U2"}}))
            # Arrays of this item: an HDF5 file written by persist_hooks (hdf5 backend), read into memory.
            def _load_arrays():
                import os
                import h5py
                import numpy
                here = os.path.dirname(os.path.abspath(__file__))
                datasets = {  # key: (file relative to the DataSet directory, dataset, numpy dtype of a view or None)
                    'array_0': ('x_data/g1.h5', 'array_0', '<U2'),
                }
                out = {}
                for key, (path, name, view) in datasets.items():
                    with h5py.File(os.path.join(here, *path.split('/')), 'r') as f:
                        data = numpy.asarray(f[name][()])
                    if view is not None:  # stored as a same-size view (unicode: code units on one more axis)
                        view = numpy.lib.format.descr_to_dtype(view)
                        data = numpy.ascontiguousarray(data).view(view)
                        if view.kind == 'U':
                            data = data.reshape(data.shape[:-1])
                    out[key] = data
                return out
            _arrays = _load_arrays()
            del _load_arrays
        """
        lines = [
            "# Arrays of this item: an HDF5 file written by persist_hooks (hdf5 backend), read into memory.",
            "def _load_arrays():",
            "    import os",
            "    import h5py",
            "    import numpy",
            "    here = os.path.dirname(os.path.abspath(__file__))",
            "    datasets = {  # key: (file relative to the DataSet directory, dataset, numpy dtype of a view or None)",
        ]
        for key, entry in entries.items():
            _, dtype = entry_shape_dtype(entry)
            rel = entry["path"]
            resolve_path(Path("."), rel)
            view = repr(npformat.dtype_to_descr(dtype)) if _needs_view(dtype) else "None"
            lines.append(f"        {str(key)!r}: ({str(rel)!r}, {str(entry['key'])!r}, {view}),")
        lines += [
            "    }",
            "    out = {}",
            "    for key, (path, name, view) in datasets.items():",
            "        with h5py.File(os.path.join(here, *path.split('/')), 'r') as f:",
            "            data = numpy.asarray(f[name][()])",
            "        if view is not None:  # stored as a same-size view (unicode: code units on one more axis)",
            "            view = numpy.lib.format.descr_to_dtype(view)",
            "            data = numpy.ascontiguousarray(data).view(view)",
            "            if view.kind == 'U':",
            "                data = data.reshape(data.shape[:-1])",
            "        out[key] = data",
            "    return out",
            "_arrays = _load_arrays()",
            "del _load_arrays",
        ]
        return "\n".join(lines)

    def describe(self, entry: Mapping[str, Any]) -> str:
        """One line: dtype, shape, size, file and dataset.

        Example:
            >>> Hdf5Backend().describe({"path": "x_data/g1.h5", "key": "a", "shape": [3], "dtype": "<f8"})
            'float64 array of shape (3,), 24 B, in x_data/g1.h5:/a (hdf5)'
        """
        return describe_entry(dict(entry, path=f"{entry['path']}:/{entry.get('key')}"), self.name)


def _raw_source(
    arr: np.ndarray[Any, Any],
    stored_shape: tuple[int, ...],
    chunks: tuple[int, ...] | None,
    filters: Mapping[str, Any],
) -> memoryview | None:
    """The bytes of ``arr`` as HDF5 stores them, when its chunks can be written as plain bytes.

    That is: an in-memory C-contiguous array, a simple dtype (numeric, bool,
    complex, bytes, unicode as code units, datetimes as int64; not compound or
    opaque), no filters, and chunks of whole rows (every chunk is then one
    contiguous run of the array's bytes).  ``None`` otherwise.

    Example:
        >>> _raw_source(np.zeros((4, 3)), (4, 3), (2, 3), {}).nbytes
        96
        >>> _raw_source(np.zeros((4, 3)), (4, 3), (2, 3), {"compression": "gzip"}) is None
        True
    """
    if (
        chunks is None
        or filters
        or arr.size == 0
        or not arr.flags.c_contiguous
        or lazy_source(arr) is not None
        or tuple(chunks[1:]) != tuple(stored_shape[1:])
        or _storage_dtype(arr.dtype).kind not in "biufcS"
    ):
        return None
    return arr.reshape(-1).view(np.uint8).data


def _never_filled(ds: Any) -> bool:
    """Whether HDF5 writes no fill value into ``ds``'s new chunks (``FILL_TIME_NEVER``)."""
    h5py = _h5py()
    return bool(ds.id.get_create_plist().get_fill_time() == h5py.h5d.FILL_TIME_NEVER)


def _early_dcpl(h5py: Any) -> Any:
    """A dataset creation property list allocating every chunk when the dataset is created or grown."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return dcpl


def _raw_spans(ds: Any, raw: memoryview, rows: int) -> list[tuple[int, int, int]] | None:
    """Where each run of ``raw`` goes in the file: ``(file offset, start, stop)`` byte ranges.

    ``ds`` was created with every chunk allocated (``ALLOC_TIME_EARLY``) and never
    filled (``FILL_TIME_NEVER``); HDF5 reports each chunk's address and size
    (``H5Dchunk_iter``).  Chunks that follow each other in the file are merged
    into one run.  ``None`` when the report is not what such a dataset must
    look like (then HDF5 writes the data itself).
    """
    row_bytes = raw.nbytes // int(ds.shape[0])
    chunk_bytes = rows * row_bytes
    found: list[tuple[int, int, int]] = []  # (first row, file offset, stored size)

    def collect(info: Any) -> None:
        found.append((int(info.chunk_offset[0]), info.byte_offset, int(info.size)))

    dsid = ds.id
    try:
        if hasattr(dsid, "chunk_iter"):
            dsid.chunk_iter(collect)
        else:  # HDF5 < 1.14: one query per chunk
            for i in range(dsid.get_num_chunks()):
                collect(dsid.get_chunk_info(i))
    except Exception:  # an HDF5 build without these calls, or a failing query
        return None
    found.sort()
    if len(found) != -(-int(ds.shape[0]) // rows):
        return None
    spans: list[tuple[int, int, int]] = []
    for i, (row, offset, size) in enumerate(found):
        if row != i * rows or offset is None or size != chunk_bytes:
            return None
        start = row * row_bytes
        stop = min(start + chunk_bytes, raw.nbytes)
        if spans and spans[-1][0] + (spans[-1][2] - spans[-1][1]) == offset:
            spans[-1] = (spans[-1][0], spans[-1][1], stop)
        else:
            spans.append((int(offset), start, stop))
    return spans


class _RawWrite(NamedTuple):
    """An array whose chunks :func:`_write_spans` writes: the array, its bytes, the spans,
    and what its checksum's ``then`` is."""

    arr: np.ndarray[Any, Any]
    raw: memoryview
    spans: list[tuple[int, int, int]]
    then: Callable[[str | None], object]


def _entry_maker(
    rel: str, arr: np.ndarray[Any, Any], name: str
) -> Callable[[str | None], dict[str, Any]]:
    return lambda crc: make_entry(rel, arr, key=name, checksum=crc)


@contextlib.contextmanager
def _settled(gatherer: EntryGatherer, checksums: list[Callable[[], str | None]]) -> Iterator[None]:
    """On an error, wait for the checksums started (and ``on_entries``) before it propagates."""
    try:
        yield
    except BaseException:
        gatherer.settle(checksums)
        raise


def _write_spans(
    path: Path, writes: list[_RawWrite], checksums: list[Callable[[], str | None]]
) -> None:
    """Write each array's ``raw[start:stop]`` at its file offset (``os.pwrite``, short writes
    continued), appending the result of its checksum to ``checksums``.

    Each checksum starts right before its array's writes, so the pool thread takes
    the GIL while this thread is in ``pwrite``, not while it runs Python code.
    The spans are allocated first (:func:`preallocate`): HDF5 only extended the file
    over them, and writing into holes ran ~25% slower (a full disk fails there).
    """
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        for _, _, spans, _ in writes:
            for offset, start, stop in spans:
                try:
                    preallocate(fd, stop - start, offset)
                except OSError as exc:  # name the file
                    raise OSError(exc.errno, exc.strerror, str(path)) from None
        for arr, raw, spans, then in writes:
            checksums.append(start_checksum(arr, then=then))
            for offset, start, stop in spans:
                while start < stop:
                    try:
                        n = os.pwrite(fd, raw[start:stop], offset)
                    except OSError as exc:  # name the file (a full disk shows here)
                        raise OSError(exc.errno, exc.strerror, str(path)) from None
                    if n <= 0:
                        raise OSError(errno.EIO, "write returned no progress", str(path))
                    start += n
                    offset += n
            report_written(raw.nbytes)
    finally:
        os.close(fd)


def _fill(ds: Any, arr: np.ndarray[Any, Any]) -> None:
    """Write ``arr`` into the new dataset ``ds``: directly if C-contiguous, else in row blocks."""
    if arr.size == 0:
        return
    source = lazy_source(arr)
    if source is not None:  # a dask array: computed one block of rows at a time (h5py
        # datasets cannot travel to dask workers, so this runs in the writing process)
        for start, rows in iter_row_blocks(source, BLOCK_BYTES):
            block = _to_storage(np.ascontiguousarray(rows, dtype=arr.dtype))
            if arr.ndim == 0:
                ds[()] = block
            else:
                ds[start : start + len(rows)] = block
        return
    if arr.ndim == 0:
        ds[()] = _to_storage(arr)
        return
    if arr.flags.c_contiguous:
        ds[...] = _to_storage(arr)
        return
    row = max(math.prod(arr.shape[1:]) * arr.dtype.itemsize, 1)
    step = max(1, BLOCK_BYTES // row)
    for start in range(0, arr.shape[0], step):
        ds[start : start + step] = _to_storage(np.ascontiguousarray(arr[start : start + step]))

"""The ``zarr`` storage backend: one zarr v3 group per item write, one array per key.

Files
    ``Backend.write(root, stem, arrays)`` creates the directory ``<stem>.zarr``
    (exclusively: an existing one is never overwritten), a zarr v3 group
    holding one array per key.  The array is named after the key when the key
    is a plain identifier not starting with ``_``, else ``_<position>``; the
    entry records it as ``key`` beside ``path``, ``shape`` and ``dtype``.

Layout
    Arrays are chunked along axis 0 in blocks of whole rows of about 1 MiB
    (rows over 4 MiB are split along trailing axes) and compressed with zarr's
    default codecs (``bytes`` + ``zstd``); the option ``compression`` may be
    ``"zstd"`` (default) or ``None``.  Only standard zarr v3 data types are
    written, so every zarr v3 client reads the groups: fixed-width bytes
    (``S<n>``) are stored as ``uint8`` and unicode (``U<n>``) as ``uint32``
    code units, each on one more trailing axis; big-endian arrays are stored by
    value.  The attribute ``persist_hooks_dtype`` of each array holds the numpy
    dtype to read the data back as (bit-exact).  datetime, void, structured and
    extended-precision dtypes are refused, naming ``npy``; object arrays stay
    in the Python source.

Reading
    ``open(mode="r")`` returns a read-only
    :class:`~persist_hooks.backends.proxy.ArrayProxy`, ``mode="a"`` a writable
    one, over :class:`ZarrDriver`, which opens the array for each operation
    (~1 ms) and holds nothing open.  ``p[box]`` reads the chunks the box
    touches; ``append`` is zarr's ``append``, O(rows) plus the last chunk;
    ``np.asarray(p)`` is O(n).  ``p.attrs`` are the array's zarr attributes.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()); b = ZarrBackend()
    >>> b.write(root, "x_data/g1", {"array_0": np.arange(4.0)})
    {'array_0': {'path': 'x_data/g1.zarr', 'shape': [4], 'dtype': '<f8', 'key': 'array_0'}}
    >>> import zarr
    >>> zarr.open_array(root / "x_data/g1.zarr/array_0", mode="r")[...]
    array([0., 1., 2., 3.])
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from persist_hooks.backends.base import (
    Backend,
    WriterLockFactory,
    describe_entry,
    dtype_from_json,
    dtype_to_json,
    entry_shape_dtype,
    fsync_dir,
    make_dirs,
    make_entry,
    resolve_path,
    rollback_on_error,
    same_layout,
)
from persist_hooks.backends.proxy import ArrayDriver, ArrayProxy
from persist_hooks.errors import BackendError, FormatError

__all__ = ["ZarrBackend", "ZarrDriver"]

CHUNK_BYTES = 1 << 20
"""Target bytes per chunk."""
MAX_CHUNK_BYTES = 4 << 20
"""Rows larger than this are split along their trailing axes."""
DTYPE_ATTR = "persist_hooks_dtype"
COMPRESSIONS = ("zstd", None)
_SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_ARRAY_NAME = re.compile(r"[A-Za-z0-9_]+\Z")


def _zarr() -> Any:
    """Import zarr lazily (it costs ~0.35 s)."""
    import zarr

    return zarr


# --------------------------------------------------------------------------- helpers


def _array_name(key: str, position: int) -> str:
    """The array name for ``key``: the key if it is a plain identifier, else ``_<position>``.

    Example:
        >>> _array_name("array_0", 0), _array_name("weird key/../x", 1)
        ('array_0', '_1')
    """
    return key if _SAFE_NAME.match(key) else f"_{position}"


def _storage_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The standard zarr v3 dtype stored for ``dtype`` (bytes: uint8, unicode: uint32 code units).

    Example:
        >>> _storage_dtype(np.dtype("S3")), _storage_dtype(np.dtype(">U2")), _storage_dtype(np.dtype(">f8"))
        (dtype('uint8'), dtype('>u4'), dtype('>f8'))
    """
    if dtype.kind == "S":
        return np.dtype("u1")
    if dtype.kind == "U":
        return np.dtype("u4").newbyteorder(dtype.byteorder)
    return dtype


def _units(dtype: np.dtype[Any]) -> int:
    """Length of the extra trailing axis of the stored array (0: none)."""
    if dtype.kind == "S":
        return dtype.itemsize
    if dtype.kind == "U":
        return dtype.itemsize // 4
    return 0


def _to_storage(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``arr`` as zarr stores it."""
    width = _units(arr.dtype)
    if not width:
        return arr
    flat = np.ascontiguousarray(arr)
    return flat.view(_storage_dtype(arr.dtype)).reshape(*arr.shape, width)


def _from_storage(raw: Any, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """Inverse of :func:`_to_storage`: cast back to the stored byte order (bit-exact), then view."""
    store = _storage_dtype(dtype)
    out = np.asarray(raw)
    if out.dtype != store:
        out = out.astype(store)
    if not _units(dtype):
        return out
    out = np.ascontiguousarray(out)
    return out.view(dtype).reshape(out.shape[:-1])


def _chunks(shape: tuple[int, ...], itemsize: int, ndim: int) -> tuple[int, ...]:
    """Chunk shape: whole rows of about 1 MiB along axis 0.

    Example:
        >>> _chunks((10**7,), 8, 1), _chunks((3, 0), 8, 2), _chunks((), 8, 0)
        ((131072,), (131072, 1), ())
    """
    if ndim == 0 and not shape:
        return ()
    dims = [max(n, 1) for n in shape[1:]]
    row = math.prod(dims) * itemsize
    if row >= CHUNK_BYTES:
        while math.prod(dims) * itemsize > MAX_CHUNK_BYTES:
            i = max(range(len(dims)), key=dims.__getitem__)
            dims[i] = -(-dims[i] // 2)
        return (1, *dims)
    return (-(-CHUNK_BYTES // row), *dims)


def _fsync_tree(path: Path) -> None:
    for dirpath, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def _open_array(group: Path, key: str, mode: str = "r") -> Any:
    """Open array ``key`` of the group; missing: ``FileNotFoundError``; damaged: FormatError."""
    where = group / key
    if not (where / "zarr.json").is_file():
        raise FileNotFoundError(errno.ENOENT, "No such zarr array", str(where))
    zarr = _zarr()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return zarr.open_array(store=str(where), mode=mode, zarr_format=3)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise FormatError(f"{group}: damaged zarr array {key!r}: {exc}") from None


# --------------------------------------------------------------------------- the driver


class ZarrDriver(ArrayDriver):
    """Raw access to one array of a zarr group for an :class:`ArrayProxy` (opens it per operation).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> e = ZarrBackend().write(root, "g1", {"a": np.arange(3)})["a"]
        >>> d = ZarrDriver(root / e["path"], e["path"], e["key"], np.dtype("<i8"))
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
        self.relative = relative
        self.key = key
        self._dtype = np.dtype(dtype)
        self._units = _units(self._dtype)
        self.durable = durable

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
        """``"zarr array <group>/<key>"``."""
        return f"zarr array {self.relative}/{self.key}"

    @contextlib.contextmanager
    def _open(self, mode: str = "r") -> Iterator[Any]:
        z = _open_array(self.path, self.key, mode)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield z
        except (FileNotFoundError, BackendError, FormatError, ValueError, TypeError, IndexError):
            raise
        except Exception as exc:
            raise FormatError(f"{self.path}: damaged zarr array {self.key!r}: {exc}") from None
        if mode != "r" and self.durable:
            _fsync_tree(self.path / self.key)

    def _stored_box(self, box: tuple[slice, ...]) -> tuple[slice, ...]:
        return (*box, slice(None)) if self._units else box

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape now (without the extra axis of bytes/unicode data)."""
        with self._open() as z:
            shape = tuple(int(n) for n in z.shape)
        return shape[:-1] if self._units else shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of the stored array."""
        return self._dtype

    def read(self, index: Any) -> Any:
        """Return the box ``index`` (a tuple of positive-step slices) as a new array."""
        box = tuple(index)
        if any(len(range(s.start, s.stop, s.step)) == 0 for s in box):
            self.shape  # noqa: B018 - a missing or damaged array still raises
            return np.empty(tuple(len(range(s.start, s.stop, s.step)) for s in box), self._dtype)
        with self._open() as z:
            try:
                raw = z[self._stored_box(box)] if (box or self._units) else z[()]
            except (ValueError, TypeError, IndexError) as exc:
                raise FormatError(f"{self.path}: damaged zarr array {self.key!r}: {exc}") from None
        if not (self.path / self.key / "zarr.json").is_file():
            # the store went away during the read (a writer replaced the item): chunks read
            # meanwhile may be fill values, so the result cannot be trusted
            raise FileNotFoundError(errno.ENOENT, "zarr array removed while reading", str(self.path))
        return _from_storage(raw, self._dtype)

    def write(self, index: Any, value: Any) -> None:
        """Store ``array[box] = value`` (``value`` has the box's shape and the stored dtype)."""
        box = tuple(index)
        block = np.asarray(value, dtype=self._dtype)
        if block.size == 0:
            return
        stored = _to_storage(block).astype(_storage_dtype(self._dtype).newbyteorder("="))
        with self._open("r+") as z:
            z[self._stored_box(box) if (box or self._units) else ()] = stored

    def resize(self, length: int) -> None:
        """Set the length of axis 0 (new rows read as zeros, the fill value)."""
        with self._open("r+") as z:
            old = int(z.shape[0])
            if length < old:
                # zarr keeps the bytes of the last, partly kept chunk: clear them so that
                # growing again reads zeros
                stop = min(old, -(-length // z.chunks[0]) * z.chunks[0])
                if stop > length:
                    z[length:stop] = np.zeros((stop - length, *z.shape[1:]), z.dtype)
            z.resize((length, *z.shape[1:]))

    def append(self, rows: np.ndarray[Any, Any]) -> None:
        """Append ``rows`` with zarr's ``append``: O(rows) plus the last chunk."""
        stored = _to_storage(np.asarray(rows, dtype=self._dtype))
        with self._open("r+") as z:
            z.append(stored.astype(_storage_dtype(self._dtype).newbyteorder("=")), axis=0)

    def get_attrs(self) -> dict[str, Any]:
        """The array's zarr attributes (without persist_hooks' own)."""
        with self._open() as z:
            attrs = dict(z.attrs)
        attrs.pop(DTYPE_ATTR, None)
        return attrs

    def set_attrs(self, attrs: dict[str, Any]) -> None:
        """Replace the array's zarr attributes (persist_hooks' own are kept)."""
        if DTYPE_ATTR in attrs:
            raise BackendError(f"attribute {DTYPE_ATTR!r} of {self.location} is reserved")
        with self._open("r+") as z:
            try:
                z.attrs.put({**attrs, DTYPE_ATTR: z.attrs[DTYPE_ATTR]})
            except (TypeError, ValueError) as exc:
                raise BackendError(
                    f"attributes of {self.location} must be JSON-able: {exc}"
                ) from None


# --------------------------------------------------------------------------- the backend


class ZarrBackend(Backend):
    """One zarr v3 group per item write, one chunked, zstd-compressed array per key.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp()); b = ZarrBackend()
        >>> e = b.write(root, "g1", {"a": np.eye(2)})["a"]
        >>> p = b.open(root, e, mode="a"); p.append([[5.0, 6.0]])
        >>> p[...]
        array([[1., 0.],
               [0., 1.],
               [5., 6.]])
    """

    name: ClassVar[str] = "zarr"
    distribution: ClassVar[str] = "persist-hooks-zarr"
    supports_append: ClassVar[bool] = True
    supports_partial_writes: ClassVar[bool] = True
    supports_memmap: ClassVar[bool] = False
    supports_attrs: ClassVar[bool] = True
    supports_structured: ClassVar[bool] = False
    supports_datetime: ClassVar[bool] = False
    supports_void: ClassVar[bool] = False
    supports_longdouble: ClassVar[bool] = False
    option_defaults: ClassVar[Mapping[str, Any]] = {"compression": "zstd"}

    def validate_option(self, key: str, value: Any) -> Any:
        """Check ``compression``: ``"zstd"`` (zarr's default codecs) or ``None``.

        Example:
            >>> ZarrBackend(compression="gzip")
            Traceback (most recent call last):
            ...
            persist_hooks.errors.BackendError: option 'compression' of storage backend 'zarr' must be 'zstd' or None, not 'gzip'
        """
        if key == "compression" and value not in COMPRESSIONS:
            raise BackendError(
                f"option 'compression' of storage backend 'zarr' must be 'zstd' or None, "
                f"not {value!r}"
            )
        return value

    def write(
        self,
        root: Path,
        stem: str,
        arrays: Mapping[str, np.ndarray[Any, Any]],
        *,
        durable: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """Write all ``arrays`` to the new zarr group ``<stem>.zarr``; see :meth:`Backend.write`.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> ZarrBackend().write(root, "g2", {"a": np.zeros(2, "U3"), "b c": np.ones(1, bool)})
            {'a': {'path': 'g2.zarr', 'shape': [2], 'dtype': '<U3', 'key': 'a'}, 'b c': {'path': 'g2.zarr', 'shape': [1], 'dtype': '|b1', 'key': '_1'}}
        """
        root = Path(root)
        rel = f"{stem}.zarr"
        path = resolve_path(root, rel)
        prepared: list[tuple[str, str, np.ndarray[Any, Any]]] = []
        for i, (key, value) in enumerate(arrays.items()):
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
            self.check_dtype(arr.dtype)
            prepared.append((key, _array_name(str(key), i), arr))
        zarr = _zarr()
        extra: dict[str, Any] = {} if self._options["compression"] else {"compressors": None}
        entries: dict[str, dict[str, Any]] = {}
        with rollback_on_error() as created:
            make_dirs(path.parent, created)
            path.mkdir()  # FileExistsError if it exists: never overwrite
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    group = zarr.open_group(store=str(path), mode="w", zarr_format=3)
                    for key, name, arr in prepared:
                        stored = _to_storage(arr)
                        if stored.dtype.byteorder == ">" or (
                            stored.dtype.byteorder == "=" and not np.little_endian
                        ):
                            stored = stored.astype(stored.dtype.newbyteorder("<"))
                        z = group.create_array(
                            name,
                            shape=stored.shape,
                            dtype=stored.dtype.newbyteorder("="),
                            chunks=_chunks(stored.shape, stored.dtype.itemsize, arr.ndim),
                            attributes={DTYPE_ATTR: dtype_to_json(arr.dtype)},
                            **extra,
                        )
                        if stored.size:
                            # one chunk row at a time: a failing write leaves no chunk
                            # writes pending that could recreate the group after rollback
                            step = z.chunks[0] if stored.ndim else 0
                            if step:
                                for a in range(0, stored.shape[0], step):
                                    z[a : a + step] = stored[a : a + step]
                            else:
                                z[...] = stored
                        entries[key] = make_entry(rel, arr, key=name)
                if durable:
                    _fsync_tree(path)
                    for directory in sorted({path.parent} | {p.parent for p in created}):
                        fsync_dir(directory)
            except OSError as exc:
                shutil.rmtree(path, ignore_errors=True)
                if exc.filename is not None:
                    raise
                raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
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
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = ZarrBackend()
            >>> e = b.write(root, "g1", {"a": np.arange(3)})["a"]
            >>> b.open(root, e)
            <ArrayProxy zarr array g1.zarr/a shape=(3,) dtype=int64 read-only>
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', not {mode!r}")
        rel = entry.get("path")
        path = resolve_path(Path(root), rel)
        key = entry.get("key")
        if not isinstance(key, str) or not _ARRAY_NAME.match(key):
            raise FormatError(f"{path}: the item header names no valid zarr array (key {key!r})")
        z = _open_array(path, key)
        try:
            dtype = dtype_from_json(z.attrs[DTYPE_ATTR])
            stored = tuple(int(n) for n in z.shape)
            units = _units(dtype)
            zdtype = np.dtype(z.dtype)
        except (KeyError, TypeError, FormatError) as exc:
            raise FormatError(
                f"{path}: zarr array {key!r} lacks a valid {DTYPE_ATTR}: {exc}"
            ) from None
        if zdtype != _storage_dtype(dtype).newbyteorder("=") or (
            units and (not stored or stored[-1] != units)
        ):
            raise FormatError(
                f"{path}: zarr array {key!r} of {zdtype} does not store {DTYPE_ATTR} {dtype}"
            )
        shape = stored[:-1] if units else stored
        if not trusted:
            want_shape, want_dtype = entry_shape_dtype(entry)
            if not same_layout(want_shape, want_dtype, shape, dtype):
                raise FormatError(
                    f"{path}: zarr array {key!r} holds an array of shape {shape} and dtype "
                    f"{dtype}, but the item header says shape {want_shape} and dtype {want_dtype}"
                )
        driver = ZarrDriver(path, str(rel), key, dtype, durable=durable)
        return ArrayProxy(driver, read_only=mode == "r", writer_lock=writer_lock)

    def delete(self, root: Path, entries: Iterable[Mapping[str, Any]]) -> None:
        """Remove the entries' arrays; a group left without arrays is removed.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = ZarrBackend()
            >>> es = b.write(root, "g1", {"a": np.arange(3), "b": np.ones(2)})
            >>> b.delete(root, [es["a"]]); sorted(p.name for p in root.iterdir())
            ['g1.zarr']
            >>> b.delete(root, es.values()); sorted(p.name for p in root.iterdir())
            []
        """
        by_group: dict[Path, set[str]] = {}
        for entry in entries:
            path = resolve_path(Path(root), entry["path"])
            key = entry.get("key")
            if isinstance(key, str) and key:
                resolve_path(path, key)
            by_group.setdefault(path, set()).add(str(key))
        for path, keys in by_group.items():
            if not path.is_dir():
                continue
            for key in keys:
                if key and "/" not in key and key not in (".", ".."):
                    shutil.rmtree(path / key, ignore_errors=True)
            left = [p for p in path.iterdir() if p.is_dir()]
            if not left:
                shutil.rmtree(path, ignore_errors=True)

    def paths(self, entries: Iterable[Mapping[str, Any]]) -> set[str]:
        """The entries' ``.zarr`` group directories.

        Example:
            >>> ZarrBackend().paths([{"path": "d/g1.zarr", "key": "a"}, {"path": "d/g1.zarr", "key": "b"}])
            {'d/g1.zarr'}
        """
        out: set[str] = set()
        for entry in entries:
            resolve_path(Path("."), entry["path"])
            out.add(entry["path"])
        return out

    def plain_loader(self, entries: Mapping[str, Mapping[str, Any]]) -> str:
        """Source binding ``_arrays`` with zarr: each array read into memory.

        Example:
            >>> print(ZarrBackend().plain_loader({"array_0": {"path": "x_data/g1.zarr", "key": "array_0", "shape": [3], "dtype": "<U2"}}))
            # Arrays of this item: a zarr v3 group written by persist_hooks (zarr backend), read into memory.
            def _load_arrays():
                import os
                import numpy
                import zarr
                here = os.path.dirname(os.path.abspath(__file__))
                arrays = {  # key: (group relative to the DataSet directory, array, numpy dtype)
                    'array_0': ('x_data/g1.zarr', 'array_0', '<U2'),
                }
                out = {}
                for key, (path, name, dtype) in arrays.items():
                    dtype = numpy.dtype(dtype)
                    data = numpy.asarray(zarr.open_array(os.path.join(here, *path.split('/'), name), mode='r')[...])
                    if dtype.kind in 'SU':  # stored as uint8 / uint32 code units on one more axis
                        units = numpy.dtype('u1' if dtype.kind == 'S' else 'u4').newbyteorder(dtype.byteorder)
                        data = numpy.ascontiguousarray(data.astype(units)).view(dtype).reshape(data.shape[:-1])
                    out[key] = data.astype(dtype)  # big-endian data is stored by value
                return out
            _arrays = _load_arrays()
            del _load_arrays
        """
        lines = [
            "# Arrays of this item: a zarr v3 group written by persist_hooks (zarr backend), read into memory.",
            "def _load_arrays():",
            "    import os",
            "    import numpy",
            "    import zarr",
            "    here = os.path.dirname(os.path.abspath(__file__))",
            "    arrays = {  # key: (group relative to the DataSet directory, array, numpy dtype)",
        ]
        for key, entry in entries.items():
            _, dtype = entry_shape_dtype(entry)
            rel = entry["path"]
            resolve_path(Path("."), rel)
            lines.append(
                f"        {str(key)!r}: ({str(rel)!r}, {str(entry['key'])!r}, {dtype.str!r}),"
            )
        lines += [
            "    }",
            "    out = {}",
            "    for key, (path, name, dtype) in arrays.items():",
            "        dtype = numpy.dtype(dtype)",
            "        data = numpy.asarray(zarr.open_array(os.path.join(here, *path.split('/'), name), mode='r')[...])",
            "        if dtype.kind in 'SU':  # stored as uint8 / uint32 code units on one more axis",
            "            units = numpy.dtype('u1' if dtype.kind == 'S' else 'u4').newbyteorder(dtype.byteorder)",
            "            data = numpy.ascontiguousarray(data.astype(units)).view(dtype).reshape(data.shape[:-1])",
            "        out[key] = data.astype(dtype)  # big-endian data is stored by value",
            "    return out",
            "_arrays = _load_arrays()",
            "del _load_arrays",
        ]
        return "\n".join(lines)

    def describe(self, entry: Mapping[str, Any]) -> str:
        """One line: dtype, shape, size, group and array.

        Example:
            >>> ZarrBackend().describe({"path": "x_data/g1.zarr", "key": "a", "shape": [3], "dtype": "<f8"})
            'float64 array of shape (3,), 24 B, in x_data/g1.zarr/a (zarr)'
        """
        return describe_entry(dict(entry, path=f"{entry['path']}/{entry.get('key')}"), self.name)

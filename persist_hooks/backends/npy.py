"""The built-in ``npy`` storage backend: one ``.npy`` file per array, memory-mapped on read.

Files
    ``Backend.write(root, stem, arrays)`` writes the array at position ``i`` of
    ``arrays`` (in the mapping's order) to ``<stem>_<i>.npy``, e.g.
    ``x_data/g3_0.npy`` for stem ``x_data/g3``.  The position, not the key, names
    the file, so keys never need to be valid file names.  Files are created
    with ``O_EXCL``: an existing file is never overwritten.

Header
    Standard npy (format 1.0; 2.0 for headers over 64 KiB; 3.0 for non-latin-1
    field names), so ``numpy.load`` reads every file.  Like ``numpy.save``,
    the header is padded with spaces so that the length of axis 0 can grow to
    21 digits and the total header length is a multiple of 64: appending rows
    rewrites the header *in place*, never the data.  Arrays are stored in the
    order they come in (C, or Fortran for Fortran-ordered arrays, as
    ``numpy.save`` does): writing never copies; non-contiguous arrays are
    streamed in 16 MiB blocks.

Attributes
    ``proxy.attrs`` lives in an optional sidecar ``<file>.npy.attrs.json``,
    written atomically when attributes are set; :meth:`NpyBackend.delete`
    removes it with its array (and the ``<file>.npy.modified`` marker of
    in-place changes).

Checksums
    Each entry records ``checksum``, the CRC-32 of the array's bytes in C
    order, computed in a thread while the file is written.

Reading
    ``open(mode="r")`` returns a read-only ``numpy.memmap`` (0-size arrays, which
    cannot be mapped, a read-only empty array); ``mode="a"`` an
    :class:`~persist_hooks.backends.proxy.ArrayProxy` over :class:`NpyDriver`,
    whose operations and costs are listed in :mod:`persist_hooks.backends.proxy`.
    Files never shrink (a reader may have them mapped; truncating a mapped file
    makes the reader crash with SIGBUS): shrinking rewrites only the header.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
    >>> entries = b.write(root, "x_data/g1", {"array_0": np.arange(4.0)})
    >>> entries
    {'array_0': {'path': 'x_data/g1_0.npy', 'shape': [4], 'dtype': '<f8', 'checksum': 'crc...'}}
    >>> np.load(root / "x_data/g1_0.npy")
    array([0., 1., 2., 3.])
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import math
import operator
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

import numpy as np
import numpy.lib.format as npformat

from ..errors import BackendError, FormatError, ReadOnlyError
from ..hookspecs import hookimpl
from .base import (
    PACE_MIN_BYTES,
    PACE_PIECE,
    Backend,
    EntryGatherer,
    OnEntries,
    PendingChecksum,
    WriterLockFactory,
    describe_entry,
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
from .proxy import ArrayDriver, ArrayProxy

__all__ = ["NpyBackend", "NpyDriver", "ReadOnlyMemmap", "persist_hooks_backends"]

MAGIC = b"\x93NUMPY"
GROWTH_DIGITS = 21
"""Digits reserved for the length of axis 0 (as ``numpy.save`` does): any int64 fits."""
ALIGN = 64
BLOCK_BYTES = 16 << 20
"""Bytes per block when streaming non-contiguous data or rewriting a file."""
WRITE_PIECE = 64 << 20
"""Bytes per ``write`` call of contiguous data (progress is reported after each)."""
MAX_HEADER_UNTRUSTED = 1 << 20
"""Largest header read with ``trusted=False`` (guards ``ast.literal_eval``)."""
ATTRS_SUFFIX = ".attrs.json"


# --------------------------------------------------------------------------- the npy header


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype[Any]
    offset: int  # start of the data == total header length
    version: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize

    def order(self) -> Literal["C", "F"]:
        return "F" if self.fortran else "C"


def _header_bytes(
    dtype: np.dtype[Any],
    fortran: bool,
    shape: tuple[int, ...],
    *,
    total: int | None = None,
    version: tuple[int, int] | None = None,
) -> bytes | None:
    """The npy header (magic to newline) for an array; ``None`` if it does not fit in ``total``."""
    descr = npformat.dtype_to_descr(dtype)
    dims = tuple(int(n) for n in shape)
    text = f"{{'descr': {descr!r}, 'fortran_order': {bool(fortran)!r}, 'shape': {dims!r}, }}"
    try:
        body = text.encode("latin1")
        encoding_version = (1, 0)
    except UnicodeEncodeError:
        body = text.encode("utf8")
        encoding_version = (3, 0)
    if total is None:
        grow = GROWTH_DIGITS - len(str(shape[0])) if shape else 0
        version = encoding_version
        if version == (1, 0) and len(body) + grow + 1 + 10 + ALIGN > 0xFFFF:
            version = (2, 0)
        prefix = 8 + (2 if version == (1, 0) else 4)
        total = -(-(prefix + len(body) + max(grow, 0) + 1) // ALIGN) * ALIGN
    assert version is not None
    prefix = 8 + (2 if version == (1, 0) else 4)
    hlen = total - prefix
    if len(body) + 1 > hlen:
        return None
    length = struct.pack("<H" if version == (1, 0) else "<I", hlen)
    return MAGIC + bytes(version) + length + body + b" " * (hlen - len(body) - 1) + b"\n"


def _read_header(fh: IO[bytes], name: object, *, max_header: int | None = None) -> _Header:
    """Parse the npy header at the start of ``fh``; :class:`FormatError` naming ``name`` if invalid.

    One ``pread`` usually gets it all; parsed headers are memoised by their bytes.
    """
    fd = fh.fileno()
    head = os.pread(fd, _FIRST_READ, 0)
    lead = head[:8]
    if len(lead) < 8 or lead[:6] != MAGIC:
        what = (
            "truncated (no complete npy magic)" if MAGIC.startswith(lead[:6]) else "not an npy file"
        )
        raise FormatError(f"{name}: {what}")
    version = (lead[6], lead[7])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise FormatError(f"{name}: unsupported npy format version {version}")
    prefix = 10 if version == (1, 0) else 12
    if len(head) < prefix:
        raise FormatError(f"{name}: truncated npy header")
    (hlen,) = struct.unpack("<H" if version == (1, 0) else "<I", head[8:prefix])
    if max_header is not None and hlen > max_header:
        raise FormatError(f"{name}: npy header of {hlen} bytes is larger than {max_header}")
    if len(head) < prefix + hlen:
        head += os.pread(fd, prefix + hlen - len(head), len(head))
    header = head[prefix : prefix + hlen]
    if len(header) < hlen:
        raise FormatError(f"{name}: truncated npy header")
    key = lead + header
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = _parse_header(header, version, name)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = parsed
    shape, fortran, dtype = parsed
    return _Header(shape, fortran, dtype, prefix + hlen, version)


_FIRST_READ = 4096
_DIRECT_READ_MAX = 1 << 20
"""Largest row range read whole when only part of each row is wanted (else: a memory map)."""
_PARSED: dict[bytes, tuple[tuple[int, ...], bool, np.dtype[Any]]] = {}
_PARSED_MAX = 4096
"""Parsed headers by their bytes: ``ast.literal_eval`` costs ~50 us, a dict lookup nothing."""


def _remember(header: bytes, parsed: tuple[tuple[int, ...], bool, np.dtype[Any]]) -> None:
    """Memoise a header we just wrote, so that reading it back costs no parse."""
    prefix = 8 + (2 if header[6:8] == b"\x01\x00" else 4)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[header[:8] + header[prefix:]] = parsed


def _parse_header(
    header: bytes, version: tuple[int, int], name: object
) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    try:
        text = header.decode("utf8" if version == (3, 0) else "latin1")
        d = ast.literal_eval(text)
        if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
            raise ValueError(f"header keys must be descr, fortran_order, shape: {text.strip()!r}")
        shape, fortran = d["shape"], d["fortran_order"]
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"invalid shape {shape!r}")
        if not isinstance(fortran, bool):
            raise ValueError(f"invalid fortran_order {fortran!r}")
        dtype = npformat.descr_to_dtype(d["descr"])
    except (
        ValueError,
        TypeError,
        SyntaxError,
        MemoryError,
        RecursionError,
        UnicodeDecodeError,
    ) as exc:
        raise FormatError(f"{name}: invalid npy header: {exc}") from None
    return shape, fortran, dtype


def _check_complete(header: _Header, size: int, name: object) -> None:
    if header.dtype.hasobject:
        return  # pickled: its length is unknown
    if size < header.offset + header.nbytes:
        raise FormatError(
            f"{name}: truncated npy file: {size} bytes, but shape {header.shape} of "
            f"{header.dtype} needs {header.offset + header.nbytes}"
        )


def _write_data(fh: IO[bytes], arr: np.ndarray[Any, Any], fortran: bool) -> None:
    """Write ``arr``'s elements in C order (``fortran``: in Fortran order) without copying it whole."""
    if arr.size == 0:
        return
    from .lazy import iter_row_blocks, lazy_source

    source = lazy_source(arr)
    if source is not None:  # a dask array: computed one block of rows at a time
        for _, rows in iter_row_blocks(source, BLOCK_BYTES):
            _write_data(fh, np.ascontiguousarray(rows, dtype=arr.dtype), False)
        return
    if fortran:
        arr = arr.T
    if arr.flags.c_contiguous:
        # file writes, not ndarray.tofile: a full disk then raises OSError(ENOSPC); in
        # pieces of WRITE_PIECE bytes (no copies), so a long write can report progress
        data = memoryview(arr.reshape(-1).view(np.uint8).data)
        for start in range(0, len(data), WRITE_PIECE):
            piece = data[start : start + WRITE_PIECE]
            fh.write(piece)
            report_written(len(piece))
        return
    block = max(BLOCK_BYTES // max(arr.itemsize, 1), 1)
    chunks: Iterable[Any] = np.nditer(  # one operand: each step is a 1-d array, not a tuple
        arr, flags=("external_loop", "buffered", "zerosize_ok"), buffersize=block, order="C"
    )
    for chunk in chunks:
        out = np.ascontiguousarray(chunk).view(np.uint8).data
        fh.write(out)
        report_written(out.nbytes)


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _write_file(
    fd: int,
    header: bytes,
    arr: np.ndarray[Any, Any],
    fortran: bool,
    crc: PendingChecksum | None = None,
) -> None:
    """Write ``header`` and ``arr``'s elements to the new file ``fd``.

    A contiguous array goes straight from its buffer to the file, with the
    header in the same ``writev`` call: through a Python file object the same
    8 MB write took ~0.25 ms longer here.  Its checksum ``crc`` learns the
    progress after each piece (:data:`PACE_PIECE` bytes when it is paced by
    the write, see :func:`start_checksum`).  Anything else goes through
    :func:`_write_data`.
    """
    from .lazy import lazy_source

    contiguous = arr.flags.f_contiguous if fortran else arr.flags.c_contiguous
    if not contiguous or arr.size == 0 or lazy_source(arr) is not None:
        with open(fd, "wb", closefd=False) as fh:
            fh.write(header)
            _write_data(fh, arr, fortran)
        return
    data = memoryview((arr.T if fortran else arr).reshape(-1).view(np.uint8).data)
    head = memoryview(header)
    paced = crc is not None and not fortran and len(data) >= PACE_MIN_BYTES
    step = PACE_PIECE if paced else WRITE_PIECE
    # pieces (a long write reports progress) end at file offsets that are multiples of
    # step: 2 MB writes from an offset off the page boundary took ~20% longer here
    start = 0
    while start < len(data):
        stop = min(len(data), (start + len(header)) // step * step + step - len(header))
        piece = data[start:stop]
        while head or piece:
            written = os.writev(fd, [head, piece]) if head else os.write(fd, piece)
            used = min(written, len(head))
            head, piece = head[used:], piece[written - used :]
        if paced:
            assert crc is not None
            crc.advance(stop - start)
        report_written(stop - start)
        start = stop


def _zero_fill(fh: IO[bytes], start: int, stop: int) -> None:
    """Overwrite bytes ``[start, stop)`` of ``fh`` with zeros, in blocks."""
    if stop <= start:
        return
    zeros = np.zeros(min(stop - start, BLOCK_BYTES), np.uint8)
    fh.seek(start)
    pos = start
    while pos < stop:
        n = min(stop - pos, zeros.size)
        fh.write(zeros[:n].data)
        pos += n


# --------------------------------------------------------------------------- the driver


class NpyDriver(ArrayDriver):
    """Raw access to one ``.npy`` file for an :class:`ArrayProxy` (opens the file per operation).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> e = NpyBackend().write(root, "g1", {"a": np.arange(3)})["a"]
        >>> d = NpyDriver(root / e["path"], e["path"])
        >>> d.shape, d.read(slice(1, None))
        ((3,), array([1, 2]))
    """

    native_indexing: ClassVar[bool] = True

    def __init__(self, path: Path, relative: str, *, durable: bool = False) -> None:
        self.path = Path(path)
        self.relative = relative
        self.durable = durable

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "relative": self.relative, "durable": self.durable}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(Path(state["path"]), state["relative"], durable=state["durable"])  # type: ignore[misc]

    @property
    def location(self) -> str:
        """``"npy file <relative path>"``."""
        return f"npy file {self.relative}"

    def _header(self, fh: IO[bytes]) -> _Header:
        """The header of the open file, checked: complete, no pickled objects."""
        h = _read_header(fh, self.path)
        _check_complete(h, os.fstat(fh.fileno()).st_size, self.path)
        if h.dtype.hasobject:
            raise BackendError(
                f"{self.path}: holds pickled Python objects; it cannot be opened writable"
            )
        return h

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape in the file's header now."""
        with open(self.path, "rb") as fh:
            return self._header(fh).shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype in the file's header."""
        with open(self.path, "rb") as fh:
            return self._header(fh).dtype

    def read(self, index: Any) -> Any:
        """Return ``array[index]``: rows read straight into a new array, else through a short-lived map."""
        with open(self.path, "rb") as fh:
            h = self._header(fh)
            if h.nbytes == 0:
                return np.empty(h.shape, h.dtype)[index].copy()
            rows = None if h.fortran and len(h.shape) > 1 else _row_range(index, h.shape)
            if rows is not None and (
                len(rows[2]) == 1 or (rows[1] - rows[0]) * h.row_bytes <= _DIRECT_READ_MAX
            ):  # whole rows, or few enough that reading them beats mapping the file
                start, stop, rest = rows
                block = np.empty((stop - start, *h.shape[1:]), h.dtype)
                fh.seek(h.offset + start * h.row_bytes)
                _read_into(fh, block, self.path)
                return block[rest]
            mm = np.memmap(fh, h.dtype, "r", h.offset, h.shape, h.order())
        return _detach(mm[index], mm)

    def write(self, index: Any, value: Any) -> None:
        """Assign ``array[index] = value``: whole rows written directly, else through a short-lived map."""
        with open(self.path, "r+b") as fh:
            h = self._header(fh)
            if h.nbytes == 0:
                np.empty(h.shape, h.dtype)[index] = value  # numpy's checks, nothing to store
                return
            rows = None if h.fortran and len(h.shape) > 1 else _row_range(index, h.shape)
            if rows is not None and len(rows[2]) == 1:  # the index is an int or a step-1 slice
                start, stop, rest = rows
                block = np.empty((stop - start, *h.shape[1:]), h.dtype)
                block[rest] = value  # numpy's broadcasting and casting
                fh.seek(h.offset + start * h.row_bytes)
                _write_data(fh, block, fortran=False)
                fh.flush()
                if self.durable:
                    os.fsync(fh.fileno())
                return
            mm = np.memmap(fh, h.dtype, "r+", h.offset, h.shape, h.order())
            try:
                mm[index] = value
                if self.durable:
                    mm.flush()
            finally:
                del mm

    def _open_c_ordered(self) -> tuple[IO[bytes], _Header]:
        """Open read-write; a multi-dimensional Fortran-ordered file is first rewritten in C order (once, O(n))."""
        fh = open(self.path, "r+b")  # noqa: SIM115 - returned to the caller, who closes it
        try:
            h = self._header(fh)
            if h.fortran and len(h.shape) > 1:
                fh.close()
                self._rewrite(h)
                fh = open(self.path, "r+b")  # noqa: SIM115
                h = self._header(fh)
        except BaseException:
            fh.close()
            raise
        return fh, h

    def resize(self, length: int) -> None:
        """Set the length of axis 0: grow with zeros, shrink by rewriting only the header."""
        fh, h = self._open_c_ordered()
        with fh:
            size = os.fstat(fh.fileno()).st_size
            old_end = h.offset + h.shape[0] * h.row_bytes
            new_end = h.offset + length * h.row_bytes
            if new_end > old_end:
                # zero the stale bytes a shrink or a failed append may have left
                _zero_fill(fh, old_end, min(size, new_end))
                if size < new_end:
                    fh.truncate(new_end)
            self._commit(fh, h, (length, *h.shape[1:]))

    def append(self, rows: np.ndarray[Any, Any]) -> None:
        """Write ``rows`` after the last row, then rewrite the header in place: O(rows)."""
        fh, h = self._open_c_ordered()
        with fh:
            fh.seek(h.offset + h.shape[0] * h.row_bytes)
            _write_data(fh, rows, fortran=False)
            fh.flush()
            if self.durable:
                os.fsync(fh.fileno())  # the data must be on disk before the header claims it
            self._commit(fh, h, (h.shape[0] + rows.shape[0], *h.shape[1:]))

    def _commit(self, fh: IO[bytes], h: _Header, shape: tuple[int, ...]) -> None:
        """Rewrite the header for ``shape`` in place (or the whole file if it does not fit)."""
        header = _header_bytes(h.dtype, h.fortran, shape, total=h.offset, version=h.version)
        if header is None:  # a foreign file without growth padding
            fh.flush()
            self._rewrite(dataclasses.replace(h, shape=shape))
            return
        fh.seek(0)
        fh.write(header)
        fh.flush()
        if self.durable:
            os.fsync(fh.fileno())
        _remember(header, (shape, h.fortran, h.dtype))

    def _rewrite(self, h: _Header) -> None:
        """Copy the data ``h`` describes to a new C-ordered file with a roomy header, then replace: O(n)."""
        header = _header_bytes(h.dtype, False, h.shape)
        assert header is not None
        directory = self.path.parent
        import tempfile  # ~2 ms to import: not paid by readers

        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with open(fd, "wb") as out:
                out.write(header)
                if h.nbytes:
                    src = np.memmap(self.path, h.dtype, "r", h.offset, h.shape, h.order())
                    step = max(1, BLOCK_BYTES // max(h.row_bytes, 1))
                    for start in range(0, h.shape[0], step):
                        _write_data(
                            out, np.ascontiguousarray(src[start : start + step]), fortran=False
                        )
                    del src
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.durable:
            fsync_dir(directory)

    def get_attrs(self) -> dict[str, Any]:
        """The attributes in the sidecar ``<file>.attrs.json`` (``{}`` if there is none)."""
        side = self.path.with_name(self.path.name + ATTRS_SUFFIX)
        try:
            text = side.read_text(encoding="utf8")
        except FileNotFoundError:
            return {}
        try:
            attrs = json.loads(text)
        except ValueError as exc:
            raise FormatError(f"{side}: invalid attributes file: {exc}") from None
        if not isinstance(attrs, dict):
            raise FormatError(f"{side}: invalid attributes file: not a JSON object")
        return attrs

    def set_attrs(self, attrs: dict[str, Any]) -> None:
        """Replace the sidecar atomically (temporary file and rename); remove it when empty."""
        side = self.path.with_name(self.path.name + ATTRS_SUFFIX)
        if not attrs:
            side.unlink(missing_ok=True)
            return
        try:
            text = json.dumps(attrs, indent=1, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise BackendError(f"attributes of {self.location} must be JSON-able: {exc}") from None
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{side.name}.", suffix=".tmp", dir=side.parent)
        try:
            with open(fd, "w", encoding="utf8") as out:
                out.write(text)
                if self.durable:
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, side)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _row_range(index: Any, shape: tuple[int, ...]) -> tuple[int, int, tuple[Any, ...]] | None:
    """``(start, stop, rest)`` when ``index`` starts with an int or a step-1 slice on axis 0.

    Then ``array[index] == array[start:stop][rest]`` and the rows are one
    contiguous byte range of a C-ordered file.
    """
    if not shape:
        return None
    items = index if isinstance(index, tuple) else (index,)
    if not items:
        return None
    first = items[0]
    if first is None or first is Ellipsis or isinstance(first, (bool, np.bool_)):
        return None
    n = shape[0]
    if isinstance(first, slice):
        start, stop, step = first.indices(n)
        if step != 1:
            return None
        return start, max(start, stop), (slice(None), *items[1:])
    if isinstance(first, (list, np.ndarray)) and np.ndim(first) != 0:
        return None
    try:
        i = operator.index(first)
    except TypeError:
        return None
    if not -n <= i < n:
        return None  # let numpy raise its IndexError
    i %= n
    return i, i + 1, (0, *items[1:])


def _read_into(fh: IO[bytes], block: np.ndarray[Any, Any], name: object) -> None:
    """Fill the C-contiguous ``block`` from ``fh`` at its position, without a Python ``bytes`` copy."""
    buf = block.reshape(-1).view(np.uint8).data
    done = 0
    while done < len(buf):
        n = fh.readinto(buf[done:])  # type: ignore[attr-defined]
        if not n:
            raise FormatError(f"{name}: truncated npy file (it shrank while being read)")
        done += n


def _detach(result: Any, mm: np.memmap[Any, Any]) -> Any:
    """``result`` with no reference to the map: copy views, copy structured scalars."""
    if isinstance(result, np.ndarray):
        if np.may_share_memory(result, mm):
            return np.array(result, subok=False)
        return result.view(np.ndarray) if type(result) is not np.ndarray else result
    if isinstance(result, np.void):
        return np.array(result)[()]
    return result


def _entry_maker(rel: str, arr: np.ndarray[Any, Any]) -> Callable[[str | None], dict[str, Any]]:
    return lambda crc: make_entry(rel, arr, checksum=crc)


# --------------------------------------------------------------------------- read-only maps


class ReadOnlyMemmap(np.memmap):
    """An npy array read in mode ``"r"``: a read-only ``numpy.memmap`` with the proxy's write API.

    It is a ``numpy.memmap`` in every way (slices are maps too, arithmetic gives
    plain arrays), and it answers what a read-only :class:`ArrayProxy` answers:
    assigning to it, :meth:`append` and :meth:`resize` raise
    :class:`persist_hooks.ReadOnlyError` (a ``ValueError``, as numpy's own refusal
    is), :attr:`attrs` reads the array's attributes, :attr:`read_only` is true.
    An array numpy cannot map (of Python objects) is read into memory, read-only.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
        >>> m = b.open(root, b.write(root, "g1", {"a": np.arange(3.0)})["a"])
        >>> isinstance(m, np.memmap), m.read_only, (m + 1).tolist(), type(m[1:]).__name__
        (True, True, [1.0, 2.0, 3.0], 'ReadOnlyMemmap')
        >>> m[0] = 5.0
        Traceback (most recent call last):
        ...
        persist_hooks.errors.ReadOnlyError: .../g1_0.npy is read-only: its DataSet was opened with mode 'r'; to write, open it writable: DataSet(name, 'a', ...) or backend.open(root, entry, mode='a')
    """

    _npy_path: Path | None
    _npy_rel: str
    _mmap: Any  # numpy.memmap's: the mmap viewed, or None

    @classmethod
    def _of(cls, arr: np.ndarray[Any, Any], path: Path, relative: str) -> ReadOnlyMemmap:
        """``arr``, read from ``path`` into memory (nothing to map: empty, or Python objects),
        as one, read-only; mapped arrays are made by :meth:`_map`."""
        out = arr.view(cls)
        out.flags.writeable = False
        out._npy_path, out._npy_rel = path, relative
        return out

    @classmethod
    def _map(cls, fh: IO[bytes], header: _Header, path: Path, relative: str) -> ReadOnlyMemmap:
        """Map the data of the open npy file ``fh`` read-only.

        What ``numpy.memmap(fh, dtype, "r", offset, shape, order)`` builds, without the
        Python work around it (seek and tell, a shape product of numpy scalars, the
        view): ~0.1 ms of the ~0.8 ms an 8 MB item took to open when caches were cold.
        """
        import mmap

        start = header.offset - header.offset % mmap.ALLOCATIONGRANULARITY
        mm = mmap.mmap(
            fh.fileno(), header.offset + header.nbytes - start, access=mmap.ACCESS_READ, offset=start
        )
        out = np.ndarray.__new__(
            cls, header.shape, header.dtype, mm, header.offset - start, order=header.order()
        )
        # the attributes numpy.memmap.__new__ sets (read-only buffer: not writeable)
        out._mmap, out.offset, out.mode = mm, header.offset, "r"
        out.filename = os.path.abspath(path)
        out._npy_path, out._npy_rel = path, relative
        return out

    def __array_finalize__(self, obj: Any) -> None:
        super().__array_finalize__(obj)  # keeps the map of a view (numpy checks it shares)
        path = getattr(obj, "_npy_path", None)
        if path is not None and self._mmap is None and not np.may_share_memory(self, obj):
            path = None  # a copy
        self._npy_path = path
        self._npy_rel = getattr(obj, "_npy_rel", "")

    def __array_wrap__(
        self, arr: Any, context: Any = None, return_scalar: bool = False
    ) -> Any:
        # numpy.memmap turns ufunc results into plain arrays only for its own class
        arr = super().__array_wrap__(arr, context)
        if arr is self:
            return arr
        if return_scalar:
            return arr[()]
        return arr.view(np.ndarray)

    def __getitem__(self, key: Any) -> Any:
        out = super().__getitem__(key)
        if isinstance(out, ReadOnlyMemmap) and out._npy_path is None and out is not self:
            return out.view(np.ndarray)  # a copy (fancy indexing): a plain array, as memmap's
        return out

    def __setitem__(self, key: Any, value: Any) -> None:
        if not self.flags.writeable:
            self._refuse()
        super().__setitem__(key, value)

    def _refuse(self) -> None:
        what = self._npy_path if self._npy_path is not None else "this array"
        raise ReadOnlyError(
            f"{what} is read-only: its DataSet was opened with mode 'r'; to write, open it "
            "writable: DataSet(name, 'a', ...) or backend.open(root, entry, mode='a')"
        )

    @property
    def base_map(self) -> Any:
        """The ``mmap`` this array views (``None`` for a copy, or an array read into memory)."""
        return getattr(self, "_mmap", None)

    @property
    def read_only(self) -> bool:
        """Whether writes raise :class:`persist_hooks.ReadOnlyError` (as for a proxy)."""
        return not self.flags.writeable

    @property
    def attrs(self) -> MutableMapping[str, Any]:
        """The array's attributes (read each time); writes raise :class:`persist_hooks.ReadOnlyError`."""
        if self._npy_path is None:
            raise AttributeError("attrs: this array is not a view of a stored npy array")
        return _ReadOnlyAttrs(self)

    def append(self, rows: Any) -> None:
        """Refused: the DataSet was opened read-only (:class:`persist_hooks.ReadOnlyError`)."""
        self._refuse()

    def resize(self, *shape: Any, refcheck: bool = True) -> None:
        """Refused while read-only (:class:`persist_hooks.ReadOnlyError`); else ``ndarray.resize``."""
        if not self.flags.writeable:
            self._refuse()
        super().resize(*shape, refcheck=refcheck)


class _ReadOnlyAttrs(MutableMapping[str, Any]):
    """``attrs`` of a :class:`ReadOnlyMemmap`: its sidecar's attributes; every change refused."""

    __slots__ = ("_array",)

    def __init__(self, array: ReadOnlyMemmap) -> None:
        self._array = array

    def _read(self) -> dict[str, Any]:
        array = self._array
        assert array._npy_path is not None
        return NpyDriver(array._npy_path, array._npy_rel).get_attrs()

    def __getitem__(self, key: str) -> Any:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def __setitem__(self, key: str, value: Any) -> None:
        self._array._refuse()

    def __delitem__(self, key: str) -> None:
        self._array._refuse()

    def __repr__(self) -> str:
        return f"ReadOnlyAttrs({self._read()!r})"


# --------------------------------------------------------------------------- the backend


class NpyBackend(Backend):
    """One memory-mappable ``.npy`` file per array (see the module docstring for the layout).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
        >>> e = b.write(root, "g1", {"a": np.eye(2)})["a"]
        >>> type(b.open(root, e)).__name__, type(b.open(root, e, mode="a")).__name__
        ('ReadOnlyMemmap', 'ArrayProxy')
    """

    name: ClassVar[str] = "npy"
    distribution: ClassVar[str] = "persist-hooks"
    supports_append: ClassVar[bool] = True
    supports_partial_writes: ClassVar[bool] = True
    supports_memmap: ClassVar[bool] = True
    supports_attrs: ClassVar[bool] = True
    supports_structured: ClassVar[bool] = True
    supports_datetime: ClassVar[bool] = True
    supports_void: ClassVar[bool] = True
    supports_longdouble: ClassVar[bool] = True
    supports_lazy_arrays: ClassVar[bool] = True
    supports_on_entries: ClassVar[bool] = True
    option_defaults: ClassVar[Mapping[str, Any]] = {}

    def write(
        self,
        root: Path,
        stem: str,
        arrays: Mapping[str, np.ndarray[Any, Any]],
        *,
        durable: bool = False,
        on_entries: OnEntries | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Write ``arrays[key]`` (the ``i``-th) to ``<stem>_<i>.npy``; see :meth:`Backend.write`.

        ``on_entries`` runs with the last array's checksum, on the checksum's
        pool thread while that array's bytes are written.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> NpyBackend().write(root, "g2", {"a": np.zeros(2, "U3"), "b": np.ones(1, bool)})
            {'a': {'path': 'g2_0.npy', 'shape': [2], 'dtype': '<U3', 'checksum': 'crc...'}, 'b': {'path': 'g2_1.npy', 'shape': [1], 'dtype': '|b1', 'checksum': 'crc...'}}
        """
        root = Path(root)
        prepared: list[tuple[str, str, Path, np.ndarray[Any, Any]]] = []
        for i, (key, value) in enumerate(arrays.items()):
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
            self.check_dtype(arr.dtype)
            rel = f"{stem}_{i}.npy"
            prepared.append((key, rel, resolve_path(root, rel), arr))
        gatherer = EntryGatherer([key for key, _, _, _ in prepared], on_entries)
        with rollback_on_error() as created:
            for key, rel, path, arr in prepared:
                make_dirs(path.parent, created)
                fortran = bool(arr.flags.f_contiguous and not arr.flags.c_contiguous)
                header = _header_bytes(arr.dtype, fortran, arr.shape)
                assert header is not None
                crc = None
                try:
                    fd = os.open(path, _CREATE_FLAGS, 0o666)
                    try:
                        created.append(path)
                        preallocate(fd, len(header) + arr.nbytes)
                        # started right before the write: the pool thread then takes the GIL
                        # while this one is in writev, not in a ping-pong over Python code
                        crc = start_checksum(
                            arr, then=gatherer.then(key, _entry_maker(rel, arr)), paced=True
                        )
                        _write_file(fd, header, arr, fortran, crc)
                        if durable:
                            os.fsync(fd)
                    finally:
                        os.close(fd)
                except BaseException as exc:
                    if crc is not None:  # on_entries may be running: nothing outlives write
                        gatherer.settle([crc])
                    if not isinstance(exc, OSError) or exc.filename is not None:
                        raise
                    raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
                gatherer.wait([crc])  # its entry is made (the last: on_entries has run)
            entries = gatherer.entries()
            if durable:
                for directory in sorted(
                    {p.parent for _, _, p, _ in prepared} | {p.parent for p in created}
                ):
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
        """A ``numpy.memmap`` (``mode="r"``) or an :class:`ArrayProxy` (``"a"``); see :meth:`Backend.open`.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> e = b.write(root, "g1", {"a": np.arange(3)})["a"]
            >>> b.open(root, dict(e, dtype="<f8"), trusted=False)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            persist_hooks.errors.FormatError: ...g1_0.npy: holds an array of shape (3,) and dtype int64, but the item header says shape (3,) and dtype float64
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', not {mode!r}")
        rel = entry.get("path")
        path = resolve_path(Path(root), rel)
        with open(path, "rb") as fh:
            header = _read_header(fh, path, max_header=None if trusted else MAX_HEADER_UNTRUSTED)
            size = os.fstat(fh.fileno()).st_size
            if not trusted:
                shape, dtype = entry_shape_dtype(entry)
                if not same_layout(shape, dtype, header.shape, header.dtype):
                    raise FormatError(
                        f"{path}: holds an array of shape {header.shape} and dtype {header.dtype}, "
                        f"but the item header says shape {shape} and dtype {dtype}"
                    )
            if header.dtype.hasobject:
                if not trusted:
                    raise FormatError(
                        f"{path}: holds pickled Python objects; refused with trusted=False"
                    )
                if mode == "a":
                    raise BackendError(
                        f"{path}: holds pickled Python objects; it cannot be opened writable"
                    )
                return ReadOnlyMemmap._of(np.load(path, allow_pickle=True), path, str(rel))
            _check_complete(header, size, path)
            if mode == "a":
                driver = NpyDriver(path, str(rel), durable=durable)
                return ArrayProxy(
                    driver,
                    writer_lock=writer_lock,
                    modified_marker=modified_marker(Path(root), entry),
                )
            if header.nbytes == 0:  # nothing to map
                empty = np.empty(header.shape, header.dtype, order=header.order())
                return ReadOnlyMemmap._of(empty, path, str(rel))
            return ReadOnlyMemmap._map(fh, header, path, str(rel))

    def delete(self, root: Path, entries: Iterable[Mapping[str, Any]]) -> None:
        """Remove each entry's ``.npy`` file and its attribute sidecar; missing ones are ignored.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> e = b.write(root, "g1", {"a": np.arange(3)})["a"]
            >>> b.delete(root, [e]); sorted(p.name for p in root.iterdir())
            []
        """
        for entry in entries:
            path = resolve_path(Path(root), entry["path"])
            path.unlink(missing_ok=True)
            path.with_name(path.name + ATTRS_SUFFIX).unlink(missing_ok=True)
            remove_companions(path)

    def paths(self, entries: Iterable[Mapping[str, Any]]) -> set[str]:
        """The entries' ``.npy`` paths (a ``<path>.attrs.json`` sidecar may sit beside each).

        Example:
            >>> NpyBackend().paths([{"path": "d/g1_0.npy"}, {"path": "d/g1_1.npy"}]) == {"d/g1_0.npy", "d/g1_1.npy"}
            True
        """
        out: set[str] = set()
        for entry in entries:
            resolve_path(Path("."), entry["path"])  # refuse paths leaving the directory
            out.add(entry["path"])
        return out

    def plain_loader(self, entries: Mapping[str, Mapping[str, Any]]) -> str:
        """Source binding ``_arrays`` with ``numpy.load(path, mmap_mode="r")`` per entry.

        Example:
            >>> print(NpyBackend().plain_loader({"array_0": {"path": "x_data/g1_0.npy", "shape": [3], "dtype": "<f8"}}))
            # Arrays of this item: .npy files written by persist_hooks (npy backend), memory-mapped.
            def _load_arrays():
                import os
                import numpy
                here = os.path.dirname(os.path.abspath(__file__))
                files = {  # key: (path relative to the DataSet directory, mmap_mode)
                    'array_0': ('x_data/g1_0.npy', 'r'),
                }
                return {key: numpy.load(os.path.join(here, *path.split('/')), mmap_mode=mode)
                        for key, (path, mode) in files.items()}
            _arrays = _load_arrays()
            del _load_arrays
        """
        lines = [
            "# Arrays of this item: .npy files written by persist_hooks (npy backend), memory-mapped.",
            "def _load_arrays():",
            "    import os",
            "    import numpy",
            "    here = os.path.dirname(os.path.abspath(__file__))",
            "    files = {  # key: (path relative to the DataSet directory, mmap_mode)",
        ]
        for key, entry in entries.items():
            shape, dtype = entry_shape_dtype(entry)
            rel = entry["path"]
            resolve_path(Path("."), rel)
            # an array of 0 bytes cannot be memory-mapped
            mode = "'r'" if math.prod(shape) * dtype.itemsize else "None"
            lines.append(f"        {str(key)!r}: ({str(rel)!r}, {mode}),")
        lines += [
            "    }",
            "    return {key: numpy.load(os.path.join(here, *path.split('/')), mmap_mode=mode)",
            "            for key, (path, mode) in files.items()}",
            "_arrays = _load_arrays()",
            "del _load_arrays",
        ]
        return "\n".join(lines)

    def describe(self, entry: Mapping[str, Any]) -> str:
        """One line: dtype, shape, size and file.

        Example:
            >>> NpyBackend().describe({"path": "x_data/g1_0.npy", "shape": [3], "dtype": ">i4"})
            '>i4 array of shape (3,), 12 B, in x_data/g1_0.npy (npy)'
        """
        return describe_entry(entry, self.name)


@hookimpl
def persist_hooks_backends() -> list[type[Backend]]:
    """Contribute :class:`NpyBackend`, exactly as a third-party backend plugin would.

    Example:
        >>> persist_hooks_backends()
        [<class 'persist_hooks.backends.npy.NpyBackend'>]
    """
    return [NpyBackend]

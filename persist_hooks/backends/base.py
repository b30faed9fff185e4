"""The storage-backend protocol: the abstract :class:`Backend` and the helpers implementations share.

A backend stores the large arrays of an item beside its ``.py`` file and opens
them again lazily.  Every backend — the built-in ``npy``, the ``hdf5`` and
``zarr`` plugins, a third party's — subclasses :class:`Backend`, is contributed
through the ``persist_hooks_backends`` hook, and is checked by the shared
conformance suite :class:`persist_hooks.testing.BackendTests`.

The header of an item file records, per array key, the *entry* a backend's
:meth:`Backend.write` returned (a JSON-able dict with at least ``path``,
``shape`` and ``dtype``) and the backend's :attr:`Backend.options`; reading
builds ``Backend(**options)`` and calls :meth:`Backend.open` on the entry, so
reading never depends on configuration.

Capabilities are class attributes, in the spirit of zarr v3's store ABC
(``supports_writes``, ``supports_partial_writes``, ...): code that needs a
feature checks the flag instead of catching ``NotImplementedError``.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import json
import math
import os
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.lib.format as npformat

from ..errors import BackendError, FormatError

__all__ = [
    "CHECKSUM_KEY",
    "DEFAULT_CHECKSUM",
    "MODIFIED_SUFFIX",
    "PACE_MIN_BYTES",
    "PACE_PIECE",
    "Backend",
    "Crc32",
    "EntryGatherer",
    "OnEntries",
    "PendingChecksum",
    "WriterLockFactory",
    "checksum",
    "checksum_algorithm",
    "describe_entry",
    "dtype_from_json",
    "dtype_to_json",
    "entry_shape_dtype",
    "fsync_dir",
    "human_size",
    "make_dirs",
    "make_entry",
    "mark_modified",
    "modified_marker",
    "preallocate",
    "remove_companions",
    "report_written",
    "resolve_path",
    "rollback_on_error",
    "same_layout",
    "start_checksum",
]

WriterLockFactory = Callable[[], AbstractContextManager[Any]]
"""A callable returning a context manager that holds the DataSet's writer lock."""


# --------------------------------------------------------------------------- dtypes


def dtype_to_json(dtype: np.dtype[Any]) -> str | list[Any]:
    """Return ``numpy.lib.format.dtype_to_descr(dtype)`` with tuples turned into lists (JSON-able).

    Example:
        >>> dtype_to_json(np.dtype(">f8"))
        '>f8'
        >>> dtype_to_json(np.dtype([("a", "<i4"), ("b", "S3", (2,))]))
        [['a', '<i4'], ['b', '|S3', [2]]]
    """
    return _listify(npformat.dtype_to_descr(np.dtype(dtype)))  # type: ignore[no-any-return]


def _listify(obj: Any) -> Any:
    if isinstance(obj, (tuple, list)):
        return [_listify(x) for x in obj]
    return obj


def dtype_from_json(descr: Any) -> np.dtype[Any]:
    """Inverse of :func:`dtype_to_json`: rebuild the dtype from its JSON-able descr.

    Raises :class:`persist_hooks.FormatError` when ``descr`` is not a valid descr.

    Example:
        >>> dtype_from_json([["a", "<i4"], ["b", "|S3", [2]]])
        dtype([('a', '<i4'), ('b', 'S3', (2,))])
    """
    if isinstance(descr, str):
        known = _DESCRS.get(descr)
        if known is not None:
            return known
    try:
        dtype = npformat.descr_to_dtype(_tuplify_descr(descr))
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise FormatError(f"invalid dtype description {descr!r}: {exc}") from None
    if isinstance(descr, str) and len(_DESCRS) < 1024:
        _DESCRS[descr] = dtype  # readers parse the same few descrs for every array
    return dtype


_DESCRS: dict[str, np.dtype[Any]] = {}


def _tuplify_descr(descr: Any) -> Any:
    if isinstance(descr, str):
        return descr
    if not isinstance(descr, (list, tuple)):
        raise TypeError(f"a descr is a str or a list of fields, not {type(descr).__name__}")
    fields: list[tuple[Any, ...]] = []
    for field in descr:
        if not isinstance(field, (list, tuple)) or len(field) not in (2, 3):
            raise TypeError(
                f"a field of a descr is [name, descr] or [name, descr, shape], not {field!r}"
            )
        name = tuple(field[0]) if isinstance(field[0], (list, tuple)) else field[0]
        sub = _tuplify_descr(field[1])
        if len(field) == 3:
            fields.append((name, sub, tuple(field[2])))
        else:
            fields.append((name, sub))
    return fields


# --------------------------------------------------------------------------- checksums

CHECKSUM_KEY = "checksum"
"""Entry key of the checksum of an array's data: ``"crc32c:<8 hex digits>"`` (or, written
without the ``crc32c`` package, ``"crc32:<8 hex digits>"``); optional in format 1."""
MODIFIED_SUFFIX = ".modified"
"""Companion ``<path>.modified``: the data at ``path`` was changed in place after it was written."""
CHECKSUM_BLOCK_BYTES = 16 << 20
"""Bytes per block when a checksum is computed over a non-contiguous array."""
_THREAD_MIN_BYTES = 1 << 20
"""Arrays at least this large are checksummed in a thread that overlaps the file write."""
PACE_PIECE = 2 << 20
"""Bytes per piece of a paced checksum (``start_checksum(paced=True)``): the writer
reports its progress per piece, and the checksum keeps at most one piece ahead of the
one being written, so the writer reads its source from the CPU cache."""
PACE_MIN_BYTES = 32 << 20
"""Arrays at least this large get a paced checksum when the writer asks for one."""
_PACE_AHEAD = 2
"""Pieces the paced checksum may be ahead of the writer's progress (the one being written
and the next)."""
_PACE_TAIL = 2
"""Last pieces a paced checksum reads without waiting, to be done ~3 pieces (~1 ms)
before the writer: time for ``then`` (staging an item's source took ~0.75 ms)."""
_PACE_PATIENCE = 1.0
"""Seconds a paced checksum waits for the writer's progress before it runs free."""


def _crc32c(data: Any, value: int = 0) -> int:
    """CRC-32C of ``data`` continuing ``value``, by the ``crc32c`` package (imported on first
    use: it costs ~10 ms, which reading never pays)."""
    from crc32c import crc32c

    return int(crc32c(data, value))


def _have_crc32c() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("crc32c") is not None
    except (ImportError, ValueError):  # pragma: no cover - a broken installation
        return False


_ALGORITHMS: dict[str, Callable[[Any, int], int] | None] = {
    "crc32c": _crc32c if _have_crc32c() else None,  # CRC-32C in hardware: ~24 GB/s here
    "crc32": zlib.crc32,  # zlib's CRC-32: ~3.6 GB/s
}
DEFAULT_CHECKSUM = "crc32c" if _ALGORITHMS["crc32c"] is not None else "crc32"
"""The algorithm writers record: CRC-32C (as zarr v3's ``crc32c`` codec, computed in
hardware by the ``crc32c`` package, fast enough to check every write), else zlib's CRC-32."""


class Crc32:
    """A running checksum of an array's elements in C order, fed in blocks.

    ``algorithm`` is ``"crc32c"`` (the default when the ``crc32c`` package is
    installed) or ``"crc32"`` (zlib).  The checksum recorded in an entry is
    that of the whole array's bytes in C order, in the dtype the entry records
    (byte order included); feeding consecutive row blocks gives the same value,
    so a verifier never holds a large array in memory.

    Example:
        >>> a = np.arange(10.0)
        >>> c = Crc32(); c.update(a[:4]); c.update(a[4:])
        >>> str(c) == checksum(a)
        True
        >>> str(Crc32("crc32"))
        'crc32:00000000'
    """

    __slots__ = ("algorithm", "function", "value")

    def __init__(self, algorithm: str = DEFAULT_CHECKSUM) -> None:
        function = _ALGORITHMS.get(algorithm)
        if function is None:
            raise ValueError(
                f"checksum algorithm {algorithm!r} is not available here (known: crc32c, "
                "crc32; crc32c needs the crc32c package: pip install crc32c)"
            )
        self.algorithm = algorithm
        self.function = function
        self.value = 0

    def update(self, block: Any) -> None:
        """Add the elements of ``block`` (any array-like), in C order."""
        arr = np.asarray(block)
        if arr.size == 0:
            return
        if arr.flags.c_contiguous:
            self.value = self.function(arr.reshape(-1).view(np.uint8).data, self.value)
            return
        rows = arr.reshape(-1) if arr.ndim <= 1 else arr
        row_bytes = max(1, math.prod(rows.shape[1:]) * rows.dtype.itemsize)
        step = max(1, CHECKSUM_BLOCK_BYTES // row_bytes)
        for start in range(0, rows.shape[0], step):
            part = np.ascontiguousarray(rows[start : start + step])
            self.value = self.function(part.reshape(-1).view(np.uint8).data, self.value)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value & 0xFFFFFFFF:08x}"


def checksum_algorithm(recorded: str) -> str | None:
    """The algorithm of a recorded checksum if this installation can compute it, else ``None``.

    Example:
        >>> checksum_algorithm("crc32:1d760e7a"), checksum_algorithm("md5:00")
        ('crc32', None)
    """
    algorithm = recorded.partition(":")[0]
    return algorithm if _ALGORITHMS.get(algorithm) is not None else None


def checksum(arr: Any) -> str:
    """The checksum an entry records for ``arr``: the CRC of its bytes in C order, ``"<algorithm>:<hex>"``.

    Example:
        >>> checksum(np.arange(3, dtype="<i4")) == f"{DEFAULT_CHECKSUM}:" + (
        ...     "1d760e7a" if DEFAULT_CHECKSUM == "crc32" else "dd3bebfb")
        True
        >>> checksum(np.arange(6.0).reshape(2, 3).T) == checksum(np.arange(6.0).reshape(2, 3).T.copy())
        True
    """
    c = Crc32()
    c.update(arr)
    return str(c)


def start_checksum(
    arr: np.ndarray[Any, Any],
    *,
    overlap: bool = True,
    then: Callable[[str | None], object] | None = None,
    paced: bool = False,
) -> PendingChecksum:
    """Start computing :func:`checksum` of ``arr``; return a :class:`PendingChecksum`: call it
    to wait for the result.

    Large arrays are checksummed on a pool thread while the caller writes them
    (both CRC implementations release the GIL on large buffers, so with a free
    core the checksum costs the write almost nothing); small ones at once, and
    every array at once with ``overlap=False``: for a caller that goes on to
    write in C code holding the GIL, which would keep the pool thread from
    starting until it is done (h5py and zarr release it while they write).
    This does not wait for the thread to start: waking the other core costs
    0.2-0.9 ms on a virtual machine, more than the checksum
    of 8 MB (0.35 ms).  Call it right before the write itself: the pool thread
    needs the GIL to start, and while the caller still runs Python code (file
    creation, h5py's dataset creation) the two pass the GIL back and forth, which
    cost an 8 MB npy write ~0.25 ms.  A placeholder of an array computed while it is written
    (a dask array, see :mod:`persist_hooks.backends.lazy`) gets no checksum
    (``None``): its bytes do not exist yet.

    ``paced=True`` is for a caller that writes the array's bytes in C order from
    its own memory, reporting its progress with :meth:`PendingChecksum.advance`.
    A checksum of a C-contiguous array of at least :data:`PACE_MIN_BYTES` then
    reads the array :data:`PACE_PIECE` bytes at a time, at most one piece ahead
    of the one being written: the writer finds its source in the CPU cache,
    where a checksum running free reads all of memory a second time while the
    write copies it.  With a checksum 5x faster than the write, that contention
    cost an 80 MB write ~8% (best of 25; ~0.97x the write without a
    checksum when paced), 800 MB ~8-13% (0.88-0.97x).  The writer never waits
    for the checksum; a checksum the writer leaves waiting longer than a second
    runs free.

    ``then(checksum)``, if given, runs as soon as the checksum is known: on the
    pool thread, while the caller writes, for a large array; else at once.  It
    is how a backend hands its entries to :meth:`Backend.write`'s ``on_entries``
    while the bytes are still being written.  The returned function waits for
    ``then`` too, and raises what it raised.

    Example:
        >>> result = start_checksum(np.zeros(1 << 18))
        >>> result() == checksum(np.zeros(1 << 18))
        True
        >>> seen = []
        >>> start_checksum(np.zeros(1 << 18), then=seen.append)() == seen[0]
        True
        >>> big = np.ones(PACE_MIN_BYTES // 8)
        >>> crc = start_checksum(big, paced=True)
        >>> for start in range(0, big.nbytes, PACE_PIECE):
        ...     crc.advance(PACE_PIECE)  # the writer wrote another piece
        >>> crc() == checksum(big)
        True
    """
    from .lazy import lazy_source

    if lazy_source(arr) is not None:
        if then is not None:
            then(None)
        return PendingChecksum(None)
    if arr.nbytes < _THREAD_MIN_BYTES or not overlap:
        value = checksum(arr)
        if then is not None:
            then(value)
        return PendingChecksum(value)
    pace = paced and arr.flags.c_contiguous and arr.nbytes >= PACE_MIN_BYTES
    job = _ChecksumJob(arr, then, pace)
    try:
        _checksum_pool().submit(job.run)
    except RuntimeError:  # no new threads: the interpreter is shutting down
        job.release()
        job.run()
    return job


class PendingChecksum:
    """The checksum of an array being written, from :func:`start_checksum`; call it for the value.

    The writer of a paced checksum reports its progress with :meth:`advance`
    and lets the checksum run free with :meth:`release` when it stops writing
    (calling the object does that too).  Both do nothing for a checksum that
    is not paced, so a writer can call them whatever it got.

    Example:
        >>> done = PendingChecksum("crc32c:00000000")
        >>> done.advance(1 << 20); done.release(); done()
        'crc32c:00000000'
    """

    __slots__ = ("_known",)

    def __init__(self, value: str | None) -> None:
        self._known = value

    def __call__(self) -> str | None:
        """Wait for the checksum (and the ``then`` of :func:`start_checksum`); return it."""
        return self._known

    def advance(self, nbytes: int) -> None:
        """The writer wrote ``nbytes`` more of the array's bytes (in C order)."""

    def release(self) -> None:
        """The writer stopped writing (done, or failed): the checksum no longer keeps pace."""


class _ChecksumJob(PendingChecksum):
    """One array's checksum (and what runs ``then``) on a pool thread; calling it waits for it.

    Paced, the pool thread takes a token from ``pace`` per piece: it starts with
    :data:`_PACE_AHEAD` of them, and the writer's :meth:`advance` adds one per
    piece written.  Tokens go through a ``SimpleQueue``: a put or get is one C
    call, where ``threading.Semaphore`` runs a condition in Python code, and the
    two threads would pass the GIL back and forth over it at every piece.
    """

    __slots__ = ("arr", "done", "granted", "pace", "pieces", "then", "value", "written")

    def __init__(
        self,
        arr: np.ndarray[Any, Any],
        then: Callable[[str | None], object] | None,
        paced: bool = False,
    ) -> None:
        super().__init__(None)
        self.arr: np.ndarray[Any, Any] | None = arr
        self.then = then
        self.done = threading.Lock()  # held until the value is there: a one-shot event
        self.done.acquire()
        self.value: str | BaseException | None = None
        self.pieces = -(-arr.nbytes // PACE_PIECE) if paced else 0
        self.pace: queue.SimpleQueue[None] | None = None
        if paced:
            self.pace = queue.SimpleQueue()
            for _ in range(_PACE_AHEAD):
                self.pace.put(None)
        self.written = 0  # the writer's progress, in bytes and in pieces granted
        self.granted = 0

    def run(self) -> None:
        try:
            assert self.arr is not None
            if self.pace is None:
                self.value = checksum(self.arr)
            else:
                self.value = self._paced(self.arr, self.pace)
            if self.then is not None:
                self.then(self.value)
        except BaseException as exc:  # handed to the caller by __call__
            self.value = exc
        finally:
            # the pool thread keeps no reference to the caller's array or work
            self.arr = self.then = None
            self.done.release()

    @staticmethod
    def _paced(arr: np.ndarray[Any, Any], pace: queue.SimpleQueue[None]) -> str:
        crc = Crc32()
        function, value = crc.function, 0
        data = arr.reshape(-1).view(np.uint8).data  # C-contiguous: no copy
        size = len(data)
        waiting = True
        # the last pieces run free: the checksum (and ``then``, which stages the item's
        # source) is done while the writer still writes them, not after
        free_from = size - _PACE_TAIL * PACE_PIECE
        for start in range(0, size, PACE_PIECE):
            if waiting and start < free_from:
                try:
                    pace.get(timeout=_PACE_PATIENCE)
                except queue.Empty:
                    waiting = False  # the writer stalls (or forgot to advance): run free
            value = function(data[start : start + PACE_PIECE], value)
        crc.value = value
        return str(crc)

    def advance(self, nbytes: int) -> None:
        pace = self.pace
        if pace is None:
            return
        self.written += nbytes
        pieces = min(self.written // PACE_PIECE, self.pieces)
        while self.granted < pieces:
            pace.put(None)
            self.granted += 1

    def release(self) -> None:
        self.advance(self.pieces * PACE_PIECE)

    def __call__(self) -> str | None:
        self.release()  # a writer waiting for the checksum writes no more
        with self.done:
            value = self.value
        if isinstance(value, BaseException):
            raise value
        return value


class _Workers:
    """A few daemon threads running the callables put on a queue.

    ``concurrent.futures.ThreadPoolExecutor.submit`` builds a future, a work item
    and a condition in Python code: ~70 us right after an 8 MB write had evicted
    the caches, a twentieth of the write.  Putting on a ``SimpleQueue`` is one C
    call.  The threads start with the first job; a job waits while all are busy.
    """

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        for i in range(size):
            threading.Thread(
                target=self._work, name=f"persist_hooks-checksum-{i}", daemon=True
            ).start()

    def _work(self) -> None:
        while True:
            self._queue.get()()

    def submit(self, job: Callable[[], None]) -> None:
        self._queue.put(job)


_POOL: _Workers | None = None
_POOL_LOCK = threading.Lock()


def _checksum_pool() -> _Workers:
    """The threads that checksum arrays while they are written (started on first use).

    Starting a thread per array cost ~0.3 ms here, a tenth of writing 8 MB; pool
    threads wait for work instead.  Four of them serve as many concurrent writers
    at once; a fifth array waits for a free thread.
    """
    global _POOL
    pool = _POOL
    if pool is None:
        with _POOL_LOCK:
            if _POOL is None:
                _POOL = _Workers(4)
            pool = _POOL
    return pool


def _forget_pool_in_child() -> None:  # a forked child has the pool object, not its threads
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def modified_marker(root: Path, entry: Mapping[str, Any]) -> Path:
    """The companion file that records that ``entry``'s data was changed in place.

    Writes through an :class:`~persist_hooks.backends.proxy.ArrayProxy`
    (assignment, ``append``, ``resize``) create it before they change any
    byte, so the checksum recorded when the array was written is known to be
    stale and :func:`persist_hooks.verify.verify` does not report a false
    mismatch.  It is ``<path>.modified`` beside the entry's ``path`` (a
    companion of that path: kept and removed with it).

    Example:
        >>> modified_marker(Path("/d"), {"path": "x_data/g1_0.npy"}).as_posix()
        '/d/x_data/g1_0.npy.modified'
    """
    return resolve_path(root, str(entry.get("path")) + MODIFIED_SUFFIX)


def mark_modified(marker: Path, *, durable: bool = False) -> None:
    """Create ``marker`` (see :func:`modified_marker`) if it does not exist yet: O(1).

    Example:
        >>> import tempfile
        >>> m = Path(tempfile.mkdtemp()) / "g1_0.npy.modified"
        >>> mark_modified(m); mark_modified(m); m.exists()
        True
    """
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return
    try:
        os.write(fd, b"changed in place through an ArrayProxy: the recorded checksum is stale\n")
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    if durable:
        fsync_dir(marker.parent)


def remove_companions(path: Path) -> None:
    """Remove the companions persist_hooks keeps beside stored data at ``path`` (if any).

    Backends call it from :meth:`Backend.delete` for each path they remove.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / "g1.h5.modified").touch()
        >>> remove_companions(d / "g1.h5"); list(d.iterdir())
        []
    """
    for suffix in (MODIFIED_SUFFIX,):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


def report_written(nbytes: int) -> None:
    """Count ``nbytes`` a backend wrote toward the progress of the DataSet write in progress.

    A DataSet shows a progress bar (on a terminal, for writes longer than a
    second) from these counts; outside a DataSet write this does nothing.
    Backends call it as they write, ideally per block of a large array.

    Example:
        >>> report_written(1 << 20)
    """
    from .._progress import report_written as count  # logging only once something is written

    count(nbytes)


# --------------------------------------------------------------------------- paths and files


def resolve_path(root: Path, relative: object) -> Path:
    """Return ``root / relative`` for a relative posix path that stays inside ``root``.

    Entries come from item headers, which a hostile archive could forge:
    absolute paths and ``..`` components are refused with
    :class:`persist_hooks.FormatError`, so no backend ever opens or deletes a
    file outside the DataSet directory.

    Example:
        >>> resolve_path(Path("/data/ds"), "x_data/g3_0.npy").as_posix()
        '/data/ds/x_data/g3_0.npy'
        >>> resolve_path(Path("/data/ds"), "../etc/passwd")
        Traceback (most recent call last):
        ...
        persist_hooks.errors.FormatError: array path '../etc/passwd' leaves the DataSet directory
    """
    if not isinstance(relative, str) or not relative:
        raise FormatError(f"array path {relative!r} is not a non-empty string")
    if (
        relative[0] != "/"
        and "\\" not in relative
        and "\x00" not in relative
        and ".." not in relative.split("/")
    ):
        return Path(root, relative)  # the common case, one path parse (readers pay it per array)
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or "\\" in relative or "\x00" in relative:
        raise FormatError(f"array path {relative!r} leaves the DataSet directory")
    return Path(root).joinpath(*pure.parts)


PREALLOCATE_MIN = 1 << 20
"""Byte ranges at least this large are allocated before they are written (:func:`preallocate`)."""


def preallocate(fd: int, size: int, offset: int = 0) -> None:
    """Allocate bytes ``[offset, offset + size)`` of a file about to be written there.

    Writing into allocated blocks runs ~25% faster on ext4 than letting each
    write allocate (as ``ndarray.tofile`` knows), and a full disk fails here,
    before any data is written (``OSError``: ENOSPC, EDQUOT, EFBIG).  Ranges
    under :data:`PREALLOCATE_MIN` and file systems without ``fallocate`` are
    left alone.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryFile() as f:
        ...     preallocate(f.fileno(), 4 << 20); os.fstat(f.fileno()).st_size
        4194304
    """
    if size < PREALLOCATE_MIN or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, offset, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        # EOPNOTSUPP, EINVAL...: the writes allocate as they go


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries to disk (after creating or renaming files in it).

    Example:
        >>> import tempfile
        >>> fsync_dir(Path(tempfile.mkdtemp()))
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def rollback_on_error() -> Iterator[list[Path]]:
    """Collect created paths; if the block raises, remove them (newest first) and re-raise.

    Append every file *and* every directory you create to the yielded list, in
    creation order; directories are removed only if empty.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> try:
        ...     with rollback_on_error() as created:
        ...         _ = (d / "a").write_text("x"); created.append(d / "a")
        ...         raise RuntimeError("boom")
        ... except RuntimeError:
        ...     pass
        >>> (d / "a").exists()
        False
    """
    created: list[Path] = []
    try:
        yield created
    except BaseException:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()
        raise


def make_dirs(directory: Path, created: list[Path]) -> None:
    """Create ``directory`` and its missing parents, appending each one created to ``created``.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); made = []
        >>> make_dirs(d / "a" / "b", made)
        >>> [p.name for p in made]
        ['a', 'b']
    """
    try:  # the common case: the parent exists, the directory does not (one system call)
        directory.mkdir()
    except FileExistsError:
        return
    except FileNotFoundError:
        pass  # a parent is missing too
    else:
        created.append(directory)
        return
    missing: list[Path] = []
    probe = directory
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        created.append(path)


def human_size(nbytes: int) -> str:
    """Format a byte count for people (powers of 1000, like ``ls -h --si``).

    Example:
        >>> human_size(999), human_size(23_400), human_size(8_000_000)
        ('999 B', '23.4 kB', '8.0 MB')
    """
    size = float(nbytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def make_entry(path: str, array: np.ndarray[Any, Any], **extra: Any) -> dict[str, Any]:
    """Build the JSON-able header entry of one stored array: ``path``, ``shape``, ``dtype`` and ``extra``.

    Extra values that are ``None`` are left out (a checksum that could not be computed).

    Example:
        >>> make_entry("x_data/g3_0.npy", np.zeros((2, 3), ">f4"))
        {'path': 'x_data/g3_0.npy', 'shape': [2, 3], 'dtype': '>f4'}
    """
    entry: dict[str, Any] = {
        "path": path,
        "shape": [int(n) for n in array.shape],
        "dtype": dtype_to_json(array.dtype),
    }
    entry.update((k, v) for k, v in extra.items() if v is not None)
    return entry


OnEntries = Callable[[dict[str, dict[str, Any]]], object]
"""``on_entries`` of :meth:`Backend.write`."""


class EntryGatherer:
    """The entries of one :meth:`Backend.write`, made as the arrays' checksums arrive.

    For a backend that takes ``on_entries``: each array's checksum is started
    with ``then=gatherer.then(key, make)``, where ``make(checksum)`` builds the
    array's entry; the thread that makes the last entry (the checksum's pool
    thread, while the caller still writes) calls ``on_entries`` with all of them,
    in the order of ``keys``.  :meth:`wait` waits for checksums (and raises their
    errors and ``on_entries``'); a write that failed calls :meth:`settle` on every
    checksum it started, so nothing ``on_entries`` does outlives the write.

    Example:
        >>> seen = []
        >>> g = EntryGatherer(["a", "b"], seen.append)
        >>> results = [start_checksum(np.zeros(3), then=g.then(k, lambda crc: {"crc": crc}))
        ...            for k in ("b", "a")]
        >>> g.wait(results); g.entries() == seen[0], list(seen[0])
        (True, ['a', 'b'])
    """

    def __init__(self, keys: Iterable[str], on_entries: OnEntries | None) -> None:
        self._entries: dict[str, dict[str, Any] | None] = dict.fromkeys(keys)
        self._missing = len(self._entries)
        self._on_entries = on_entries
        self._lock = threading.Lock()
        if not self._missing and on_entries is not None:
            on_entries({})

    def then(
        self, key: str, make: Callable[[str | None], dict[str, Any]]
    ) -> Callable[[str | None], None]:
        """``then`` for the checksum of array ``key``: makes its entry with ``make(checksum)``."""

        def made(crc: str | None) -> None:
            entry = make(crc)
            with self._lock:
                self._entries[key] = entry
                self._missing -= 1
                complete = self._missing == 0
            if complete and self._on_entries is not None:
                self._on_entries(self._complete())

        return made

    def wait(self, results: Iterable[Callable[[], str | None]]) -> None:
        """Wait for the checksums ``results`` (and ``on_entries``, if one of them made the last
        entry); raise the first error of a checksum or of ``on_entries``, after waiting
        for all of them."""
        error: BaseException | None = None
        for result in results:
            try:
                result()
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error

    def settle(self, results: Iterable[Callable[[], str | None]]) -> None:
        """Wait for every started checksum (and ``on_entries``), ignoring their errors: the
        error path of a failed write, whose own error is the one to report."""
        with contextlib.suppress(BaseException):
            self.wait(results)

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every array's entry, in the order of ``keys`` (call it after :meth:`wait`)."""
        return self._complete()

    def _complete(self) -> dict[str, dict[str, Any]]:
        entries = {k: e for k, e in self._entries.items() if e is not None}
        if len(entries) != len(self._entries):
            missing = [k for k, e in self._entries.items() if e is None]
            raise RuntimeError(f"no entry was made for arrays {missing}")
        return entries


def entry_shape_dtype(entry: Mapping[str, Any]) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Return the ``(shape, dtype)`` an entry records, or raise :class:`FormatError`.

    Example:
        >>> entry_shape_dtype({"path": "a.npy", "shape": [2], "dtype": "<i8"})
        ((2,), dtype('int64'))
    """
    try:
        shape = tuple(int(n) for n in entry["shape"])
        descr = entry["dtype"]
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"invalid array entry {dict(entry)!r}: {exc!r}") from None
    if any(n < 0 for n in shape):
        raise FormatError(f"invalid array entry {dict(entry)!r}: negative dimension")
    return shape, dtype_from_json(descr)


def same_layout(
    entry_shape: tuple[int, ...],
    entry_dtype: np.dtype[Any],
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
) -> bool:
    """Whether stored data of ``shape``/``dtype`` matches an entry, up to the length of axis 0.

    Appends and growth through an :class:`~persist_hooks.backends.proxy.ArrayProxy`
    change axis 0 without rewriting the item header, so only the dtype, the
    number of dimensions and the trailing dimensions must agree.

    Example:
        >>> f8 = np.dtype("f8")
        >>> same_layout((3, 2), f8, (5, 2), f8), same_layout((3, 2), f8, (3, 4), f8)
        (True, False)
    """
    return (
        entry_dtype == dtype
        and len(entry_shape) == len(shape)
        and tuple(entry_shape[1:]) == tuple(shape[1:])
    )


# --------------------------------------------------------------------------- the protocol


class Backend(abc.ABC):
    """A storage backend: writes arrays to new files under a DataSet directory and opens them lazily.

    Subclasses set :attr:`name`, :attr:`distribution`, the capability flags and
    :attr:`option_defaults`, and implement the abstract methods.  Instances are
    cheap, immutable descriptions (a name plus options); they hold no files.

    Example:
        >>> from persist_hooks.backends.npy import NpyBackend
        >>> b = NpyBackend()
        >>> b.name, b.options, b.supports_append
        ('npy', {}, True)
        >>> NpyBackend(level=3)
        Traceback (most recent call last):
        ...
        persist_hooks.errors.BackendError: unknown option 'level' for storage backend 'npy'; it takes no options
    """

    name: ClassVar[str]
    """Registry name, recorded in item headers (``"npy"``)."""
    distribution: ClassVar[str] = "persist-hooks"
    """Distribution that provides the backend, for install hints."""

    # capabilities (zarr v3 store style); the conformance suite reads them
    supports_append: ClassVar[bool] = False
    """Proxies opened with ``mode="a"`` can ``append`` along axis 0 and grow by assignment."""
    supports_partial_writes: ClassVar[bool] = False
    """Proxies opened with ``mode="a"`` can assign to parts of an array in place."""
    supports_memmap: ClassVar[bool] = False
    """``open(mode="r")`` returns a ``numpy.memmap`` (a real ndarray) rather than a lazy handle."""
    supports_attrs: ClassVar[bool] = False
    """Proxies have persistent ``attrs``."""
    supports_structured: ClassVar[bool] = False
    """Structured (record) dtypes round-trip."""
    supports_datetime: ClassVar[bool] = False
    """``datetime64`` / ``timedelta64`` dtypes round-trip."""
    supports_void: ClassVar[bool] = False
    """Unstructured void (``V<n>``) dtypes round-trip."""
    supports_longdouble: ClassVar[bool] = False
    """``longdouble`` / ``clongdouble`` round-trip."""
    supports_lazy_arrays: ClassVar[bool] = False
    """:meth:`write` stores lazy placeholders (dask arrays, :mod:`persist_hooks.backends.lazy`)
    chunk by chunk; without it they are computed into memory before ``write`` sees them.
    Declared by the class that defines ``write`` (a subclass overriding ``write`` declares
    it again, or gets computed arrays)."""
    supports_on_entries: ClassVar[bool] = False
    """:meth:`write` takes ``on_entries`` (see there), so a DataSet prepares the item's files
    while the bytes are written.  Declared by the class that defines ``write``, like
    :attr:`supports_lazy_arrays`."""

    option_defaults: ClassVar[Mapping[str, Any]] = {}
    """Every option the backend takes, with its default (JSON-able values)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a class with its own ``write`` declares lazy support itself (an inherited flag
        # may describe a ``write`` it overrides): else placeholders reach it computed
        own_write = cls.__dict__.get("write")
        if own_write is not None and not cls.__dict__.get("supports_on_entries", False):
            cls.supports_on_entries = False
        if own_write is not None and not cls.__dict__.get("supports_lazy_arrays", False):
            cls.supports_lazy_arrays = False
            cls.write = _computing_lazy_arrays(own_write)  # type: ignore[method-assign]

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_defaults))
        if unknown:
            valid = (
                "valid options: " + ", ".join(sorted(self.option_defaults))
                if self.option_defaults
                else "it takes no options"
            )
            names = ", ".join(repr(k) for k in unknown)
            plural = "s" if len(unknown) > 1 else ""
            raise BackendError(
                f"unknown option{plural} {names} for storage backend {self.name!r}; {valid}"
            )
        merged = dict(self.option_defaults)
        for key, value in options.items():
            merged[key] = self.validate_option(key, value)
        try:
            json.dumps(merged)
        except (TypeError, ValueError) as exc:
            raise BackendError(
                f"options of storage backend {self.name!r} must be JSON-able: {exc}"
            ) from None
        self._options = merged

    def validate_option(self, key: str, value: Any) -> Any:
        """Check one option value and return it (normalised); raise :class:`BackendError` if bad.

        The default accepts a value of the default's type (any JSON-able
        value when the default is ``None``).  Override for finer checks; name
        the option, the value and what is allowed.

        Example:
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> NpyBackend().validate_option  # doctest: +ELLIPSIS
            <bound method Backend.validate_option of NpyBackend()>
        """
        default = self.option_defaults[key]
        if default is not None and not isinstance(value, type(default)):
            raise BackendError(
                f"option {key!r} of storage backend {self.name!r} must be a "
                f"{type(default).__name__}, not {value!r}"
            )
        return value

    @property
    def options(self) -> dict[str, Any]:
        """The JSON-able options (defaults included) recorded in each item's header.

        ``type(b)(**b.options)`` is an equal backend.

        Example:
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> NpyBackend().options
            {}
        """
        return dict(self._options)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Backend):
            return NotImplemented
        return type(self) is type(other) and self._options == other._options

    def __hash__(self) -> int:
        return hash((type(self), json.dumps(self._options, sort_keys=True)))

    # ------------------------------------------------------------------ dtypes

    @classmethod
    def dtype_problem(cls, dtype: np.dtype[Any]) -> str | None:
        """Return why this backend cannot store ``dtype``, or ``None`` if it can.

        Override to narrow (or widen) what the capability flags allow.

        Example:
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> NpyBackend.dtype_problem(np.dtype(object))
            'object arrays hold Python objects, not bulk data'
            >>> NpyBackend.dtype_problem(np.dtype("f8")) is None
            True
        """
        dtype = np.dtype(dtype)
        if dtype.kind == "O":
            return "object arrays hold Python objects, not bulk data"
        if dtype.kind == "T":
            return "variable-width strings (numpy StringDType) have no fixed-width layout"
        if dtype.hasobject:
            return "the structured dtype has object fields"
        if dtype.fields is not None and not cls.supports_structured:
            return "structured dtypes are not supported"
        if dtype.kind in "mM" and not cls.supports_datetime:
            return "datetime64/timedelta64 are not supported"
        if dtype.kind == "V" and dtype.fields is None and not cls.supports_void:
            return "unstructured void dtypes are not supported"
        extended = dtype.kind in "fc" and dtype.itemsize > 8 * (2 if dtype.kind == "c" else 1)
        if extended and not cls.supports_longdouble:
            return "extended-precision floats (longdouble) are not supported"
        if dtype.fields is not None:
            for name in dtype.names or ():
                sub = dtype.fields[name][0]
                base = sub.base if sub.subdtype is not None else sub
                problem = cls.dtype_problem(base)
                if problem is not None:
                    return f"field {name!r}: {problem}"
        return None

    def check_dtype(self, dtype: np.dtype[Any]) -> None:
        """Raise :class:`BackendError` if this backend cannot store arrays of ``dtype``.

        The message names the dtype, the reason, and an installed backend that
        can store it (or what to do instead).

        Example:
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> NpyBackend().check_dtype(np.dtype("<M8[ns]"))
            >>> NpyBackend().check_dtype(np.dtype(object))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            persist_hooks.errors.BackendError: storage backend 'npy' cannot store arrays of dtype object ...
        """
        dtype = np.dtype(dtype)
        problem = self.dtype_problem(dtype)
        if problem is None:
            return
        raise BackendError(
            f"storage backend {self.name!r} cannot store arrays of dtype {dtype} "
            f"({problem}); {_dtype_advice(dtype, exclude=self.name)}"
        )

    # ------------------------------------------------------------------ the protocol

    @abc.abstractmethod
    def write(
        self,
        root: Path,
        stem: str,
        arrays: Mapping[str, np.ndarray[Any, Any]],
        *,
        durable: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """Write each array to new files under ``root`` and return its header entry per key.

        ``stem`` is a relative posix prefix such as ``"x_data/g3"``; parent
        directories are created.  An existing file is never overwritten
        (``FileExistsError``).  On any failure everything written is removed
        and the error re-raised.  ``durable=True`` fsyncs the files and their
        directories before returning.  Each entry is JSON-able and holds at
        least ``path`` (relative posix), ``shape`` (list) and ``dtype``
        (:func:`dtype_to_json`), and should hold ``checksum``
        (:func:`checksum` of the array, e.g. from :func:`start_checksum`
        started before the data is written, so it overlaps the write).

        A backend that sets :attr:`supports_on_entries` also takes a keyword
        ``on_entries``: a callable it calls exactly once with the entries it is
        about to return, as soon as they are known, which may be on another
        thread while the last bytes are still being written (``then`` of
        :func:`start_checksum`).  ``write`` returns only after ``on_entries``
        has returned, and raises what it raised (removing what was written); if
        the write itself fails, ``write`` waits for a running ``on_entries``
        before raising, so nothing it does outlives the call.  A DataSet uses it
        to render and stage the item's source while its data is written.

        Example:
            >>> import tempfile
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = Path(tempfile.mkdtemp())
            >>> NpyBackend().write(root, "x_data/g1", {"array_0": np.arange(3)})
            {'array_0': {'path': 'x_data/g1_0.npy', 'shape': [3], 'dtype': '<i8', 'checksum': 'crc...'}}
        """

    @abc.abstractmethod
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
        """Open a stored array lazily.

        ``mode="r"``: a read-only lazy array (for npy a ``numpy.memmap``).
        ``mode="a"``: a writable :class:`persist_hooks.backends.proxy.ArrayProxy`
        that takes ``writer_lock()`` around each write (and fsyncs each write
        when ``durable``).  ``trusted=False`` forbids pickled data and checks
        the file's shape and dtype against the entry first (with
        :func:`same_layout`: the length of axis 0 may differ, because appends
        through proxies grow the data without rewriting the item's header).  A missing file
        raises ``FileNotFoundError`` (callers re-read the item once); a
        truncated or foreign file raises :class:`persist_hooks.FormatError`
        naming the file (with ``trusted=True`` a lazy backend may report it at
        the first access instead).  ``mode="a"`` proxies should be given
        ``modified_marker=modified_marker(root, entry)`` so that in-place
        changes mark the recorded checksum stale.

        Example:
            >>> import tempfile
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> e = b.write(root, "g1", {"a": np.arange(3.0)})["a"]
            >>> b.open(root, e)
            ReadOnlyMemmap([0., 1., 2.])
        """

    @abc.abstractmethod
    def delete(self, root: Path, entries: Iterable[Mapping[str, Any]]) -> None:
        """Remove the files the entries use; missing files are ignored.

        Example:
            >>> import tempfile
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> e = b.write(root, "g1", {"a": np.arange(3)})["a"]
            >>> b.delete(root, [e]); b.delete(root, [e])
            >>> (root / e["path"]).exists()
            False
        """

    @abc.abstractmethod
    def paths(self, entries: Iterable[Mapping[str, Any]]) -> set[str]:
        """Relative posix paths (files or directories) the entries use, for cleanup and checks.

        A backend may keep optional companion files named ``<path>.<suffix>``
        beside a listed path (npy's attribute sidecar ``<path>.attrs.json``);
        they belong to that path and are removed by :meth:`delete`.

        Example:
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> NpyBackend().paths([{"path": "x_data/g1_0.npy", "shape": [3], "dtype": "<i8"}])
            {'x_data/g1_0.npy'}
        """

    @abc.abstractmethod
    def plain_loader(self, entries: Mapping[str, Mapping[str, Any]]) -> str:
        """Python source that binds ``_arrays`` (key -> array) without persist_hooks.

        It runs inside an item module in plain Python (numpy, plus h5py/zarr
        for those backends); the DataSet directory is
        ``os.path.dirname(os.path.abspath(__file__))``.  It must be readable and
        leave no name but ``_arrays`` behind.

        Example:
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> src = NpyBackend().plain_loader({"array_0": {"path": "x_data/g1_0.npy", "shape": [3], "dtype": "<i8"}})
            >>> "_arrays = " in src
            True
        """

    @abc.abstractmethod
    def describe(self, entry: Mapping[str, Any]) -> str:
        """One-line human summary of a stored array: shape, dtype, file and size.

        Example:
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> NpyBackend().describe({"path": "x_data/g1_0.npy", "shape": [1000, 3], "dtype": "<f8"})
            'float64 array of shape (1000, 3), 24.0 kB, in x_data/g1_0.npy (npy)'
        """


def _computing_lazy_arrays(write: Callable[..., dict[str, dict[str, Any]]]) -> Any:
    """Wrap a backend's ``write`` so lazy placeholders reach it computed (see ``supports_lazy_arrays``)."""
    if getattr(write, "_computes_lazy_arrays", False):
        return write

    def wrapper(
        self: Backend, root: Path, stem: str, arrays: Mapping[str, Any], **kwargs: Any
    ) -> dict[str, dict[str, Any]]:
        from .lazy import materialise

        return write(self, root, stem, materialise(arrays), **kwargs)

    wrapper.__doc__ = write.__doc__
    wrapper.__name__ = write.__name__
    wrapper.__qualname__ = write.__qualname__
    wrapper.__wrapped__ = write  # type: ignore[attr-defined]
    wrapper._computes_lazy_arrays = True  # type: ignore[attr-defined]
    return wrapper


def describe_entry(entry: Mapping[str, Any], backend_name: str) -> str:
    """The default one-line summary used by :meth:`Backend.describe` implementations.

    Example:
        >>> describe_entry({"path": "a.npy", "shape": [], "dtype": ">i4"}, "npy")
        '>i4 array of shape (), 4 B, in a.npy (npy)'
    """
    shape, dtype = entry_shape_dtype(entry)
    nbytes = math.prod(shape) * dtype.itemsize
    shown = str(dtype) if dtype.isnative or dtype.byteorder == "|" else dtype.str
    return (
        f"{shown} array of shape {shape}, {human_size(nbytes)}, in {entry['path']} ({backend_name})"
    )


def _dtype_advice(dtype: np.dtype[Any], *, exclude: str) -> str:
    """Name an installed backend that stores ``dtype``, or say what to do instead."""
    if dtype.kind == "O" or (dtype.hasobject and dtype.kind != "T"):
        return (
            "object arrays stay in the Python source (each element is archived as an object); "
            "no storage backend stores them"
        )
    others: list[str] = []
    try:
        from .. import plugins

        for name in plugins.backends():
            if name == exclude:
                continue
            cls = plugins.backend_class(name)
            if cls.dtype_problem(dtype) is None:
                others.append(f"{name!r} (from {cls.distribution})")
    except Exception:  # the advice is best effort; never mask the real error
        others = []
    if others:
        return "use storage backend " + " or ".join(others)
    if dtype.kind == "T":
        return (
            "convert to a fixed-width dtype first, e.g. arr.astype(str), or keep it in the source"
        )
    return "no installed storage backend stores it; convert the array or keep it in the source"

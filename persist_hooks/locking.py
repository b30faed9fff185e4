"""The inter-process writer lock of a DataSet directory (one guarded lock per path per process).

fasteners' inter-process lock is a POSIX ``lockf`` lock.  Such locks belong to
the *process*: a second lock object on the same file in the same process
acquires at once, and closing any descriptor of the file silently drops the lock
of the first.  So this module keeps exactly one :class:`WriterLock` per real
lock-file path per process (a registry under a :class:`threading.RLock`).  The
object is re-entrant within a thread (it counts), serialises the threads of one
process with a thread lock, and takes the file lock on the first acquisition
and drops it on the last release.  The kernel releases a ``lockf`` lock when
its process dies, so a writer killed with ``SIGKILL`` never blocks anyone; the
lock file itself is harmless and may stay.  Its content is the holder's note
(:meth:`WriterLock.read_note`): small state that only writers use.

Readers take no lock: DataSet writes are atomic renames of immutable files.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import struct
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import fasteners

from .errors import LockTimeout

__all__ = ["LOCK_NAME", "WriterLock", "lock_path", "writer_lock"]

LOCK_NAME = ".persist_hooks.lock"
"""Name of the lock file inside a DataSet directory."""

_POLL_DELAY = 0.002
_POLL_MAX_DELAY = 0.05


_LOCK_FILE_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_MAX_NOTE = 64 * 1024


class _FileLock(fasteners.InterProcessLock):  # type: ignore[misc]
    """fasteners' inter-process lock, quicker to take when it is free.

    For every acquisition fasteners makes sure the lock file's directory exists,
    opens the file in text mode and builds its retry machinery: 0.21 ms right
    after an 8 MB write had evicted the caches (a tenth of that write), against
    0.05 ms for opening and locking the file.  A DataSet's lock file lives in the
    DataSet directory, which exists (and must not be re-created if someone removed
    it), so this opens it in binary mode and tries the lock once; only when that
    fails (another process holds it) does fasteners' own loop wait for it.
    """

    lockfile: io.FileIO | None

    def _do_open(self) -> None:
        if self.lockfile is None or self.lockfile.closed:
            # readable too, for the holder's note; never through a symbolic link (the
            # note rewrites the file, and fasteners' append mode protected its target)
            fd = os.open(self.path, _LOCK_FILE_FLAGS, 0o666)
            try:
                # unbuffered: only its descriptor is used (lockf, pread, pwrite), and a
                # buffered file asks the kernel whether it is a terminal and where it is
                self.lockfile = open(fd, "r+b", buffering=0)  # noqa: SIM115 - closed by fasteners' release
            except BaseException:
                os.close(fd)
                raise

    def acquire(
        self,
        blocking: bool = True,
        delay: float = 0.01,
        max_delay: float = 0.1,
        timeout: float | None = None,
    ) -> bool:
        self._do_open()
        try:
            self.trylock()
        except OSError:  # held elsewhere (or an error fasteners reports its way)
            return bool(super().acquire(blocking, delay, max_delay, timeout))
        self.acquired = True
        return True


class WriterLock:
    """Exclusive writer lock on one lock file: inter-process, inter-thread and re-entrant.

    Do not construct it directly; :func:`writer_lock` returns the one instance
    for a path, which every DataSet object on that directory in this process
    shares.

    Example:
        >>> import tempfile
        >>> lock = writer_lock(tempfile.mkdtemp())
        >>> with lock.hold(timeout=1):
        ...     with lock.hold(timeout=1):   # re-entrant in the same thread
        ...         lock.held
        True
        >>> lock.held
        False
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._reinit()

    def _reinit(self) -> None:
        self._pid = os.getpid()
        self._thread_lock = threading.RLock()
        self._owner: int | None = None
        self._count = 0
        self._process_lock = _FileLock(self.path)

    @property
    def held(self) -> bool:
        """Whether the calling thread holds the lock.

        Example:
            >>> import tempfile
            >>> writer_lock(tempfile.mkdtemp()).held
            False
        """
        return self._pid == os.getpid() and self._owner == threading.get_ident()

    def acquire(self, timeout: float | None = None) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (``None``: for ever).

        Raises :class:`persist_hooks.LockTimeout` naming the lock file when the
        lock cannot be had in time.

        Example:
            >>> import tempfile
            >>> lock = writer_lock(tempfile.mkdtemp())
            >>> lock.acquire(timeout=0); lock.release()
        """
        if self._pid != os.getpid():  # forked child: the parent's lock state is not ours
            self._reinit()
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, not {timeout!r}")
        me = threading.get_ident()
        if self._owner == me:
            self._count += 1
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise self._timeout_error(timeout, "another thread of this process is writing")
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            got = self._process_lock.acquire(
                blocking=True, delay=_POLL_DELAY, max_delay=_POLL_MAX_DELAY, timeout=left
            )
        except BaseException:
            self._thread_lock.release()
            raise
        if not got:
            holder = self._holder_pid()
            self._close_handle()  # fasteners leaves it open after a timeout
            self._thread_lock.release()
            who = f"process {holder}" if holder else "another process"
            raise self._timeout_error(timeout, f"{who} is writing")
        self._owner = me
        self._count = 1

    def release(self) -> None:
        """Release one level of the lock; the file lock goes with the last one.

        Example:
            >>> import tempfile
            >>> lock = writer_lock(tempfile.mkdtemp())
            >>> lock.release()
            Traceback (most recent call last):
            ...
            RuntimeError: cannot release un-acquired writer lock ...
        """
        if not self.held:
            raise RuntimeError(f"cannot release un-acquired writer lock {self.path}")
        self._count -= 1
        if self._count:
            return
        self._owner = None
        try:
            self._process_lock.release()
        finally:
            self._thread_lock.release()

    def read_note(self) -> bytes:
        """The holder's note: what the last holder left in the lock file (``b""``: none).

        Writers keep small state there that only writers use (the DataSet's record
        of keys without a block, :mod:`persist_hooks._tail`): reading it costs no
        file opening, the file is open while the lock is held.  Call it holding the
        lock (or in work the holding thread waits for).

        Example:
            >>> import tempfile
            >>> lock = writer_lock(tempfile.mkdtemp())
            >>> with lock.hold(timeout=1):
            ...     lock.write_note(b"state 1"); lock.read_note()
            b'state 1'
        """
        return os.pread(self._note_fd(), _MAX_NOTE + 1, 0)

    def write_note(self, note: bytes, *, durable: bool = False) -> None:
        """Replace the holder's note by ``note`` (``b""``: none); call it holding the lock.

        The note is written in place over the old one, and the file cut only
        when the note got shorter: never to size 0 unless ``note`` is empty,
        because ext4 writes a file cut to size 0 back to disk when it is closed
        (``auto_da_alloc``), which made every DataSet write 0.5 ms slower.  A
        holder that dies half-way leaves a mix of old and new: keep a checksum
        in the note.

        Example:
            >>> import tempfile
            >>> lock = writer_lock(tempfile.mkdtemp())
            >>> with lock.hold(timeout=1):
            ...     lock.write_note(b"a longer note"); lock.write_note(b"short")
            ...     lock.read_note()
            b'short'
        """
        if len(note) > _MAX_NOTE:
            raise ValueError(f"a lock note holds at most {_MAX_NOTE} bytes, not {len(note)}")
        fd = self._note_fd()
        view = memoryview(note)
        offset = 0
        while offset < len(view):
            offset += os.pwrite(fd, view[offset:], offset)
        if os.fstat(fd).st_size > len(note):
            os.ftruncate(fd, len(note))
        if durable:
            os.fsync(fd)

    def _note_fd(self) -> int:
        # held by this process; not necessarily by the calling thread, which may do
        # work the holder waits for (a DataSet stages an item while its data is written)
        handle = self._process_lock.lockfile
        if self._pid != os.getpid() or self._owner is None or handle is None or handle.closed:
            raise RuntimeError(f"the note of {self.path} is only for the lock's holder")
        return int(handle.fileno())

    @contextlib.contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        """Context manager holding the lock (see :meth:`acquire` for ``timeout``).

        Example:
            >>> import tempfile
            >>> lock = writer_lock(tempfile.mkdtemp())
            >>> with lock.hold(timeout=5):
            ...     pass
        """
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()

    def _timeout_error(self, timeout: float | None, why: str) -> LockTimeout:
        return LockTimeout(
            f"could not get the writer lock {self.path} within {timeout} s: {why}. "
            "Wait for that writer to finish, retry with a larger timeout=, or find the "
            "process holding the lock (e.g. `fuser` on the lock file). Deleting the lock "
            "file does not release the lock; a lock of a process that died is released "
            "by the operating system.",
            lock_path=self.path,
        )

    def _close_handle(self) -> None:
        """Close the lock file's descriptor (only while this process does not hold the lock:
        closing any descriptor of the file drops this process's ``lockf`` lock)."""
        handle = self._process_lock.lockfile
        self._process_lock.lockfile = None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()

    def _holder_pid(self) -> int | None:
        """The pid holding the file lock (Linux ``F_GETLK``), or ``None`` if unknown."""
        handle = self._process_lock.lockfile
        if not sys.platform.startswith("linux") or handle is None or handle.closed:
            return None
        try:
            query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            answer = fcntl.fcntl(handle.fileno(), fcntl.F_GETLK, query)
            l_type, _, _, _, pid = struct.unpack("hhqqi4x", answer)
        except (OSError, struct.error):
            return None
        return int(pid) if l_type != fcntl.F_UNLCK and pid > 0 else None


_registry: dict[str, WriterLock] = {}
_registry_lock = threading.RLock()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def writer_lock(root: str | os.PathLike[str]) -> WriterLock:
    """Return this process's one :class:`WriterLock` for the DataSet directory ``root``.

    The lock file is ``<root>/.persist_hooks.lock``; paths are compared after
    resolving symbolic links, so every spelling of a directory gets the same lock.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> writer_lock(d) is writer_lock(d + "/.")
        True
    """
    path = os.path.join(os.path.realpath(root), LOCK_NAME)
    with _registry_lock:
        lock = _registry.get(path)
        if lock is None:
            lock = _registry[path] = WriterLock(path)
        return lock


def lock_path(root: str | os.PathLike[str]) -> Path:
    """The lock file of the DataSet directory ``root``.

    Example:
        >>> lock_path("/data/mydata").name
        '.persist_hooks.lock'
    """
    return Path(root) / LOCK_NAME

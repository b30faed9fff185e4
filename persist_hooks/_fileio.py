"""Atomic, stale-proof replacement of small text files (and reading them with a signature).

A file is written to a temporary ``.<name>.<random>.tmp`` in the same
directory, optionally fsynced, given an mtime whose whole seconds are later than
those of the file it replaces (plain Python's ``__pycache__`` checks only mtime
seconds and size, so it can never serve a stale module), and renamed over the
target (:func:`replace_file`).  Writing and renaming are separate steps
(:func:`prepare_text` / :meth:`PendingFile.commit`) so a caller can prepare
several files and commit them only when all were written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from .errors import FormatError

__all__ = [
    "FileSignature",
    "PendingFile",
    "atomic_write_text",
    "file_signature",
    "fsync_dir",
    "is_temporary_name",
    "prepare_text",
    "read_text",
    "remove_file",
    "remove_stale_temporaries",
    "replace_file",
    "temporary_path",
]

_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")
_NS = 1_000_000_000


class FileSignature(NamedTuple):
    """Identity of one version of a file: every rewrite changes it.

    Rewrites are renames of new files (new inode) with strictly increasing
    mtimes, so two versions never share a signature.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "f.txt")
        >>> atomic_write_text(p, "a")
        >>> s1 = file_signature(p); atomic_write_text(p, "b")
        >>> s1 != file_signature(p)
        True
    """

    inode: int
    device: int
    size: int
    mtime_ns: int


def _signature(st: os.stat_result) -> FileSignature:
    return FileSignature(st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


def file_signature(path: str | os.PathLike[str]) -> FileSignature | None:
    """The :class:`FileSignature` of ``path``, or ``None`` if it does not exist.

    Example:
        >>> file_signature("/no/such/file") is None
        True
    """
    try:
        return _signature(os.stat(path))
    except FileNotFoundError:
        return None


def read_text(path: str | os.PathLike[str]) -> tuple[str, FileSignature]:
    """Read a UTF-8 text file and return it with the signature of exactly the version read.

    Raises ``FileNotFoundError`` if the file does not exist.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "f.py")
        >>> atomic_write_text(p, "x = 1\\n")
        >>> read_text(p)[0]
        'x = 1\\n'
    """
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read()
    try:
        return data.decode("utf-8"), _signature(st)
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); persist_hooks writes "
            "UTF-8 source, so the file was damaged or edited with another encoding"
        ) from None


def temporary_path(target: str | os.PathLike[str]) -> Path:
    """A fresh temporary name ``.<name>.<random>.tmp`` beside ``target``.

    Example:
        >>> temporary_path("/d/x.py").name.startswith(".x.py.")
        True
    """
    target = Path(target)
    return target.with_name(f".{target.name}.{os.urandom(8).hex()}.tmp")


def is_temporary_name(name: str) -> bool:
    """Whether a file name has the shape of this module's temporaries.

    Example:
        >>> is_temporary_name(temporary_path("/d/x.py").name), is_temporary_name("x.py")
        (True, False)
    """
    return _TEMP_RE.match(name) is not None


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (renames, creations) to disk.

    Example:
        >>> import tempfile
        >>> fsync_dir(tempfile.mkdtemp())
    """
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2  # linux/fs.h
_exchange: Callable[[bytes, bytes], int] | bool | None = False  # False: not looked up yet


def _lookup_exchange() -> Callable[[bytes, bytes], int] | None:
    global _exchange
    if _exchange is False:
        _exchange = None
        if sys.platform.startswith("linux"):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            renameat2 = getattr(libc, "renameat2", None)  # glibc >= 2.28
            if renameat2 is not None:
                renameat2.argtypes = [
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_uint,
                ]
                renameat2.restype = ctypes.c_int
                at_fdcwd = -100

                def exchange(src: bytes, dst: bytes) -> int:
                    if renameat2(at_fdcwd, src, at_fdcwd, dst, _RENAME_EXCHANGE) == 0:
                        return 0
                    return ctypes.get_errno()

                _exchange = exchange
    return _exchange if callable(_exchange) else None


_MAX_PENDING_CLOSES = 64
_closing: queue.SimpleQueue[int] | None = None


def _close_worker(pending: queue.SimpleQueue[int]) -> None:
    while True:
        fd = pending.get()
        with contextlib.suppress(OSError):
            os.close(fd)


def _close_soon(fd: int) -> None:
    global _closing
    pending = _closing
    if pending is None:
        pending = _closing = queue.SimpleQueue()
        threading.Thread(
            target=_close_worker, args=(pending,), name="persist_hooks-close", daemon=True
        ).start()
    if pending.qsize() >= _MAX_PENDING_CLOSES:
        os.close(fd)
    else:
        pending.put(fd)


def _close_pending_in_child() -> None:  # a forked child has the descriptors, not the thread
    global _closing
    pending, _closing = _closing, None
    while pending is not None:
        try:
            fd = pending.get_nowait()
        except queue.Empty:
            break
        with contextlib.suppress(OSError):
            os.close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_pending_in_child)


def remove_file(path: str | os.PathLike[str]) -> None:
    """Unlink ``path`` now; free its data in a background thread.

    The name is gone when this returns (a directory listing is final), but
    the file stays open until a background thread closes it: freeing an
    inode waits for the file system journal (0.2 ms for a small file on a
    quiet ext4, ms for large files or while writeback runs), and a writer
    need not wait for it.  Raises ``FileNotFoundError`` like :func:`os.unlink`.
    Symbolic links, and anything that cannot be opened, are simply unlinked.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); p = os.path.join(d, "old.npy")
        >>> open(p, "wb").close(); remove_file(p); os.listdir(d)
        []
    """
    fd = -1
    if os.name == "posix":
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.unlink(path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    if fd >= 0:
        _close_soon(fd)


def replace_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Atomically put file ``src`` in place of ``dst`` (like :func:`os.replace`).

    Readers see the old ``dst`` or the new one, never neither.  On Linux an
    existing ``dst`` is swapped with ``src`` (``renameat2(RENAME_EXCHANGE)``)
    and the old file, now at ``src``, removed (:func:`remove_file`): renaming over an existing file
    makes ext4 flush the new file's data first (``auto_da_alloc``), which costs
    0.15-0.3 ms on a quiet disk and several ms while writeback is busy, against
    25 us for the swap.  That flush only helps after a power failure, which
    non-durable writes do not promise to survive (durable writes fsync instead).
    Elsewhere, and where the file system cannot swap, :func:`os.replace`.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> for name, text in ("a", "old"), ("b", "new"):
        ...     with open(os.path.join(d, name), "w") as f:
        ...         _ = f.write(text)
        >>> replace_file(os.path.join(d, "b"), os.path.join(d, "a"))
        >>> sorted(os.listdir(d)), open(os.path.join(d, "a")).read()
        (['a'], 'new')
    """
    exchange = _lookup_exchange()
    if exchange is not None:
        err = exchange(os.fsencode(src), os.fsencode(dst))
        if err == 0:
            remove_file(src)  # the old file; a crash before this leaves a stale temporary
            return
        if err not in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), os.fspath(src), None, os.fspath(dst))
    os.replace(src, dst)


class PendingFile:
    """A completely written temporary file waiting to replace its target.

    :meth:`commit` renames it over the target; :meth:`discard` removes it.  As
    a context manager it discards itself unless committed.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "f.py")
        >>> with prepare_text(p, "x = 1\\n") as pending:
        ...     pending.commit()
        >>> open(p).read()
        'x = 1\\n'
    """

    def __init__(self, target: Path, temp: Path, *, durable: bool) -> None:
        self.target = target
        self.temp = temp
        self.durable = durable
        self.done = False

    def commit(self) -> None:
        """Rename the temporary over the target (fsync the directory if durable).

        Example:
            >>> import tempfile, os
            >>> p = os.path.join(tempfile.mkdtemp(), "f.txt")
            >>> prepare_text(p, "hi").commit(); open(p).read()
            'hi'
        """
        if self.done:
            raise RuntimeError(f"{self.temp} was already committed or discarded")
        replace_file(self.temp, self.target)
        self.done = True
        if self.durable:
            fsync_dir(self.target.parent)

    def discard(self) -> None:
        """Remove the temporary (a no-op after :meth:`commit`).

        Example:
            >>> import tempfile, os
            >>> d = tempfile.mkdtemp()
            >>> prepare_text(os.path.join(d, "f.txt"), "hi").discard(); os.listdir(d)
            []
        """
        if not self.done:
            self.done = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)

    def __enter__(self) -> PendingFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()


def prepare_text(path: str | os.PathLike[str], text: str, *, durable: bool = False) -> PendingFile:
    """Write ``text`` (UTF-8, newlines as given) to a temporary beside ``path``.

    With ``durable`` the data is fsynced (about 6x slower here, hence opt-in).
    The temporary's mtime is set so its whole seconds exceed those of the
    current ``path``, which keeps plain Python's ``__pycache__`` from serving a
    stale module even when a file is rewritten within a second.  On any
    failure the temporary is removed and the exception propagates.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "f.py")
        >>> pending = prepare_text(p, "x = 1\\n"); os.path.exists(p)
        False
        >>> pending.commit(); os.path.exists(p)
        True
    """
    target = Path(path)
    temp = temporary_path(target)
    data = text.encode("utf-8")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            _bump_mtime(fd, target)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return PendingFile(target, temp, durable=durable)


def _bump_mtime(fd: int, target: Path) -> None:
    try:
        old = os.stat(target).st_mtime_ns
    except FileNotFoundError:
        return
    new = os.fstat(fd).st_mtime_ns
    if new // _NS > old // _NS:
        return
    os.utime(fd, ns=(time.time_ns(), (old // _NS + 1) * _NS))


def atomic_write_text(path: str | os.PathLike[str], text: str, *, durable: bool = False) -> None:
    """Replace ``path`` by ``text`` atomically (see :func:`prepare_text`).

    Readers see the old content or the new one, never a mix.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "f.py")
        >>> atomic_write_text(p, "x = 1\\n"); atomic_write_text(p, "x = 2\\n")
        >>> open(p).read()
        'x = 2\\n'
    """
    prepare_text(path, text, durable=durable).commit()


def remove_stale_temporaries(
    directory: str | os.PathLike[str], *, min_age: float = 0.0
) -> list[Path]:
    """Remove temporaries left in ``directory`` by writers that died; return what was removed.

    Call it only when no writer can be writing there (under the DataSet's
    writer lock), or give ``min_age`` (seconds since the temporary was last
    modified) to spare temporaries being written right now.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> open(temporary_path(os.path.join(d, "x.py")), "w").close()
        >>> [p.name.endswith(".tmp") for p in remove_stale_temporaries(d)]
        [True]
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not is_temporary_name(entry.name):
            continue
        try:
            if min_age and now - entry.stat(follow_symlinks=False).st_mtime < min_age:
                continue
            if entry.is_dir(follow_symlinks=False):  # a data directory renamed for deletion
                import shutil  # ~4 ms to import (it brings bz2, lzma): only here

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Path(entry.path))
    return removed

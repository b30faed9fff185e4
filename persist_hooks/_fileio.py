"""Atomic, stale-proof replacement of small text files (and reading them with a signature).

A file is written to a temporary ``.<name>.<random>.tmp`` in the same
directory, optionally fsynced, given an mtime whose whole seconds are later than
those of the file it replaces (plain Python's ``__pycache__`` checks only mtime
seconds and size, so it can never serve a stale module), and renamed over the
target with :func:`os.replace`.  Writing and renaming are separate steps
(:func:`prepare_text` / :meth:`PendingFile.commit`) so a caller can prepare
several files and commit them only when all were written.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
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
    "remove_stale_temporaries",
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
    return target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")


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
        os.replace(self.temp, self.target)
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
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Path(entry.path))
    return removed

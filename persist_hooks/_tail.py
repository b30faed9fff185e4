"""The writers' record of the items whose key has no block in ``__init__.py``.

Readers list an item file that has no key block in ``__init__.py`` as a key
without metadata, after the keys with a block, in
:func:`~persist_hooks._format.item_order` (:func:`persist_hooks._reader.complete_info`
and the plain-Python footer of ``__init__.py``).  So a writer can store a new
item without metadata without rewriting ``__init__.py`` (a temporary file, a
rename and the old file's removal: ~0.25 ms, a tenth of writing 8 MB), and
still list keys in insertion order, as long as the new key sorts after every
key without a block: ``x_0``, ``x_1``, ... ``x_10`` or ``a``, ``b``, ``c`` do.
Any other new key, and any metadata write, first gives those keys their
``None`` blocks ("folds" them, in their current order).

Writers learn which keys lack a block from this record, ``.persist_hooks.tail``
in the DataSet directory, instead of listing the directory on every write.  It
holds those keys in order (:class:`Tail`; beyond :data:`MAX_KEYS` only the
last).  Only writers use it, under the writer lock.  It always lists every key
without a block that a writer made (plus perhaps keys whose item is gone:
folding skips those): a key is recorded before its item is committed and
dropped after it got a block or its item was deleted.  A failed write puts the
record back as it was.  A record that is missing, damaged or written by
another version counts as unknown and the writer lists the directory once.  An
item file copied in by hand is not recorded: it stays a key without a block,
ordered by name among the others.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from ._format import item_keys, item_order

__all__ = ["MAX_KEYS", "TAIL_NAME", "Tail", "TailUpdate", "forget_tail", "read_tail", "read_tail_bytes", "scan_keys", "scan_tail"]

TAIL_NAME = ".persist_hooks.tail"
"""Name of the record inside a DataSet directory."""

MAX_KEYS = 64
"""Keys the record lists; with more it keeps only the last (a fold then lists the directory)."""

_PREFIX = b"persist_hooks tail 1 "
_MANY = "*"  # first token when only the last key is recorded
_MAX_BYTES = 64 * 1024
_OPEN_FLAGS = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class Tail:
    """The keys without a block, in key order (``keys=None``: more than :data:`MAX_KEYS`).

    Example:
        >>> tail = Tail.EMPTY.add("x_9").add("x_10")
        >>> tail.keys, tail.admits("x_11"), tail.admits("a")
        (('x_9', 'x_10'), True, False)
        >>> tail.without("x_10")
        Tail(keys=('x_9',), last='x_9')
    """

    keys: tuple[str, ...] | None
    last: str | None

    EMPTY: ClassVar[Tail]  # no key lacks a block (set below)

    @property
    def empty(self) -> bool:
        """Whether no key lacks a block.

        Example:
            >>> Tail.EMPTY.empty, Tail.EMPTY.add("a").empty
            (True, False)
        """
        return self.last is None

    def admits(self, name: str) -> bool:
        """Whether new key ``name`` may go without a block (it sorts after all of them).

        Example:
            >>> Tail.EMPTY.add("b").admits("c"), Tail.EMPTY.add("b").admits("a")
            (True, False)
        """
        return self.last is None or item_order(name) > item_order(self.last)

    def add(self, name: str) -> Tail:
        """This record with ``name`` appended (call only if :meth:`admits` it).

        Example:
            >>> Tail.EMPTY.add("a")
            Tail(keys=('a',), last='a')
        """
        keys = self.keys
        if keys is not None:
            keys = (*keys, name) if len(keys) < MAX_KEYS else None
        return Tail(keys, name)

    def without(self, name: str) -> Tail:
        """This record without ``name`` (unchanged if not known to be in it).

        Example:
            >>> Tail.EMPTY.add("a").add("b").without("b")
            Tail(keys=('a',), last='a')
        """
        if self.keys is None or name not in self.keys:
            return self
        keys = tuple(k for k in self.keys if k != name)
        return Tail(keys, keys[-1] if keys else None)


Tail.EMPTY = Tail((), None)


def _tail_path(root: Path) -> Path:
    return root / TAIL_NAME


def _read_raw(root: Path) -> bytes | None:
    try:
        fd = os.open(_tail_path(root), os.O_RDONLY | _OPEN_FLAGS)
    except OSError:
        return None
    try:
        return os.read(fd, _MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _decode(raw: bytes | None) -> Tail | None:
    if raw is None or not raw.startswith(_PREFIX) or not raw.endswith(b"\n"):
        return None
    crc, _, payload = raw[len(_PREFIX) : -1].partition(b" ")
    if b"\n" in payload or crc != b"%08x" % zlib.crc32(payload):
        return None
    try:
        tokens = payload.decode().split(" ") if payload else []
    except UnicodeDecodeError:
        return None
    if tokens[:1] == [_MANY]:
        keys = None
        del tokens[0]
        if len(tokens) != 1:
            return None
    else:
        keys = tuple(tokens)
    if tokens and not tokens[-1].isidentifier():
        return None  # the other keys are checked where they are used (folds)
    return Tail(keys, tokens[-1] if tokens else None)


def read_tail_bytes(root: Path) -> tuple[Tail | None, bytes | None]:
    """The record of ``root`` (``None`` if missing or not valid) and its bytes as read
    (``None`` if missing), for :class:`TailUpdate`'s ``previous``.

    Example:
        >>> import tempfile
        >>> read_tail_bytes(Path(tempfile.mkdtemp()))
        (None, None)
    """
    raw = _read_raw(root)
    return _decode(raw), raw


def read_tail(root: Path) -> Tail | None:
    """The record of DataSet directory ``root``; ``None`` if missing or not valid.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> read_tail(root) is None
        True
        >>> TailUpdate(root, Tail.EMPTY.add("a"), early=True).commit(); read_tail(root)
        Tail(keys=('a',), last='a')
    """
    return _decode(_read_raw(root))


def scan_keys(root: Path, with_block: Iterable[str]) -> list[str]:
    """The items of ``root`` without a key in ``with_block``, in key order (all of them).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in "x_10.py", "x_9.py", "b.py":
        ...     _ = (root / name).write_text("")
        >>> scan_keys(root, ["x_9"])
        ['b', 'x_10']
    """
    blocks = set(with_block)
    return sorted((k for k in item_keys(os.listdir(root)) if k not in blocks), key=item_order)


def scan_tail(root: Path, with_block: Iterable[str]) -> Tail:
    """The record made from a listing of ``root``: its items without a key in ``with_block``.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in "x_10.py", "x_9.py", "b.py", "__init__.py":
        ...     _ = (root / name).write_text("")
        >>> scan_tail(root, ["b"])
        Tail(keys=('x_9', 'x_10'), last='x_10')
    """
    keys = scan_keys(root, with_block)
    if not keys:
        return Tail.EMPTY
    return Tail(tuple(keys) if len(keys) <= MAX_KEYS else None, keys[-1])


def forget_tail(root: Path) -> None:
    """Remove the record of ``root`` (a DataSet emptied of items).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp()); TailUpdate(root, Tail.EMPTY, early=True).commit()
        >>> forget_tail(root); read_tail(root) is None
        True
    """
    _write(root, None, durable=False)


def _write(root: Path, raw: bytes | None, *, durable: bool) -> None:
    path = _tail_path(root)
    if raw is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o644)
    try:
        # in place (writers only, under the lock): a writer that dies half-way leaves a
        # line whose checksum fails, which counts as no record
        os.pwrite(fd, raw, 0)
        os.ftruncate(fd, len(raw))
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _encode(tail: Tail) -> bytes:
    tokens = tail.keys
    if tokens is None:
        assert tail.last is not None
        tokens = (_MANY, tail.last)
    payload = " ".join(tokens).encode()
    return _PREFIX + b"%08x " % zlib.crc32(payload) + payload + b"\n"


class TailUpdate:
    """A change of the record that goes with a write, with ``commit``/``discard`` like a
    :class:`persist_hooks._fileio.PendingFile`.

    ``early=True`` (a key is added) writes the record at once, before the write
    commits, and :meth:`discard` puts the old one back; ``early=False`` (keys
    dropped) writes it in :meth:`commit`, after the write's other files.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> update = TailUpdate(root, Tail.EMPTY.add("a"), early=True); read_tail(root)
        Tail(keys=('a',), last='a')
        >>> update.discard(); read_tail(root) is None
        True
    """

    def __init__(
        self,
        root: Path,
        tail: Tail,
        *,
        early: bool,
        durable: bool = False,
        previous: bytes | Literal[False] | None = False,
    ) -> None:
        self.root = root
        self.tail = tail
        self.durable = durable
        self.done = False
        self._previous: bytes | None = None
        self._written = early
        if early:
            # the record's bytes before (read_tail_bytes); False: read them now
            self._previous = _read_raw(root) if previous is False else previous
            try:
                _write(root, _encode(tail), durable=durable)
            except BaseException:
                self.discard()
                raise

    def commit(self) -> None:
        """Write the record now if it was not written already.

        Example:
            >>> import tempfile
            >>> root = Path(tempfile.mkdtemp())
            >>> TailUpdate(root, Tail.EMPTY, early=False).commit(); read_tail(root)
            Tail(keys=(), last=None)
        """
        if self.done:
            raise RuntimeError(f"the update of {_tail_path(self.root)} was already committed")
        self.done = True
        if not self._written:
            _write(self.root, _encode(self.tail), durable=self.durable)

    def discard(self) -> None:
        """Undo an early write (a no-op after :meth:`commit`).

        Example:
            >>> import tempfile
            >>> root = Path(tempfile.mkdtemp())
            >>> TailUpdate(root, Tail.EMPTY, early=False).discard(); read_tail(root) is None
            True
        """
        if self.done:
            return
        self.done = True
        if self._written:
            with contextlib.suppress(OSError):
                _write(self.root, self._previous, durable=self.durable)

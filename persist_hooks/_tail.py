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

Writers learn which keys lack a block from this record instead of listing the
directory on every write.  It is the note of the writer lock
(:meth:`persist_hooks.locking.WriterLock.read_note`): the lock file is open
while the lock is held, so reading and writing the record opens no file.  It
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
from typing import TYPE_CHECKING, ClassVar

from ._format import item_keys, item_order

if TYPE_CHECKING:
    from .locking import WriterLock

__all__ = [
    "MAX_BYTES",
    "MAX_KEYS",
    "Tail",
    "TailUpdate",
    "clear_tail",
    "read_tail",
    "read_tail_bytes",
    "scan_keys",
    "scan_tail",
]

MAX_KEYS = 64
"""Keys the record lists; with more it keeps only the last (a fold then lists the directory)."""

_PREFIX = b"persist_hooks tail 1 "
MAX_BYTES = 8192
"""Longest record written (the lock note holds 64 KiB); longer keys are not all listed."""
_MANY = "*"  # first token when only the last key is recorded


@dataclass(frozen=True)
class Tail:
    """The keys without a block, in key order (``keys=None``: only the last is known).

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


def _decode(raw: bytes) -> Tail | None:
    if not raw.startswith(_PREFIX) or not raw.endswith(b"\n"):
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


def read_tail_bytes(lock: WriterLock) -> tuple[Tail | None, bytes]:
    """The record in held ``lock``'s note (``None`` if missing or not valid) and the note's
    bytes, for :class:`TailUpdate`'s ``previous``.

    Example:
        >>> import tempfile
        >>> from persist_hooks.locking import writer_lock
        >>> lock = writer_lock(tempfile.mkdtemp())
        >>> with lock.hold(timeout=1):
        ...     read_tail_bytes(lock)
        (None, b'')
    """
    raw = lock.read_note()
    return _decode(raw), raw


def read_tail(lock: WriterLock) -> Tail | None:
    """The record in held ``lock``'s note; ``None`` if missing or not valid.

    Example:
        >>> import tempfile
        >>> from persist_hooks.locking import writer_lock
        >>> lock = writer_lock(tempfile.mkdtemp())
        >>> with lock.hold(timeout=1):
        ...     TailUpdate(lock, Tail.EMPTY.add("a"), early=True).commit(); read_tail(lock)
        Tail(keys=('a',), last='a')
    """
    return _decode(lock.read_note())


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

    It keeps every key, however many, so a fold that follows needs no second
    listing; :meth:`Tail.add` keeps what is written within :data:`MAX_KEYS`.

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
    return Tail(tuple(keys), keys[-1])


def clear_tail(lock: WriterLock, *, durable: bool = False) -> None:
    """Record in held ``lock``'s note that no key lacks a block (a DataSet emptied of items).

    Example:
        >>> import tempfile
        >>> from persist_hooks.locking import writer_lock
        >>> lock = writer_lock(tempfile.mkdtemp())
        >>> with lock.hold(timeout=1):
        ...     TailUpdate(lock, Tail.EMPTY.add("a"), early=True).commit(); clear_tail(lock)
        ...     read_tail(lock)
        Tail(keys=(), last=None)
    """
    lock.write_note(_encode(Tail.EMPTY), durable=durable)  # not b"": see write_note


def _encode(tail: Tail) -> bytes:
    """The record as one line of at most ~:data:`MAX_BYTES` (keys are file names: < 256 bytes)."""
    payload = b""
    if tail.keys is not None:
        payload = " ".join(tail.keys).encode()
    if tail.keys is None or len(payload) > MAX_BYTES:  # very long names: only the last
        assert tail.last is not None
        payload = f"{_MANY} {tail.last}".encode()
    return _PREFIX + b"%08x " % zlib.crc32(payload) + payload + b"\n"


class TailUpdate:
    """A change of the record that goes with a write, with ``commit``/``discard`` like a
    :class:`persist_hooks._fileio.PendingFile`; use it holding ``lock``.

    ``early=True`` (a key is added) writes the record at once, before the write
    commits, and :meth:`discard` puts the old one back (``previous``: the note's
    bytes, from :func:`read_tail_bytes`; read now if not given); ``early=False``
    (keys dropped) writes it in :meth:`commit`, after the write's other files.

    Example:
        >>> import tempfile
        >>> from persist_hooks.locking import writer_lock
        >>> lock = writer_lock(tempfile.mkdtemp())
        >>> with lock.hold(timeout=1):
        ...     update = TailUpdate(lock, Tail.EMPTY.add("a"), early=True); read_tail(lock)
        ...     update.discard(); read_tail(lock) is None
        Tail(keys=('a',), last='a')
        True
    """

    def __init__(
        self,
        lock: WriterLock,
        tail: Tail,
        *,
        early: bool,
        durable: bool = False,
        previous: bytes | None = None,
    ) -> None:
        self.lock = lock
        self.tail = tail
        self.durable = durable
        self.done = False
        self._previous = b""
        self._written = early
        if early:
            self._previous = lock.read_note() if previous is None else previous
            try:
                lock.write_note(_encode(tail), durable=durable)
            except BaseException:
                self.discard()
                raise

    def commit(self) -> None:
        """Write the record now if it was not written already.

        Example:
            >>> import tempfile
            >>> from persist_hooks.locking import writer_lock
            >>> lock = writer_lock(tempfile.mkdtemp())
            >>> with lock.hold(timeout=1):
            ...     TailUpdate(lock, Tail.EMPTY, early=False).commit(); read_tail(lock)
            Tail(keys=(), last=None)
        """
        if self.done:
            raise RuntimeError(f"the update of the record in {self.lock.path} was already committed")
        self.done = True
        if not self._written:
            self.lock.write_note(_encode(self.tail), durable=self.durable)

    def discard(self) -> None:
        """Undo an early write (a no-op after :meth:`commit`).

        Example:
            >>> import tempfile
            >>> from persist_hooks.locking import writer_lock
            >>> lock = writer_lock(tempfile.mkdtemp())
            >>> with lock.hold(timeout=1):
            ...     TailUpdate(lock, Tail.EMPTY, early=False).discard(); read_tail(lock) is None
            True
        """
        if self.done:
            return
        self.done = True
        if self._written:
            with contextlib.suppress(OSError):
                self.lock.write_note(self._previous, durable=self.durable)

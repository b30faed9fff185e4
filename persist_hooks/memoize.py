"""``@memoize``: persistent memoisation whose results are an importable DataSet.

Decorate a function and its results are stored on first call and read back on
later calls, in this process and in every other one::

    @memoize
    def simulate(n, dt=0.1): ...

Layout and naming
    Results go to ``<path>/<dataset>/`` (``path`` defaults to ``persist_cache``
    under the working directory at first use), one DataSet per function.  The
    DataSet is named ``<qualname>__<module>_<id>`` (sanitised to an identifier)
    where ``<id>`` is a short digest of the module, the qualified name, the
    script's path for functions of ``__main__`` and, for closures, the contents
    of the closure cells: same-named functions of different modules, or
    closures over different values, never share a cache.  ``funcname=`` names
    the DataSet yourself (you then answer for its uniqueness).

Keys
    The default key binds the call's arguments to the signature with defaults
    applied and drops ``ignore``-d parameters: the tuple of ``(name, value)``
    pairs sorted by name (``f(1)`` and ``f(x=1)`` give ``(("x", 1),)``; ``*args``
    gives a tuple, ``**kwargs`` a sorted tuple of pairs).  ``key=`` replaces it
    (called with the call's arguments).  The key's digest (SHA-256 of a
    canonical encoding, see :mod:`persist_hooks._memo_key`; never ``hash()``)
    or the string from ``hash=`` names the entry: item ``k_<hash>__<version>``
    (``x_<hex of the hash string>__<version>`` when the string is not made of
    letters, digits and ``_``), where ``<version>`` is 10 hex digits of the
    function's code digest.

Entries and metadata
    The result is archived as the item (any archivable object; large arrays go
    to the configured backend and come back memory-mapped, read only), or, with
    ``pickle=``, the ``str``/``bytes`` it returns is stored instead and
    ``unpickle`` converts it back.  ``_info_dict[item]`` holds ``time`` (UTC, ISO
    8601), ``duration`` (seconds the call took), ``code`` (code digest),
    ``metadata`` (the output of ``metadata()``, when given) and ``key``
    (``storekey=True``: checked on every lookup, a mismatch is a hash collision,
    logged and treated as a miss, and the new result replaces the entry).
    Metadata is written before the item, under the DataSet's writer lock, so an
    item never exists without its metadata.

Invalidation
    The code digest hashes the function's AST without decorators, docstrings
    (and, necessarily, comments), but with constants and referenced names: a
    comment or docstring edit keeps the cache, any other edit makes new entries
    (the version is part of the item name).  Entries of other versions are kept,
    never returned; :meth:`MemoCache.prune` removes them.  Functions called by
    the memoised function are not tracked.

The hit path
    A lookup costs the key digest, one ``stat`` of the item file and, when the
    file changed since this process last read it, a DataSet read.  Results
    that cannot be mutated (``None``, numbers, strings, bytes, tuples and
    frozensets of those, read-only memory-mapped arrays — returned as fresh
    views) are kept per process, keyed by the file's inode, size and mtime, so
    a repeated hit does not re-read the file; other results are read afresh on
    every hit.  No lock is taken on the read path: DataSet writes are atomic
    renames, so a reader sees the old entry or the new one, never a truncated
    one.  The code digest and identity are computed once per function object,
    at first use.

Concurrency
    On a miss the caller takes a per-entry ``flock`` lock
    (``<dataset>/.memoize_locks/<item>.lock``), looks again, computes, stores
    and removes the lock file.  A second process calling with the same
    arguments waits for the first and then reads its result, so a result is
    computed once — at most twice if ``lock_timeout`` seconds pass first.  The
    kernel releases ``flock`` locks of a process that dies, so a killed process
    never blocks later calls.

Logging
    Logger ``persist_hooks.memoize``; ``verbosity`` as in the seed: 0 silent,
    1 problems (``WARNING``), 2 also writes and clears (``INFO``), 3 also hits
    (``DEBUG``), 4 also the keys (``DEBUG``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import inspect
import keyword
import logging
import os
import re
import sys
import threading
import time
import types
from collections.abc import Callable, Collection, Iterator, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import numpy as np

from ._memo_key import code_digest, identity_digest, key_digest, keys_equal
from .errors import LockTimeout

if TYPE_CHECKING:
    from .dataset import DataSet

__all__ = ["MemoCache", "Memoized", "memoize"]

logger = logging.getLogger("persist_hooks.memoize")

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_PATH = "persist_cache"
_VERSION_CHARS = 10
_MAX_HASH_CHARS = 150
_HIT_ENTRIES = 1024
_PLAIN_HASH = re.compile(r"[A-Za-z0-9_]+")
_NON_IDENT = re.compile(r"[^0-9A-Za-z_]+")
_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes)
_MISSING: Any = object()


class _Miss(Exception):
    """Internal: no usable entry."""


# ---------------------------------------------------------------- default key


def _make_default_key(func: Callable[..., Any], ignore: Collection[str]) -> Callable[..., Any]:
    """A key function binding the arguments to ``func``'s signature (defaults applied)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):

        def opaque_key(*args: Any, **kwargs: Any) -> Any:
            return (("args", args), ("kwargs", tuple(sorted(kwargs.items()))))

        return opaque_key
    params = list(sig.parameters.values())
    unknown = set(ignore) - {p.name for p in params}
    if unknown:
        raise ValueError(f"ignore= names parameters {sorted(unknown)} that {func!r} does not have")
    kept = tuple(sorted(p.name for p in params if p.name not in ignore))
    plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)

    def general_key(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)  # a bad call raises TypeError here
        bound.apply_defaults()
        arguments = bound.arguments
        for p in params:
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                arguments[p.name] = tuple(sorted(arguments[p.name].items()))
        return tuple((name, arguments[name]) for name in kept)

    if not plain:
        return general_key
    names = tuple(p.name for p in params)
    count = len(names)
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    def plain_key(*args: Any, **kwargs: Any) -> Any:
        if len(args) > count:
            return general_key(*args, **kwargs)
        bound = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name in bound or name not in names:
                return general_key(*args, **kwargs)
            bound[name] = value
        if len(bound) < count:
            for name in names:
                if name not in bound:
                    value = defaults.get(name, _MISSING)
                    if value is _MISSING:
                        return general_key(*args, **kwargs)
                    bound[name] = value
        return tuple((name, bound[name]) for name in kept)

    return plain_key


def _dataset_name(func: Callable[..., Any]) -> str:
    """``<qualname>__<module>_<id>``, sanitised into a valid, unclaimed package name."""
    qualname = str(getattr(func, "__qualname__", None) or getattr(func, "__name__", "func"))
    module = str(getattr(func, "__module__", None) or "module")
    qual = _NON_IDENT.sub("_", qualname.replace(".<locals>.", ".")).strip("_")[:60] or "func"
    mod = _NON_IDENT.sub("_", module).strip("_")[:60] or "module"
    name = f"{qual}__{mod}_{identity_digest(func)[:_VERSION_CHARS]}"
    if not name[0].isalpha() or name.startswith("test"):
        name = "f_" + name
    return name


def _sanitised_funcname(funcname: str) -> str:
    if (
        funcname.isidentifier()
        and not keyword.iskeyword(funcname)
        and not funcname.startswith(("_", "test"))
    ):
        return funcname
    clean = _NON_IDENT.sub("_", funcname).strip("_") or "func"
    digest = key_digest(funcname)[:8]
    return f"f_{clean[:80]}_{digest}"


def _cacheable(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` cannot be mutated, so one object may serve every hit."""
    if isinstance(value, _IMMUTABLE):
        return True
    if type(value) in (tuple, frozenset):
        return depth < 4 and len(value) <= 64 and all(_cacheable(v, depth + 1) for v in value)
    if isinstance(value, np.ndarray):
        return not value.flags.writeable and not value.dtype.hasobject and value.base is not None
    return isinstance(value, np.generic) and not isinstance(value, np.object_)


def _fresh(value: Any) -> Any:
    """What a hit returns for a kept value: arrays as new views (their shape stays ours)."""
    if isinstance(value, np.ndarray):
        return value.view()
    return value


@contextlib.contextmanager
def _entry_lock(path: str, timeout: float | None) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yield whether it was had in ``timeout`` s.

    Without the lock in time the body runs anyway (the caller then computes
    unguarded: at most one extra computation).  The lock file is removed by
    the holder when done.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    got = False
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        yield got
        if got:
            with contextlib.suppress(OSError):
                os.unlink(path)  # waiters on this inode find the entry when they get it
    finally:
        os.close(fd)  # releases the lock


# ---------------------------------------------------------------- the cache mapping


class MemoCache(MutableMapping[Any, Any]):
    """The stored results of one memoised function, as a mapping from keys to results.

    Keys are what the function's key function returns (by default the sorted
    tuple of ``(name, value)`` pairs of the bound arguments; :meth:`key` makes
    one from call arguments).  ``cache[k]`` reads (``KeyError`` when absent),
    ``cache[k] = v`` stores (overwriting), ``del cache[k]`` deletes, ``k in
    cache`` never raises.  Iteration yields the keys of the current code
    version and needs ``storekey=True`` or ``unhash=``; ``len`` works always.

    Example:
        >>> import tempfile
        >>> @memoize(path=tempfile.mkdtemp())
        ... def double(x):
        ...     return 2 * x
        >>> double(3)
        6
        >>> double.cache[(("x", 3),)], (("x", 4),) in double.cache, len(double.cache)
        (6, False, 1)
        >>> double.cache.key(x=3)
        (('x', 3),)
    """

    def __init__(self, owner: Memoized[Any, Any]) -> None:
        self._owner = owner
        self._ds_w: DataSet | None = None
        self._ds_r: DataSet | None = None
        self._root = ""
        self._suffix = ""
        self._hits: dict[str, tuple[tuple[int, int, int], Any, Any]] = {}
        self._open_lock = threading.Lock()

    # -- set-up (first use) --------------------------------------------------------

    def _open(self, *, again: bool = False) -> None:
        """Open (creating if needed) the DataSet; thread-safe, publishes the names first."""
        from .dataset import DataSet

        with self._open_lock:
            if self._ds_w is not None and not again:
                return
            o = self._owner
            path = os.path.abspath(os.fspath(o._path) if o._path is not None else DEFAULT_PATH)
            name = o.dataset_name
            writer = DataSet(
                name, "w", path=path, backend=o._backend, trusted=o._trusted, timeout=o._timeout
            )
            reader = DataSet(name, "r", path=path, trusted=o._trusted)
            self._root = os.path.join(path, name)
            self._suffix = "__" + o.code_digest[:_VERSION_CHARS]
            self._hits.clear()
            self._ds_r = reader
            self._ds_w = writer

    def _writer(self) -> DataSet:
        if self._ds_w is None:
            self._open()
        assert self._ds_w is not None
        return self._ds_w

    def _reader(self) -> DataSet:
        if self._ds_r is None:
            self._open()
        assert self._ds_r is not None
        return self._ds_r

    @property
    def path(self) -> str:
        """The DataSet directory holding this function's results.

        Example:
            >>> import tempfile, os
            >>> d = tempfile.mkdtemp()
            >>> @memoize(path=d, funcname="sq")
            ... def sq(x):
            ...     return x * x
            >>> sq.cache.path == os.path.join(d, "sq")
            True
        """
        self._writer()
        return self._root

    @property
    def dataset(self) -> DataSet:
        """The DataSet (mode ``"w"``) holding this function's results.

        Example:
            >>> import tempfile
            >>> @memoize(path=tempfile.mkdtemp())
            ... def inc(x):
            ...     return x + 1
            >>> inc(1); list(inc.cache.dataset) == [inc.cache.item_name(inc.cache.key(1))]
            2
            True
        """
        return self._writer()

    # -- names -------------------------------------------------------------------

    def key(self, *args: Any, **kwargs: Any) -> Any:
        """The key of a call with these arguments (what ``cache[...]`` takes).

        Example:
            >>> import tempfile
            >>> @memoize(path=tempfile.mkdtemp())
            ... def f(x, y=None):
            ...     return x
            >>> f.cache.key(1) == f.cache.key(x=1) == (("x", 1), ("y", None))
            True
        """
        return self._owner._key(*args, **kwargs)

    def item_name(self, key: Any) -> str:
        """The DataSet item name of ``key`` for the current code version.

        Example:
            >>> import tempfile
            >>> @memoize(path=tempfile.mkdtemp(), hash=lambda k: f"{k[0][1]}")
            ... def f(x):
            ...     return x
            >>> f.cache.item_name((("x", 7),)).startswith("k_7__")
            True
        """
        if not self._suffix:
            self._writer()
        return self._hash_name(key) + self._suffix

    def _hash_name(self, key: Any) -> str:
        user_hash = self._owner._hash
        if user_hash is None:
            return "k_" + key_digest(key)[:32]
        text = user_hash(key)
        if not isinstance(text, str):
            raise TypeError(f"hash= must return a str, not {type(text).__name__}")
        if _PLAIN_HASH.fullmatch(text):
            name = "k_" + text
        else:
            name = "x_" + text.encode("utf-8", "surrogatepass").hex()
        if len(name) > _MAX_HASH_CHARS:
            raise ValueError(
                f"hash= returned a string too long to name a file ({len(text)} characters); "
                "return a shorter one (e.g. a digest)"
            )
        return name

    def _hash_of_name(self, name: str) -> str | None:
        """The ``hash=`` string an item name of the current version encodes, or ``None``."""
        if not name.endswith(self._suffix):
            return None
        body = name[: -len(self._suffix)]
        if body.startswith("k_"):
            return body[2:]
        if body.startswith("x_"):
            try:
                return bytes.fromhex(body[2:]).decode("utf-8", "surrogatepass")
            except ValueError:
                return None
        return None

    # -- lookups and stores ----------------------------------------------------------

    def _lookup(self, name: str, key: Any, *, quiet: bool = False) -> Any:
        """The stored (still pickled) value of item ``name``; raises :class:`_Miss`."""
        if self._ds_r is None:
            self._open()
        try:
            st = os.stat(f"{self._root}/{name}.py")
        except (FileNotFoundError, NotADirectoryError):
            raise _Miss from None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        o = self._owner
        hit = self._hits.get(name)
        if hit is not None and hit[0] == signature:
            if o._storekey and not keys_equal(hit[2], key):
                self._collision(name, quiet)
            return _fresh(hit[1])
        reader = self._reader()
        try:
            value = getattr(reader, name)
        except AttributeError:
            raise _Miss from None
        stored: Any = None
        if o._storekey:
            try:
                info = reader[name]
            except KeyError:
                info = None
            stored = info.get("key", _MISSING) if isinstance(info, dict) else _MISSING
            if stored is _MISSING or not keys_equal(stored, key):
                self._collision(name, quiet)
        if _cacheable(value):
            hits = self._hits
            if len(hits) >= _HIT_ENTRIES:
                with contextlib.suppress(RuntimeError, KeyError, StopIteration):
                    del hits[next(iter(hits))]  # the oldest; another thread may race us
            hits[name] = (signature, value, stored)
            return _fresh(value)
        return value

    def _collision(self, name: str, quiet: bool) -> None:
        if not quiet and self._owner._verbosity >= 1:
            logger.warning(
                "%s: entry %s holds another key (hash collision); recomputing",
                self._owner._label,
                name,
            )
        raise _Miss

    def _store(self, name: str, key: Any, value: Any, started: float, duration: float) -> None:
        o = self._owner
        info: dict[str, Any] = {
            "time": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "duration": round(duration, 6),
            "code": o.code_digest,
        }
        if o._metadata is not None:
            info["metadata"] = o._metadata()
        if o._storekey:
            info["key"] = key
        stored = value if o._pickle is None else o._pickle(value)
        if o._pickle is not None and not isinstance(stored, (str, bytes)):
            raise TypeError(f"pickle= must return str or bytes, not {type(stored).__name__}")
        for attempt in range(2):
            ds = self._writer()
            try:
                with ds.locked():
                    ds[name] = info  # metadata first: an item never lacks its metadata
                    setattr(ds, name, stored)  # the item file is the commit point
                break
            except FileNotFoundError:
                if attempt:
                    raise
                self._open(again=True)  # the cache directory was removed under us: create it again
        self._hits.pop(name, None)
        if o._verbosity >= 2:
            logger.info("%s: stored %s (%.3g s)", o._label, name, duration)

    def _get(self, key: Any) -> Any:
        name = self.item_name(key)
        value = self._lookup(name, key)
        unpickle = self._owner._unpickle
        return value if unpickle is None else unpickle(value)

    # -- the mapping -------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._get(key)
        except _Miss:
            raise KeyError(key) from None

    def __setitem__(self, key: Any, value: Any) -> None:
        self._store(self.item_name(key), key, value, time.time(), 0.0)

    def __delitem__(self, key: Any) -> None:
        name = self.item_name(key)
        ds = self._writer()
        self._hits.pop(name, None)
        try:
            del ds[name]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        try:
            self._lookup(self.item_name(key), key, quiet=True)
        except Exception:
            return False
        return True

    def _current(self) -> list[str]:
        """Names of the current version's entries that have an item file, in write order."""
        reader = self._reader()
        suffix = self._suffix
        return [
            n
            for n in reader
            if n.endswith(suffix) and os.path.exists(os.path.join(self._root, n + ".py"))
        ]

    def __len__(self) -> int:
        return len(self._current())

    def __iter__(self) -> Iterator[Any]:
        o = self._owner
        if o._storekey:
            reader = self._reader()
            for name in self._current():
                info = reader[name] if name in reader else None  # noqa: SIM401
                if isinstance(info, dict) and "key" in info:
                    yield info["key"]
        elif o._unhash is not None:
            for name in self._current():
                text = self._hash_of_name(name)
                if text is not None:
                    yield o._unhash(text)
        else:
            raise TypeError(
                f"cannot iterate over the keys of {o._label}'s cache: pass storekey=True "
                "or unhash= to memoize (the default key is stored only as a digest)"
            )

    def clear(self) -> None:
        """Delete every stored result, of every code version.

        Example:
            >>> import tempfile
            >>> @memoize(path=tempfile.mkdtemp())
            ... def f(x):
            ...     return x
            >>> f(1); f.cache.clear(); len(f.cache)
            1
            0
        """
        ds = self._writer()
        ds.clear()
        self._hits.clear()
        with contextlib.suppress(OSError):
            for entry in os.scandir(os.path.join(self._root, ".memoize_locks")):
                _remove_idle_lock(entry.path)
        if self._owner._verbosity >= 2:
            logger.info("%s: cache cleared", self._owner._label)

    def prune(self) -> list[str]:
        """Delete the entries of other code versions (and leftovers); return their names.

        Example:
            >>> import tempfile
            >>> @memoize(path=tempfile.mkdtemp())
            ... def f(x):
            ...     return x
            >>> f(1); f.cache.prune()
            1
            []
        """
        ds = self._writer()
        removed: list[str] = []
        with ds.locked():
            for name in list(ds):
                stale = not name.endswith(self._suffix)
                orphan = not os.path.exists(os.path.join(self._root, name + ".py"))
                if stale or orphan:
                    del ds[name]
                    self._hits.pop(name, None)
                    removed.append(name)
        if removed and self._owner._verbosity >= 2:
            logger.info("%s: pruned %d entries", self._owner._label, len(removed))
        return removed

    def __repr__(self) -> str:
        return f"<MemoCache of {self._owner._label} at {self._root or '(not opened)'}>"


def _remove_idle_lock(path: str) -> None:
    """Remove a per-entry lock file that nobody holds."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- the wrapper


class Memoized(Generic[P, R]):
    """A memoised function: call it like the original; ``.cache`` is its :class:`MemoCache`.

    Made by :func:`memoize`.  As a class attribute it binds like a method
    (``obj.m(...)`` calls it with ``obj`` first; ``obj.m.cache`` is the same cache).

    Example:
        >>> import tempfile
        >>> @memoize(path=tempfile.mkdtemp())
        ... def add(x, y=1):
        ...     return x + y
        >>> add(1), add(x=1), add(1, 1), len(add.cache)
        (2, 2, 2, 1)
    """

    cache: MemoCache

    def __init__(
        self,
        func: Callable[P, R],
        *,
        path: str | os.PathLike[str] | None = None,
        funcname: str | None = None,
        key: Callable[..., Any] | None = None,
        hash: Callable[[Any], str] | None = None,
        unhash: Callable[[str], Any] | None = None,
        pickle: Callable[[Any], str | bytes] | None = None,
        unpickle: Callable[[Any], Any] | None = None,
        storekey: bool = False,
        metadata: Callable[[], Any] | None = None,
        verbosity: int = 1,
        ignore: Collection[str] = (),
        backend: str | None = None,
        trusted: bool = True,
        lock_timeout: float | None = 600.0,
        timeout: float | None = 60.0,
    ) -> None:
        if not callable(func):
            raise TypeError(f"memoize needs a callable, not {type(func).__name__}")
        if isinstance(ignore, str):
            ignore = (ignore,)
        if key is not None and ignore:
            raise ValueError("ignore= applies to the default key only; leave it out of key=")
        if (pickle is None) != (unpickle is None):
            raise ValueError("give both pickle= and unpickle=, or neither")
        functools.update_wrapper(self, func)
        self.__wrapped__ = func
        self._func = func
        self._label: str = getattr(func, "__qualname__", None) or repr(func)
        self._path = path
        self._funcname = funcname
        self._key: Callable[..., Any] = (
            key if key is not None else _make_default_key(func, frozenset(ignore))
        )
        self._hash = hash
        self._unhash = unhash
        self._pickle = pickle
        self._unpickle = unpickle
        self._storekey = bool(storekey)
        self._metadata = metadata
        self._verbosity = int(verbosity)
        self._backend = backend
        self._trusted = bool(trusted)
        self._lock_timeout = lock_timeout
        self._timeout = timeout
        self._code_digest: str | None = None
        self._dataset_name: str | None = None
        self.cache = MemoCache(self)

    @property
    def code_digest(self) -> str:
        """Digest of the function's code (docstrings and comments excluded); computed once.

        Example:
            >>> @memoize
            ... def f(x):
            ...     return x
            >>> len(f.code_digest)
            64
        """
        if self._code_digest is None:
            self._code_digest = code_digest(self._func)
        return self._code_digest

    @property
    def dataset_name(self) -> str:
        """Name of the DataSet directory of this function's results.

        Example:
            >>> @memoize(funcname="squares")
            ... def f(x):
            ...     return x * x
            >>> f.dataset_name
            'squares'
        """
        if self._dataset_name is None:
            if self._funcname is not None:
                self._dataset_name = _sanitised_funcname(self._funcname)
            else:
                self._dataset_name = _dataset_name(self._func)
        return self._dataset_name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = self._key(*args, **kwargs)
        cache = self.cache
        name = cache.item_name(key)
        try:
            value = cache._lookup(name, key)
        except _Miss:
            return self._compute(name, key, args, kwargs)
        if self._verbosity >= 3:
            logger.debug("%s: hit %s", self._label, name)
        return value if self._unpickle is None else self._unpickle(value)  # type: ignore[no-any-return]

    def _compute(self, name: str, key: Any, args: Any, kwargs: Any) -> R:
        cache = self.cache
        lock = os.path.join(cache._root, ".memoize_locks", name + ".lock")
        with _entry_lock(lock, self._lock_timeout) as got:
            if got:
                try:
                    value = cache._lookup(name, key)  # computed while we waited?
                except _Miss:
                    pass
                else:
                    return value if self._unpickle is None else self._unpickle(value)  # type: ignore[no-any-return]
            elif self._verbosity >= 1:
                logger.warning(
                    "%s: %s is still being computed elsewhere after %s s; computing it here too",
                    self._label,
                    name,
                    self._lock_timeout,
                )
            if self._verbosity >= 2:
                if self._verbosity >= 4:
                    logger.info("%s: computing %s for key %r", self._label, name, key)
                else:
                    logger.info("%s: computing %s", self._label, name)
            started = time.time()
            t0 = time.perf_counter()
            result = self._func(*args, **kwargs)
            duration = time.perf_counter() - t0
            try:
                cache._store(name, key, result, started, duration)
            except LockTimeout:
                raise
            except Exception as exc:
                if self._verbosity >= 1:
                    logger.warning(
                        "%s: result not stored (%s: %s)", self._label, type(exc).__name__, exc
                    )
        return result

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Memoized[P, R]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., R]: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return types.MethodType(self, instance)

    def __reduce__(self) -> str:
        """Pickle by reference, like the function it replaces (``module.qualname``)."""
        return self._label

    def __repr__(self) -> str:
        return f"<memoized {self._func!r}>"


# ---------------------------------------------------------------- the decorator


@overload
def memoize(func: Callable[P, R], /) -> Memoized[P, R]: ...


@overload
def memoize(
    func: None = None,
    /,
    *,
    path: str | os.PathLike[str] | None = None,
    funcname: str | None = None,
    key: Callable[..., Any] | None = None,
    hash: Callable[[Any], str] | None = None,
    unhash: Callable[[str], Any] | None = None,
    pickle: Callable[[Any], str | bytes] | None = None,
    unpickle: Callable[[Any], Any] | None = None,
    storekey: bool = False,
    metadata: Callable[[], Any] | None = None,
    verbosity: int = 1,
    ignore: Collection[str] = (),
    backend: str | None = None,
    trusted: bool = True,
    lock_timeout: float | None = 600.0,
    timeout: float | None = 60.0,
) -> Callable[[Callable[P, R]], Memoized[P, R]]: ...


def memoize(
    func: Callable[P, R] | None = None,
    /,
    *,
    path: str | os.PathLike[str] | None = None,
    funcname: str | None = None,
    key: Callable[..., Any] | None = None,
    hash: Callable[[Any], str] | None = None,
    unhash: Callable[[str], Any] | None = None,
    pickle: Callable[[Any], str | bytes] | None = None,
    unpickle: Callable[[Any], Any] | None = None,
    storekey: bool = False,
    metadata: Callable[[], Any] | None = None,
    verbosity: int = 1,
    ignore: Collection[str] = (),
    backend: str | None = None,
    trusted: bool = True,
    lock_timeout: float | None = 600.0,
    timeout: float | None = 60.0,
) -> Memoized[P, R] | Callable[[Callable[P, R]], Memoized[P, R]]:
    """Store a function's results persistently and return them on later calls.

    ``@memoize`` or ``@memoize(...)``.  Parameters:

    * ``path``: directory of the cache DataSets (default ``persist_cache`` in
      the working directory at first use); ``funcname``: the DataSet's name
      (default from module, qualified name and a short identity digest).
    * ``key(*args, **kwargs)``: the entry's key (default: bound arguments,
      defaults applied, ``ignore``-d parameters dropped); ``hash(key) -> str``
      names the entry (default: SHA-256 of the key's canonical encoding);
      ``unhash(str) -> key`` lets you iterate over ``cache`` keys;
      ``storekey``: store the key in the metadata and check it on lookup.
    * ``pickle(result) -> str | bytes`` / ``unpickle``: store that instead of
      archiving the result.  ``metadata()``: extra metadata stored per entry.
    * ``verbosity``: 0 to 4 (see the module docs; logger ``persist_hooks.memoize``).
    * ``backend``: array storage backend (else configuration); ``trusted``:
      ``False`` loads entries without executing arbitrary code.
    * ``lock_timeout``: seconds to wait for another caller computing the same
      entry before computing it too; ``timeout``: seconds to wait for the
      DataSet writer lock.

    Example:
        >>> import tempfile
        >>> @memoize(path=tempfile.mkdtemp())
        ... def double(x):
        ...     return 2 * x
        >>> double(3), double(x=3), double.cache[(("x", 3),)]
        (6, 6, 6)
        >>> @memoize(path=tempfile.mkdtemp(), key=lambda x, y: (x, y),
        ...          hash=lambda k: "%s_to_the_power_of_%s" % k, pickle=str, unpickle=int)
        ... def power(x, y):
        ...     return x ** y
        >>> power(2, 4), power.cache[(2, 4)]
        (16, 16)
    """
    options: dict[str, Any] = {
        "path": path,
        "funcname": funcname,
        "key": key,
        "hash": hash,
        "unhash": unhash,
        "pickle": pickle,
        "unpickle": unpickle,
        "storekey": storekey,
        "metadata": metadata,
        "verbosity": verbosity,
        "ignore": ignore,
        "backend": backend,
        "trusted": trusted,
        "lock_timeout": lock_timeout,
        "timeout": timeout,
    }
    if func is not None:
        return Memoized(func, **options)

    def decorate(f: Callable[P, R]) -> Memoized[P, R]:
        return Memoized(f, **options)

    return decorate


class _CallableModule(types.ModuleType):
    """This module's class: calling the module calls :func:`memoize`.

    Importing the submodule ``persist_hooks.memoize`` binds the *module* to the
    package attribute ``persist_hooks.memoize``; being callable, it still works
    as ``@persist_hooks.memoize`` and ``@persist_hooks.memoize(...)``.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return memoize(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

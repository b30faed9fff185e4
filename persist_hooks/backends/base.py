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
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.lib.format as npformat

from ..errors import BackendError, FormatError

__all__ = [
    "Backend",
    "WriterLockFactory",
    "describe_entry",
    "dtype_from_json",
    "dtype_to_json",
    "entry_shape_dtype",
    "fsync_dir",
    "human_size",
    "make_dirs",
    "make_entry",
    "resolve_path",
    "rollback_on_error",
    "same_layout",
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
    try:
        return npformat.descr_to_dtype(_tuplify_descr(descr))
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise FormatError(f"invalid dtype description {descr!r}: {exc}") from None


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
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or "\\" in relative or "\x00" in relative:
        raise FormatError(f"array path {relative!r} leaves the DataSet directory")
    return Path(root).joinpath(*pure.parts)


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

    Example:
        >>> make_entry("x_data/g3_0.npy", np.zeros((2, 3), ">f4"))
        {'path': 'x_data/g3_0.npy', 'shape': [2, 3], 'dtype': '>f4'}
    """
    entry: dict[str, Any] = {
        "path": path,
        "shape": [int(n) for n in array.shape],
        "dtype": dtype_to_json(array.dtype),
    }
    entry.update(extra)
    return entry


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

    option_defaults: ClassVar[Mapping[str, Any]] = {}
    """Every option the backend takes, with its default (JSON-able values)."""

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
        (:func:`dtype_to_json`).

        Example:
            >>> import tempfile
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = Path(tempfile.mkdtemp())
            >>> NpyBackend().write(root, "x_data/g1", {"array_0": np.arange(3)})
            {'array_0': {'path': 'x_data/g1_0.npy', 'shape': [3], 'dtype': '<i8'}}
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
        naming the file.

        Example:
            >>> import tempfile
            >>> from persist_hooks.backends.npy import NpyBackend
            >>> root = Path(tempfile.mkdtemp()); b = NpyBackend()
            >>> e = b.write(root, "g1", {"a": np.arange(3.0)})["a"]
            >>> b.open(root, e)
            memmap([0., 1., 2.])
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

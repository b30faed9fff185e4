"""The exception hierarchy of persist_hooks (every error the library raises on purpose)."""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "BackendError",
    "DuplicateError",
    "FormatError",
    "LockTimeout",
    "ReadOnlyError",
    "UnbuildableCycleError",
    "UnrepresentableError",
    "UnsafeArchiveError",
]


class ArchiveError(Exception):
    """Base class of all persist_hooks errors.

    Example:
        >>> issubclass(DuplicateError, ArchiveError)
        True
    """


class DuplicateError(ArchiveError, ValueError):
    """A name was inserted into an Archive twice.

    Example:
        >>> import persist_hooks as ph
        >>> a = ph.Archive(); _ = a.insert(x=1)
        >>> a.insert(x=2)
        Traceback (most recent call last):
        ...
        persist_hooks.errors.DuplicateError: name 'x' is already in the archive; ...
    """


class UnrepresentableError(ArchiveError, TypeError):
    """An object in the graph cannot be rebuilt from source.

    The message names the object's type and its path in the graph, e.g.
    ``b[1]['k'].handle``.
    """

    def __init__(self, message: str, *, path: str = "", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class UnbuildableCycleError(UnrepresentableError):
    """A reference cycle runs only through objects that cannot be built in two phases."""


class ReadOnlyError(ArchiveError, ValueError):
    """A write was attempted on a DataSet (or array proxy) opened read-only."""


class LockTimeout(ArchiveError, TimeoutError):
    """The writer lock of a DataSet could not be had within ``timeout`` seconds."""

    def __init__(self, message: str, *, lock_path: str = "") -> None:
        super().__init__(message)
        self.lock_path = lock_path


class UnsafeArchiveError(ArchiveError, ValueError):
    """Safe loading met a construct outside the restricted archive language."""


class FormatError(ArchiveError, ValueError):
    """A file on disk is not what persist_hooks wrote (corrupt, foreign or hand-broken).

    The message names the file (and line, for source files).
    """


class BackendError(ArchiveError, LookupError):
    """A storage backend is unknown, not installed, or cannot store a dtype."""

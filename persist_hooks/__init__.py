"""persist_hooks: archive Python objects as importable, human-readable Python packages.

The public API is listed once, in ``__all__``; names are imported on first use
(PEP 562), so ``import persist_hooks`` is cheap and has no side effects — the
import hook installed at start-up relies on that.

Example:
    >>> import persist_hooks as ph
    >>> a = ph.Archive()
    >>> a.insert(x=[1, 2])
    ['x']
    >>> ph.restore(str(a))
    {'x': [1, 2]}
"""

# No imports at module level: the import hook's .pth imports this package at every
# interpreter start-up, which must stay under a millisecond (typing alone costs ~10 ms).
TYPE_CHECKING = False

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Archive": "persist_hooks.archive",
    "restore": "persist_hooks.archive",
    "Rep": "persist_hooks.rep",
    "DataSet": "persist_hooks.dataset",
    "install": "persist_hooks.importer",
    "uninstall": "persist_hooks.importer",
    "is_installed": "persist_hooks.importer",
    "memoize": "persist_hooks.memoize",
    "Memoized": "persist_hooks.memoize",
    "MemoCache": "persist_hooks.memoize",
    "verify": "persist_hooks.verify",
    "convert": "persist_hooks.convert",
    "hookimpl": "persist_hooks.hookspecs",
    "hookspec": "persist_hooks.hookspecs",
    "backends": "persist_hooks.plugins",
    "representers": "persist_hooks.plugins",
    "ArchiveError": "persist_hooks.errors",
    "BackendError": "persist_hooks.errors",
    "DuplicateError": "persist_hooks.errors",
    "FormatError": "persist_hooks.errors",
    "LockTimeout": "persist_hooks.errors",
    "ReadOnlyError": "persist_hooks.errors",
    "UnbuildableCycleError": "persist_hooks.errors",
    "UnrepresentableError": "persist_hooks.errors",
    "UnsafeArchiveError": "persist_hooks.errors",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from typing import Any

    from .archive import Archive as Archive
    from .archive.restore import restore as restore
    from .convert import convert as convert
    from .dataset import DataSet as DataSet
    from .errors import ArchiveError as ArchiveError
    from .errors import BackendError as BackendError
    from .errors import DuplicateError as DuplicateError
    from .errors import FormatError as FormatError
    from .errors import LockTimeout as LockTimeout
    from .errors import ReadOnlyError as ReadOnlyError
    from .errors import UnbuildableCycleError as UnbuildableCycleError
    from .errors import UnrepresentableError as UnrepresentableError
    from .errors import UnsafeArchiveError as UnsafeArchiveError
    from .hookspecs import hookimpl as hookimpl
    from .hookspecs import hookspec as hookspec
    from .importer import install as install
    from .importer import is_installed as is_installed
    from .importer import uninstall as uninstall
    from .memoize import MemoCache as MemoCache
    from .memoize import Memoized as Memoized
    from .memoize import memoize as memoize
    from .plugins import backends as backends
    from .plugins import representers as representers
    from .rep import Rep as Rep


def __getattr__(name: str) -> "Any":
    import importlib

    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'persist_hooks' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(_LAZY))

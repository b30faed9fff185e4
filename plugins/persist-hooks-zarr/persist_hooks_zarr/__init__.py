"""persist_hooks_zarr: the ``zarr`` storage backend for persist_hooks, contributed as a pluggy plugin.

Installing this distribution registers the entry point ``zarr`` in group
``persist_hooks``; persist_hooks then lists the backend in ``ph.backends()``.
zarr is imported only when the backend reads or writes data.

Example:
    >>> import persist_hooks.plugins as plugins
    >>> "zarr" in plugins.backends()
    True
"""

from __future__ import annotations

from persist_hooks.backends.base import Backend
from persist_hooks.hookspecs import hookimpl

from ._backend import ZarrBackend, ZarrDriver

__all__ = ["ZarrBackend", "ZarrDriver", "persist_hooks_backends"]


@hookimpl
def persist_hooks_backends() -> list[type[Backend]]:
    """Contribute :class:`ZarrBackend` to persist_hooks.

    Example:
        >>> persist_hooks_backends()
        [<class 'persist_hooks_zarr._backend.ZarrBackend'>]
    """
    return [ZarrBackend]

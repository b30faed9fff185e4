"""persist_hooks_hdf5: the ``hdf5`` storage backend for persist_hooks, contributed as a pluggy plugin.

Installing this distribution registers the entry point ``hdf5`` in group
``persist_hooks``; persist_hooks then lists the backend in ``ph.backends()``.
h5py is imported only when the backend reads or writes data.

Example:
    >>> import persist_hooks.plugins as plugins
    >>> "hdf5" in plugins.backends()
    True
"""

from __future__ import annotations

from persist_hooks.backends.base import Backend
from persist_hooks.hookspecs import hookimpl

from ._backend import Hdf5Backend, Hdf5Driver

__all__ = ["Hdf5Backend", "Hdf5Driver", "persist_hooks_backends"]


@hookimpl
def persist_hooks_backends() -> list[type[Backend]]:
    """Contribute :class:`Hdf5Backend` to persist_hooks.

    Example:
        >>> persist_hooks_backends()
        [<class 'persist_hooks_hdf5._backend.Hdf5Backend'>]
    """
    return [Hdf5Backend]

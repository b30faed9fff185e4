"""Storage backends: the protocol (:class:`Backend`), the lazy :class:`ArrayProxy`, and the built-in npy backend.

Backends are plugins: list them with :func:`persist_hooks.plugins.backends` and
get a class with :func:`persist_hooks.plugins.backend_class` (or an instance
chosen by configuration with :func:`persist_hooks.config.get_backend`).

Example:
    >>> from persist_hooks.backends import Backend, NpyBackend
    >>> issubclass(NpyBackend, Backend)
    True
"""

from __future__ import annotations

from .base import Backend, WriterLockFactory, dtype_from_json, dtype_to_json
from .npy import NpyBackend
from .proxy import ArrayDriver, ArrayProxy

__all__ = [
    "ArrayDriver",
    "ArrayProxy",
    "Backend",
    "NpyBackend",
    "WriterLockFactory",
    "dtype_from_json",
    "dtype_to_json",
]

"""Storage backends: the protocol (:class:`Backend`), the lazy :class:`ArrayProxy`, and the built-in npy backend.

Backends are plugins: list them with :func:`persist_hooks.plugins.backends` and
get a class with :func:`persist_hooks.plugins.backend_class` (or an instance
chosen by configuration with :func:`persist_hooks.config.get_backend`).

``persist_hooks.backends`` is both this subpackage and, called, the public
function :func:`persist_hooks.plugins.backends` (importing a subpackage binds it
on the parent package under the function's name, so the module is callable).

Example:
    >>> from persist_hooks.backends import Backend, NpyBackend
    >>> issubclass(NpyBackend, Backend)
    True
    >>> import persist_hooks
    >>> "npy" in persist_hooks.backends()
    True
"""

from __future__ import annotations

import sys
import types
from typing import Any

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


class _CallableModule(types.ModuleType):
    def __call__(self) -> Any:
        from ..plugins import backends

        return backends()


sys.modules[__name__].__class__ = _CallableModule

"""Built-in representers, registered through the same hooks a third-party plugin uses.

``persist_hooks.representers`` is both this subpackage and, called, the public
function :func:`persist_hooks.plugins.representers`: importing a subpackage binds
it on its parent package under the same name as the function, so the module is
made callable to keep ``persist_hooks.representers()`` working either way.

Example:
    >>> import persist_hooks, fractions
    >>> persist_hooks.representers()[fractions.Fraction]
    'persist_hooks.representers.stdlib'
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self) -> Any:
        from ..plugins import representers

        return representers()


sys.modules[__name__].__class__ = _CallableModule

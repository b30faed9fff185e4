"""Find the importable name of a class or function, and check it really leads back to it."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ..errors import UnrepresentableError
from ..rep import Rep

__all__ = ["global_rep", "importable_name"]

_BUILTIN_SINGLETON_TYPES = {type(None): "type(None)", type(...): "type(...)", type(NotImplemented): "type(NotImplemented)"}


def importable_name(obj: Any) -> tuple[str, str]:
    """Return ``(module, qualname)`` under which ``obj`` can be imported back.

    Raises :class:`UnrepresentableError` for lambdas, local classes and
    functions, and objects whose name does not lead back to them.

    Example:
        >>> from collections import OrderedDict
        >>> importable_name(OrderedDict)
        ('collections', 'OrderedDict')
    """
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    module = getattr(obj, "__module__", None)
    kind = "class" if isinstance(obj, type) else "function"
    if not isinstance(qualname, str) or module is None:
        raise UnrepresentableError(f"{kind} {obj!r} has no importable name")
    if "<lambda>" in qualname:
        raise UnrepresentableError(
            f"lambda {qualname} (module {module}) cannot be archived: lambdas have no "
            "importable name; use a function defined at module level"
        )
    if "<locals>" in qualname:
        raise UnrepresentableError(
            f"{kind} {qualname} is defined inside a function and cannot be imported back; "
            "define it at module level"
        )
    try:
        mod = sys.modules.get(module) or importlib.import_module(module)
        found: Any = mod
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise UnrepresentableError(
            f"{kind} {qualname} cannot be imported back from module {module!r} ({exc})"
        ) from None
    if found is not obj:
        raise UnrepresentableError(
            f"{kind} {module}.{qualname} is not the object found under that name "
            "(was it redefined or replaced?)"
        )
    return module, qualname


def global_rep(obj: Any) -> Rep:
    """A Rep naming a class or function by its qualified name, with the import it needs.

    Example:
        >>> global_rep(int).expr, global_rep(int).imports
        ('int', ())
        >>> from collections import OrderedDict
        >>> global_rep(OrderedDict).imports
        (('collections', 'OrderedDict'),)
    """
    special = _BUILTIN_SINGLETON_TYPES.get(obj)
    if special is not None:
        return Rep(special)
    module, qualname = importable_name(obj)
    head = qualname.partition(".")[0]
    if module == "builtins":
        return Rep(qualname)
    return Rep(qualname, imports=[(module, head)])

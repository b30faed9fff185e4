"""Rules for the names of archived items (shared by Archive and DataSet)."""

from __future__ import annotations

import keyword
import unicodedata
from collections.abc import Collection

__all__ = ["check_name"]


def check_name(name: object, *, reserved: Collection[str] = (), what: str = "item name") -> str:
    """Return ``name`` if it may name an item, else raise ``ValueError`` saying why.

    An item name is an identifier that is not a keyword, does not start with
    ``_`` (reserved for the archive's temporaries), is not in ``reserved`` (a
    DataSet's methods), and does not have a shape pytest's import hook claims
    (``test_*``, ``*_test``, ``conftest``), which would hijack ``import ds.name``
    under pytest.

    Example:
        >>> check_name("x")
        'x'
        >>> check_name("class")
        Traceback (most recent call last):
        ...
        ValueError: invalid item name 'class': it is a Python keyword; choose another name
    """
    if not isinstance(name, str):
        raise ValueError(f"invalid {what} {name!r}: names must be str, not {type(name).__name__}")
    why = ""
    if not name.isidentifier():
        why = "it is not a Python identifier (letters, digits and _, not starting with a digit)"
    elif unicodedata.normalize("NFKC", name) != name:
        why = "Python would read it as the different name " + repr(unicodedata.normalize("NFKC", name))
    elif keyword.iskeyword(name):
        why = "it is a Python keyword"
    elif name.startswith("_"):
        why = "names starting with '_' are reserved for persist_hooks' own use"
    elif name in reserved:
        why = "it clashes with a DataSet method or attribute"
    elif name.startswith("test_") or name.endswith("_test") or name == "conftest":
        why = "pytest's import hook claims modules named test_*, *_test and conftest"
    if why:
        raise ValueError(f"invalid {what} {name!r}: {why}; choose another name")
    return name

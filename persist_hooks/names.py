"""Rules for the names of archived items (shared by Archive and DataSet)."""

from __future__ import annotations

import keyword
import unicodedata
from collections.abc import Collection

__all__ = ["MAX_FILE_NAME_BYTES", "check_name"]

MAX_FILE_NAME_BYTES = 200
"""Longest name (UTF-8 bytes) of an item that becomes files: a DataSet's temporaries add
29 bytes (``.<name>.py.bak.<16 hex digits>.tmp``) and file systems allow 255."""


def check_name(
    name: object,
    *,
    reserved: Collection[str] = (),
    what: str = "item name",
    max_bytes: int | None = None,
) -> str:
    """Return ``name`` if it may name an item, else raise ``ValueError`` saying why.

    An item name is an identifier that is not a keyword, does not start with
    ``_`` (reserved for the archive's temporaries), is not in ``reserved`` (a
    DataSet's methods), and does not have a shape pytest's import hook claims
    (``test_*``, ``*_test``, ``conftest``), which would hijack ``import ds.name``
    under pytest.  Names that become file names are at most ``max_bytes`` long
    in UTF-8 (:data:`MAX_FILE_NAME_BYTES`).

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
    elif max_bytes is not None and len(name.encode()) > max_bytes:
        why = (
            f"it is {len(name.encode())} bytes long in UTF-8, and its files need names of "
            f"at most 255 bytes: use at most {max_bytes}"
        )
    if why:
        raise ValueError(f"invalid {what} {name!r}: {why}; choose another name")
    return name

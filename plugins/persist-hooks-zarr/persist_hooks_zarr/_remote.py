"""Where zarr groups live when the backend option ``url`` puts them in fsspec storage.

With ``ZarrBackend(url="s3://bucket/prefix")`` (or ``memory://``, ``file://``,
any fsspec URL; also ``url = "..."`` under ``[tool.persist_hooks.zarr]``) the
arrays of DataSet ``mydata`` go to ``<url>/mydata/<item>_data/g<N>-<token>.zarr``
while the ``.py`` files stay in the local DataSet directory.  The item
header's entry records the base as ``url`` (``<url>/mydata``) beside ``path``
(relative to it), so reading never depends on configuration.  The random
token keeps two DataSets of the same name sharing one URL apart.

fsspec is imported only when remote data is read or written.

Example:
    >>> group_location("memory://b/ds", "x_data/g1-0a1b2c3d.zarr")
    'memory://b/ds/x_data/g1-0a1b2c3d.zarr'
    >>> is_url("memory://b"), is_url("/tmp/x")
    (True, False)
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import PurePosixPath
from typing import Any

from persist_hooks.errors import BackendError, FormatError

__all__ = [
    "array_attributes",
    "exists",
    "group_location",
    "is_url",
    "remove",
    "store",
    "subdirectories",
    "validate_url",
]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.:-]*://")


def is_url(value: object) -> bool:
    """Whether ``value`` is a ``protocol://...`` string (an fsspec URL)."""
    return isinstance(value, str) and _URL.match(value) is not None


def validate_url(value: object) -> str | None:
    """Check the ``url`` option: ``None`` or an fsspec URL such as ``"s3://bucket/prefix"``.

    Example:
        >>> validate_url("memory://bucket/")
        'memory://bucket'
        >>> validate_url("bucket")
        Traceback (most recent call last):
        ...
        persist_hooks.errors.BackendError: option 'url' of storage backend 'zarr' must be None or an fsspec URL like 's3://bucket/prefix', not 'bucket'
    """
    if value is None:
        return None
    if not is_url(value):
        raise BackendError(
            "option 'url' of storage backend 'zarr' must be None or an fsspec URL like "
            f"'s3://bucket/prefix', not {value!r}"
        )
    assert isinstance(value, str)
    return value.rstrip("/")


def group_location(base: object, path: object) -> str:
    """The URL of a group: the entry's ``url`` joined with its relative ``path``.

    A forged header cannot climb out of the base: ``path`` must be relative
    without ``..``.
    """
    if not is_url(base):
        raise FormatError(f"array entry url {base!r} is not an fsspec URL")
    if (
        not isinstance(path, str)
        or not path
        or PurePosixPath(path).is_absolute()
        or ".." in PurePosixPath(path).parts
        or "\\" in path
    ):
        raise FormatError(f"array path {path!r} leaves the DataSet's data location")
    assert isinstance(base, str)
    return f"{base.rstrip('/')}/{path}"


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec comes with zarr's remote support
        raise BackendError(
            f"reading or writing {url} needs fsspec: pip install 'persist-hooks-zarr[remote]'"
        ) from None
    options = {"auto_mkdir": True} if url.startswith(("file://", "local://")) else {}
    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, path


def store(url: str, *, read_only: bool) -> Any:
    """A zarr ``FsspecStore`` at ``url``.

    Example:
        >>> store("memory://doc/s", read_only=True).read_only
        True
    """
    from zarr.storage import FsspecStore

    options = {"auto_mkdir": True} if url.startswith(("file://", "local://")) else {}
    return FsspecStore.from_url(url, storage_options=options, read_only=read_only)


def exists(url: str) -> bool:
    """Whether something exists at ``url``."""
    fs, path = _fs(url)
    return bool(fs.exists(path))


def remove(url: str) -> None:
    """Remove ``url`` and everything under it; a missing one is ignored."""
    fs, path = _fs(url)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(path, recursive=True)


def subdirectories(url: str) -> list[str]:
    """Names of the directories directly under ``url`` (arrays of a group)."""
    fs, path = _fs(url)
    try:
        listing = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    return [PurePosixPath(e["name"]).name for e in listing if e.get("type") == "directory"]


def array_attributes(url: str) -> dict[str, Any] | None:
    """The attributes in ``<url>/zarr.json`` if it is a zarr v3 array, else ``None``."""
    fs, path = _fs(url)
    try:
        with fs.open(f"{path.rstrip('/')}/zarr.json", "rb") as fh:
            meta = json.loads(fh.read())
    except (FileNotFoundError, ValueError, OSError):
        return None
    if not isinstance(meta, dict) or meta.get("node_type") != "array":
        return None
    attrs = meta.get("attributes")
    return attrs if isinstance(attrs, dict) else {}

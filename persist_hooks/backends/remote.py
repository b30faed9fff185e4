"""Cleanup of item data stored outside the DataSet directory (array entries with a ``url``).

A DataSet removes superseded generations by listing its local ``<item>_data/``
directory; data a backend put in fsspec storage (zarr's ``url`` option) is not
there, so the DataSet asks the backend that wrote it to delete it, entry by
entry, once no item version on disk refers to it.  Failures are logged, never
raised: the new version is already committed.

Example:
    >>> remote_entries({"arrays": {"a": {"path": "g1.zarr", "url": "memory://b/ds", "key": "a"},
    ...                            "b": {"path": "x_data/g1_0.npy"}}})
    [{'path': 'g1.zarr', 'url': 'memory://b/ds', 'key': 'a'}]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["delete_remote", "remote_entries"]

_log = logging.getLogger("persist_hooks")


def remote_entries(header: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The array entries of an item header whose data lives at a URL."""
    arrays = None if header is None else header.get("arrays")
    if not isinstance(arrays, dict):
        return []
    return [e for e in arrays.values() if isinstance(e, dict) and isinstance(e.get("url"), str)]


def _identity(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("url")), str(entry.get("path")), str(entry.get("key")))


def delete_remote(
    root: Path,
    header: Mapping[str, Any] | None,
    keep: Iterable[Mapping[str, Any] | None] = (),
) -> None:
    """Delete the remote data of ``header``'s arrays that none of the ``keep`` headers uses.

    Example:
        >>> delete_remote(Path("."), None)  # nothing remote: nothing to do
    """
    doomed = remote_entries(header)
    if not doomed:
        return
    kept = {_identity(e) for h in keep for e in remote_entries(h)}
    doomed = [e for e in doomed if _identity(e) not in kept]
    if not doomed:
        return
    assert header is not None
    try:
        from .._reader import _backend

        backend = _backend(str(header.get("backend")), header.get("options") or {})
        backend.delete(root, doomed)
    except Exception as exc:  # the new version is committed; leftovers cost space only
        _log.warning(
            "could not delete superseded remote data %s: %s: %s",
            sorted({f"{e['url']}/{e['path']}" for e in doomed}),
            type(exc).__name__,
            exc,
        )

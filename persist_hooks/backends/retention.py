"""Which superseded data generations a writer may remove now, and which it must keep a while.

When an item is rewritten, its old generation ``x_data/g<N>...`` is no longer
referred to by ``x.py``, but a reader may still hold a value loaded from it.
What keeps such a value readable depends on how the data is stored:

* a *file* (npy, HDF5) stays readable after it is unlinked for every process
  that has it open: npy values are memory maps, HDF5 proxies hold a file
  descriptor from the moment they are opened.  Superseded files are removed at
  once;
* a *directory tree* (a zarr group) cannot be held that way: a reader opens
  chunk files one at a time, and a missing chunk reads as the fill value.  A
  superseded directory is therefore kept for :func:`grace_seconds` after it was
  superseded; a companion ``<name>.superseded`` records when (its mtime), and
  later writers (and ``persist_hooks.verify(path, repair=True)``) remove both
  once the grace period is over.  A proxy whose data is finally removed raises
  ``FileNotFoundError`` naming the array; it never returns fill values.

The grace period is :data:`GRACE_SECONDS` unless the environment variable
``PERSIST_HOOKS_GRACE_SECONDS`` sets another (``0``: remove at once).

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "g1_0.npy").touch(); (d / "g1.zarr").mkdir()
    >>> removable_now(d, ["g1_0.npy", "g1.zarr"])
    ['g1_0.npy']
    >>> sorted(p.name for p in d.iterdir())
    ['g1.zarr', 'g1.zarr.superseded', 'g1_0.npy']
    >>> removable_now(d, ["g1.zarr", "g1.zarr.superseded"], now=time.time() + GRACE_SECONDS + 1)
    ['g1.zarr', 'g1.zarr.superseded']
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

from .._format import GENERATION_RE

__all__ = [
    "GRACE_SECONDS",
    "SUPERSEDED_SUFFIX",
    "grace_seconds",
    "removable_now",
    "retained",
]

GRACE_SECONDS = 60.0
"""Seconds a superseded directory generation stays readable (default)."""
SUPERSEDED_SUFFIX = ".superseded"
"""Companion ``<generation>.superseded``: its mtime is when the generation was superseded."""
GRACE_ENV = "PERSIST_HOOKS_GRACE_SECONDS"


def grace_seconds() -> float:
    """The grace period now: ``$PERSIST_HOOKS_GRACE_SECONDS`` if set to a number >= 0, else the default.

    Example:
        >>> grace_seconds() >= 0
        True
    """
    text = os.environ.get(GRACE_ENV)
    if text:
        try:
            value = float(text)
        except ValueError:
            return GRACE_SECONDS
        if value >= 0:
            return value
    return GRACE_SECONDS


def _base(name: str) -> str | None:
    """The generation a ``.superseded`` companion belongs to, or ``None``."""
    return name[: -len(SUPERSEDED_SUFFIX)] if name.endswith(SUPERSEDED_SUFFIX) else None


def _needs_grace(path: Path) -> bool:
    """A committed generation stored as a directory tree (temporaries go at once)."""
    return GENERATION_RE.match(path.name) is not None and path.is_dir() and not path.is_symlink()


def retained(data_dir: Path, names: Iterable[str], *, now: float | None = None) -> set[str]:
    """Of ``names`` (entries of ``data_dir`` no item version refers to), those to keep for now.

    A directory generation with a ``.superseded`` companion younger than the
    grace period is kept, and so is its companion.  Nothing is created or
    removed (``verify`` without ``repair`` uses this).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "g1.zarr").mkdir()
        >>> (d / "g1.zarr.superseded").touch()
        >>> sorted(retained(d, ["g1.zarr", "g1.zarr.superseded"]))
        ['g1.zarr', 'g1.zarr.superseded']
    """
    now = time.time() if now is None else now
    grace = grace_seconds()
    names = list(names)
    keep: set[str] = set()
    for name in names:
        if _base(name) is not None or not _needs_grace(data_dir / name):
            continue
        try:
            stamp = os.stat(data_dir / (name + SUPERSEDED_SUFFIX)).st_mtime
        except FileNotFoundError:
            continue
        if now < stamp + grace:
            keep.add(name)
            keep.add(name + SUPERSEDED_SUFFIX)
    return keep


def removable_now(data_dir: Path, names: Iterable[str], *, now: float | None = None) -> list[str]:
    """Of ``names`` (entries of ``data_dir`` no item version refers to), those a writer may remove now.

    Call it under the DataSet's writer lock.  Files are removable at once.  A
    directory generation seen for the first time gets its ``.superseded``
    companion (stamped now) and is kept; one whose companion is older than
    the grace period is removable, together with the companion.  A companion
    whose generation is gone is removable.  Order is kept, generations before
    their companions.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "g2.zarr.superseded").touch()
        >>> removable_now(d, ["g2.zarr.superseded"])
        ['g2.zarr.superseded']
    """
    now = time.time() if now is None else now
    grace = grace_seconds()
    names = list(names)
    out: list[str] = []
    kept: set[str] = set()
    for name in names:
        if _base(name) is not None:
            continue
        path = data_dir / name
        if grace <= 0 or not _needs_grace(path):
            out.append(name)
            continue
        stamp_path = data_dir / (name + SUPERSEDED_SUFFIX)
        try:
            stamp = os.stat(stamp_path).st_mtime
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                stamp_path.touch()
            kept.add(name)
            continue
        if now < stamp + grace:
            kept.add(name)
        else:
            out.append(name)
            if name + SUPERSEDED_SUFFIX not in names:
                out.append(name + SUPERSEDED_SUFFIX)
    for name in names:
        base = _base(name)
        if base is not None and base not in kept:
            out.append(name)
    return out

"""Write an Archive as an importable module or package, its arrays through a storage backend."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..names import MAX_FILE_NAME_BYTES, check_name

if TYPE_CHECKING:
    from ..backends.base import Backend
    from . import Archive

__all__ = ["HEADER", "save_archive", "save_data"]

HEADER = "# persist_hooks archive (format 1): generated source, safe to edit by hand"
"""First line of every module written by :func:`save_archive` (how overwrites are allowed)."""


def save_data(
    arrays: dict[str, np.ndarray[Any, Any]],
    dirname: str | os.PathLike[str],
    stem: str,
    backend: str | None = None,
) -> tuple[Backend, dict[str, dict[str, Any]]]:
    """Write ``arrays`` under ``dirname/stem*`` with the configured backend.

    Returns the backend and the manifest (array key -> entry with a path
    relative to ``dirname``).

    Example:
        >>> import tempfile
        >>> be, manifest = save_data({"array_0": np.zeros(3)}, tempfile.mkdtemp(), "_data/a")
        >>> be.name, manifest["array_0"]["shape"]
        ('npy', [3])
    """
    from ..config import get_backend, resolve_backend

    name, options = resolve_backend(backend)
    be = get_backend(name, **options)
    for arr in arrays.values():
        be.check_dtype(arr.dtype)
    manifest = be.write(Path(dirname), stem, arrays) if arrays else {}
    return be, manifest


def _written_by_us(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().rstrip("\n") == HEADER
    except OSError:
        return False


def save_archive(
    archive: Archive,
    dirname: str | os.PathLike[str],
    name: str | None,
    *,
    package: bool = True,
    backend: str | None = None,
) -> Path:
    """Write ``archive`` as module ``name`` in ``dirname``; see :meth:`Archive.save`.

    An existing module or package is replaced only if persist_hooks wrote it;
    anything else raises ``FileExistsError`` (user files are never clobbered).

    Example:
        >>> import tempfile
        >>> from persist_hooks import Archive
        >>> a = Archive(); _ = a.insert(x=1)
        >>> save_archive(a, tempfile.mkdtemp(), "m", package=False).name
        'm.py'
    """
    names = archive.names
    if name is None:
        if len(names) != 1:
            raise ValueError("Archive.save() needs name= unless the archive holds exactly one item")
        name = names[0]
    check_name(name, what="module name", max_bytes=MAX_FILE_NAME_BYTES)
    base = Path(dirname)
    base.mkdir(parents=True, exist_ok=True)
    if package:
        root = base / name
        target = root / "__init__.py"
        stem = "_data/array"
        data_dir = root / "_data"
    else:
        root = base
        target = base / f"{name}.py"
        stem = f"{name}_data/array"
        data_dir = base / f"{name}_data"
    occupied = target.exists() or (package and root.exists() and any(root.iterdir()))
    if occupied and not _written_by_us(target):
        raise FileExistsError(
            f"{target if target.exists() else root} exists and was not written by "
            "persist_hooks; choose another name or remove it"
        )
    source = str(archive)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    be, manifest = save_data(archive.data, root, stem, backend=backend)
    parts = [HEADER]
    if manifest:
        parts.append(f"# backend: {be.name} {be.options!r}")
        parts.append(be.plain_loader(manifest).rstrip("\n"))
    parts.append(source.rstrip("\n"))
    if manifest:
        parts.append("del _arrays")
    text = "\n".join(p for p in parts if p) + "\n"
    from .._fileio import atomic_write_text

    atomic_write_text(target, text)
    return target

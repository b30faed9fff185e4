"""Check a DataSet directory for damage, and remove what dead writers left behind.

:func:`verify` reads a DataSet the way docs/format.md describes it and reports
every problem it finds as a :class:`Problem` in a :class:`VerifyReport`:

================  ==========  ===============================================
kind              repairable  meaning
================  ==========  ===============================================
``bad-marker``    no          the marker file is unreadable or of a newer format
``missing-init``  no          the marker exists but ``__init__.py`` does not
``bad-init``      no          ``__init__.py`` does not parse or define ``_info_dict``
``invalid-key``   no          a key of ``_info_dict`` is not a valid item name
``bad-item``      no          an item file does not parse (or is refused as unsafe)
``bad-header``    no          an item's JSON header (line 2) is invalid
``missing-data``  no          an array file an item refers to is missing
``bad-data``      no          an array file is unreadable or has another shape/dtype
``bad-checksum``  no          an array's data does not match the checksum its entry records
``orphan-data``   yes         a generation no item refers to, or ``x_data/`` without ``x.py``
``temporary``     yes         a temporary ``.<name>.<random>.tmp`` left by a dead writer
================  ==========  ===============================================

``repair=True`` takes the DataSet's writer lock, so no writer is active, and
removes the repairable problems only: orphaned generations and temporaries,
never an item file, its current data, its backup, or a file persist_hooks did
not name.  Array files are opened read-only through the backend named in the
item's header and read in blocks of at most :data:`BLOCK_BYTES` (never a whole
large array at once): existence, shape, dtype, readability of every stored
byte, and — where the entry records one (``"checksum": "crc32c:..."``, or
``"crc32:..."`` when written without the ``crc32c`` package; entries written
before checksums existed have none and still verify) — the CRC of the data,
streamed over the blocks.  Data changed in place through a proxy
(``append``, assignment) has a ``<path>.modified`` companion: its recorded
checksum is stale and is not compared.  ``quick=True`` (CLI ``--quick``)
opens every array and checks shape and dtype but reads no data (so no
checksum is compared).

Superseded generations kept for their grace period
(:mod:`persist_hooks.backends.retention`: zarr groups a reader may still be
using) are not problems; once the period is over they are ``orphan-data``.

Without ``repair`` no lock is taken: run it while no writer is active, or a
write in progress shows up as temporaries or an orphaned generation.

``persist_hooks.verify`` is this module, and it is callable: after
``import persist_hooks.verify``, ``persist_hooks.verify(path)`` calls
:func:`verify`.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import math
import os
import re
import shutil
import sys
import types
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _format as fmt
from ._fileio import is_temporary_name, read_text
from ._reader import INIT, MARKER, read_info
from .errors import ArchiveError, FormatError
from .locking import writer_lock
from .names import check_name

__all__ = ["BLOCK_BYTES", "KINDS", "Problem", "VerifyReport", "verify"]

BLOCK_BYTES = 16 * 1024 * 1024
"""Largest block of array data read at once while checking an array."""

KINDS = (
    "bad-marker",
    "missing-init",
    "bad-init",
    "invalid-key",
    "bad-item",
    "bad-header",
    "missing-data",
    "bad-data",
    "bad-checksum",
    "orphan-data",
    "temporary",
)
"""Every :attr:`Problem.kind`, in the order checks run."""

_DATA_TEMP_RE = re.compile(r"^\..+\.tmp$")  # backends' own temporaries (mkstemp names too)


@dataclass(frozen=True)
class Problem:
    """One problem found in a DataSet.

    ``path`` is the file or directory concerned (absolute), ``kind`` one of
    :data:`KINDS`, ``message`` says what is wrong, ``repairable`` whether
    ``verify(..., repair=True)`` removes it.

    Example:
        >>> p = Problem("/d/.x.py.0123456789abcdef.tmp", "temporary", "leftover", True)
        >>> str(p)
        'temporary: /d/.x.py.0123456789abcdef.tmp: leftover (repairable)'
    """

    path: str
    kind: str
    message: str
    repairable: bool = False

    def __str__(self) -> str:
        tail = " (repairable)" if self.repairable else ""
        return f"{self.kind}: {self.path}: {self.message}{tail}"


@dataclass
class VerifyReport:
    """What :func:`verify` found: ``ok`` is true when no problem remains on disk.

    ``problems`` lists everything found (repaired ones included), ``repaired``
    the paths that ``repair=True`` removed; ``items`` and ``arrays`` count what
    was checked.

    Example:
        >>> r = VerifyReport("/d", ok=True, items=1, arrays=2)
        >>> print(r)
        DataSet /d: ok (1 items, 2 arrays checked)
        >>> json.loads(r.to_json())["ok"]
        True
    """

    path: str
    ok: bool = True
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    items: int = 0
    arrays: int = 0

    def __str__(self) -> str:
        state = "ok" if self.ok else "DAMAGED"
        lines = [f"DataSet {self.path}: {state} ({self.items} items, {self.arrays} arrays checked)"]
        lines += [f"  {p}" for p in self.problems]
        lines += [f"  repaired (removed): {r}" for r in self.repaired]
        return "\n".join(lines)

    def to_json(self) -> str:
        """The report as a JSON object (``path``, ``ok``, ``problems``, ``repaired``, counts).

        Example:
            >>> VerifyReport("/d").to_json()
            '{"path": "/d", "ok": true, "problems": [], "repaired": [], "items": 0, "arrays": 0}'
        """
        return json.dumps(asdict(self))

    def kinds(self) -> set[str]:
        """The set of problem kinds found.

        Example:
            >>> VerifyReport("/d", problems=[Problem("/d/x", "bad-item", "m")]).kinds()
            {'bad-item'}
        """
        return {p.kind for p in self.problems}


def verify(
    path: str | os.PathLike[str],
    *,
    repair: bool = False,
    trusted: bool = False,
    timeout: float | None = 60,
    safe_callables: Iterable[str] = (),
    quick: bool = False,
) -> VerifyReport:
    """Check the DataSet directory ``path``; with ``repair`` remove orphans and temporaries.

    Array data is read whole (in bounded blocks) and compared with its
    recorded checksum; ``quick=True`` only opens each array and checks its
    shape and dtype (fast on large DataSets, blind to damaged bytes).

    ``trusted=False`` (default) never executes anything from the DataSet:
    ``__init__.py`` and items are only parsed (items are checked by
    ``persist_hooks.safe.check`` when that module exists), arrays are opened
    with the backends' untrusted checks (no pickles, shape and dtype compared
    with the header).  ``safe_callables`` extends the safe checker's allow-list
    (your own classes), so items holding them are not reported as refused.
    ``trusted=True`` may execute a hand-written ``__init__.py`` to learn its
    keys.  ``repair=True`` holds the writer lock
    (waiting at most ``timeout`` seconds, else :class:`persist_hooks.LockTimeout`).

    Raises ``FileNotFoundError`` if ``path`` does not exist and ``ValueError``
    if it is not a DataSet (no marker file).

    Example:
        >>> import tempfile, numpy as np
        >>> from persist_hooks import DataSet
        >>> tmp = tempfile.mkdtemp()
        >>> ds = DataSet("d", "w", path=tmp); ds.x = np.arange(1000)
        >>> verify(f"{tmp}/d").ok
        True
        >>> open(f"{tmp}/d/.x.py.0123456789abcdef.tmp", "w").close()
        >>> r = verify(f"{tmp}/d"); r.ok, sorted(r.kinds())
        (False, ['temporary'])
        >>> r = verify(f"{tmp}/d", repair=True); r.ok, len(r.repaired)
        (True, 1)
    """
    root = Path(os.path.abspath(os.fspath(path)))
    if not root.exists():
        raise FileNotFoundError(f"no DataSet at {root}: the path does not exist")
    if not root.is_dir() or not (root / MARKER).is_file():
        raise ValueError(f"{root} is not a DataSet: it has no {MARKER} file")
    allowed = tuple(safe_callables)
    if not repair:
        return _Checker(root, trusted, allowed, quick=quick).run()
    with writer_lock(root).hold(timeout):
        report = _Checker(root, trusted, allowed, quick=quick).run()
        for problem in report.problems:
            if problem.repairable and _remove(Path(problem.path)):
                report.repaired.append(problem.path)
        for data_dir in {Path(p).parent for p in report.repaired}:
            if data_dir != root and data_dir.name.endswith("_data"):
                with contextlib.suppress(OSError):
                    data_dir.rmdir()  # only if empty
        done = set(report.repaired)
        report.ok = all(p.repairable and p.path in done for p in report.problems)
    return report


def _remove(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _safe_module() -> Any:
    try:
        return importlib.import_module("persist_hooks.safe")
    except ImportError:
        return None


class _Checker:
    """One verification pass over a DataSet directory."""

    def __init__(
        self,
        root: Path,
        trusted: bool,
        safe_callables: tuple[str, ...] = (),
        *,
        quick: bool = False,
    ) -> None:
        self.root = root
        self.trusted = trusted
        self.quick = quick
        self.safe_callables = safe_callables
        self.report = VerifyReport(str(root))
        self.safe = None if trusted else _safe_module()

    def problem(self, path: Path, kind: str, message: str, repairable: bool = False) -> None:
        self.report.problems.append(Problem(str(path), kind, message, repairable))

    def run(self) -> VerifyReport:
        self.check_marker()
        listing = sorted(os.listdir(self.root))
        self.check_init()
        for name in listing:
            if is_temporary_name(name):
                self.problem(self.root / name, "temporary", "temporary file left by a writer", True)
        items = [n[:-3] for n in listing if n.endswith(".py") and n != INIT]
        for item in items:
            if not item.isidentifier():
                continue  # not an item file (DataSet items are identifiers)
            self.check_item(item, (self.root / f"{item}_data").is_dir())
        for name in listing:
            if name.endswith("_data") and (self.root / name).is_dir():
                item = name[: -len("_data")]
                if item.isidentifier() and item not in items:
                    self.check_data_dir(self.root / name)
        self.report.ok = not self.report.problems
        return self.report

    # ------------------------------------------------------------ marker and __init__.py

    def check_marker(self) -> None:
        marker = self.root / MARKER
        try:
            version = fmt.marker_format(read_text(marker)[0])
        except (OSError, UnicodeDecodeError, FormatError) as exc:
            self.problem(marker, "bad-marker", f"unreadable marker: {exc}")
            return
        if version is not None and version > fmt.FORMAT:
            self.problem(marker, "bad-marker", f"format {version} is newer than {fmt.FORMAT}")

    def check_init(self) -> set[str] | None:
        """Check ``__init__.py``; return its keys (``None`` if they cannot be known)."""
        init = self.root / INIT
        try:
            text = read_text(init)[0]
        except FileNotFoundError:
            self.problem(init, "missing-init", f"the DataSet has a {MARKER} but no {INIT}")
            return None
        except (OSError, FormatError) as exc:
            self.problem(init, "bad-init", f"unreadable: {exc}")
            return None
        try:
            tree = ast.parse(text, str(init))
        except SyntaxError as exc:
            self.problem(init, "bad-init", f"line {exc.lineno}: invalid Python ({exc.msg})")
            return None
        keys = fmt.init_keys(text)
        if keys is None:
            if self.trusted:
                try:
                    keys = [k for k in read_info(self.root, trusted=True)]
                except Exception as exc:
                    self.problem(init, "bad-init", f"{type(exc).__name__}: {exc}")
                    return None
            else:
                try:
                    found = fmt.static_info_keys(tree)
                except fmt.ComputedInfo:
                    return None  # keys unknown without running it: skip the cross-check
                if found is None:
                    self.problem(init, "bad-init", "does not define the dict _info_dict")
                    return None
                keys = found
        elif not _defines_info(tree):
            self.problem(init, "bad-init", "does not define the dict _info_dict")
            return None
        from .dataset import _RESERVED

        for key in keys:
            try:
                check_name(key, reserved=_RESERVED, what="key")
            except ValueError as exc:
                self.problem(init, "invalid-key", str(exc))
        return {k for k in keys if isinstance(k, str)}

    # ------------------------------------------------------------ items

    def check_item(self, name: str, has_data_dir: bool) -> None:
        py = self.root / f"{name}.py"
        self.report.items += 1
        try:
            text = read_text(py)[0]
        except (OSError, FormatError) as exc:
            self.problem(py, "bad-item", f"unreadable: {exc}")
            return
        try:
            ast.parse(text, str(py))
        except SyntaxError as exc:
            self.problem(py, "bad-item", f"line {exc.lineno}: invalid Python ({exc.msg})")
            return
        try:
            item = fmt.parse_item(text, str(py))
        except FormatError as exc:
            self.problem(py, "bad-header", str(exc))
            return
        if self.safe is not None:
            source = text if item is None else fmt.padded(item.body, item.body_line)
            try:
                self.safe.check(source, filename=str(py), safe_callables=self.safe_callables)
            except (ArchiveError, SyntaxError, ValueError, TypeError) as exc:
                self.problem(py, "bad-item", f"refused by the safe loader: {exc}")
        header = None if item is None else item.header
        keep: set[str] = set()
        if header is not None:
            keep |= self.check_arrays(py, header)
        bak = self.root / f"{name}.py.bak"
        with contextlib.suppress(OSError, UnicodeDecodeError, FormatError):
            bak_item = fmt.parse_item(read_text(bak)[0], str(bak))
            if bak_item is not None:
                keep |= _top_names(bak_item.header, name)
            else:
                return  # a foreign backup: nothing in x_data/ can be called an orphan
        if has_data_dir:
            self.check_data_dir(self.root / f"{name}_data", keep)

    def check_arrays(self, py: Path, header: dict[str, Any]) -> set[str]:
        """Check every array the header names; return the top-level names it uses in x_data/."""
        arrays = header.get("arrays") or {}
        if not arrays:
            return set()
        name = py.name[:-3]
        backend_name = header.get("backend")
        options = header.get("options") or {}
        if not isinstance(backend_name, str) or not isinstance(options, dict):
            self.problem(py, "bad-header", "line 2: the header needs a backend name and options")
            return _top_names(header, name)
        from ._reader import _backend

        try:
            backend = _backend(backend_name, options)
        except Exception as exc:
            self.problem(py, "bad-header", f"line 2: backend {backend_name!r}: {exc}")
            return _top_names(header, name)
        from .backends.base import (
            CHECKSUM_KEY,
            entry_shape_dtype,
            modified_marker,
            resolve_path,
            same_layout,
        )

        for key, entry in arrays.items():
            self.report.arrays += 1
            try:
                shape, dtype = entry_shape_dtype(entry)
                data_path = resolve_path(self.root, entry.get("path"))
            except (FormatError, AttributeError) as exc:
                self.problem(py, "bad-header", f"line 2: array {key!r}: {exc}")
                continue
            # data at an fsspec URL (zarr's ``url`` option) is checked by opening it below
            if entry.get("url") is None and not data_path.exists():
                self.problem(data_path, "missing-data", f"array {key!r} of {py.name} is missing")
                continue
            try:
                arr = backend.open(self.root, entry, mode="r", trusted=False)
                got_shape = tuple(int(n) for n in arr.shape)
                if not same_layout(shape, dtype, got_shape, arr.dtype):
                    raise FormatError(
                        f"holds shape {got_shape} and dtype {arr.dtype}, but {py.name} "
                        f"says shape {shape} and dtype {dtype}"
                    )
                recorded = entry.get(CHECKSUM_KEY)
                if not isinstance(recorded, str) or modified_marker(self.root, entry).exists():
                    recorded = None  # none recorded (older writer), or changed in place since
                if not self.quick:
                    from .backends.base import checksum_algorithm

                    algorithm = None if recorded is None else checksum_algorithm(recorded)
                    if recorded is not None and algorithm is None:
                        self.problem(
                            data_path,
                            "bad-checksum",
                            f"array {key!r} of {py.name}: cannot check the recorded checksum "
                            f"{recorded!r} (unknown algorithm; crc32c needs the crc32c "
                            "package: pip install crc32c)",
                        )
                    found = _read_in_blocks(
                        arr, got_shape, arr.dtype.itemsize, algorithm or "crc32"
                    )
                    if recorded is not None and algorithm is not None and found != recorded:
                        self.problem(
                            data_path,
                            "bad-checksum",
                            f"array {key!r} of {py.name}: the data's checksum is {found}, but "
                            f"{py.name} records {recorded}: the stored bytes were changed or "
                            "damaged; restore the file from a backup or write the item again",
                        )
                del arr
            except FileNotFoundError as exc:
                self.problem(data_path, "missing-data", f"array {key!r} of {py.name}: {exc}")
            except Exception as exc:
                self.problem(
                    data_path,
                    "bad-data",
                    f"array {key!r} of {py.name}: {type(exc).__name__}: {exc}",
                )
        return _top_names(header, name)

    # ------------------------------------------------------------ data directories

    def check_data_dir(self, data_dir: Path, keep: set[str] | None = None) -> None:
        """Temporaries and unreferenced generations in ``data_dir`` (``keep=None``: the
        directory belongs to no item, so every generation in it is orphaned)."""
        if keep is None:
            item = data_dir.name[: -len("_data")]
            message = f"data of item {item!r}, whose {item}.py does not exist"
        else:
            message = "a data generation no item version refers to"
        try:
            entries = sorted(os.listdir(data_dir))
        except OSError as exc:
            self.problem(data_dir, "bad-data", f"unreadable directory: {exc}")
            return
        from .backends.retention import retained

        unreferenced = [
            e
            for e in entries
            if not _DATA_TEMP_RE.match(e)
            and fmt.GENERATION_RE.match(e)
            and (keep is None or not fmt.is_kept(e, keep))
        ]
        in_grace = retained(data_dir, unreferenced)  # superseded, maybe still read: not orphans
        for entry in entries:
            path = data_dir / entry
            if _DATA_TEMP_RE.match(entry):
                self.problem(path, "temporary", "temporary file left by a writer", True)
            elif entry in unreferenced and entry not in in_grace:
                self.problem(path, "orphan-data", message, True)


# ---------------------------------------------------------------- helpers


def _read_in_blocks(arr: Any, shape: tuple[int, ...], itemsize: int, algorithm: str) -> str:
    """Read every element of ``arr`` (a memmap or lazy proxy), ``BLOCK_BYTES`` at a time.

    Returns the checksum of the data (``"<algorithm>:<hex>"``, C order), so memory
    stays bounded by one block whatever the array's size.
    """
    from .backends.base import Crc32

    crc = Crc32(algorithm)
    if not shape:
        crc.update(np.array(arr[()], copy=True))
        return str(crc)
    row_bytes = max(1, math.prod(shape[1:]) * max(1, itemsize))
    step = max(1, BLOCK_BYTES // row_bytes)
    for start in range(0, shape[0], step):
        crc.update(np.array(arr[start : start + step], copy=True))  # reads (memmaps are lazy)
    return str(crc)


def _defines_info(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_info_dict" for t in node.targets
        ):
            return True
    return False


class _CallableModule(types.ModuleType):
    def __call__(
        self,
        path: str | os.PathLike[str],
        *,
        repair: bool = False,
        trusted: bool = False,
        timeout: float | None = 60,
        safe_callables: Iterable[str] = (),
        quick: bool = False,
    ) -> VerifyReport:
        return verify(
            path,
            repair=repair,
            trusted=trusted,
            timeout=timeout,
            safe_callables=safe_callables,
            quick=quick,
        )


sys.modules[__name__].__class__ = _CallableModule


def _top_names(header: dict[str, Any], name: str) -> set[str]:
    """Top-level names in ``<name>_data/`` the header's array entries use."""
    arrays = header.get("arrays")
    return fmt.data_names(arrays, name) if isinstance(arrays, dict) else set()

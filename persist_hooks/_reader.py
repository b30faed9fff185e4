"""The read path of DataSet directories: metadata and items, lock-free and never stale.

Used by :class:`persist_hooks.DataSet` and by the import hook.  Every call
reads the file's text afresh; only *compiled code* is cached, keyed by the
file's exact text (and name), so a rewritten file can never be served stale and
no bytecode is read or written.  Item arrays are opened through the backend
named in the item's header (never configuration).  Written data files are
immutable and replaced by new generations, so a reader needs no lock: when a
data file it was told about is gone (a writer replaced the item meanwhile), it
reads the item file again.
"""

from __future__ import annotations

import builtins
import gc
import importlib
import itertools
import json
import os
import posixpath
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._exec import ARRAYS_NAME, run_code
from ._fileio import file_signature, read_text
from ._format import (
    STANDARD_FOOTERS,
    block_runs,
    item_keys,
    item_order,
    padded,
    parse_init,
    parse_item,
)
from .errors import FormatError, UnsafeArchiveError

if TYPE_CHECKING:
    from .backends.base import Backend

__all__ = [
    "MARKER",
    "complete_info",
    "exec_init",
    "is_dataset_dir",
    "item_names",
    "read_info",
    "read_item",
]

MARKER = "_this_dir_is_a_DataSet"
"""Name of the file that marks a directory as a DataSet."""

INIT = "__init__.py"

_MAX_ATTEMPTS = 20
"""Times an item is re-read when a writer replaces it while it is being opened."""

_CACHE_ENTRIES = 512
_CACHE_CHARS = 32_000_000


_V = TypeVar("_V")


class _TextCache(Generic[_V]):
    """Values built from source text, keyed by (filename, first line, exact text): a
    bounded LRU (entries and characters of text), thread-safe."""

    def __init__(self, entries: int, chars: int) -> None:
        self._lock = threading.Lock()
        self._values: OrderedDict[tuple[str, int, str], _V] = OrderedDict()
        self._chars = 0
        self._max_entries = entries
        self._max_chars = chars

    def get(self, source: str, filename: str, first_line: int = 1) -> _V | None:
        key = (filename, first_line, source)
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, source: str, filename: str, first_line: int, value: _V) -> None:
        if len(source) > self._max_chars // 4:
            return
        key = (filename, first_line, source)
        with self._lock:
            if key not in self._values:
                self._values[key] = value
                self._chars += len(source)
            while self._values and (
                len(self._values) > self._max_entries or self._chars > self._max_chars
            ):
                (_, _, old), _ = self._values.popitem(last=False)
                self._chars -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._chars = 0


def _shift_lines(code: CodeType, delta: int) -> CodeType:
    """``code`` with every line number (nested functions included) moved by ``delta``."""
    consts = tuple(_shift_lines(c, delta) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)


def _compile(source: str, filename: str, first_line: int = 1) -> CodeType:
    """Compile source that starts at line ``first_line`` of ``filename`` (no padding, so the
    cost does not grow with the line number); a SyntaxError becomes a FormatError."""
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = (exc.lineno or 1) + first_line - 1
        raise FormatError(
            f"{filename}, line {line}: invalid Python ({exc.msg}); fix or rewrite this "
            "file (other items are not affected)"
        ) from exc
    return code if first_line == 1 else _shift_lines(code, first_line - 1)


def _cached_code(source: str, filename: str, first_line: int = 1) -> CodeType:
    code = _code_cache.get(source, filename, first_line)
    if code is None:
        code = _compile(source, filename, first_line)
        _code_cache.put(source, filename, first_line, code)
    return code


_DataStep = tuple[list[str], str, list[list[Any]]]
"""Keys, their values as a JSON array, and the values decoded when the plan was made
(popped by the first run: later runs decode afresh, so no two callers share a value)."""
_InitPlan = list[CodeType | _DataStep]
"""How to run an ``__init__.py``: code to execute, or runs of literal metadata to decode."""

_code_cache: _TextCache[CodeType] = _TextCache(_CACHE_ENTRIES, _CACHE_CHARS)
_plan_cache: _TextCache[_InitPlan] = _TextCache(64, _CACHE_CHARS)
_module_names = itertools.count()


def is_dataset_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a DataSet directory (it holds the marker file); one ``stat``.

    Example:
        >>> is_dataset_dir("/")
        False
    """
    return os.path.isfile(os.path.join(path, MARKER))


def _evaluate_body(
    code_text: str,
    namespace: dict[str, Any],
    trusted: bool,
    *,
    filename: str = "<archive>",
    first_line: int = 1,
    safe_callables: tuple[str, ...] = (),
) -> None:
    """Run archive source in ``namespace``: plainly if trusted, else with the safe evaluator.

    ``safe_callables`` extends the safe evaluator's allow-list (user classes).

    Untrusted evaluation needs :mod:`persist_hooks.safe`; without it this raises
    :class:`persist_hooks.UnsafeArchiveError`.

    Example:
        >>> ns: dict = {}
        >>> _evaluate_body("x = [1]\\n", ns, True); ns["x"]
        [1]
    """
    if trusted:
        run_code(_cached_code(code_text, filename, first_line), namespace)
        return
    try:
        safe = importlib.import_module("persist_hooks.safe")
    except ImportError:
        raise UnsafeArchiveError(
            f"cannot load {filename} with trusted=False: safe evaluation is not available "
            "in this version of persist_hooks; load it with trusted=True only if you trust "
            "its author"
        ) from None
    safe.execute(
        padded(code_text, first_line), namespace, filename=filename, safe_callables=safe_callables
    )


def exec_init(
    root: Path,
    namespace: dict[str, Any],
    *,
    trusted: bool = True,
    safe_callables: tuple[str, ...] = (),
    items: bool = True,
) -> None:
    """Run ``<root>/__init__.py`` into ``namespace`` (which then holds ``_info_dict``).

    No bytecode is used; compiled code is cached by the file's exact text.
    Metadata written as plain-data literals is decoded with :mod:`json`
    instead of compiled.  Item files without a key block (copied in by hand)
    are added as keys mapping to ``None``, after the others, as the file's
    plain-Python footer does (unless ``items=False``).  A missing ``__init__.py`` gives an
    ``_info_dict`` of the items only.  With ``trusted=False`` only the key
    blocks run, through the safe evaluator.

    Example:
        >>> import tempfile, pathlib
        >>> ns: dict = {}
        >>> exec_init(pathlib.Path(tempfile.mkdtemp()), ns); ns["_info_dict"]
        {}
    """
    root = Path(root)
    path = root / INIT
    try:
        text, _ = read_text(path)
    except FileNotFoundError:
        namespace["_info_dict"] = {}
        if items:
            complete_info(root, namespace["_info_dict"])
        return
    filename = str(path)
    namespace.setdefault("__file__", filename)
    namespace.setdefault("__name__", f"_persist_hooks_info_{next(_module_names)}")
    if trusted:
        _run_init_plan(_init_plan(text, filename), namespace)
    else:
        layout = parse_init(text)
        if layout is None:
            _evaluate_body(text, namespace, False, filename=filename, safe_callables=safe_callables)
        else:
            namespace["_info_dict"] = {}
            line = layout.first_line + 1
            for start, end, data in block_runs(text, layout):
                if data is not None:
                    namespace["_info_dict"].update(zip(data.keys, data.values, strict=True))
                else:
                    _evaluate_body(
                        text[start:end],
                        namespace,
                        False,
                        filename=filename,
                        first_line=line,
                        safe_callables=safe_callables,
                    )
                line += text.count("\n", start, end)
    info = namespace.get("_info_dict")
    if items and isinstance(info, dict):
        complete_info(root, info)


def complete_info(root: Path, info: dict[Any, Any]) -> None:
    """Add the items of ``root`` that ``info`` lacks (no key block) as ``None``, after the
    others, in name order (:func:`persist_hooks._format.item_order`).

    A DataSet writes a block for every key, so this only matters for item files
    copied in by hand or left by a writer that died between committing an item
    and its key: they stay readable and listed.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp()); _ = (root / "x_10.py").write_text("")
        >>> _ = (root / "x_9.py").write_text("")
        >>> info = {"x_10": 1}; complete_info(root, info); info
        {'x_10': 1, 'x_9': None}
    """
    try:
        listing = os.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return
    missing = [key for key in item_keys(listing) if key not in info]
    for key in sorted(missing, key=item_order):
        info[key] = None


def _init_plan(text: str, filename: str) -> _InitPlan:
    """Split ``__init__.py`` into code and runs of literal metadata (cached by text).

    Compiling costs ~15 us per statement, decoding a JSON literal ~1 us, so
    runs of blocks that assign Python/JSON literals (``None`` for keys
    without metadata, plain-data dicts, lists, strings and numbers: what
    DataSets write for such metadata) are decoded instead; other blocks stay
    code.  A footer persist_hooks wrote (plain-Python item access) is not run:
    the readers do its work themselves.  The result is the same as running the
    whole file.
    """
    plan = _plan_cache.get(text, filename)
    if plan is not None:
        return plan
    layout = parse_init(text)
    if layout is None:
        plan = [_compile(text, filename)]
    else:
        plan = [_compile(text[: layout.blocks_start], filename)]
        line = text.count("\n", 0, layout.blocks_start) + 1
        for start, end, data in block_runs(text, layout):
            if data is not None:
                plan.append((data.keys, data.source, [data.values]))
            else:
                plan.append(_compile(text[start:end], filename, line))
            line += text.count("\n", start, end)
        footer = text[layout.blocks_end :]
        if footer.partition("\n")[2] not in STANDARD_FOOTERS:
            plan.append(_compile(footer, filename, line))
    _plan_cache.put(text, filename, 1, plan)
    return plan


def _run_init_plan(plan: _InitPlan, namespace: dict[str, Any]) -> None:
    enabled = gc.isenabled()
    gc.disable()  # as in run_code: building many small containers in a row
    try:
        for step in plan:
            if isinstance(step, tuple):
                keys, source, fresh = step
                try:
                    values = fresh.pop()  # atomic: only one caller gets them
                except IndexError:
                    values = json.loads(source)
                namespace["_info_dict"].update(zip(keys, values, strict=True))
            else:
                exec(step, namespace)  # trusted DataSet metadata
    finally:
        if enabled:
            gc.enable()


def read_info(
    root: Path,
    *,
    trusted: bool = True,
    safe_callables: tuple[str, ...] = (),
    items: bool = True,
) -> dict[str, Any]:
    """Return a fresh ``_info_dict`` (metadata per key) of the DataSet at ``root``.

    ``items=False``: only what ``__init__.py`` says, without the items stored
    without metadata.

    Example:
        >>> import tempfile, pathlib
        >>> read_info(pathlib.Path(tempfile.mkdtemp()))
        {}
    """
    namespace: dict[str, Any] = {}
    exec_init(
        Path(root), namespace, trusted=trusted, safe_callables=safe_callables, items=items
    )
    info = namespace.get("_info_dict")
    if not isinstance(info, dict):
        raise FormatError(f"{Path(root) / INIT}: does not define the dict _info_dict")
    return info


def item_names(root: Path) -> list[str]:
    """The keys of the DataSet at ``root`` that have an item file, in ``_info_dict`` order.

    Example:
        >>> import tempfile, pathlib
        >>> item_names(pathlib.Path(tempfile.mkdtemp()))
        []
    """
    info = read_info(root)
    files = set(os.listdir(root))
    return [key for key in info if isinstance(key, str) and f"{key}.py" in files]


# ---------------------------------------------------------------- items

ArrayOpener = Callable[["Backend", Path, Mapping[str, Any]], Any]
"""``opener(backend, root, entry) -> array``: how :func:`read_item` opens each stored array."""

_backends: dict[tuple[str, str], Backend] = {}
_backends_lock = threading.Lock()


def _backend(name: str, options: Mapping[str, Any]) -> Backend:
    key = (name, json.dumps(options, sort_keys=True))
    backend = _backends.get(key)
    if backend is None:
        from .plugins import backend_class

        backend = backend_class(name)(**options)
        with _backends_lock:
            _backends.setdefault(key, backend)
    return backend


def _check_entry_path(entry: Any, filename: str) -> None:
    path = entry.get("path") if isinstance(entry, dict) else None
    if (
        not isinstance(path, str)
        or not path
        or posixpath.isabs(path)
        or ".." in path.split("/")
        or "\\" in path
    ):
        raise FormatError(
            f"{filename}, line 2: array entry {entry!r} needs a relative 'path' inside "
            "the DataSet directory"
        )


def _open_arrays(
    root: Path,
    header: Mapping[str, Any],
    filename: str,
    *,
    mode: str,
    trusted: bool,
    writer_lock: Callable[[], AbstractContextManager[Any]] | None,
    durable: bool,
    opener: ArrayOpener | None = None,
) -> dict[str, Any]:
    entries = header.get("arrays") or {}
    if not entries:
        return {}
    for entry in entries.values():
        _check_entry_path(entry, filename)
    name = header.get("backend")
    options = header.get("options") or {}
    if not isinstance(name, str) or not isinstance(options, dict):
        raise FormatError(f"{filename}, line 2: header needs a backend name and options")
    backend = _backend(name, options)
    if opener is not None:
        return {key: opener(backend, root, entry) for key, entry in entries.items()}
    if mode == "r":
        return {
            key: backend.open(root, entry, mode="r", trusted=trusted)
            for key, entry in entries.items()
        }
    return {
        key: backend.open(
            root, entry, mode="a", writer_lock=writer_lock, trusted=trusted, durable=durable
        )
        for key, entry in entries.items()
    }


def _run_foreign(
    path: Path, text: str, name: str, trusted: bool, safe_callables: tuple[str, ...] = ()
) -> Any:
    """Run a file without markers whole, as plain Python's import would."""
    module_name = f"_persist_hooks_item_{next(_module_names)}"
    namespace: dict[str, Any] = {
        "__name__": module_name,
        "__file__": str(path),
        "__builtins__": builtins,
    }
    sentinel = object()
    try:
        _evaluate_body(text, namespace, trusted, filename=str(path), safe_callables=safe_callables)
        replaced = sys.modules.get(module_name, sentinel)
    finally:
        sys.modules.pop(module_name, None)
    if replaced is not sentinel:
        return replaced
    if name in namespace:
        return namespace[name]
    raise FormatError(f"{path}: running it neither bound {name!r} nor replaced its module")


def read_item(
    root: Path,
    name: str,
    *,
    mode: str = "r",
    trusted: bool = True,
    writer_lock: Callable[[], AbstractContextManager[Any]] | None = None,
    durable: bool = False,
    safe_callables: tuple[str, ...] = (),
    opener: ArrayOpener | None = None,
) -> Any:
    """Load item ``name`` of the DataSet at ``root`` from disk, afresh.

    ``opener(backend, root, entry)``, when given, opens each stored array
    instead of the backend's ``open`` (``DataSet.open(name, as_="dask")``).

    With ``trusted=False`` the item is evaluated by the safe loader, whose
    allow-list ``safe_callables`` extends.

    Arrays open through the backend named in the item's header: memory-mapped
    in mode ``"r"``, as lazy proxies (writing under ``writer_lock``) in ``"a"``
    / ``"w"`` (each proxy write fsynced when ``durable``).  Raises ``FileNotFoundError`` if the item does not exist and
    :class:`persist_hooks.FormatError` (naming file and line) if its file is
    not valid Python.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "x.py").write_text("x = [1, 2]\\n")
        >>> read_item(root, "x")
        [1, 2]
    """
    if mode not in ("r", "w", "a"):
        raise ValueError(f"mode must be 'r', 'w' or 'a', not {mode!r}")
    if not name.isidentifier():  # never a path: no item can have this name
        raise FileNotFoundError(f"no item {name!r} in {root}: item names are identifiers")
    root = Path(root)
    path = root / f"{name}.py"
    filename = str(path)
    for attempt in range(_MAX_ATTEMPTS):
        last = attempt == _MAX_ATTEMPTS - 1
        text, signature = read_text(path)
        item = parse_item(text, filename)
        if item is None:
            return _run_foreign(path, text, name, trusted, safe_callables)
        try:
            arrays = _open_arrays(
                root,
                item.header,
                filename,
                mode=mode,
                trusted=trusted,
                writer_lock=writer_lock,
                durable=durable,
                opener=opener,
            )
        except FileNotFoundError as exc:
            if file_signature(path) != signature and not last:
                continue  # replaced by a writer meanwhile: read the new version
            raise FormatError(
                f"{filename}: a data file its header refers to is missing ({exc})"
            ) from exc
        if file_signature(path) != signature and not last:
            continue  # replaced while opening: the arrays may belong to a newer version
        namespace: dict[str, Any] = {"__name__": f"{root.name}.{name}", ARRAYS_NAME: arrays}
        _evaluate_body(
            item.body,
            namespace,
            trusted,
            filename=filename,
            first_line=item.body_line,
            safe_callables=safe_callables,
        )
        try:
            return namespace[name]
        except KeyError:
            raise FormatError(
                f"{filename}: the part between the persist_hooks markers does not bind {name!r}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover

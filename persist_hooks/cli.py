"""The ``persist-hooks`` command (also ``python -m persist_hooks``): inspect, check and convert DataSets.

Subcommands (see docs/cli.md):

* ``info PATH`` — the DataSet's keys: item or metadata only, storage backend,
  number of external arrays, size on disk, metadata (reads item headers and
  ``stat``\\s files; never loads an item or an array);
* ``show PATH ITEM`` — one item: its archive body source, its arrays described
  by their backend, its metadata;
* ``verify PATH [--repair] [--quick]`` — :func:`persist_hooks.verify.verify`;
* ``convert PATH --backend NAME [--items ...]`` — :func:`persist_hooks.convert.convert`;
* ``plugins`` — installed plugins, the representers and backends they
  contribute, their distributions and versions;
* ``demo`` — the README's demo.

``info``, ``show``, ``verify`` and ``plugins`` take ``--json`` (keys documented in
docs/cli.md).  Exit status: 0 ok, 1 problems found (``verify`` found damage, no
such DataSet or item, a failed operation), 2 usage error.  Errors print one line
on stderr; ``--debug`` adds the traceback.  Diagnostics go through the
``persist_hooks`` logger; ``-v`` shows INFO, ``-vv`` DEBUG.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import logging
import os
import sys
import textwrap
import traceback
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

__all__ = [
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "CommandError",
    "UsageError",
    "build_parser",
    "dataset_info",
    "item_detail",
    "main",
    "plugins_report",
]

EXIT_OK = 0
"""Exit status: success (and ``verify`` found nothing wrong)."""
EXIT_PROBLEMS = 1
"""Exit status: problems found (damage, a missing DataSet or item, a failed operation)."""
EXIT_USAGE = 2
"""Exit status: the command line is wrong (argparse's own status for usage errors)."""

PROG = "persist-hooks"

logger = logging.getLogger("persist_hooks.cli")

_METADATA_WIDTH = 40
"""Characters of metadata ``repr`` shown in ``info``'s table."""
_METADATA_JSON_WIDTH = 200
"""Characters of metadata ``repr`` kept in ``--json`` output."""


class CommandError(Exception):
    """A problem the command reports with exit status 1 (no DataSet, no item, ...).

    Example:
        >>> CommandError("no DataSet at /x").exit_code
        1
    """

    exit_code = EXIT_PROBLEMS


class UsageError(CommandError):
    """A command line that cannot be acted on (exit status 2), e.g. an unknown backend name.

    Example:
        >>> UsageError("unknown backend").exit_code
        2
    """

    exit_code = EXIT_USAGE


# ---------------------------------------------------------------- helpers


def _dataset_root(path: str) -> Path:
    """The absolute DataSet directory ``path``; :class:`CommandError` if it is not one."""
    from ._reader import MARKER

    root = Path(os.path.abspath(path))
    if not root.exists():
        raise CommandError(f"no DataSet at {root}: the path does not exist")
    if not (root / MARKER).is_file():
        raise CommandError(f"{root} is not a DataSet (it has no {MARKER} file)")
    return root


def _shorten(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis.

    Example:
        >>> _shorten("abcdef", 4), _shorten("a\\nb", 10)
        ('abc…', 'a\\\\nb')
    """
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _metadata_summary(value: Any, width: int) -> str | None:
    """A one-line ``repr`` of metadata (``None`` stays ``None``)."""
    if value is None:
        return None
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break info
        text = f"<{type(value).__name__}: repr failed: {exc}>"
    return _shorten(text, width)


def _disk_size(path: Path) -> int:
    """Bytes of the file at ``path`` or of every file under the directory (``lstat``; 0 if gone)."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return st.st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _human(nbytes: int | None) -> str:
    if nbytes is None:
        return "-"
    from .backends.base import human_size

    return human_size(nbytes)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """Rows aligned in columns under ``headers``; columns in ``right`` are right-aligned.

    Example:
        >>> print(_table(["A", "SIZE"], [["x", "1 B"], ["long", "10 kB"]], right=[1]))
        A      SIZE
        x       1 B
        long  10 kB
    """
    all_rows = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(headers))]
    right_set = set(right)
    lines = []
    for row in all_rows:
        cells = [
            cell.rjust(w) if i in right_set else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _read_keys_and_metadata(root: Path, trusted: bool) -> tuple[list[str], dict[str, Any] | None]:
    """The DataSet's keys in file order and their metadata (``None``: metadata unavailable).

    With ``trusted=False`` metadata is evaluated by the safe loader (nothing of
    the DataSet is executed); if that refuses it, keys come from the text of
    ``__init__.py`` (or the item files) and metadata is reported unavailable.
    """
    from . import _format as fmt
    from ._fileio import read_text
    from ._reader import INIT, read_info

    try:
        info = read_info(root, trusted=trusted)
        return [k for k in info if isinstance(k, str)], info
    except Exception as exc:
        logger.warning(
            "metadata of %s not shown: %s: %s%s",
            root,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            "" if trusted else " (--trusted runs __init__.py to read it)",
        )
    keys: list[str] | None = None
    with contextlib.suppress(OSError, UnicodeDecodeError, SyntaxError, ValueError):
        text = read_text(root / INIT)[0]
        keys = fmt.init_keys(text)
        if keys is None:
            with contextlib.suppress(fmt.ComputedInfo):
                keys = fmt.static_info_keys(ast.parse(text)) or None
    if keys is None:
        keys = _item_files(root)
    return keys, None


def _item_files(root: Path) -> list[str]:
    """Names of the item files ``<name>.py`` in ``root``, sorted."""
    return sorted(
        n[:-3]
        for n in os.listdir(root)
        if n.endswith(".py") and n[:-3].isidentifier() and not n.startswith("_")
    )


def _item_header(py: Path) -> tuple[str, dict[str, Any] | None, int | None, str]:
    """Parse item file ``py``: (format, header, body_line, text).

    ``format`` is ``"persist_hooks"`` (with header), ``"foreign"`` (persist 3.x
    or hand-written: no header) or ``"damaged"`` (header unreadable, logged).
    """
    from . import _format as fmt
    from ._fileio import read_text
    from .errors import FormatError

    try:
        text = read_text(py)[0]
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("%s: unreadable: %s (run `persist-hooks verify`)", py, exc)
        return "damaged", None, None, ""
    try:
        item = fmt.parse_item(text, str(py))
    except FormatError as exc:
        logger.warning("%s (run `persist-hooks verify`)", exc)
        return "damaged", None, None, text
    if item is None:
        return "foreign", None, None, text
    return "persist_hooks", item.header, item.body_line, text


def _header_arrays(header: Mapping[str, Any] | None) -> dict[str, Any]:
    arrays = None if header is None else header.get("arrays")
    return arrays if isinstance(arrays, dict) else {}


def _data_paths(
    root: Path, name: str, fmt_name: str, header: Mapping[str, Any] | None
) -> set[Path]:
    """Files and directories holding the item's current array data."""
    if fmt_name != "persist_hooks":
        data_dir = root / f"{name}_data"
        return {data_dir} if data_dir.exists() else set()
    out: set[Path] = set()
    for entry in _header_arrays(header).values():
        rel = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(rel, str) and rel and not os.path.isabs(rel) and ".." not in rel.split("/"):
            out.add(root.joinpath(*rel.split("/")))
    return out


# ---------------------------------------------------------------- info


def dataset_info(path: str | os.PathLike[str], *, trusted: bool = False) -> dict[str, Any]:
    """Describe the DataSet at ``path`` without loading any item or array (``info --json``).

    Returns ``{"path", "name", "format", "metadata_available", "keys": [...],
    "items", "metadata_only", "total_size"}``; each key is ``{"name", "kind", "format", "backend",
    "arrays", "size", "generation", "metadata"}`` (see docs/cli.md).  Raises
    :class:`CommandError` if ``path`` is not a DataSet.

    Example:
        >>> import tempfile, numpy as np, persist_hooks as ph
        >>> tmp = tempfile.mkdtemp()
        >>> ds = ph.DataSet("d", "w", path=tmp, array_threshold=10)
        >>> ds.x = np.arange(100); ds["x"] = "numbers"
        >>> info = dataset_info(f"{tmp}/d")
        >>> [(k["name"], k["kind"], k["backend"], k["arrays"], k["metadata"]) for k in info["keys"]]
        [('x', 'item', 'npy', 1, "'numbers'")]
    """
    from . import _format as fmt
    from ._fileio import read_text
    from ._reader import MARKER

    root = _dataset_root(os.fspath(path))
    try:
        marker: int | None = fmt.marker_format(read_text(root / MARKER)[0])
    except Exception as exc:
        logger.warning("%s: unreadable marker: %s", root / MARKER, exc)
        marker = None
    keys, metadata = _read_keys_and_metadata(root, trusted)
    files = set(os.listdir(root))
    listed = set(keys)
    unlisted = [n for n in _item_files(root) if n not in listed]
    entries: list[dict[str, Any]] = []
    for name in [*keys, *unlisted]:
        meta = (
            None
            if metadata is None
            else _metadata_summary(metadata.get(name), _METADATA_JSON_WIDTH)
        )
        entry: dict[str, Any] = {
            "name": name,
            "kind": "metadata",
            "format": None,
            "backend": None,
            "arrays": 0,
            "size": None,
            "generation": None,
            "metadata": meta,
        }
        if f"{name}.py" in files:
            py = root / f"{name}.py"
            fmt_name, header, _, _ = _item_header(py)
            arrays = _header_arrays(header)
            size = _disk_size(py) + sum(
                _disk_size(p) for p in _data_paths(root, name, fmt_name, header)
            )
            backend = header.get("backend") if header is not None and arrays else None
            generation = header.get("generation") if header is not None else None
            entry.update(
                kind="item" if name in keys else "unlisted",
                format=fmt_name,
                backend=backend if isinstance(backend, str) else None,
                arrays=len(arrays) if fmt_name == "persist_hooks" else None,
                size=size,
                generation=generation if isinstance(generation, int) else None,
            )
        entries.append(entry)
    return {
        "path": str(root),
        "name": root.name,
        "format": marker,
        "metadata_available": metadata is not None,
        "keys": entries,
        "items": sum(1 for e in entries if e["kind"] != "metadata"),
        "metadata_only": sum(1 for e in entries if e["kind"] == "metadata"),
        "total_size": _disk_size(root),
    }


def _format_info(info: Mapping[str, Any]) -> str:
    rows = []
    for e in info["keys"]:
        if info["metadata_available"]:
            meta = "-" if e["metadata"] is None else _shorten(e["metadata"], _METADATA_WIDTH)
        else:
            meta = "?"
        rows.append(
            [
                e["name"],
                e["kind"]
                if e["format"] in (None, "persist_hooks")
                else f"{e['kind']} ({e['format']})",
                e["backend"] or "-",
                "-"
                if e["kind"] == "metadata"
                else "?"
                if e["arrays"] is None
                else str(e["arrays"]),
                _human(e["size"]),
                meta,
            ]
        )
    fmt_text = "persist 3.x" if info["format"] is None else f"format {info['format']}"
    head = f"DataSet {info['name']} at {info['path']} ({fmt_text})"
    body = _table(["KEY", "KIND", "BACKEND", "ARRAYS", "SIZE", "METADATA"], rows, right=[3, 4])
    with_arrays = sum(1 for e in info["keys"] if e["arrays"])
    foot = (
        f"{info['items']} item(s) ({with_arrays} with external arrays), "
        f"{info['metadata_only']} metadata-only key(s); {_human(info['total_size'])} on disk"
    )
    return f"{head}\n{body}\n{foot}" if rows else f"{head}\n(no keys)\n{foot}"


def _cmd_info(args: argparse.Namespace) -> int:
    info = dataset_info(args.path, trusted=args.trusted)
    _emit(args, info, _format_info)
    return EXIT_OK


# ---------------------------------------------------------------- show


def _describe(backend_name: str, options: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """The backend's one-line description of a stored array (a generic one if unavailable)."""
    from .backends.base import describe_entry
    from .plugins import backend_class

    try:
        return backend_class(backend_name)(**options).describe(entry)
    except Exception as exc:
        logger.info("backend %r cannot describe %s: %s", backend_name, entry.get("path"), exc)
    try:
        return describe_entry(entry, backend_name) + " [backend not available]"
    except Exception as exc:
        return f"unreadable entry {dict(entry)!r}: {exc}"


def item_detail(
    path: str | os.PathLike[str], item: str, *, trusted: bool = False
) -> dict[str, Any]:
    """Describe item ``item`` of the DataSet at ``path`` without loading it (``show --json``).

    Returns ``{"path", "dataset", "name", "kind", "format", "file", "size",
    "generation", "backend", "options", "metadata", "metadata_available",
    "arrays": [{"key",
    "description", "shape", "dtype", "path"}], "source", "source_line"}``.
    Raises :class:`CommandError` if there is no such DataSet or key.

    Example:
        >>> import tempfile, numpy as np, persist_hooks as ph
        >>> tmp = tempfile.mkdtemp()
        >>> ph.DataSet("d", "w", path=tmp, array_threshold=10).x = [np.arange(100), 2]
        >>> d = item_detail(f"{tmp}/d", "x")
        >>> d["source"], d["arrays"][0]["description"]
        ("x = [_arrays['array_0'], 2]\\n", 'int64 array of shape (100,), 800 B, in x_data/g1_0.npy (npy)')
    """
    root = _dataset_root(os.fspath(path))
    keys, metadata = _read_keys_and_metadata(root, trusted)
    py = root / f"{item}.py"
    has_file = item.isidentifier() and py.is_file()
    if item not in keys and not has_file:
        raise CommandError(f"DataSet {root} has no item {item!r}")
    detail: dict[str, Any] = {
        "path": str(root),
        "dataset": root.name,
        "name": item,
        "kind": "metadata",
        "format": None,
        "file": None,
        "size": None,
        "generation": None,
        "backend": None,
        "options": None,
        "metadata": None
        if metadata is None
        else _metadata_summary(metadata.get(item), _METADATA_JSON_WIDTH),
        "metadata_available": metadata is not None,
        "arrays": [],
        "source": None,
        "source_line": None,
    }
    if not has_file:
        return detail
    fmt_name, header, body_line, text = _item_header(py)
    detail.update(
        kind="item" if item in keys else "unlisted",
        format=fmt_name,
        file=py.name,
        size=_disk_size(py) + sum(_disk_size(p) for p in _data_paths(root, item, fmt_name, header)),
    )
    if header is None:
        detail.update(source=text, source_line=1)
        return detail
    from . import _format as fmt

    parsed = fmt.parse_item(text, str(py))
    backend = header.get("backend")
    options = header.get("options") if isinstance(header.get("options"), dict) else {}
    generation = header.get("generation")
    detail.update(
        generation=generation if isinstance(generation, int) else None,
        backend=backend if isinstance(backend, str) else None,
        options=options,
        source=None if parsed is None else parsed.body,
        source_line=body_line,
    )
    for key, entry in _header_arrays(header).items():
        entry = entry if isinstance(entry, dict) else {}
        detail["arrays"].append(
            {
                "key": key,
                "description": _describe(str(backend), options or {}, entry),
                "shape": entry.get("shape"),
                "dtype": entry.get("dtype"),
                "path": entry.get("path"),
            }
        )
    return detail


def _format_detail(d: Mapping[str, Any]) -> str:
    lines = [f"{d['kind'].capitalize()} {d['name']!r} of DataSet {d['dataset']} at {d['path']}"]
    fields: list[tuple[str, str]] = []
    if d["file"] is not None:
        gen = "" if d["generation"] is None else f", generation {d['generation']}"
        fields.append(("file", f"{d['file']} ({d['format']}{gen})"))
        fields.append(("size", f"{_human(d['size'])} on disk, data included"))
    if d["arrays"]:
        opts = f" {json.dumps(d['options'])}" if d["options"] else ""
        fields.append(("backend", f"{d['backend']}{opts}"))
    if not d["metadata_available"]:
        fields.append(("metadata", "? (not readable safely; see --trusted)"))
    else:
        fields.append(("metadata", "-" if d["metadata"] is None else d["metadata"]))
    width = max(len(k) for k, _ in fields)
    lines += [f"{k.ljust(width)}  {v}" for k, v in fields]
    if d["file"] is None:
        lines.append("(metadata only: no item file)")
        return "\n".join(lines)
    if d["arrays"]:
        lines.append(f"arrays ({len(d['arrays'])}):")
        kw = max(len(a["key"]) for a in d["arrays"])
        lines += [f"  {a['key'].ljust(kw)}  {a['description']}" for a in d["arrays"]]
    else:
        lines.append("arrays: none (everything is in the source)")
    if d["format"] == "persist_hooks":
        lines.append(f"source (archive body, from line {d['source_line']} of {d['file']}):")
    else:
        lines.append(f"source (the whole of {d['file']}; it is run as plain Python):")
    source = d["source"] or ""
    lines += [f"    {line}" if line else "" for line in source.rstrip("\n").split("\n")]
    return "\n".join(lines)


def _cmd_show(args: argparse.Namespace) -> int:
    detail = item_detail(args.path, args.item, trusted=args.trusted)
    _emit(args, detail, _format_detail)
    return EXIT_OK


# ---------------------------------------------------------------- verify


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify

    root = _dataset_root(args.path)
    logger.info("verifying %s%s", root, " (repairing)" if args.repair else "")
    report = verify(
        root,
        repair=args.repair,
        trusted=args.trusted,
        timeout=args.timeout,
        safe_callables=args.safe_callable,
        quick=args.quick,
    )
    if args.json:
        print(report.to_json())
    else:
        print(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


# ---------------------------------------------------------------- convert


def _parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON if it parses, else as a string.

    Example:
        >>> _parse_option("compression=gzip"), _parse_option("level=3")
        (('compression', 'gzip'), ('level', 3))
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--option needs KEY=VALUE, not {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


def _cmd_convert(args: argparse.Namespace) -> int:
    from . import plugins
    from .convert import convert

    root = _dataset_root(args.path)
    installed = plugins.backends()
    if args.backend not in installed:
        try:
            plugins.backend_class(args.backend)
        except Exception as exc:
            raise UsageError(str(exc)) from None
    options = dict(_parse_option(o) for o in args.option) if args.option else None
    if options:
        try:
            plugins.backend_class(args.backend)(**options)  # unknown or invalid options
        except Exception as exc:
            raise UsageError(str(exc)) from None
    logger.info("converting %s to backend %s", root, args.backend)
    try:
        done = convert(root, args.backend, options=options, items=args.items, timeout=args.timeout)
    except KeyError as exc:
        raise CommandError(str(exc.args[0]) if exc.args else str(exc)) from exc
    if done:
        print(f"converted {len(done)} item(s) of {root} to {args.backend}: {', '.join(done)}")
    else:
        print(
            f"nothing to convert in {root}: no selected item has arrays stored otherwise than "
            f"by {args.backend} with these options"
        )
    return EXIT_OK


# ---------------------------------------------------------------- plugins


def _version(distribution: str | None) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    if not distribution:
        return None
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _plugin_distribution(
    name: str, plugin: object, by_entry_point: Mapping[str, str]
) -> str | None:
    """The distribution that provides ``plugin``: its entry point's, else its top-level package's."""
    if name in by_entry_point:
        return by_entry_point[name]
    module = getattr(plugin, "__name__", None) if isinstance(plugin, types.ModuleType) else None
    module = module or type(plugin).__module__
    top = module.split(".")[0]
    if top == "persist_hooks":
        return "persist-hooks"
    from importlib.metadata import packages_distributions

    dists = packages_distributions().get(top)
    return dists[0] if dists else None


def _type_name(key: type | str) -> str:
    return key if isinstance(key, str) else f"{key.__module__}.{key.__qualname__}"


def plugins_report() -> dict[str, Any]:
    """Installed plugins, representers and backends (``plugins --json``).

    Returns ``{"plugins": [{"name", "distribution", "version", "representers",
    "backends"}], "backends": [{"name", "plugin", "class", "distribution",
    "version"}], "not_installed": [{"name", "distribution"}]}``; representers
    are type names (``"module.QualName"``), each under the plugin that wins it.

    Example:
        >>> report = plugins_report()
        >>> [b["name"] for b in report["backends"]][:1] == sorted(b["name"] for b in report["backends"])[:1]
        True
        >>> "builtins.list" in report["plugins"][0]["representers"]
        True
    """
    from importlib.metadata import entry_points

    from . import hookspecs, plugins

    pm = plugins.plugin_manager()
    by_ep: dict[str, str] = {}
    for ep in entry_points(group=hookspecs.PROJECT):
        if ep.dist is not None:
            by_ep.setdefault(ep.name, ep.dist.name)
    reps: dict[str, list[str]] = {}
    for key, plugin_name in plugins.representers().items():
        reps.setdefault(plugin_name, []).append(_type_name(key))
    backend_plugin: dict[str, tuple[str, type]] = {}
    for impl in pm.hook.persist_hooks_backends.get_hookimpls():  # registration order
        try:
            classes: list[Any] = list(cast("Iterable[Any]", impl.function()))
        except Exception as exc:
            logger.warning("plugin %s: persist_hooks_backends() failed: %s", impl.plugin_name, exc)
            continue
        for cls in classes:
            backend_plugin[cls.name] = (impl.plugin_name, cls)  # later registrations win
    installed = set(plugins.backends())
    out_plugins = []
    for name, plugin in pm.list_name_plugin():
        dist = _plugin_distribution(name, plugin, by_ep)
        out_plugins.append(
            {
                "name": name,
                "distribution": dist,
                "version": _version(dist),
                "representers": sorted(reps.get(name, [])),
                "backends": sorted(b for b, (p, _) in backend_plugin.items() if p == name),
            }
        )
    out_backends = []
    for bname in sorted(installed):
        pname, cls = backend_plugin.get(bname, (None, plugins.backend_class(bname)))
        dist = getattr(cls, "distribution", None)
        out_backends.append(
            {
                "name": bname,
                "plugin": pname,
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "distribution": dist,
                "version": _version(dist),
            }
        )
    missing = [
        {"name": n, "distribution": d}
        for n, d in sorted(plugins.KNOWN_BACKEND_DISTRIBUTIONS.items())
        if n not in installed
    ]
    return {"plugins": out_plugins, "backends": out_backends, "not_installed": missing}


def _wrap(names: Sequence[str], indent: str = "    ", width: int = 100) -> list[str]:
    return textwrap.wrap(
        ", ".join(names),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _format_plugins(report: Mapping[str, Any]) -> str:
    lines = ["Plugins (in registration order; later ones override earlier ones):"]
    rows = [
        [
            p["name"],
            p["distribution"] or "-",
            p["version"] or "-",
            str(len(p["representers"])),
            ", ".join(p["backends"]) or "-",
        ]
        for p in report["plugins"]
    ]
    lines.append(
        _table(["PLUGIN", "DISTRIBUTION", "VERSION", "REPRESENTERS", "BACKENDS"], rows, right=[3])
    )
    lines.append("")
    lines.append("Storage backends:")
    rows = [
        [b["name"], b["distribution"] or "-", b["version"] or "-", b["plugin"] or "-", b["class"]]
        for b in report["backends"]
    ]
    lines.append(_table(["BACKEND", "DISTRIBUTION", "VERSION", "PLUGIN", "CLASS"], rows))
    for m in report["not_installed"]:
        lines.append(f"(backend {m['name']!r} is not installed: pip install {m['distribution']})")
    lines.append("")
    lines.append("Representers by plugin:")
    for p in report["plugins"]:
        if not p["representers"]:
            continue
        lines.append(f"  {p['name']} ({len(p['representers'])} types):")
        lines += _wrap(p["representers"])
    return "\n".join(lines)


def _cmd_plugins(args: argparse.Namespace) -> int:
    _emit(args, plugins_report(), _format_plugins)
    return EXIT_OK


# ---------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main([args.dir] if args.dir else [])


# ---------------------------------------------------------------- parser and main


def _emit(args: argparse.Namespace, data: Any, formatter: Callable[[Any], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        print(formatter(data))


def _add_common(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """``-v`` and ``--debug``, accepted before and after the subcommand."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if sub else 0,
        help="log more (INFO; -vv: DEBUG) from the persist_hooks logger to stderr",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="show the traceback of errors (and DEBUG logging)",
    )


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser of the ``persist-hooks`` command.

    Example:
        >>> args = build_parser().parse_args(["verify", "data/mydata", "--repair"])
        >>> args.command, args.repair, args.json
        ('verify', True, False)
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Inspect, check and convert persist_hooks DataSets.",
        epilog="Exit status: 0 ok, 1 problems found, 2 usage error. See docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser, sub=False)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = subs.add_parser(name, help=help_text, description=help_text)
        _add_common(p, sub=True)
        p.set_defaults(func=func)
        return p

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON (keys in docs/cli.md)")

    def trusted_flag(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--trusted", action="store_true", help=what)

    p = add(
        "info", "list a DataSet's keys, backends, sizes and metadata (loads no item)", _cmd_info
    )
    p.add_argument("path", metavar="PATH", help="the DataSet directory")
    json_flag(p)
    trusted_flag(p, "run __init__.py to read metadata the safe loader refuses")

    p = add("show", "show an item's archive source, arrays and metadata (loads nothing)", _cmd_show)
    p.add_argument("path", metavar="PATH", help="the DataSet directory")
    p.add_argument("item", metavar="ITEM", help="the item's name")
    json_flag(p)
    trusted_flag(p, "run __init__.py to read metadata the safe loader refuses")

    p = add("verify", "check a DataSet for damage; --repair removes leftovers", _cmd_verify)
    p.add_argument("path", metavar="PATH", help="the DataSet directory")
    p.add_argument(
        "--repair",
        action="store_true",
        help="remove orphaned data and temporaries (takes the lock)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the lock")
    p.add_argument(
        "--quick",
        action="store_true",
        help="open every array and check shape and dtype, but read no data (no checksums)",
    )
    p.add_argument(
        "--safe-callable",
        action="append",
        default=[],
        metavar="DOTTED.NAME",
        help="a callable items may call when checked without trusting them (repeatable), "
        "e.g. your own classes",
    )
    json_flag(p)
    trusted_flag(p, "allow running a hand-written __init__.py to learn its keys")

    p = add("convert", "rewrite a DataSet's arrays with another storage backend", _cmd_convert)
    p.add_argument("path", metavar="PATH", help="the DataSet directory")
    p.add_argument("--backend", required=True, metavar="NAME", help="npy, hdf5, zarr, ...")
    p.add_argument("--items", nargs="+", metavar="ITEM", help="convert only these items")
    p.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="backend option (VALUE read as JSON if it parses); repeatable",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the lock")

    p = add("plugins", "list installed plugins, representers and storage backends", _cmd_plugins)
    json_flag(p)

    p = add("demo", "run the README's demo", _cmd_demo)
    p.add_argument("dir", metavar="DIR", nargs="?", help="where to write the demo DataSet")
    return parser


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    from .errors import ArchiveError

    if not isinstance(exc, CommandError | ArchiveError | OSError | ValueError | KeyError):
        text = f"{type(exc).__name__}: {text}"
    return text


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Run the ``persist-hooks`` command with ``argv`` (default ``sys.argv[1:]``); return its status.

    Example:
        >>> main(["plugins", "--json"])  # doctest: +SKIP
        0
    """
    parser = build_parser(prog)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: a command is required (see {prog} --help)", file=sys.stderr)
        return EXIT_USAGE
    log = logging.getLogger("persist_hooks")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prog}: %(levelname)s: %(name)s: %(message)s"))
    old_level = log.level
    log.addHandler(handler)
    verbosity = 2 if args.debug else args.verbose
    log.setLevel(max(logging.DEBUG, logging.WARNING - 10 * verbosity))
    try:
        status: int = args.func(args)
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `persist-hooks info d | head -1`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PROBLEMS
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        code = exc.exit_code if isinstance(exc, CommandError) else EXIT_PROBLEMS
        if code == EXIT_USAGE:
            print(f"{prog} {args.command}: error: {_error_line(exc)}", file=sys.stderr)
        else:
            print(f"{prog}: error: {_error_line(exc)}", file=sys.stderr)
        return code
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)

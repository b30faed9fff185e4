"""Text of DataSet files (format 1, see docs/format.md): render and parse, no I/O.

Item files ``<name>.py`` carry a JSON header on line 2 and the archive body
between ``# persist_hooks: begin`` / ``# persist_hooks: end``; ``__init__.py``
holds one block per key between ``_info_dict = {}`` and ``# -- end of keys``,
followed by a plain-Python footer.  Files without this structure (persist 3.x,
hand-written) are *foreign*: the parsers return ``None`` and the caller runs
them whole, as plain Python would.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ._jsonlit import to_json, to_json_many
from .errors import FormatError

__all__ = [
    "BEGIN",
    "END",
    "END_OF_KEYS",
    "FORMAT",
    "GENERATION_RE",
    "HEADER_PREFIX",
    "INIT_FOOTER",
    "KEY_PREFIX",
    "MARKER_TEXT",
    "ComputedInfo",
    "DataRun",
    "InitLayout",
    "ItemText",
    "block_literal",
    "block_runs",
    "data_names",
    "find_key_block",
    "init_keys",
    "is_kept",
    "item_keys",
    "item_order",
    "make_header",
    "marker_format",
    "padded",
    "parse_init",
    "parse_item",
    "remove_key_block",
    "render_init",
    "render_item",
    "render_key_block",
    "set_key_block",
    "static_info_keys",
]

FORMAT = 1
"""The on-disk format version this module reads and writes."""

MARKER_TEXT = f"persist_hooks DataSet format {FORMAT}\n"
"""Content of ``_this_dir_is_a_DataSet`` (persist 3.x left it empty)."""

HEADER_PREFIX = "# persist_hooks: "
BEGIN = "# persist_hooks: begin"
END = "# persist_hooks: end"
INFO_START = "_info_dict = {}"
KEY_PREFIX = "# -- key: "
END_OF_KEYS = "# -- end of keys"

INIT_FOOTER = """\
# -- plain-Python access to the items (persist_hooks' import hook does its own) --
def _add_items(info):
    # item files without a block above (copied in by hand) are keys too, after the others
    import os
    try:
        listing = os.listdir(os.path.dirname(os.path.abspath(__file__)))
    except OSError:  # not a directory (a zip file): only the keys above
        listing = []
    names = [n[:-3] for n in listing if n.endswith('.py') and not n.startswith('_')
             and n[:-3].isidentifier() and n[:-3] not in info]

    def order(n):  # a trailing number counts as a number: x_2 before x_10
        stem = n.rstrip('0123456789')
        return stem, len(n) - len(stem), n

    for name in sorted(names, key=order):
        info[name] = None


_add_items(_info_dict)
del _add_items


def __getattr__(name):
    import importlib
    import os
    if not name.startswith('_') and os.path.isfile(
            os.path.join(os.path.dirname(__file__), name + '.py')):
        return importlib.import_module(__name__ + '.' + name)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


def __dir__():
    return sorted(set(globals()) | set(_info_dict))
"""
"""Footer of ``__init__.py`` for plain Python: item files without a block become keys,
items import lazily (PEP 562).  persist_hooks' readers do both themselves."""

def item_order(name: str) -> tuple[str, int, str]:
    """Sort key of item files without a key block: by name, a trailing number as a number.

    The footer of ``__init__.py`` orders them the same way for plain Python.

    Example:
        >>> sorted(["x_10", "b", "x_2", "a1"], key=item_order)
        ['a1', 'b', 'x_2', 'x_10']
    """
    stem = name.rstrip("0123456789")
    return stem, len(name) - len(stem), name


def item_keys(listing: Iterable[str]) -> list[str]:
    """Item names among a DataSet directory's file names (``<name>.py``).

    Example:
        >>> sorted(item_keys(["__init__.py", "x_1.py", "x_data", "_hidden.py", "a-b.py"]))
        ['x_1']
    """
    return [
        n[:-3]
        for n in listing
        if n.endswith(".py") and not n.startswith("_") and n[:-3].isidentifier()
    ]


STANDARD_FOOTERS = frozenset(
    {
        INIT_FOOTER,
        # written before items without metadata stopped getting a block
        INIT_FOOTER[: INIT_FOOTER.index("def _add_items")]
        + INIT_FOOTER[INIT_FOOTER.index("def __getattr__") :],
    }
)
"""Footers persist_hooks wrote; a reader need not run them (anything else it runs)."""

_KEY_RE = re.compile(r"^# -- key: (.*)$", re.MULTILINE)
_MARKER_RE = re.compile(r"^persist_hooks DataSet format (\d+)\s*$")


def _doc_repr(value: str) -> str:
    """``repr`` that is safe inside a triple-double-quoted docstring."""
    return repr(value).replace('"', '\\"')


def marker_format(text: str) -> int | None:
    """The format number recorded in a marker file's text (``None``: persist 3.x, empty).

    Raises :class:`persist_hooks.FormatError` for text that is not a marker.

    Example:
        >>> marker_format(MARKER_TEXT), marker_format("")
        (1, None)
    """
    if not text.strip():
        return None
    match = _MARKER_RE.match(text.strip())
    if match is None:
        raise FormatError(f"unrecognised DataSet marker text {text[:80]!r}")
    return int(match.group(1))


def padded(body: str, first_line: int) -> str:
    """``body`` preceded by newlines so that, compiled, its lines keep their file line numbers.

    Example:
        >>> padded("x = 1\\n", 3)
        '\\n\\nx = 1\\n'
    """
    return "\n" * (first_line - 1) + body


# ---------------------------------------------------------------- item files


def make_header(
    *,
    generation: int,
    backend: str,
    options: Mapping[str, Any],
    arrays: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The JSON header of an item file, keys in the documented order.

    Example:
        >>> make_header(generation=1, backend="npy", options={}, arrays={})
        {'format': 1, 'generation': 1, 'backend': 'npy', 'options': {}, 'arrays': {}}
    """
    return {
        "format": FORMAT,
        "generation": generation,
        "backend": backend,
        "options": dict(options),
        "arrays": {key: dict(entry) for key, entry in arrays.items()},
    }


def render_item(
    name: str, dataset: str, body: str, *, header: Mapping[str, Any], loader: str = ""
) -> str:
    """The text of item file ``<name>.py``.

    ``body`` is archive source binding ``name`` (it may use ``_arrays``);
    ``loader`` is the backend's plain-Python source binding ``_arrays`` (empty
    when the item has no external arrays).

    Example:
        >>> h = make_header(generation=1, backend="npy", options={}, arrays={})
        >>> print(render_item("x", "mydata", "x = [1, 2]\\n", header=h))
        \"\"\"Item 'x' of DataSet 'mydata', written by persist_hooks (format 1).\"\"\"
        # persist_hooks: {"format": 1, "generation": 1, "backend": "npy", "options": {}, "arrays": {}}
        # persist_hooks: begin
        x = [1, 2]
        # persist_hooks: end
        import sys as _sys
        _sys.modules[__name__] = x
        <BLANKLINE>
    """
    if loader and not loader.endswith("\n"):
        loader += "\n"
    if body and not body.endswith("\n"):
        body += "\n"
    header_json = json.dumps(dict(header), ensure_ascii=True, allow_nan=False)
    return (
        f'"""Item {_doc_repr(name)} of DataSet {_doc_repr(dataset)}, '
        f'written by persist_hooks (format {FORMAT})."""\n'
        f"{HEADER_PREFIX}{header_json}\n"
        f"{loader}"
        f"{BEGIN}\n"
        f"{body}"
        f"{END}\n"
        "import sys as _sys\n"
        f"_sys.modules[__name__] = {name}\n"
    )


class ItemText(NamedTuple):
    """A parsed item file: its header, and its archive body starting at line ``body_line``.

    Example:
        >>> h = make_header(generation=2, backend="npy", options={}, arrays={})
        >>> item = parse_item(render_item("x", "d", "x = 1\\n", header=h), "x.py")
        >>> item.header["generation"], item.body, item.body_line
        (2, 'x = 1\\n', 4)
    """

    header: dict[str, Any]
    body: str
    body_line: int


def parse_item(text: str, filename: str) -> ItemText | None:
    """Parse an item file; ``None`` if it is foreign (no header on line 2 or no markers).

    A header that is present but not valid JSON of a known format raises
    :class:`persist_hooks.FormatError` naming the file and line.

    Example:
        >>> parse_item("x = 1\\nimport sys\\n", "x.py") is None
        True
    """
    eol1 = text.find("\n")
    if eol1 < 0:
        return None
    eol2 = text.find("\n", eol1 + 1)
    line2 = text[eol1 + 1 : eol2 if eol2 >= 0 else len(text)]
    if not line2.startswith(HEADER_PREFIX + "{"):
        return None
    try:
        header = json.loads(line2[len(HEADER_PREFIX) :])
    except ValueError as exc:
        raise FormatError(f"{filename}, line 2: invalid persist_hooks header: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays", {}), dict):
        raise FormatError(f"{filename}, line 2: the persist_hooks header must be a JSON object")
    fmt = header.get("format")
    if fmt != FORMAT:
        raise FormatError(
            f"{filename}, line 2: item written in format {fmt!r}; this persist_hooks reads "
            f"format {FORMAT} (upgrade persist_hooks to read newer formats)"
        )
    begin = text.find(f"\n{BEGIN}\n", eol2)
    if begin < 0:
        return None
    body_start = begin + len(BEGIN) + 2
    end = text.rfind(f"\n{END}\n", body_start - 1)
    if end < 0:
        if not text.endswith(f"\n{END}"):
            return None
        end = len(text) - len(END) - 1
    body = text[body_start : end + 1]
    return ItemText(header, body, text.count("\n", 0, body_start) + 1)


# ---------------------------------------------------------------- __init__.py


def render_key_block(name: str, assignment: str | None) -> str:
    """The ``__init__.py`` block of key ``name``.

    ``assignment`` is flat source assigning the metadata to
    ``_info_dict['<name>']`` (``None``: the key has no metadata).

    Example:
        >>> print(render_key_block("x", None), end="")
        # -- key: x
        _info_dict['x'] = None
    """
    if "\n" in name or not name:
        raise ValueError(f"invalid key {name!r}")
    if assignment is None:
        assignment = f"_info_dict[{name!r}] = None\n"
    elif not assignment.endswith("\n"):
        assignment += "\n"
    return f"{KEY_PREFIX}{name}\n{assignment}"


def render_init(dataset: str, blocks: Iterable[str] = ()) -> str:
    """The text of ``__init__.py`` with the given key blocks, in order.

    Example:
        >>> text = render_init("mydata", [render_key_block("x", None)])
        >>> print(text[: text.index("# -- plain")], end="")
        \"\"\"DataSet 'mydata' written by persist_hooks (format 1); see docs/format.md.\"\"\"
        _info_dict = {}
        # -- key: x
        _info_dict['x'] = None
        # -- end of keys
    """
    return (
        f'"""DataSet {_doc_repr(dataset)} written by persist_hooks (format {FORMAT}); '
        'see docs/format.md."""\n'
        f"{INFO_START}\n" + "".join(blocks) + f"{END_OF_KEYS}\n" + INIT_FOOTER
    )


class InitLayout(NamedTuple):
    """Where the key blocks of a structured ``__init__.py`` are.

    ``blocks_start`` is the offset of the first block (just after
    ``_info_dict = {}``), ``blocks_end`` that of the ``# -- end of keys`` line;
    ``first_line`` is the line number of ``_info_dict = {}``.

    Example:
        >>> text = render_init("d", [render_key_block("x", None)])
        >>> lay = parse_init(text)
        >>> text[lay.blocks_start : lay.blocks_end]
        "# -- key: x\\n_info_dict['x'] = None\\n"
    """

    info_start: int
    blocks_start: int
    blocks_end: int
    first_line: int

    def blocks_source(self, text: str) -> str:
        """The source from ``_info_dict = {}`` through the last block (for safe evaluation).

        Example:
            >>> text = render_init("d")
            >>> parse_init(text).blocks_source(text)
            '_info_dict = {}\\n'
        """
        return text[self.info_start : self.blocks_end]


def parse_init(text: str) -> InitLayout | None:
    """Locate the key blocks of ``__init__.py``; ``None`` if it lacks the block structure.

    Example:
        >>> parse_init("_info_dict = {'x': 1}\\n") is None
        True
    """
    start = f"\n{INFO_START}\n"
    info = text.find(start)
    if info < 0:
        if not text.startswith(start[1:]):
            return None
        info = -1
    blocks_start = info + len(start)
    end = text.find(f"\n{END_OF_KEYS}\n", blocks_start - 1)
    if end < 0:
        return None
    return InitLayout(info + 1, blocks_start, end + 1, text.count("\n", 0, info + 1) + 1)


def _layout(text: str) -> InitLayout:
    layout = parse_init(text)
    if layout is None:
        raise ValueError("__init__.py text has no key-block structure; render it anew")
    return layout


def init_keys(text: str) -> list[str] | None:
    """The keys with a block in ``__init__.py``, in file order (``None``: not structured).

    Example:
        >>> init_keys(render_init("d", [render_key_block("b", None), render_key_block("a", None)]))
        ['b', 'a']
    """
    layout = parse_init(text)
    if layout is None:
        return None
    return _KEY_RE.findall(text, layout.blocks_start, layout.blocks_end)


_VALUE_BLOCK_RE = re.compile(r"# -- key: ([^\W\d]\w*)\n_info_dict\['\1'\] = ([^\n]*)\n")


class DataRun(NamedTuple):
    """Consecutive key blocks whose metadata are JSON-compatible literals (see ``_jsonlit``).

    ``source`` is a JSON array of their values (readers decode it instead of
    compiling the blocks); ``values`` holds them decoded once already.
    """

    keys: list[str]
    source: str
    values: list[Any]


def block_runs(text: str, layout: InitLayout) -> list[tuple[int, int, DataRun | None]]:
    """Split the key blocks into runs ``(start, end, data)``.

    ``data`` is a :class:`DataRun` for a run of one-line blocks that assign
    literals of the Python/JSON common subset (``None`` included: keys without
    metadata), which readers decode instead of compiling; it is ``None`` for a
    run of other blocks (or of hand-written lines), which must be executed.

    Example:
        >>> blocks = [render_key_block("a", None), render_key_block("b", "_info_dict['b'] = f(1)"),
        ...           render_key_block("c", '_info_dict[\\'c\\'] = {"n": True}'),
        ...           render_key_block("d", None)]
        >>> text = render_init("d", blocks)
        >>> for s, e, data in block_runs(text, parse_init(text)):
        ...     print(text[s:e].count("\\n"), data and (data.keys, data.source, data.values))
        2 (['a'], '[null]', [None])
        2 None
        4 (['c', 'd'], '[{"n": true},null]', [{'n': True}, None])
    """
    # one-line blocks assigning a value, and the rest as code: (start, end, key, value)
    blocks: list[tuple[int, int, str | None, str | None]] = []
    match_block = _VALUE_BLOCK_RE.match
    pos, end = layout.blocks_start, layout.blocks_end
    while pos < end:
        match = match_block(text, pos, end)
        if match is not None:
            stop = match.end()
            blocks.append((pos, stop, match.group(1), match.group(2)))
        else:
            nxt = text.find(f"\n{KEY_PREFIX}", pos, end)
            stop = end if nxt < 0 else nxt + 1
            blocks.append((pos, stop, None, None))
        pos = stop
    decoded = iter(to_json_many([v for _, _, _, v in blocks if v is not None]))
    runs: list[tuple[int, int, DataRun | None]] = []
    run_start = run_stop = 0
    keys: list[str] = []
    sources: list[str] = []
    values: list[Any] = []
    code = False  # the current run is code (else data, if it has keys)

    def flush() -> None:
        if code:
            runs.append((run_start, run_stop, None))
        elif keys:
            runs.append((run_start, run_stop, DataRun(keys, "[" + ",".join(sources) + "]", values)))

    for start, stop, key, value in blocks:
        found = next(decoded) if value is not None else None
        if key is None or found is None:
            if not code:
                flush()
                keys, sources, values, code, run_start = [], [], [], True, start
        elif code or not keys:
            flush()
            keys, sources, values, code, run_start = [key], [found[0]], [found[1]], False, start
        else:
            keys.append(key)
            sources.append(found[0])
            values.append(found[1])
        run_stop = stop
    flush()
    return runs


def block_literal(block: str) -> tuple[Any] | None:
    """``(value,)`` if ``block`` is one key block assigning a Python/JSON literal, else ``None``.

    Example:
        >>> block_literal(render_key_block("x", "_info_dict['x'] = [1, True]"))
        ([1, True],)
        >>> block_literal(render_key_block("x", "_info_dict['x'] = (1,)")) is None
        True
    """
    match = _VALUE_BLOCK_RE.fullmatch(block)
    found = None if match is None else to_json(match.group(2))
    return None if found is None else (found[1],)


def find_key_block(text: str, name: str) -> tuple[int, int] | None:
    """The ``(start, end)`` offsets of key ``name``'s block, or ``None`` if it has none.

    Raises ``ValueError`` when ``text`` lacks the block structure.  Costs one
    search of the text, whatever the number of keys.

    Example:
        >>> text = render_init("d", [render_key_block("x", None)])
        >>> start, end = find_key_block(text, "x"); text[start:end]
        "# -- key: x\\n_info_dict['x'] = None\\n"
    """
    layout = _layout(text)
    needle = f"\n{KEY_PREFIX}{name}\n"
    pos = text.find(needle, layout.blocks_start - 1, layout.blocks_end)
    if pos < 0:
        return None
    start = pos + 1
    nxt = text.find(f"\n{KEY_PREFIX}", start + len(needle) - 2, layout.blocks_end)
    end = layout.blocks_end if nxt < 0 else nxt + 1
    return start, end


def set_key_block(text: str, name: str, block: str) -> str:
    """Replace key ``name``'s block by ``block`` (appending it if the key is new).

    Other blocks are copied as text, never re-generated.

    Example:
        >>> text = render_init("d", [render_key_block("x", None)])
        >>> text = set_key_block(text, "x", render_key_block("x", "_info_dict['x'] = 1"))
        >>> text = set_key_block(text, "y", render_key_block("y", None))
        >>> init_keys(text), "_info_dict['x'] = 1" in text
        (['x', 'y'], True)
    """
    span = find_key_block(text, name)
    if span is None:
        end = _layout(text).blocks_end
        return text[:end] + block + text[end:]
    start, end = span
    return text[:start] + block + text[end:]


def remove_key_block(text: str, name: str) -> str:
    """``text`` without key ``name``'s block (unchanged if it has none).

    Example:
        >>> text = render_init("d", [render_key_block("x", None)])
        >>> init_keys(remove_key_block(text, "x"))
        []
    """
    span = find_key_block(text, name)
    if span is None:
        return text
    start, end = span
    return text[:start] + text[end:]


class ComputedInfo(Exception):
    """``_info_dict`` is computed (persist 3.x writes ``_info_dict = _info_dict()``).

    Example:
        >>> issubclass(ComputedInfo, Exception)
        True
    """


def static_info_keys(tree: ast.Module) -> list[str] | None:
    """Keys of a hand-written ``__init__.py`` found without running it (``None``: no dict).

    Raises :class:`ComputedInfo` when the dict is computed, so its keys cannot be
    known without running the file.

    Example:
        >>> static_info_keys(ast.parse("_info_dict = {'a': 1}\\n_info_dict['b'] = f()\\n"))
        ['a', 'b']
    """
    keys: list[str] = []
    defined = False
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == "_info_dict":
                defined = True
                if not isinstance(node.value, ast.Dict):
                    raise ComputedInfo
                keys += [
                    k.value
                    for k in node.value.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                ]
            elif (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and target.value.id == "_info_dict"
                and isinstance(target.slice, ast.Constant)
                and isinstance(target.slice.value, str)
            ):
                keys.append(target.slice.value)
    return list(dict.fromkeys(keys)) if defined else None


GENERATION_RE = re.compile(r"^g(\d+)(?:[_.]|$)")
"""Names of data files and directories written by one item write: ``g<N>`` then ``_`` or ``.``."""


def data_names(entries: Mapping[str, Any], name: str) -> set[str]:
    """Top-level names in ``<name>_data/`` that an item's array entries use.

    Example:
        >>> sorted(data_names({"a": {"path": "x_data/g2_0.npy"}, "b": {"path": "y.npy"}}, "x"))
        ['g2_0.npy']
    """
    prefix = f"{name}_data/"
    out: set[str] = set()
    for entry in entries.values():
        path = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(path, str) and path.startswith(prefix):
            out.add(path[len(prefix) :].split("/", 1)[0])
    return out


def is_kept(entry: str, keep: set[str]) -> bool:
    """Whether data directory entry ``entry`` belongs to a kept name (or is its companion).

    Example:
        >>> is_kept("g2_0.npy.attrs.json", {"g2_0.npy"}), is_kept("g1_0.npy", {"g2_0.npy"})
        (True, False)
    """
    return entry in keep or any(entry.startswith(k + ".") for k in keep)

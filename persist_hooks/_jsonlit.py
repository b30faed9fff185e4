"""Python literals that are also JSON: written by DataSets for metadata, read back by ``json``.

Compiling a Python statement costs about 15 us, decoding the same literal with
the C JSON scanner about 1 us, so ``__init__.py`` metadata that is plain data
(dicts with ``str`` keys, lists, ``str``, ``int``, finite ``float``, ``True``,
``False``, ``None``) is written in the common subset of both languages and
decoded with :mod:`json` when read.

The subset: double-quoted strings without a backslash (so no escape sequence,
whose meanings differ between the languages), numbers, ``[]``, ``{}``, and the
Python names ``True``/``False``/``None`` standing for JSON's ``true``/``false``/
``null``.  :func:`loads` accepts a text only if it is exactly one such value,
so whatever it returns is what Python would compute from the same text; for
anything else (a hand edit, a tuple, a call) it returns ``NOT_JSON`` and the
caller compiles the text as Python.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

__all__ = ["NOT_JSON", "dumps", "loads", "to_json", "to_json_many"]

NOT_JSON: Final = object()
"""Returned by :func:`loads` for a text outside the common subset."""

_MAX_DEPTH = 32
_PY_NAMES = re.compile(r"\b(?:True|False|None)\b")
_TO_JSON = {"True": "true", "False": "false", "None": "null"}
_JSON_NAMES = re.compile(r"\b(?:true|false|null)\b")
_TO_PY = {"true": "True", "false": "False", "null": "None"}
_JSON_ONLY = re.compile(r"[a-df-zA-DF-Z_]")  # letters other than e/E outside strings: names
_decoder = json.JSONDecoder(parse_constant=lambda name: _refuse(name))
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]


def _to_json_name(match: re.Match[str]) -> str:
    return _TO_JSON[match.group()]


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a Python literal")


def _plain(value: Any, depth: int, seen: set[int]) -> bool:
    """Whether ``value`` is plain data the subset writes exactly (no sharing, no cycles)."""
    cls = type(value)
    if cls is str:
        return "\\" not in value and '"' not in value
    if cls is int:
        return bool(value.bit_length() < 4000)  # far from int()'s digit limit
    if cls is bool or value is None:
        return True
    if cls is float:
        return math.isfinite(value)
    if cls is list or cls is dict:
        if depth >= _MAX_DEPTH or id(value) in seen:
            return False  # shared or cyclic: only the archive keeps identity
        seen.add(id(value))
        if cls is list:
            return all(_plain(v, depth + 1, seen) for v in value)
        return all(
            type(k) is str and _plain(k, depth, seen) and _plain(v, depth + 1, seen)
            for k, v in value.items()
        )
    return False


def _outside_strings(text: str, pattern: re.Pattern[str], table: dict[str, str]) -> str:
    """Replace ``pattern`` by ``table`` in the parts of ``text`` outside double quotes."""
    parts = text.split('"')
    parts[::2] = [pattern.sub(lambda m: table[m.group()], p) for p in parts[::2]]
    return '"'.join(parts)


def dumps(value: Any) -> str | None:
    """``value`` as a Python literal that is also JSON, or ``None`` if it has no such form.

    Example:
        >>> dumps({"a": [1, 2.5, True, None], "b": "text"})
        '{"a": [1, 2.5, True, None], "b": "text"}'
        >>> dumps((1, 2)) is None, dumps("a\\\\b") is None
        (True, True)
    """
    if not _plain(value, 0, set()):
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # a lone surrogate cannot be written to a source file
    except (ValueError, UnicodeEncodeError):
        return None
    if "\\" in text:
        return None  # an escaped control character: keep to the archive's repr
    return _outside_strings(text, _JSON_NAMES, _TO_PY)


def to_json(text: str) -> tuple[str, Any] | None:
    """``(json_source, value)`` if ``text`` is one literal of the common subset, else ``None``.

    ``json_source`` is ``text`` with ``True``/``False``/``None`` spelled the JSON
    way: a JSON array of several such sources decodes to the list of their values.

    Example:
        >>> to_json('[True, "None"]')
        ('[true, "None"]', [True, 'None'])
    """
    return to_json_many([text])[0]


def loads(text: str) -> Any:
    """The value of ``text`` if it is one literal of the common subset, else :data:`NOT_JSON`.

    Example:
        >>> loads('{"a": [1, True, None]}')
        {'a': [1, True, None]}
        >>> loads("(1, 2)") is NOT_JSON, loads('"a" "b"') is NOT_JSON, loads("null") is NOT_JSON
        (True, True, True)
    """
    found = to_json(text)
    return NOT_JSON if found is None else found[1]


def to_json_many(texts: list[str]) -> list[tuple[str, Any] | None]:
    """:func:`to_json` of each text, in one pass over all of them (about 1 us per text).

    Example:
        >>> to_json_many(['{"a": None}', "f(x)", "1.5"])
        [('{"a": null}', {'a': None}), None, ('1.5', 1.5)]
    """
    pieces = [t.strip(" \t") for t in texts]
    joined = ",".join(pieces)
    parts = joined.split('"')
    outside = "\n".join(parts[::2])
    if (
        "\\" in joined
        or any(p.count('"') % 2 for p in pieces)
        or (_JSON_ONLY.search(outside) and _JSON_ONLY.search(_PY_NAMES.sub("", outside)))
    ):
        if len(texts) == 1:
            return [None]
        return [to_json(t) for t in texts]  # some text is outside the subset: one by one
    source = joined
    if _PY_NAMES.search(outside):
        # True/False/None and true/false/null have the same lengths: offsets do not move
        parts[::2] = [_PY_NAMES.sub(_to_json_name, p) for p in parts[::2]]
        source = '"'.join(parts)
    out: list[tuple[str, Any] | None] = []
    append = out.append
    start = 0
    for piece in pieces:
        stop = start + len(piece)
        try:
            value, end = _scan(source, start)
        except (StopIteration, ValueError, RecursionError):
            end = -1
        append((source[start:stop], value) if end == stop else None)
        start = stop + 1
    return out

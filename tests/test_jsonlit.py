"""The Python/JSON common subset used for DataSet metadata: whatever it decodes, Python agrees."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persist_hooks import _jsonlit
from persist_hooks._jsonlit import NOT_JSON, dumps, loads, to_json, to_json_many


def same(a: Any, b: Any) -> bool:
    """Equal with equal types all the way down (1 != 1.0 != True here), -0.0 != 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1, a) == math.copysign(1, b) and (a == b or (a != a and b != b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | safe_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(safe_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(plain)
def test_plain_data_round_trips_through_python_and_json(value: Any) -> None:
    text = dumps(value)
    if text is None:  # strings with quotes, backslashes or control characters
        return
    assert same(eval(text, {"__builtins__": {}}), value), text
    assert same(loads(text), value), text
    assert "\n" not in text


def test_what_has_no_literal_form() -> None:
    shared: list[int] = [1]
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    deep: list[Any] = [1]
    for _ in range(40):
        deep = [deep]
    for value in [
        (1, 2),
        {1: "a"},
        {"a": shared, "b": shared},  # sharing is the archive's job
        cyclic,
        math.nan,
        math.inf,
        "quote\"d",
        "back\\slash",
        "tab\there",
        "\ud800",
        1j,
        b"bytes",
        {1, 2},
        True.__class__.__mro__,
        10**5000,
        deep,
    ]:
        assert dumps(value) is None, value


class Str(str):
    pass


def test_subclasses_have_no_literal_form() -> None:
    assert dumps(Str("a")) is None and dumps({"k": Str("a")}) is None


@pytest.mark.parametrize(
    "text",
    [
        "(1, 2)",
        "null",
        "true",
        "NaN",
        "Infinity",
        "-Infinity",
        '"a" "b"',
        '"a\\/b"',
        '"\\ud83d\\ude00"',
        "[1, 2] * 2",
        "1 + 2",
        "[1, 2,]",
        "{'a': 1}",
        "1_000",
        "0x10",
        ".5",
        "1.",
        "+1",
        "01",
        "1j",
        "f(1)",
        '{"a": 1}  # comment',
        '"unclosed',
        '"tab\there"',
        "[True, true]",
        "Truex",
        "[1 2]",
        "",
    ],
)
def test_texts_outside_the_subset(text: str) -> None:
    assert loads(text) is NOT_JSON and to_json(text) is None
    assert to_json_many(["1", text, "2"]) == [("1", 1), None, ("2", 2)]


tokens = st.sampled_from(
    [
        "[", "]", "{", "}", ",", ":", " ", "1", "-", "0", "2.5", "e", "E", "+", "1e5",
        '"', '"a"', '"k"', "\\", "'", "True", "False", "None", "true", "null", "NaN",
        "(", ")", "x", "_", ".", "\t", "#",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.lists(tokens, max_size=12).map("".join), min_size=1, max_size=5))
def test_whatever_is_decoded_is_what_python_computes(texts: list[str]) -> None:
    """Soundness: a text decoded by the subset means the same in Python (or is refused)."""
    many = to_json_many(texts)
    for text, found in zip(texts, many, strict=True):
        assert found == to_json(text)
        if found is None:
            continue
        try:
            expected = eval(text, {"__builtins__": {}})
        except Exception as exc:  # pragma: no cover - a soundness bug
            raise AssertionError(f"decoded {text!r} but Python refuses it: {exc}") from exc
        assert same(found[1], expected), text
        assert same(_jsonlit.json.loads(found[0]), expected), text

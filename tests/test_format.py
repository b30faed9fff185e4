"""Tests of persist_hooks._format: the text of item files and __init__.py (docs/format.md)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persist_hooks import _format as fmt
from persist_hooks.errors import FormatError

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


def _header(**arrays: dict[str, object]) -> dict[str, object]:
    return fmt.make_header(generation=3, backend="npy", options={}, arrays=arrays)


def test_item_file_matches_the_documented_layout() -> None:
    header = _header(array_0={"path": "x_data/g3_0.npy", "shape": [1000], "dtype": "<f8"})
    loader = "_arrays = {'array_0': load('x_data/g3_0.npy')}\n"
    body = "x = [_arrays['array_0'], {'a': 1}]\n"
    text = fmt.render_item("x", "mydata", body, header=header, loader=loader)
    lines = text.splitlines()
    assert (
        lines[0] == '"""Item \'x\' of DataSet \'mydata\', written by persist_hooks (format 1)."""'
    )
    assert lines[1] == (
        '# persist_hooks: {"format": 1, "generation": 3, "backend": "npy", "options": {}, '
        '"arrays": {"array_0": {"path": "x_data/g3_0.npy", "shape": [1000], "dtype": "<f8"}}}'
    )
    assert lines[2:] == [
        loader.strip(),
        "# persist_hooks: begin",
        body.strip(),
        "# persist_hooks: end",
        "import sys as _sys",
        "_sys.modules[__name__] = x",
    ]
    item = fmt.parse_item(text, "x.py")
    assert item is not None
    assert item.header == header
    assert item.body == body
    assert item.body_line == 5
    assert text.splitlines()[item.body_line - 1] == body.strip()


def test_item_without_loader_and_unterminated_body() -> None:
    text = fmt.render_item("y", "d", "y = 1", header=_header())
    item = fmt.parse_item(text, "y.py")
    assert item is not None and item.body == "y = 1\n" and item.body_line == 4
    # a file whose end marker is its last line (no trailing newline) still parses
    cut = text[: text.index("import sys")].rstrip("\n")
    item2 = fmt.parse_item(cut, "y.py")
    assert item2 is not None and item2.body == "y = 1\n"


def test_rendered_item_runs_as_plain_python() -> None:
    text = fmt.render_item("x", "d", "x = [1, 2]\n", header=_header())
    import sys
    import types

    mod = types.ModuleType("_fmt_test_item")
    sys.modules[mod.__name__] = mod
    try:
        exec(compile(text, "x.py", "exec"), mod.__dict__)
        assert sys.modules[mod.__name__] == [1, 2]
    finally:
        del sys.modules[mod.__name__]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x = 1",
        "x = 1\ny = 2\n",
        '"""doc"""\n# other comment\n# persist_hooks: begin\nx = 1\n# persist_hooks: end\n',
        # persist 3.x item file
        "y = 5\ntry: del __builtins__, _arrays\nexcept NameError: pass\nimport sys\n"
        "sys.modules[__name__] = y",
        # header present but markers removed by hand: run whole
        '"""d"""\n# persist_hooks: {"format": 1, "arrays": {}}\nx = 1\n',
    ],
)
def test_foreign_items_parse_to_none(text: str) -> None:
    assert fmt.parse_item(text, "x.py") is None


def test_bad_headers_raise_format_error_with_file_and_line() -> None:
    with pytest.raises(FormatError, match=r"x\.py, line 2: invalid persist_hooks header"):
        fmt.parse_item('"""d"""\n# persist_hooks: {"format": 1,\n', "x.py")
    with pytest.raises(FormatError, match="format 2"):
        fmt.parse_item('"""d"""\n# persist_hooks: {"format": 2}\n', "x.py")
    with pytest.raises(FormatError, match="JSON object"):
        fmt.parse_item('"""d"""\n# persist_hooks: {"format": 1, "arrays": []}\n', "x.py")


def test_docstrings_survive_odd_dataset_names() -> None:
    text = fmt.render_item("x", 'my"""data\n', "x = 1\n", header=_header())
    compile(text, "x.py", "exec")
    init = fmt.render_init('we"""ird\\')
    compile(init, "__init__.py", "exec")
    assert fmt.parse_init(init) is not None


@given(
    body=st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30), max_size=5
    )
)
def test_item_body_roundtrip(body: list[str]) -> None:
    source = "".join(f"x = {line!r}\n" for line in body) or "x = None\n"
    text = fmt.render_item("x", "d", source, header=_header())
    item = fmt.parse_item(text, "x.py")
    assert item is not None and item.body == source
    assert json.loads(text.splitlines()[1][len(fmt.HEADER_PREFIX) :]) == item.header


def test_padded_keeps_line_numbers() -> None:
    code = compile(fmt.padded("raise ValueError\n", 7), "f.py", "exec")
    try:
        exec(code, {})
    except ValueError as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        assert tb is not None and tb.tb_lineno == 7


def test_marker_format() -> None:
    assert fmt.marker_format(fmt.MARKER_TEXT) == 1
    assert fmt.marker_format("") is None
    assert fmt.marker_format("persist_hooks DataSet format 7") == 7
    with pytest.raises(FormatError):
        fmt.marker_format("something else")


# ---------------------------------------------------------------- __init__.py


def test_init_matches_the_documented_layout() -> None:
    blocks = [
        fmt.render_key_block("x", "_info_dict['x'] = 'a list of two arrays'"),
        fmt.render_key_block("b", "_info_dict['b'] = {'units': 'm'}\n"),
    ]
    text = fmt.render_init("mydata", blocks)
    head = text[: text.index(fmt.INIT_FOOTER)]
    assert head == (
        '"""DataSet \'mydata\' written by persist_hooks (format 1); see docs/format.md."""\n'
        "_info_dict = {}\n"
        "# -- key: x\n"
        "_info_dict['x'] = 'a list of two arrays'\n"
        "# -- key: b\n"
        "_info_dict['b'] = {'units': 'm'}\n"
        "# -- end of keys\n"
    )
    ns: dict[str, object] = {"__name__": "mydata", "__file__": "/nowhere/mydata/__init__.py"}
    exec(compile(text, "__init__.py", "exec"), ns)
    assert ns["_info_dict"] == {"x": "a list of two arrays", "b": {"units": "m"}}
    assert fmt.init_keys(text) == ["x", "b"]
    layout = fmt.parse_init(text)
    assert layout is not None and layout.first_line == 2
    ns2: dict[str, object] = {}
    exec(layout.blocks_source(text), ns2)
    assert ns2["_info_dict"] == ns["_info_dict"]


def test_footer_dir_and_getattr() -> None:
    text = fmt.render_init("d", [fmt.render_key_block("x", None)])
    ns: dict[str, object] = {"__name__": "d", "__file__": "/nowhere/d/__init__.py"}
    exec(text, ns)
    assert "x" in ns["__dir__"]()  # type: ignore[operator]
    with pytest.raises(AttributeError, match="'missing'"):
        ns["__getattr__"]("missing")  # type: ignore[operator]


def test_init_without_structure_is_foreign() -> None:
    assert fmt.parse_init("_info_dict = {'x': 1}\n") is None
    assert fmt.init_keys("_info_dict = {}\n") is None  # no end-of-keys line
    assert fmt.parse_init("_info_dict = {}\n# -- end of keys\n") is not None
    with pytest.raises(ValueError, match="structure"):
        fmt.set_key_block("_info_dict = {'x': 1}\n", "x", fmt.render_key_block("x", None))


def test_block_with_temporaries_and_similar_names() -> None:
    text = fmt.render_init("d")
    multi = "_g0 = [1]\n_info_dict['ab'] = (_g0, _g0)\ndel _g0\n"
    text = fmt.set_key_block(text, "ab", fmt.render_key_block("ab", multi))
    text = fmt.set_key_block(text, "a", fmt.render_key_block("a", "_info_dict['a'] = 1"))
    text = fmt.set_key_block(text, "abc", fmt.render_key_block("abc", None))
    assert fmt.init_keys(text) == ["ab", "a", "abc"]
    text = fmt.set_key_block(text, "a", fmt.render_key_block("a", "_info_dict['a'] = 2"))
    ns: dict[str, object] = {"__name__": "d", "__file__": "/x/d/__init__.py"}
    exec(text, ns)
    assert ns["_info_dict"] == {"ab": ([1], [1]), "a": 2, "abc": None}
    text = fmt.remove_key_block(text, "ab")
    assert fmt.init_keys(text) == ["a", "abc"]
    assert fmt.remove_key_block(text, "zzz") == text
    assert fmt.find_key_block(text, "ab") is None


def test_render_key_block_rejects_bad_keys() -> None:
    with pytest.raises(ValueError):
        fmt.render_key_block("a\nb", None)
    with pytest.raises(ValueError):
        fmt.render_key_block("", None)


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["set", "remove"]), NAMES, st.integers(-5, 5)), max_size=25
    )
)
def test_block_edits_agree_with_a_dict(ops: list[tuple[str, str, int]]) -> None:
    text = fmt.render_init("d")
    model: dict[str, int] = {}
    for op, key, value in ops:
        if op == "set":
            text = fmt.set_key_block(
                text, key, fmt.render_key_block(key, f"_info_dict[{key!r}] = {value}")
            )
            model[key] = value
        else:
            text = fmt.remove_key_block(text, key)
            model.pop(key, None)
    ns: dict[str, object] = {"__name__": "d", "__file__": "/x/d/__init__.py"}
    exec(text, ns)
    assert ns["_info_dict"] == model
    assert fmt.init_keys(text) == list(model)


def test_block_replacement_keeps_other_blocks_verbatim() -> None:
    blocks = [fmt.render_key_block(f"k{i}", f"_info_dict['k{i}'] = {i}") for i in range(20000)]
    text = fmt.render_init("d", blocks)
    for i in range(100):
        text = fmt.set_key_block(
            text,
            f"k{i * 199}",
            fmt.render_key_block(f"k{i * 199}", f"_info_dict['k{i * 199}'] = -1"),
        )
    assert text.count("= -1\n") == 100

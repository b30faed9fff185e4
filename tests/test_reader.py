"""Tests of persist_hooks._reader: the lock-free, never-stale read path of DataSets."""

from __future__ import annotations

import itertools
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persist_hooks import _format as fmt
from persist_hooks import _reader
from persist_hooks._fileio import atomic_write_text
from persist_hooks._reader import (
    MARKER,
    exec_init,
    is_dataset_dir,
    item_names,
    read_info,
    read_item,
)
from persist_hooks.backends.npy import NpyBackend
from persist_hooks.backends.proxy import ArrayProxy
from persist_hooks.errors import FormatError, UnsafeArchiveError

_counter = itertools.count()


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A hand-written DataSet directory ``tmp_path/ds`` (no DataSet class involved)."""
    before = set(sys.modules)
    d = tmp_path / "ds"
    d.mkdir()
    (d / MARKER).write_text(fmt.MARKER_TEXT)
    yield d
    for name in set(sys.modules) - before:
        if name.startswith("_persist_hooks_"):
            del sys.modules[name]


def write_init(root: Path, info_src: dict[str, str | None]) -> None:
    blocks = [fmt.render_key_block(k, v) for k, v in info_src.items()]
    atomic_write_text(root / "__init__.py", fmt.render_init(root.name, blocks))


def write_item(
    root: Path, name: str, body: str, arrays: dict[str, np.ndarray] | None = None, gen: int = 1
) -> dict[str, Any]:
    backend = NpyBackend()
    entries = backend.write(root, f"{name}_data/g{gen}", arrays) if arrays else {}
    header = fmt.make_header(generation=gen, backend="npy", options={}, arrays=entries)
    loader = backend.plain_loader(entries) if entries else ""
    atomic_write_text(
        root / f"{name}.py", fmt.render_item(name, root.name, body, header=header, loader=loader)
    )
    return entries


PERSIST3_ITEM = """
def _arrays():
    import os.path, numpy
    try: dir = os.path.dirname(__file__)
    except NameError: dir = './old/x_data'
    res = {}
    for name in ['array_0']:
        filename = os.path.join(dir, 'x_data', name + ".npy")
        res[name] = numpy.asarray(numpy.load(filename))
    return res

_arrays = _arrays()
_g4 = 'a'

def x(_l_0=_arrays['array_0'],_l_1=_g4):
    return [_l_0, {_l_1: 1}]
x = x()
del _g4
try: del __builtins__, _arrays
except NameError: pass
import sys
sys.modules[__name__] = x"""

PERSIST3_INIT = """_g2 = 'x'
_g1 = 'info'

def _info_dict(_l_0=_g2,_l_1=_g1):
    from builtins import dict
    return dict([(_l_0, _l_1), ('y', None)])
_info_dict = _info_dict()
del _g2, _g1
try: del __builtins__, _arrays
except NameError: pass
"""


def test_is_dataset_dir(root: Path, tmp_path: Path) -> None:
    assert is_dataset_dir(root)
    assert is_dataset_dir(str(root))
    assert not is_dataset_dir(tmp_path)
    assert not is_dataset_dir(tmp_path / "missing")


def test_read_info_fresh_each_call_and_never_stale(root: Path) -> None:
    assert read_info(root) == {}  # no __init__.py yet
    write_init(root, {"x": "_info_dict['x'] = [1]", "y": None})
    a, b = read_info(root), read_info(root)
    assert a == {"x": [1], "y": None}
    assert a is not b and a["x"] is not b["x"]
    # same size, same second: the new text is seen (code is cached by text, not mtime)
    write_init(root, {"x": "_info_dict['x'] = [2]", "y": None})
    assert read_info(root) == {"x": [2], "y": None}
    assert not (root / "__pycache__").exists()


def test_exec_init_fills_the_namespace(root: Path) -> None:
    write_init(root, {"x": "_info_dict['x'] = 1"})
    ns: dict[str, Any] = {"__name__": "ds"}
    exec_init(root, ns)
    assert ns["_info_dict"] == {"x": 1}
    assert ns["__file__"] == str(root / "__init__.py") and ns["__name__"] == "ds"
    # the standard footer (plain-Python item access) is not run: readers do its work
    assert "__getattr__" not in ns and "_add_items" not in ns
    text = (root / "__init__.py").read_text()
    (root / "__init__.py").write_text(text + "def __getattr__(name):\n    return name\n")
    ns = {"__name__": "ds"}
    exec_init(root, ns)  # a footer edited by hand is run
    assert ns["__getattr__"]("q") == "q" and ns["_info_dict"] == {"x": 1}


def test_foreign_init_runs_whole(root: Path) -> None:
    (root / "__init__.py").write_text(PERSIST3_INIT)
    assert read_info(root) == {"x": "info", "y": None}


def test_init_that_is_not_a_dict(root: Path) -> None:
    (root / "__init__.py").write_text("_info_dict = [1]\n")
    with pytest.raises(FormatError, match="_info_dict"):
        read_info(root)


def test_item_names(root: Path) -> None:
    write_init(root, {"a": None, "meta_only": "_info_dict['meta_only'] = 1", "b": None})
    write_item(root, "a", "a = 1\n")
    write_item(root, "b", "b = 2\n")
    write_item(root, "orphan", "orphan = 3\n")  # an item without a block is a key too
    assert item_names(root) == ["a", "b", "orphan"]


def test_read_item_without_arrays(root: Path) -> None:
    write_item(root, "x", "x = {'a': [1, 2]}\n")
    first, second = read_item(root, "x"), read_item(root, "x")
    assert first == {"a": [1, 2]}
    assert first is not second  # no object cache


def test_read_item_sees_every_rewrite(root: Path) -> None:
    for i in range(5):
        write_item(root, "x", f"x = {i}\n", gen=i + 1)
        assert read_item(root, "x") == i


def test_read_item_arrays_memmapped_in_r_and_proxies_in_a(root: Path) -> None:
    arr = np.arange(1000.0)
    write_item(root, "x", "x = [_arrays['array_0'], 5]\n", {"array_0": arr})
    value = read_item(root, "x")
    assert isinstance(value[0], np.memmap) and not value[0].flags.writeable
    np.testing.assert_array_equal(value[0], arr)
    assert value[1] == 5
    for mode in ("a", "w"):
        proxy = read_item(root, "x", mode=mode)[0]
        assert isinstance(proxy, ArrayProxy)
        np.testing.assert_array_equal(np.asarray(proxy), arr)
    with pytest.raises(ValueError, match="mode"):
        read_item(root, "x", mode="x")


def test_missing_item(root: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_item(root, "nope")


def test_invalid_python_names_file_and_line(root: Path) -> None:
    write_item(root, "good", "good = 1\n")
    write_item(root, "bad", "bad = [1,\n  2,\n")  # broken by a hand edit
    with pytest.raises(FormatError) as info:
        read_item(root, "bad")
    path = root / "bad.py"
    message = str(info.value)
    assert str(path) in message
    lines = path.read_text().splitlines()
    # the reported line is in the real file
    reported = int(message.split(", line ")[1].split(":")[0])
    assert 1 <= reported <= len(lines)
    assert read_item(root, "good") == 1  # other items stay readable


def test_runtime_errors_point_into_the_real_file(root: Path) -> None:
    write_item(root, "x", "y = 1\nx = undefined_name\n")
    with pytest.raises(NameError) as info:
        read_item(root, "x")
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert frame.filename == str(root / "x.py")
    assert (root / "x.py").read_text().splitlines()[frame.lineno - 1] == "x = undefined_name"


def test_body_must_bind_the_name(root: Path) -> None:
    write_item(root, "x", "y = 1\n")
    with pytest.raises(FormatError, match="does not bind 'x'"):
        read_item(root, "x")


def test_header_paths_must_stay_inside(root: Path) -> None:
    entries = write_item(root, "x", "x = _arrays['array_0']\n", {"array_0": np.arange(200)})
    entries["array_0"]["path"] = "../../etc/passwd"
    header = fmt.make_header(generation=1, backend="npy", options={}, arrays=entries)
    atomic_write_text(
        root / "x.py", fmt.render_item("x", "ds", "x = _arrays['array_0']\n", header=header)
    )
    with pytest.raises(FormatError, match="relative 'path'"):
        read_item(root, "x")


def test_missing_data_file_is_a_format_error(root: Path) -> None:
    entries = write_item(root, "x", "x = _arrays['array_0']\n", {"array_0": np.arange(200)})
    os.unlink(root / entries["array_0"]["path"])
    with pytest.raises(FormatError, match="missing"):
        read_item(root, "x")


def test_rereads_when_a_writer_replaced_the_item_meanwhile(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = write_item(root, "x", "x = ('old', _arrays['array_0'])\n", {"array_0": np.zeros(200)})
    real_open = NpyBackend.open
    calls: list[str] = []

    def open_after_writer(self: NpyBackend, r: Path, entry: Any, **kw: Any) -> Any:
        calls.append(entry["path"])
        if len(calls) == 1:  # a writer commits generation 2 and deletes generation 1
            write_item(root, "x", "x = ('new', _arrays['array_0'])\n", {"array_0": np.ones(200)}, 2)
            os.unlink(root / old["array_0"]["path"])
        return real_open(self, r, entry, **kw)

    monkeypatch.setattr(NpyBackend, "open", open_after_writer)
    tag, arr = read_item(root, "x")
    assert tag == "new" and arr.sum() == 200
    assert calls == ["x_data/g1_0.npy", "x_data/g2_0.npy"]


def test_rereads_when_the_item_changed_while_opening(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delete + re-create between reading x.py and opening: arrays of another version."""
    write_item(root, "x", "x = ('old', _arrays['array_0'])\n", {"array_0": np.zeros(200)})
    real_open = NpyBackend.open
    calls = 0

    def open_racing(self: NpyBackend, r: Path, entry: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        result = real_open(self, r, entry, **kw)
        if calls == 1:  # same generation number, new content: only x.py tells
            os.unlink(root / "x.py")
            os.unlink(root / entry["path"])
            write_item(root, "x", "x = ('new', _arrays['array_0'])\n", {"array_0": np.ones(200)})
        return result

    monkeypatch.setattr(NpyBackend, "open", open_racing)
    tag, arr = read_item(root, "x")
    assert (tag, float(arr.sum())) == ("new", 200.0)
    assert calls == 2


def test_persist3_item_runs_whole_without_leaking_modules(root: Path) -> None:
    (root / "x_data").mkdir()
    np.save(root / "x_data" / "array_0.npy", np.arange(5.0))
    (root / "x.py").write_text(PERSIST3_ITEM)
    before = set(sys.modules)
    value = read_item(root, "x")
    assert set(sys.modules) == before
    np.testing.assert_array_equal(value[0], np.arange(5.0))
    assert value[1] == {"a": 1}


def test_hand_written_item_binding_its_name(root: Path) -> None:
    (root / "h.py").write_text("import math\nh = math.pi * 2\n")
    assert read_item(root, "h") == pytest.approx(6.283185307)
    (root / "g.py").write_text("y = 1\n")
    with pytest.raises(FormatError, match="neither bound"):
        read_item(root, "g")


def test_untrusted_without_safe_evaluator(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_item(root, "x", "x = 1\n")
    write_init(root, {"x": "_info_dict['x'] = (1,)"})  # not a JSON-subset literal
    monkeypatch.setitem(sys.modules, "persist_hooks.safe", None)  # not importable
    with pytest.raises(UnsafeArchiveError, match="not available"):
        read_item(root, "x", trusted=False)
    with pytest.raises(UnsafeArchiveError, match="not available"):
        read_info(root, trusted=False)


def test_untrusted_routes_through_safe_module(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    seen: list[str] = []

    def execute(
        source: str, namespace: dict[str, Any], *, filename: str, safe_callables: Any = ()
    ) -> None:
        seen.append(filename)
        exec(compile(source, filename, "exec"), namespace)

    fake = types.ModuleType("persist_hooks.safe")
    fake.execute = execute  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "persist_hooks.safe", fake)
    write_item(root, "x", "x = 41 + 1\n")
    write_init(root, {"x": "_info_dict['x'] = 'm'"})
    assert read_item(root, "x", trusted=False) == 42
    assert read_info(root, trusted=False) == {"x": "m"}
    assert seen == [str(root / "x.py"), str(root / "__init__.py")]


def test_compiled_code_is_cached_by_exact_text(root: Path) -> None:
    write_item(root, "x", "x = [1]\n")
    _reader._code_cache.clear()
    read_item(root, "x")
    codes = dict(_reader._code_cache._values)
    read_item(root, "x")
    assert dict(_reader._code_cache._values) == codes  # hit, no new entry
    write_item(root, "x", "x = [2]\n", gen=2)
    assert read_item(root, "x") == [2]
    assert len(_reader._code_cache._values) == len(codes) + 1


def test_init_fast_path_equals_running_the_whole_file(root: Path) -> None:
    blocks = []
    for i in range(100):
        if i in (3, 50, 51, 99):
            blocks.append(
                fmt.render_key_block(f"k{i}", f"_g0 = [{i}]\n_info_dict['k{i}'] = _g0\ndel _g0")
            )
        else:
            blocks.append(fmt.render_key_block(f"k{i}", None))
    text = fmt.render_init("ds", blocks)
    text = text.replace("# -- key: k10\n", "extra = 'hand written'\n# -- key: k10\n")
    atomic_write_text(root / "__init__.py", text)
    whole: dict[str, Any] = {"__name__": "ds", "__file__": str(root / "__init__.py")}
    exec(compile(text, "x", "exec"), whole)
    fast: dict[str, Any] = {"__name__": "ds"}
    exec_init(root, fast)
    assert list(fast["_info_dict"].items()) == list(whole["_info_dict"].items())
    assert fast["extra"] == "hand written" and fast["__doc__"] == whole["__doc__"]
    plan = _reader._init_plan(text, str(root / "__init__.py"))
    runs = [len(step[0]) for step in plan if isinstance(step, tuple)]
    assert runs == [3, 6, 40, 47]  # the hand-written line before k10 is code


def test_init_errors_point_at_the_real_line(root: Path) -> None:
    blocks = [fmt.render_key_block(f"k{i}", None) for i in range(30)]
    blocks.append(fmt.render_key_block("bad", "_info_dict['bad'] = undefined_name"))
    text = fmt.render_init("ds", blocks)
    atomic_write_text(root / "__init__.py", text)
    lineno = text.splitlines().index("_info_dict['bad'] = undefined_name") + 1
    with pytest.raises(NameError) as info:
        read_info(root)
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno) == (str(root / "__init__.py"), lineno)
    atomic_write_text(root / "__init__.py", text.replace("= undefined_name", "= (1,"))
    with pytest.raises(FormatError, match=rf"__init__\.py, line {lineno}:"):
        read_info(root)


_metadata = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    | st.tuples(inner)
    | st.frozensets(st.integers(), max_size=2),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "x_1", "x_10"]), _metadata), max_size=8))
def test_metadata_read_fast_equals_plain_python(tmp_path: Path, writes: list[Any]) -> None:
    """Whatever DataSets write (literals decoded by json, the rest compiled), every reader
    gives what plain Python's import gives: trusted, safe, and the import of the package."""
    from persist_hooks.dataset import DataSet

    root = tmp_path / f"ds{next(_counter)}"
    ds = DataSet(root.name, "w", path=tmp_path)
    for key, value in writes:
        ds[key] = value
    text = (root / "__init__.py").read_text()
    plain: dict[str, Any] = {"__name__": "plain", "__file__": str(root / "__init__.py")}
    exec(compile(text, str(root / "__init__.py"), "exec"), plain)
    want = plain["_info_dict"]
    for trusted in (True, False):
        _reader._plan_cache.clear()
        for _ in range(2):  # the first run uses the values decoded for the plan, then afresh
            got = read_info(root, trusted=trusted)
            assert list(got) == list(want) and got == want
            assert all(type(got[k]) is type(want[k]) for k in want)
    first, second = read_info(root), read_info(root)
    mutable = [k for k in first if isinstance(first[k], (list, dict))]
    assert all(first[k] is not second[k] for k in mutable)  # never shared between callers

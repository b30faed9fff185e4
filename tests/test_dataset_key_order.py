"""Key order is insertion order, also for keys stored without a block in ``__init__.py``.

A new item without metadata whose key sorts after every key without a block
gets no block (no rewrite of ``__init__.py``); writers track those keys in the
record of :mod:`persist_hooks._tail`.  These tests check that every reader
(the DataSet, a fresh one, plain Python) sees keys in the order they were
first written, whatever the interleaving of writers, metadata, deletions, a
missing or damaged record, and more keys than the record lists.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persist_hooks import _format as fmt
from persist_hooks import _tail
from persist_hooks._tail import MAX_KEYS, Tail, read_tail
from persist_hooks.dataset import DataSet
from persist_hooks.locking import LOCK_NAME, writer_lock


def init_keys(root: Path) -> list[str]:
    keys = fmt.init_keys((root / "__init__.py").read_text())
    assert keys is not None
    return keys


def record_of(root: Path) -> Tail | None:
    """The writers' record of ``root``'s keys without a block (read holding the lock)."""
    lock = writer_lock(root)
    with lock.hold(timeout=10):
        return read_tail(lock)


def plain_python_keys(root: Path) -> list[str]:
    """``list(_info_dict)`` as a fresh interpreter without persist_hooks sees it."""
    out = subprocess.run(
        [sys.executable, "-S", "-c", "import mydata; print(list(mydata._info_dict))"],
        cwd=root.parent,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return eval(out.stdout)  # type: ignore[no-any-return]


def test_keys_in_name_order_need_no_block(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    ds.a = 1
    init = (root / "__init__.py").stat()
    for i in range(12):  # x_10 and x_11 after x_9: a trailing number counts as a number
        setattr(ds, f"x_{i}", np.arange(200.0) + i)
    ds.y = 2
    after = (root / "__init__.py").stat()
    assert (after.st_ino, after.st_mtime_ns) == (init.st_ino, init.st_mtime_ns)  # not rewritten
    expected = ["a", *(f"x_{i}" for i in range(12)), "y"]
    assert init_keys(root) == []
    assert record_of(root) == Tail(tuple(expected), "y")
    assert list(ds) == list(DataSet("mydata", path=tmp_path)) == expected
    assert plain_python_keys(root) == expected
    np.testing.assert_array_equal(ds.x_11, np.arange(200.0) + 11)


def test_a_key_out_of_name_order_gives_the_others_their_blocks(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    ds.b = 1
    ds.c = 2
    ds.a = 3  # before b and c: all three get blocks, in insertion order
    assert init_keys(root) == ["b", "c", "a"]
    assert record_of(root) == Tail.EMPTY
    ds.d = 4  # a new run of keys without a block starts
    ds.e = 5
    assert init_keys(root) == ["b", "c", "a"]
    assert list(DataSet("mydata", path=tmp_path)) == ["b", "c", "a", "d", "e"]
    assert plain_python_keys(root) == ["b", "c", "a", "d", "e"]


def test_metadata_gives_keys_without_a_block_theirs_first(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    ds.a = 1
    ds.b = 2
    ds.c = 3
    ds["b"] = "info of b"  # b keeps its place
    assert init_keys(root) == ["a", "b", "c"]
    ds["z0"] = "metadata only"
    ds.z1 = 4
    ds._insert(5)  # x_0 sorts before z1: a block
    ds._insert(6, info="six")
    assert list(ds) == ["a", "b", "c", "z0", "z1", "x_0", "x_1"]
    assert ds["b"] == "info of b" and ds["x_1"] == "six" and ds["x_0"] is None
    assert list(DataSet("mydata", path=tmp_path)) == list(ds)
    assert plain_python_keys(root) == list(ds)


def test_deleting_a_key_without_a_block(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    ds.a, ds.b, ds.c = 1, 2, 3
    del ds.c
    assert record_of(root) == Tail(("a", "b"), "b")
    ds.c = 3  # after b again: still no block
    del ds["a"]
    assert record_of(root) == Tail(("b", "c"), "c") and init_keys(root) == []
    assert list(ds) == ["b", "c"]
    ds.clear()
    assert record_of(root) == Tail.EMPTY
    ds.a = 1
    assert list(ds) == ["a"]


def test_a_missing_or_damaged_record_is_rebuilt_from_a_listing(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    ds.a, ds.b = 1, 2
    lock_file = root / LOCK_NAME
    good = lock_file.read_bytes()
    for damage in (b"", good[:-1], good.replace(b" b", b" c"), good + b"x\n", b"garbage\n", None):
        if damage is None:
            lock_file.unlink()
        else:
            lock_file.write_bytes(damage)
        assert record_of(root) is None
        ds.c = 3  # the listing finds a and b without blocks: c may follow them
        assert record_of(root) == Tail(("a", "b", "c"), "c")
        del ds.c
    ds.a0 = 4  # before b: folds a and b
    assert init_keys(root) == ["a", "b", "a0"]


def test_a_recorded_key_whose_item_is_gone_gets_no_block(tmp_path: Path) -> None:
    # a writer that died after recording its key and before committing its item
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    ds.b = 1
    lock = writer_lock(root)
    with lock.hold(timeout=10):
        _tail.TailUpdate(lock, Tail(("b", "c"), "c"), early=True).commit()
    ds.a = 2  # folds b; c has no item, so no key
    assert init_keys(root) == ["b", "a"]
    assert list(ds) == ["b", "a"] and "c" not in ds


def _more_keys_than_recorded(tmp_path: Path) -> tuple[DataSet, Path, list[str]]:
    """A DataSet with more new keys without a block than the record lists by name."""
    ds = DataSet("mydata", "w", path=tmp_path)
    names = [f"k{i}" for i in range(MAX_KEYS + 5)]
    with ds.locked():
        for name in names:
            setattr(ds, name, 0)
    return ds, tmp_path / "mydata", names


def test_more_keys_than_the_record_lists(tmp_path: Path) -> None:
    ds, root, names = _more_keys_than_recorded(tmp_path)
    tail = record_of(root)
    assert tail is not None and tail.keys is None and tail.last == names[-1]
    ds.a = 1  # the fold lists the directory
    assert init_keys(root) == [*names, "a"]
    assert record_of(root) == Tail.EMPTY
    assert list(DataSet("mydata", path=tmp_path)) == [*names, "a"]


def test_without_a_record_many_keys_are_listed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, root, names = _more_keys_than_recorded(tmp_path)
    (root / LOCK_NAME).write_bytes(b"")  # no record: the next writer lists the directory
    real, listings = os.listdir, []

    def listdir(path: Any = ".") -> list[str]:
        if Path(path) == root:
            listings.append(path)
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    ds.a = 1  # before them all: the listing gives the keys to fold too
    monkeypatch.undo()
    assert len(listings) == 1
    assert init_keys(root) == [*names, "a"]


def test_an_item_file_copied_in_by_hand_stays_a_key(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    ds.a = 1
    (root / "m.py").write_text("m = 'by hand'\n")
    ds.b = 2
    assert list(ds) == ["a", "b", "m"]  # unrecorded: by name among the keys without a block
    ds["b"] = "info"
    assert init_keys(root) == ["a", "b"] and list(ds) == ["a", "b", "m"]
    assert ds.m == "by hand"


def test_two_processes_keep_insertion_order(tmp_path: Path) -> None:
    DataSet("mydata", "w", path=tmp_path).a = 0
    script = (
        "import sys; from persist_hooks import DataSet\n"
        "ds = DataSet('mydata', 'w', path=sys.argv[1])\n"
        "for name in sys.argv[2:]:\n"
        "    setattr(ds, name, name)\n"
    )

    def other_process(*names: str) -> None:
        subprocess.run([sys.executable, "-c", script, str(tmp_path), *names], check=True)

    ds = DataSet("mydata", "w", path=tmp_path)
    other_process("b", "c")
    ds.d = 1
    other_process("a1")  # before b: folds a, b, c, d
    ds.e = 2
    other_process("f")
    ds.c0 = 3  # before e and f: folds them
    expected = ["a", "b", "c", "d", "a1", "e", "f", "c0"]
    assert list(ds) == list(DataSet("mydata", path=tmp_path)) == expected
    assert plain_python_keys(tmp_path / "mydata") == expected


_KEYS = ["a", "b", "x_2", "x_10", "y"]
_OPS = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from(_KEYS),
        st.sampled_from(["item", "item", "info", "del_item", "del_key", "insert"]),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_any_sequence_of_writes_keeps_insertion_order(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[bool, str, str]]
) -> None:
    path = tmp_path_factory.mktemp("ds")
    first = DataSet("mydata", "w", path=path)
    second = DataSet("mydata", "w", path=path)
    model: dict[str, Any] = {}
    items: set[str] = set()
    for step, (use_first, key, op) in enumerate(ops):
        ds = first if use_first else second
        if op == "item":
            setattr(ds, key, step)
            model.setdefault(key, None)
            items.add(key)
        elif op == "insert":
            name = ds._insert(step, info=None if step % 2 else step)
            model[name] = None if step % 2 else step
            items.add(name)
        elif op == "info":
            ds[key] = step
            model[key] = step
        elif op == "del_item" and key in items:
            delattr(ds, key)
            items.discard(key)
            if model[key] is None:
                del model[key]
        elif op == "del_key" and key in model:
            del ds[key]
            del model[key]
            items.discard(key)
        for view in (first, second):
            assert list(view) == list(model)
    fresh = DataSet("mydata", path=path)
    assert list(fresh) == list(model)
    assert {k: fresh[k] for k in fresh} == model
    assert {k for k in model if hasattr(fresh, k)} == items


@given(
    keys=st.lists(
        st.from_regex(r"[a-zA-Zé_][a-zA-Z0-9_é]{0,8}", fullmatch=True), max_size=MAX_KEYS + 3
    )
)
def test_the_record_reads_back_what_was_written(keys: list[str]) -> None:
    tail = Tail.EMPTY
    for key in keys:
        tail = tail.add(key)
    raw = _tail._encode(tail)
    assert _tail._decode(raw) == tail
    assert (tail.keys is None) == (len(keys) > MAX_KEYS)
    for cut in range(len(raw)):  # a line cut short never reads as a record
        assert _tail._decode(raw[:cut]) is None


def record(payload: bytes) -> bytes:
    return b"persist_hooks tail 1 %08x %s\n" % (_tail.zlib.crc32(payload), payload)


def test_a_record_naming_something_else_than_keys_is_refused() -> None:
    for payload in (b"a ../c", b"* a b", b"*", b"a\tb", b"* a-b"):
        assert _tail._decode(record(payload)) is None, payload


def test_a_fold_writes_only_keys_that_are_item_names(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    ds.b = 1
    (root / "x'] = 1; import os #.py").write_text("")  # a file no key can name
    (root / LOCK_NAME).write_bytes(record(b"x']=os.system('') b"))
    ds.a = 2  # folds: only b gets a block
    assert init_keys(root) == ["b", "a"]
    assert list(DataSet("mydata", path=tmp_path)) == ["b", "a"]


def test_keys_too_long_to_record_all_of_them(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    names = [f"k{i:02d}{'x' * 197}" for i in range(45)]  # 45 x 200 bytes > MAX_BYTES
    with ds.locked():
        for name in names:
            setattr(ds, name, 1)
    tail = record_of(root)
    assert tail is not None and tail.keys is None and tail.last == names[-1]
    ds.a = 3  # before the long names: all get blocks, found by listing the directory
    assert init_keys(root) == [*names, "a"]
    assert list(DataSet("mydata", path=tmp_path)) == [*names, "a"]


ORDER_WRITER = """
import os, random, sys
from persist_hooks.dataset import DataSet
path, seed, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
ds = DataSet("mydata", "w", path=path, timeout=60)
written = []
for step in range(40):
    with ds.locked():  # the log's order is the order in which writes commit
        if step >= 30 or not written or rng.random() < 0.8:  # last: no metadata, no folds
            # a new key, in or out of name order (x_9 before x_10: a number counts as one)
            name = f"{rng.choice('akxz')}{seed}_{rng.randrange(30)}"
            setattr(ds, name, step)
            written.append(name)
            op = "item"
        else:
            name = rng.choice(written)
            ds[name] = step
            op = "info"
        with open(log, "a") as f:
            f.write(f"{op} {name}\\n")
"""


def test_writers_in_several_processes_keep_commit_order(tmp_path: Path) -> None:
    """Three processes write items and metadata under random names at once: every reader
    lists the keys in the order they were first committed."""
    DataSet("mydata", "w", path=tmp_path)
    log = tmp_path / "log.txt"
    procs = [
        subprocess.Popen([sys.executable, "-c", ORDER_WRITER, str(tmp_path), str(seed), str(log)])
        for seed in range(3)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    order: dict[str, None] = {}
    for line in log.read_text().splitlines():
        order.setdefault(line.split()[1], None)
    expected = list(order)
    assert list(DataSet("mydata", path=tmp_path)) == expected
    assert plain_python_keys(tmp_path / "mydata") == expected

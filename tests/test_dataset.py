"""Tests of persist_hooks.DataSet (issue #3, DESIGN.md "Details the contract fixes")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import persist_hooks
from persist_hooks import _format as fmt
from persist_hooks import dataset as dataset_mod
from persist_hooks.backends.base import checksum
from persist_hooks.backends.npy import NpyBackend
from persist_hooks.backends.proxy import ArrayProxy
from persist_hooks.dataset import DataSet
from persist_hooks.errors import (
    FormatError,
    LockTimeout,
    ReadOnlyError,
    UnrepresentableError,
    UnsafeArchiveError,
)
from persist_hooks.locking import LOCK_NAME, WriterLock, writer_lock

MARKER = "_this_dir_is_a_DataSet"


@pytest.fixture(autouse=True)
def _clean_interpreter_state() -> Iterator[None]:
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith(("mydata", "_persist_hooks_")):
            del sys.modules[name]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> content)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def env_without_hook() -> dict[str, str]:
    return {**os.environ, "PERSIST_HOOKS_NO_HOOK": "1"}


# ---------------------------------------------------------------- opening and modes


def test_create_layout(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    root = tmp_path / "mydata"
    assert (root / MARKER).read_text() == fmt.MARKER_TEXT
    assert fmt.parse_init((root / "__init__.py").read_text()) is not None
    assert len(ds) == 0 and list(ds) == []
    ds.x = [np.arange(1000.0), {"a": 1}]
    ds["x"] = "a list of two arrays"
    item = fmt.parse_item((root / "x.py").read_text(), "x.py")
    assert item is not None
    assert item.header["format"] == 1 and item.header["backend"] == "npy"
    assert item.header["generation"] == 1
    assert item.header["arrays"] == {
        "array_0": {
            "path": "x_data/g1_0.npy",
            "shape": [1000],
            "dtype": "<f8",
            "checksum": checksum(np.arange(1000.0)),
        }
    }
    assert sorted(os.listdir(root)) == sorted([MARKER, "__init__.py", LOCK_NAME, "x.py", "x_data"])
    assert os.listdir(root / "x_data") == ["g1_0.npy"]


def test_modes(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="mode='w'"):
        DataSet("mydata", path=tmp_path)
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileNotFoundError):
        DataSet("plain", "r", path=tmp_path)
    DataSet("plain", "a", path=tmp_path)  # an empty directory becomes a DataSet
    assert (tmp_path / "plain" / MARKER).exists()
    with pytest.raises(ValueError, match="mode"):
        DataSet("mydata", "x", path=tmp_path)
    for bad in ("", ".", "..", "a/b"):
        with pytest.raises(ValueError, match="DataSet name"):
            DataSet(bad, "w", path=tmp_path)
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match="a file"):
        DataSet("afile", "w", path=tmp_path)
    ds = DataSet("nested", "w", path=tmp_path / "deep" / "er")  # parents are created
    ds.x = 1
    assert DataSet("nested", path=tmp_path / "deep" / "er").x == 1


def test_never_clobbers_a_foreign_directory(tmp_path: Path) -> None:
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    before = snapshot(user)
    for mode in ("w", "a"):
        with pytest.raises(ValueError, match="not a DataSet"):
            DataSet("mine", mode, path=tmp_path)
    assert snapshot(user) == before and sorted(os.listdir(user)) == ["notes.txt"]


def test_a_is_w_and_keeps_items(tmp_path: Path) -> None:
    DataSet("mydata", "w", path=tmp_path).x = 1
    ds = DataSet("mydata", "a", path=tmp_path)
    assert ds.x == 1
    ds.y = 2
    ds = DataSet("mydata", "w", path=tmp_path)  # no mode deletes
    assert (ds.x, ds.y) == (1, 2)


def test_read_only(tmp_path: Path) -> None:
    w = DataSet("mydata", "w", path=tmp_path)
    w.x = 1
    w["x"] = "info"
    ds = DataSet("mydata", path=tmp_path)
    before = snapshot(tmp_path / "mydata")
    attempts = [
        lambda: setattr(ds, "x", 2),
        lambda: setattr(ds, "y", 2),
        lambda: ds.__setitem__("x", "new"),
        lambda: delattr(ds, "x"),
        lambda: ds.__delitem__("x"),
        lambda: ds._insert(3),
        ds.clear,
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnlyError, match="read-only"):
            attempt()
    assert issubclass(ReadOnlyError, ValueError)
    assert snapshot(tmp_path / "mydata") == before


@pytest.mark.parametrize("backend", persist_hooks.backends())
def test_arrays_of_a_read_only_dataset_refuse_writes(tmp_path: Path, backend: str) -> None:
    """DESIGN: writes through a proxy of an ``r`` DataSet raise ReadOnlyError, on every
    backend, for arrays alone and inside containers; the stored data stays as it was."""
    big = np.arange(300.0)
    w = DataSet("mydata", "w", path=tmp_path, backend=backend)
    w.x = big
    w.pair = [big, big * 2]
    before = snapshot(tmp_path / "mydata")
    r = DataSet("mydata", "r", path=tmp_path)
    for p in (r.x, *r.pair):
        assert p.shape == (300,) and p.dtype == np.float64 and len(p) == 300
        assert p.read_only
        attempts: list[tuple[Any, tuple[Any, ...]]] = [
            (p.__setitem__, (0, 1.0)),
            (p.__setitem__, (slice(290, 310), 1.0)),  # past the end: would grow
            (p.append, (np.ones(3),)),
            (p.attrs.__setitem__, ("units", "m")),
        ]
        for method, args in attempts:
            with pytest.raises(ReadOnlyError, match="read-only"):
                method(*args)
    np.testing.assert_array_equal(np.asarray(r.pair[1]), big * 2)
    assert snapshot(tmp_path / "mydata") == before


def test_newer_format_refused(tmp_path: Path) -> None:
    DataSet("mydata", "w", path=tmp_path)
    (tmp_path / "mydata" / MARKER).write_text("persist_hooks DataSet format 9\n")
    with pytest.raises(FormatError, match="format 9"):
        DataSet("mydata", path=tmp_path)


# ---------------------------------------------------------------- items and metadata


def test_items_read_disk_each_time(tmp_path: Path) -> None:
    writer = DataSet("mydata", "w", path=tmp_path)
    reader = DataSet("mydata", path=tmp_path)
    for i in range(3):
        writer.x = {"i": i}
        assert reader.x == {"i": i}
        writer["x"] = f"info {i}"
        assert reader["x"] == f"info {i}"
    first, second = reader.x, reader.x
    assert first == second and first is not second  # no cache beyond what the caller holds
    writer.new = 5
    assert "new" in reader and list(reader) == ["x", "new"] and reader.new == 5


def test_missing_names(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    with pytest.raises(AttributeError, match="missing"):
        _ = ds.missing
    assert not hasattr(ds, "missing")
    with pytest.raises(KeyError):
        _ = ds["missing"]
    assert "missing" not in ds
    with pytest.raises(AttributeError):
        _ = ds._private_thing


def test_metadata_only_keys_and_info_dict(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.a = [1]
    ds["b"] = "b"
    assert list(ds) == ["a", "b"] and len(ds) == 2 and "b" in ds
    assert ds["a"] is None and ds["b"] == "b"
    with pytest.raises(AttributeError):
        _ = ds.b
    from persist_hooks._reader import read_info

    assert read_info(tmp_path / "mydata") == {"a": None, "b": "b"}


def test_metadata_any_small_archivable_object(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    shared = [1, 2]
    info = {
        "frac": Fraction(1, 3),
        "t": (shared, shared),
        "arr": np.arange(3),
        "s": {"é", "x"},
        "none": None,
    }
    ds["x"] = info
    got = DataSet("mydata", path=tmp_path)["x"]
    assert got["frac"] == Fraction(1, 3) and got["t"][0] is got["t"][1]
    np.testing.assert_array_equal(got["arr"], np.arange(3))
    assert got["s"] == {"é", "x"} and got["none"] is None
    ds["x"] = None
    assert DataSet("mydata", path=tmp_path)["x"] is None


def test_arrays_memmapped_in_r_proxies_in_w(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path, array_threshold=10)
    big, small = np.arange(100.0), np.arange(5)
    ds.x = {"big": big, "small": small}
    assert os.listdir(tmp_path / "mydata" / "x_data") == ["g1_0.npy"]  # small stays inline
    r = DataSet("mydata", path=tmp_path).x
    assert isinstance(r["big"], np.memmap)
    np.testing.assert_array_equal(r["big"], big)
    assert type(r["small"]) is np.ndarray
    w = ds.x
    assert isinstance(w["big"], ArrayProxy)
    np.testing.assert_array_equal(np.asarray(w["big"]), big)


@pytest.mark.parametrize("name", ["x", "id", "list", "array_0", "np", "data"])
@pytest.mark.parametrize("scoped", [True, False])
@pytest.mark.parametrize(
    "value",
    [
        np.arange(11.0),
        np.arange(10.0),  # at the threshold: stays in the source
        np.arange(24, dtype="<i2").reshape(2, 3, 4).T,
        np.arange(40.0)[::3],
        np.array(["ab", "c"] * 6),
        np.array([1, "a"] * 6, dtype=object),
        np.ma.masked_array(np.arange(12.0)),
        np.zeros((0, 20)),
    ],
    ids=lambda v: f"{type(v).__name__}-{v.dtype}-{v.shape}",
)
def test_a_bare_array_is_written_as_the_archive_writes_it(
    tmp_path: Path, name: str, scoped: bool, value: np.ndarray[Any, Any]
) -> None:
    # DataSet._archive skips building an Archive for a bare large array: same source and data
    ds = DataSet("mydata", "w", path=tmp_path, array_threshold=10, scoped=scoped)
    expected = persist_hooks.Archive(scoped=scoped, array_threshold=10)
    expected.insert(**{name: value})
    body, data = ds._archive(name, value)
    assert body == str(expected)
    assert list(data) == list(expected.data)
    for key, array in data.items():
        assert array is expected.data[key]
    ds2 = DataSet("mydata2", "w", path=tmp_path, array_threshold=None, scoped=scoped)
    assert ds2._archive(name, np.arange(11.0))[1] == {}


def test_append_through_a_proxy(tmp_path: Path) -> None:
    with DataSet("mydata", "a", path=tmp_path) as ds:
        ds.big = np.zeros((200, 2))
        ds.big.append(np.ones((10, 2)))
    got = DataSet("mydata", path=tmp_path).big
    assert got.shape == (210, 2) and got[200:].sum() == 20


def test_overwrite_removes_old_generations(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    data = tmp_path / "mydata" / "x_data"
    for gen in range(1, 4):
        ds.x = np.full(500, gen)
        assert os.listdir(data) == [f"g{gen}_0.npy"]
        assert ds.x[0] == gen
    ds.x = "no arrays any more"
    assert not data.exists()
    assert DataSet("mydata", path=tmp_path).x == "no arrays any more"


def test_backup_data(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path, backup_data=True)
    root = tmp_path / "mydata"
    ds.x = np.full(500, 1)
    first = (root / "x.py").read_text()
    ds.x = np.full(500, 2)
    assert (root / "x.py.bak").read_text() == first
    assert sorted(os.listdir(root / "x_data")) == ["g1_0.npy", "g2_0.npy"]
    ds.x = np.full(500, 3)
    assert sorted(os.listdir(root / "x_data")) == ["g2_0.npy", "g3_0.npy"]
    bak = fmt.parse_item((root / "x.py.bak").read_text(), "x.py.bak")
    assert bak is not None and bak.header["generation"] == 2
    np.testing.assert_array_equal(np.load(root / "x_data" / "g2_0.npy"), np.full(500, 2))
    # a DataSet without backup_data keeps an existing backup and its data
    DataSet("mydata", "w", path=tmp_path).x = np.full(500, 4)
    assert sorted(os.listdir(root / "x_data")) == ["g2_0.npy", "g4_0.npy"]


@pytest.mark.parametrize("with_data", [True, False])
def test_a_backup_left_without_its_item_is_kept_with_its_data(
    tmp_path: Path, with_data: bool
) -> None:
    """A deletion that died between removing ``x.py`` and ``x.py.bak``: writing x anew
    keeps the backup and whatever data it refers to, and never reuses its generation."""
    ds = DataSet("mydata", "w", path=tmp_path, backup_data=True)
    root = tmp_path / "mydata"
    ds.x = np.full(500, 1) if with_data else [1]
    ds.x = np.full(500, 2) if with_data else [2]
    (root / "x.py").unlink()
    bak = (root / "x.py.bak").read_bytes()
    ds.x = np.full(500, 3)
    assert (root / "x.py.bak").read_bytes() == bak
    item = fmt.parse_item((root / "x.py").read_text(), "x.py")
    assert item is not None
    if with_data:
        assert sorted(os.listdir(root / "x_data")) == ["g1_0.npy", "g3_0.npy"]
        assert item.header["generation"] == 3
        np.testing.assert_array_equal(np.load(root / "x_data" / "g1_0.npy"), np.full(500, 1))
    else:
        assert os.listdir(root / "x_data") == [f"g{item.header['generation']}_0.npy"]
    np.testing.assert_array_equal(ds.x, np.full(500, 3))


def test_delete(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path, backup_data=True)
    root = tmp_path / "mydata"
    ds.x = np.arange(500)
    ds.x = np.arange(600)
    ds.y = np.arange(500)
    ds["y"] = "keep my metadata"
    del ds.x
    assert not any(p.startswith("x") for p in os.listdir(root))
    assert "x" not in ds  # no metadata: the key goes too
    del ds.y
    assert not (root / "y.py").exists() and not (root / "y_data").exists()
    assert list(ds) == ["y"] and ds["y"] == "keep my metadata"  # now metadata-only
    with pytest.raises(AttributeError):
        del ds.y
    del ds["y"]
    assert list(ds) == []
    with pytest.raises(KeyError):
        del ds["y"]
    ds.z = 1
    ds["z"] = "info"
    del ds["z"]  # the key, its metadata and its item
    assert "z" not in ds and not (root / "z.py").exists()


def test_recreate_after_delete_is_never_torn(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x = ("first", np.zeros(500))
    del ds.x
    ds.x = ("second", np.ones(500))
    tag, arr = DataSet("mydata", path=tmp_path).x
    assert tag == "second" and arr.sum() == 500


def test_insert(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x_1 = "taken by hand"
    assert ds._insert([1, 2], info="first") == "x_0"
    assert ds._insert(np.arange(300)) == "x_2"
    other = DataSet("mydata", "w", path=tmp_path)
    assert other._insert(3) == "x_3"  # names come from the disk, not from this object
    assert ds._insert(4, info={"k": 1}) == "x_4"
    assert list(ds) == ["x_1", "x_0", "x_2", "x_3", "x_4"]
    assert ds["x_0"] == "first" and ds["x_4"] == {"k": 1} and ds["x_2"] is None
    assert ds.x_0 == [1, 2] and ds.x_3 == 3
    custom = DataSet("other", "w", path=tmp_path, name_prefix="run")
    assert custom._insert(1) == "run0"
    with pytest.raises(ValueError, match="item name"):
        DataSet("bad", "w", path=tmp_path, name_prefix="_")._insert(1)


def test_repr_and_dir(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.a = 1
    ds["b"] = 2
    text = repr(ds)
    assert "'mydata'" in text and "['a', 'b']" in text and str(tmp_path) in text
    assert {"a", "b", "close", "locked", "clear"} <= set(dir(ds))
    for i in range(40):
        ds[f"k{i}"] = None
    assert "(12 more)" in repr(ds)
    ds.close()
    assert "closed" in repr(ds)


@pytest.mark.parametrize(
    "name", ["class", "_x", "__dict__x", "1a", "a-b", "test_x", "x_test", "conftest"]
)
def test_invalid_item_names(tmp_path: Path, name: str) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    if name.startswith("_"):
        setattr(ds, name, 1)  # private Python attribute of the object: not an item
        assert list(ds) == [] and not (tmp_path / "mydata" / f"{name}.py").exists()
    else:
        with pytest.raises(ValueError, match="invalid item name"):
            setattr(ds, name, 1)
    with pytest.raises(ValueError, match="invalid item name"):
        ds[name] = 1


def test_item_names_fit_in_file_names(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    longest = "é" * 100  # 200 bytes in UTF-8
    setattr(ds, longest, np.arange(200.0))
    ds[longest] = "info"
    np.testing.assert_array_equal(getattr(DataSet("mydata", path=tmp_path), longest), np.arange(200.0))
    for name in ("x" * 201, "é" * 100 + "x"):
        with pytest.raises(ValueError, match="at most 200"):
            setattr(ds, name, 1)
        with pytest.raises(ValueError, match="at most 200"):
            ds[name] = 1
    with pytest.raises(ValueError, match="at most 200"):
        persist_hooks.Archive().save(tmp_path, name="m" * 201)
    assert list(ds) == [longest]


@pytest.mark.parametrize("name", ["clear", "close", "locked"])
def test_names_of_dataset_methods_are_reserved(tmp_path: Path, name: str) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    with pytest.raises(ValueError, match="clashes"):
        setattr(ds, name, 1)
    with pytest.raises(ValueError, match="clashes"):
        ds[name] = 1


def test_close_and_context_manager(tmp_path: Path) -> None:
    with DataSet("mydata", "w", path=tmp_path) as ds:
        ds.x = 1
    for attempt in (lambda: ds.x, lambda: setattr(ds, "y", 1), lambda: list(ds), ds.locked):
        with pytest.raises(ValueError, match="closed"):
            attempt()
    ds.close()  # idempotent
    assert DataSet("mydata", path=tmp_path).x == 1


def test_clear(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path, backup_data=True)
    root = tmp_path / "mydata"
    ds.a = np.arange(500)
    ds.a = np.arange(600)
    ds["b"] = "meta"
    ds.c = 3
    (root / "README.txt").write_text("user file")
    ds.clear()
    assert len(ds) == 0 and list(ds) == []
    assert sorted(os.listdir(root)) == sorted([MARKER, "__init__.py", LOCK_NAME, "README.txt"])
    ds.a = 1
    assert ds._insert(2) == "x_0" and list(ds) == ["a", "x_0"]


# ---------------------------------------------------------------- failures leave no trace


class Unpicklable:
    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError("cannot be archived")


class BadRep:
    def __persist_rep__(self) -> Any:
        raise RuntimeError("__repr__-like failure inside the object")

    def __repr__(self) -> str:
        raise RuntimeError("repr fails")


def test_unrepresentable_objects_write_nothing(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x = [1, np.arange(500)]
    ds["x"] = "old"
    before = snapshot(tmp_path / "mydata")
    with pytest.raises(UnrepresentableError):
        ds.x = [2, threading.Lock()]
    with pytest.raises((UnrepresentableError, TypeError)):
        ds.y = Unpicklable()
    with pytest.raises((UnrepresentableError, RuntimeError)):
        ds.x = {"k": BadRep()}
    with pytest.raises((UnrepresentableError, RuntimeError)):
        ds["x"] = BadRep()
    with pytest.raises(UnrepresentableError):
        ds._insert(threading.Lock(), info="never")
    assert snapshot(tmp_path / "mydata") == before
    assert ds.x[0] == 1 and ds["x"] == "old"


@pytest.mark.parametrize("size", [700, 1 << 18], ids=["small", "large"])
@pytest.mark.parametrize(
    ("write", "fail_at"),
    [("x", 1), ("x", 2), ("y", 1), ("a", 1), ("a", 2), ("info", 1)],
)
def test_disk_full_midway_leaves_dataset_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: str, fail_at: int, size: int
) -> None:
    """Fail the n-th file preparation: x: 1 = x.py.bak, 2 = x.py; y (a new key after x,
    which needs no block): 1 = y.py; a (a new key before x: blocks for both) 1 = a.py,
    2 = __init__.py; info: 1 = __init__.py.  A large array's files are prepared on a
    pool thread while its data is written."""
    ds = DataSet("mydata", "w", path=tmp_path, backup_data=True)
    ds.x = np.arange(500)
    before = snapshot(tmp_path / "mydata")
    real = dataset_mod.prepare_text
    calls = 0

    def failing_prepare(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == fail_at:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset_mod, "prepare_text", failing_prepare)
    with pytest.raises(OSError, match="No space"):
        if write == "info":
            ds["x"] = {"new": "metadata"}
        else:
            setattr(ds, write, [np.arange(size), "new"])
    monkeypatch.undo()
    assert snapshot(tmp_path / "mydata") == before
    fresh = DataSet("mydata", path=tmp_path)
    np.testing.assert_array_equal(fresh.x, np.arange(500))
    assert list(fresh) == ["x"] and fresh["x"] is None


@pytest.mark.parametrize("fail", ["record", "item", "data"])
def test_a_failed_write_puts_back_the_record_of_keys_without_a_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    """data: the array's write fails after its item was staged on the pool thread
    (the record written, the item's temporary made)."""
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x = np.arange(500)
    before = snapshot(tmp_path / "mydata")
    assert before[LOCK_NAME]  # the record of x, which has no block
    if fail == "data":
        from persist_hooks.backends import npy

        staged = threading.Event()
        real_prepare = dataset_mod.prepare_text

        def prepare(*args: Any, **kwargs: Any) -> Any:
            pending = real_prepare(*args, **kwargs)
            staged.set()
            return pending

        def failing_data(fd: int, header: bytes, arr: Any, fortran: bool, crc: Any = None) -> None:
            assert staged.wait(10), "the item was not staged during the data write"
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(dataset_mod, "prepare_text", prepare)
        monkeypatch.setattr(npy, "_write_file", failing_data)
    elif fail == "record":
        real = WriterLock.write_note

        def failing_write(self: WriterLock, note: bytes, **kwargs: Any) -> None:
            real(self, note, **kwargs)  # something lands on disk first
            if note:
                raise OSError(28, "No space left on device")

        monkeypatch.setattr(WriterLock, "write_note", failing_write)
    else:
        monkeypatch.setattr(
            dataset_mod.PendingFile,
            "commit",
            lambda self: (_ for _ in ()).throw(OSError(28, "No space left on device")),
        )
    with pytest.raises(OSError, match="No space"):
        ds.y = np.arange(1 << 18 if fail == "data" else 700)
    monkeypatch.undo()
    assert snapshot(tmp_path / "mydata") == before
    ds.b = 1  # sorts before x: both get blocks
    ds.y = 2
    assert list(DataSet("mydata", path=tmp_path)) == ["x", "b", "y"]


def test_backend_failure_midway_leaves_dataset_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x = np.arange(500)
    before = snapshot(tmp_path / "mydata")
    real_write = NpyBackend.write

    def half_write(self: NpyBackend, root: Path, stem: str, arrays: Any, **kw: Any) -> Any:
        first = dict(list(arrays.items())[:1])
        real_write(self, root, stem + "_partial", first, **kw)  # something lands on disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(NpyBackend, "write", half_write)
    with pytest.raises(OSError):
        ds.x = [np.arange(600), np.arange(700)]
    with pytest.raises(OSError):
        ds.fresh = [np.arange(600), np.arange(700)]
    monkeypatch.undo()
    assert snapshot(tmp_path / "mydata") == before


def test_leftovers_of_a_dead_writer_are_removed_by_the_next(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x = np.arange(500)
    root = tmp_path / "mydata"
    (root / ".x.py.0123456789abcdef.tmp").write_text("half")
    (root / "x_data" / "g7_0.npy").write_bytes(b"half an array")
    (root / "y_data").mkdir()
    (root / "y_data" / "g1_0.npy").write_bytes(b"never committed")
    ds2 = DataSet("mydata", "w", path=tmp_path)
    ds2.x = np.arange(600)
    assert sorted(os.listdir(root)) == sorted([MARKER, "__init__.py", LOCK_NAME, "x.py", "x_data"])
    assert os.listdir(root / "x_data") == ["g8_0.npy"]  # generations never go back


# ---------------------------------------------------------------- locking


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from persist_hooks.dataset import DataSet
    ds = DataSet("mydata", "w", path=sys.argv[1])
    with ds.locked():
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    DataSet("mydata", "w", path=tmp_path).x = "old"
    with subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env_without_hook(),
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def test_lock_timeout_names_the_lock_file(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    ds = DataSet("mydata", "w", path=tmp_path, timeout=0.2)
    before = snapshot(tmp_path / "mydata")
    with pytest.raises(LockTimeout) as info:
        ds.x = "new"
    assert str(tmp_path / "mydata" / LOCK_NAME) in str(info.value)
    with pytest.raises(LockTimeout):
        ds["x"] = "info"
    with pytest.raises(LockTimeout), ds.locked(timeout=0.1):
        pass
    assert snapshot(tmp_path / "mydata") == before
    assert DataSet("mydata", path=tmp_path).x == "old"  # readers need no lock
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(10)
    ds.x = "new"
    assert ds.x == "new"


def test_locked_batch_and_shared_lock_in_one_process(tmp_path: Path) -> None:
    ds1 = DataSet("mydata", "w", path=tmp_path, timeout=0.2)
    ds2 = DataSet("mydata", "w", path=str(tmp_path) + "/.", timeout=0.2)
    assert ds1._lock is ds2._lock is writer_lock(tmp_path / "mydata")
    probe = textwrap.dedent(
        """
        import sys
        from persist_hooks.dataset import DataSet
        from persist_hooks.errors import LockTimeout
        try:
            DataSet("mydata", "w", path=sys.argv[1], timeout=0.2).z = 1
        except LockTimeout:
            print("timeout")
        else:
            print("wrote")
        """
    )
    with ds1.locked():
        ds1.a = 1
        ds2.b = 2  # same thread: the shared lock is re-entrant
        out = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path)],
            capture_output=True,
            text=True,
            env=env_without_hook(),
            check=True,
        )
        assert out.stdout.strip() == "timeout"
        errors: list[BaseException] = []
        t = threading.Thread(target=lambda: _capture(errors, lambda: setattr(ds2, "c", 3)))
        t.start()
        t.join()
        assert errors and isinstance(errors[0], LockTimeout)
    ds2.c = 3
    assert sorted(DataSet("mydata", path=tmp_path)) == ["a", "b", "c"]


def _capture(errors: list[BaseException], fn: Any) -> None:
    try:
        fn()
    except BaseException as exc:
        errors.append(exc)


# ---------------------------------------------------------------- costs and structure


def test_opening_never_loads_items_or_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.big = np.arange(10_000)
    ds["big"] = "info"
    (tmp_path / "mydata" / "boom.py").write_text("raise RuntimeError('loaded!')\n")

    def no_open(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an array was opened")

    monkeypatch.setattr(NpyBackend, "open", no_open)
    for mode in ("r", "w"):
        opened = DataSet("mydata", mode, path=tmp_path)
        assert list(opened) == ["big", "boom"] and opened["big"] == "info" and "big" in opened
        assert opened["boom"] is None  # an item file copied in by hand: a key, never loaded
        repr(opened)


def test_writes_never_regenerate_other_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write archives only its own key's metadata and never executes __init__.py."""
    ds = DataSet("mydata", "w", path=tmp_path)
    for i in range(50):
        ds[f"k{i}"] = {"i": i}
    ds["k_tuple"] = (1, "t")  # not plain data: archived source, not a literal
    import persist_hooks.archive as archive_mod

    calls: list[str] = []
    real = archive_mod.assignment_source

    def counting(target: str, obj: object) -> str:
        calls.append(target)
        return real(target, obj)

    def no_exec(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("__init__.py was executed during a write")

    monkeypatch.setattr(archive_mod, "assignment_source", counting)
    monkeypatch.setattr(dataset_mod, "read_info", no_exec)
    ds.new = [1, 2]
    ds["new"] = {"units": ("m", "s")}
    ds["k3"] = ("changed",)
    ds["k5"] = "plain data: a literal"
    assert ds._insert(5, info={1, 2}) == "x_0"
    assert calls == ["_info_dict['new']", "_info_dict['k3']", "_info_dict['x_0']"]
    monkeypatch.undo()
    info = DataSet("mydata", path=tmp_path)
    assert info["k3"] == ("changed",) and info["k4"] == {"i": 4} and info["x_0"] == {1, 2}
    assert info["new"] == {"units": ("m", "s")} and info["k_tuple"] == (1, "t")


def test_no_bytecode_is_written(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x = 1
    ds["x"] = 2
    assert (ds.x, ds["x"]) == (1, 2)
    assert not (tmp_path / "mydata" / "__pycache__").exists()


def test_durable_writes(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path, durable=True, backend="npy", backend_options={})
    ds.x = np.arange(500)
    ds["x"] = "d"
    del ds.x
    assert list(ds) == ["x"]


# ---------------------------------------------------------------- hand edits, old formats


def test_hand_broken_files(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.good = 1
    ds["good"] = "g"
    ds.bad = 2
    root = tmp_path / "mydata"
    (root / "bad.py").write_text((root / "bad.py").read_text().replace("bad = 2", "bad = (2"))
    with pytest.raises(FormatError, match=r"bad\.py, line \d+"):
        _ = ds.bad
    assert ds.good == 1
    init = root / "__init__.py"
    init.write_text(init.read_text().replace("_info_dict['good'] = \"g\"", "_info_dict[good = "))
    with pytest.raises(FormatError, match=r"__init__\.py, line 4"):
        _ = ds["good"]
    assert ds.good == 1  # items do not need the metadata


def test_hand_edited_init_without_blocks_is_rewritten(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x = 1
    init = tmp_path / "mydata" / "__init__.py"
    init.write_text("_info_dict = {'x': 'by hand', 'y': [1, 2]}\n")
    ds["z"] = "new"
    assert fmt.init_keys(init.read_text()) == ["x", "y", "z"]
    fresh = DataSet("mydata", path=tmp_path)
    assert (fresh["x"], fresh["y"], fresh["z"]) == ("by hand", [1, 2], "new")


PERSIST3_X = """
def _arrays():
    import os.path, numpy
    dir = os.path.dirname(__file__)
    res = {}
    for name in ['array_0']:
        filename = os.path.join(dir, 'x_data', name + ".npy")
        res[name] = numpy.asarray(numpy.load(filename))
    return res

_arrays = _arrays()
x = [_arrays['array_0'], {'a': 1}]
try: del __builtins__, _arrays
except NameError: pass
import sys
sys.modules[__name__] = x"""


def test_persist3_dataset(tmp_path: Path) -> None:
    root = tmp_path / "old"
    (root / "x_data").mkdir(parents=True)
    (root / MARKER).write_text("")
    np.save(root / "x_data" / "array_0.npy", np.arange(1000.0))
    (root / "x.py").write_text(PERSIST3_X)
    (root / "y.py").write_text("y = 5\nimport sys\nsys.modules[__name__] = y")
    (root / "__init__.py").write_text(
        "def _info_dict():\n    return dict([('x', 'info'), ('y', None)])\n"
        "_info_dict = _info_dict()\n"
    )
    ds = DataSet("old", path=tmp_path)
    assert list(ds) == ["x", "y"] and ds["x"] == "info"
    assert ds.x[1] == {"a": 1} and ds.x[0][999] == 999.0 and ds.y == 5
    w = DataSet("old", "w", path=tmp_path)
    w["y"] = "now with metadata"
    assert fmt.parse_init((root / "__init__.py").read_text()) is not None
    assert (root / MARKER).read_text() == fmt.MARKER_TEXT
    w.x = np.arange(2000.0)
    assert os.listdir(root / "x_data") == ["g1_0.npy"]  # the old array_0.npy is gone
    fresh = DataSet("old", path=tmp_path)
    assert (fresh["x"], fresh["y"], fresh.y) == ("info", "now with metadata", 5)
    assert fresh.x.shape == (2000,)


def test_untrusted_needs_the_safe_evaluator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = DataSet("mydata", "w", path=tmp_path)
    writer.x = 1
    writer["x"] = (1, 2)  # not a literal of the JSON subset: needs the evaluator
    monkeypatch.setitem(sys.modules, "persist_hooks.safe", None)
    ds = DataSet("mydata", path=tmp_path, trusted=False)
    with pytest.raises(UnsafeArchiveError):
        _ = ds.x
    with pytest.raises(UnsafeArchiveError):
        list(ds)


# ---------------------------------------------------------------- plain Python


PLAIN_PYTHON = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import mydata
    out = {"info": mydata._info_dict, "dir": [n for n in dir(mydata) if not n.startswith("_")]}
    out["x_via_getattr"] = [mydata.x[0].tolist()[:3], mydata.x[1]]
    import mydata.y
    out["y_import"] = sys.modules["mydata.y"]
    from mydata import z
    out["z_from"] = z.tolist()[-1]
    try:
        mydata.meta_only
    except AttributeError:
        out["meta_only"] = "AttributeError"
    out["persist_hooks_loaded"] = any(m.startswith("persist_hooks") for m in sys.modules)
    try:
        import persist_hooks
    except ImportError:
        out["persist_hooks_importable"] = False
    else:
        out["persist_hooks_importable"] = True
    print(json.dumps(out))
    """
)


def test_imports_with_plain_python_without_persist_hooks(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x = [np.arange(1000.0), {"a": 1}]
    ds["x"] = "a list"
    ds.y = {"k": (1, 2)}
    ds.z = np.arange(5000)
    ds.z = np.arange(6000)  # rewritten within the same second
    ds["meta_only"] = {"units": "m"}
    for name in ("extra_10", "extra_9"):  # item files copied in by hand: no key block
        (tmp_path / "mydata" / f"{name}.py").write_text(f"{name} = 1\n")
    numpy_site = str(Path(np.__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PLAIN_PYTHON, str(tmp_path), numpy_site],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    keys = ["x", "y", "z", "meta_only", "extra_9", "extra_10"]
    assert list(got["info"]) == keys == list(DataSet("mydata", path=tmp_path))
    assert got == {
        "info": {
            "x": "a list",
            "y": None,
            "z": None,
            "meta_only": {"units": "m"},
            "extra_9": None,
            "extra_10": None,
        },
        "dir": ["extra_10", "extra_9", "meta_only", "x", "y", "z"],
        "x_via_getattr": [[0.0, 1.0, 2.0], {"a": 1}],
        "y_import": {"k": [1, 2]},
        "z_from": 5999,
        "meta_only": "AttributeError",
        "persist_hooks_loaded": False,
        "persist_hooks_importable": False,
    }


def test_public_name() -> None:
    assert persist_hooks.DataSet is DataSet  # type: ignore[attr-defined]


def test_own_writes_update_the_metadata_view_without_rereading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    for i in range(20):
        ds[f"k{i}"] = i
    assert len(ds) == 20  # loads the metadata once

    def no_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("__init__.py was executed again")

    monkeypatch.setattr(dataset_mod, "read_info", no_read)
    ds["k3"] = {"new": [1]}
    ds.item = 5
    ds["fresh"] = ("t", 1)
    del ds["k4"]
    assert ds["k3"] == {"new": [1]} and ds["item"] is None and ds["fresh"] == ("t", 1)
    assert "k4" not in ds and list(ds)[-2:] == ["item", "fresh"]


def test_random_operations_agree_with_a_fresh_reader(tmp_path: Path) -> None:
    import random

    rng = random.Random(5)
    ds = DataSet("mydata", "w", path=tmp_path)
    other = DataSet("mydata", "w", path=tmp_path)  # a second writer in the same process
    model_info: dict[str, Any] = {}
    model_items: dict[str, Any] = {}
    for step in range(150):
        writer = ds if rng.random() < 0.7 else other
        key = f"k{rng.randrange(6)}"
        op = rng.choice(["item", "info", "info", "del_item", "del_key"])
        if op == "item":
            setattr(writer, key, [step, np.full(150, step)])
            model_items[key] = step
            model_info.setdefault(key, None)
        elif op == "info":
            writer[key] = {"step": step}
            model_info[key] = {"step": step}
        elif op == "del_item" and key in model_items:
            delattr(writer, key)
            del model_items[key]
            if model_info.get(key) is None:
                model_info.pop(key, None)
        elif op == "del_key" and key in model_info:
            del writer[key]
            model_info.pop(key)
            model_items.pop(key, None)
        for view in (ds, other, DataSet("mydata", path=tmp_path)):
            assert list(view) == list(model_info)  # key order is insertion order
            assert {k: view[k] for k in view} == model_info
        for k in model_info:
            if k in model_items:
                assert ds.__getattr__(k)[0] == model_items[k]
            else:
                assert not hasattr(ds, k)


def test_names_never_act_as_paths(tmp_path: Path) -> None:
    ds = DataSet("mydata", "w", path=tmp_path)
    victim = tmp_path / "victim.py"
    victim.write_text("victim = 1\n")
    with pytest.raises(AttributeError):
        getattr(ds, "../victim")
    with pytest.raises(AttributeError):
        delattr(ds, "../victim")
    with pytest.raises(KeyError):
        del ds["../victim"]
    with pytest.raises(ValueError):
        ds["../victim"] = 1
    assert victim.read_text() == "victim = 1\n"


def test_creation_in_progress_elsewhere_is_waited_for(tmp_path: Path) -> None:
    """A directory holding only a creator's __init__.py (marker not yet written) is not foreign."""
    root = tmp_path / "mydata"
    root.mkdir()
    lock = writer_lock(root)
    ready, finish = threading.Event(), threading.Event()

    def creator() -> None:
        with lock.hold(timeout=5):
            (root / "__init__.py").write_text(fmt.render_init("mydata"))
            ready.set()
            finish.wait(5)
            (root / MARKER).write_text(fmt.MARKER_TEXT)

    thread = threading.Thread(target=creator)
    thread.start()
    assert ready.wait(5)
    threading.Timer(0.2, finish.set).start()
    ds = DataSet("mydata", "w", path=tmp_path, timeout=5)  # waits for the lock, no ValueError
    thread.join()
    ds.x = 1
    assert DataSet("mydata", path=tmp_path).x == 1


def test_a_creation_that_died_before_its_marker_is_completed(tmp_path: Path) -> None:
    root = tmp_path / "mydata"
    root.mkdir()
    (root / "__init__.py").write_text(fmt.render_init("mydata"))
    (root / LOCK_NAME).write_text("")
    with pytest.raises(FileNotFoundError):
        DataSet("mydata", path=tmp_path)
    DataSet("mydata", "w", path=tmp_path).x = 1
    assert DataSet("mydata", path=tmp_path).x == 1
    # but a user's own __init__.py is never taken over
    other = tmp_path / "pkg"
    other.mkdir()
    (other / "__init__.py").write_text("print('my package')\n")
    with pytest.raises(ValueError, match="not a DataSet"):
        DataSet("pkg", "w", path=tmp_path)
    assert (other / "__init__.py").read_text() == "print('my package')\n"


@pytest.mark.parametrize("size", [700, 1 << 18], ids=["small", "large"])
def test_a_large_item_is_staged_on_a_pool_thread_while_its_data_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """The item's source and key are prepared while the checksum's pool thread waits for
    the data write (a small array: at once, on the writing thread); same files either way."""
    threads: list[int] = []
    real_prepare = dataset_mod.prepare_text

    def prepare(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(dataset_mod, "prepare_text", prepare)
    ds = DataSet("mydata", "w", path=tmp_path, backup_data=True)
    ds["b"] = "metadata first"
    without_data = len(threads)
    ds.a, ds.b = np.arange(size), [np.arange(size), "b"]
    ds.a = np.arange(size) + 1  # a backup of a, too
    on_pool = [t != threading.get_ident() for t in threads]
    assert on_pool == [False] * without_data + [size > 700] * 4  # a.py, b.py, a.py.bak, a.py
    fresh = DataSet("mydata", path=tmp_path)
    assert list(fresh) == ["b", "a"] and fresh["b"] == "metadata first"
    np.testing.assert_array_equal(fresh.a, np.arange(size) + 1)
    np.testing.assert_array_equal(fresh.b[0], np.arange(size))
    assert sorted(p.name for p in (tmp_path / "mydata").iterdir()) == sorted(
        [MARKER, "__init__.py", LOCK_NAME, "a.py", "a.py.bak", "a_data", "b.py", "b_data"]
    )


def test_a_reader_takes_no_lock_and_imports_no_locking(tmp_path: Path) -> None:
    """Readers need no lock: a read-only session never imports fasteners (~10 ms)."""
    ds = DataSet("mydata", "w", path=tmp_path)
    ds.x, ds["x"] = [1, 2], "info"
    code = textwrap.dedent(
        f"""
        import sys
        from persist_hooks import DataSet
        ds = DataSet("mydata", "r", path={str(tmp_path)!r})
        assert ds.x == [1, 2] and ds["x"] == "info" and list(ds) == ["x"]
        assert "persist_hooks.locking" not in sys.modules and "fasteners" not in sys.modules
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_dataset_created_with_items_while_it_is_opened_is_not_foreign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creates the DataSet and writes an item between this one's first look
    and its check for foreign files: those files are the DataSet's, not a user's."""
    real = dataset_mod.is_dataset_dir
    looks: list[bool] = []

    def stale_first_look(path: Any) -> bool:
        if not looks:  # the first look: nothing there yet, then the other writer is done
            looks.append(False)
            other = DataSet("mydata", "w", path=tmp_path)
            other.x, other["x"] = [1], "from the other"
            return False
        looks.append(real(path))
        return looks[-1]

    monkeypatch.setattr(dataset_mod, "is_dataset_dir", stale_first_look)
    ds = DataSet("mydata", "w", path=tmp_path)
    monkeypatch.undo()
    ds.y = 2
    assert list(ds) == ["x", "y"] and ds["x"] == "from the other"
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not a DataSet"):
        DataSet("foreign", "w", path=tmp_path)

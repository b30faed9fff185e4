"""persist_hooks.convert: rewriting a DataSet's arrays with another backend, item by item."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import persist_hooks as ph
from persist_hooks._format import parse_item
from persist_hooks.convert import convert
from persist_hooks.dataset import DataSet
from persist_hooks.errors import BackendError

pytest.importorskip("h5py")
pytest.importorskip("zarr")


def header(root: Path, name: str) -> dict[str, Any]:
    path = root / f"{name}.py"
    item = parse_item(path.read_text(), str(path))
    assert item is not None
    return item.header


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but the lock file) with its bytes."""
    out: dict[str, bytes] = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if f != ".persist_hooks.lock":
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def values() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    return {
        "plain": rng.standard_normal(2000),
        "box": [
            rng.integers(-(2**31), 2**31, 500, dtype=np.int32).astype(">i4"),
            {"c": (rng.standard_normal(300) + 1j * rng.standard_normal(300)).astype("c8")},
            (rng.random((40, 30)) > 0.5, "label"),
        ],
        "grid": np.asfortranarray(rng.standard_normal((50, 20)).astype("f4")),
        "texts": {"s": np.array([b"ab", b"xyz\x00"] * 100), "u": np.array(["héllo", "w"] * 100)},
        "small": {"n": 3, "tiny": np.arange(5)},
    }


def assert_same(actual: Any, expected: Any) -> None:
    if isinstance(expected, np.ndarray):
        got = np.asarray(actual)
        assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
        assert got.shape == expected.shape
        assert got.tobytes() == np.ascontiguousarray(expected).tobytes()  # bit-exact
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys()
        for k in expected:
            assert_same(actual[k], expected[k])
    elif isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected) and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    else:
        assert actual == expected


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    ds = DataSet("data", "w", path=tmp_path, backend="npy")
    vals = values()
    for name, v in vals.items():
        setattr(ds, name, v)
    ds["plain"] = {"units": "m"}
    ds["meta_only"] = "no object"
    return tmp_path / "data", vals


def test_round_trip_npy_hdf5_zarr_npy_is_bit_exact(
    filled: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # superseded zarr groups are otherwise kept for a grace period (backends.retention)
    monkeypatch.setenv("PERSIST_HOOKS_GRACE_SECONDS", "0")
    root, vals = filled
    with_arrays = ["plain", "box", "grid", "texts"]
    small_text = (root / "small.py").read_bytes()
    for backend in ("hdf5", "zarr", "npy"):
        assert convert(root, backend) == with_arrays
        for name in with_arrays:
            assert header(root, name)["backend"] == backend
        for mode in ("r", "a"):
            ds = DataSet("data", mode, path=root.parent)
            for name, v in vals.items():
                assert_same(getattr(ds, name), v)
            assert ds["plain"] == {"units": "m"} and ds["meta_only"] == "no object"
            assert list(ds) == [*vals, "meta_only"]
        # items without external arrays are left exactly as they were
        assert (root / "small.py").read_bytes() == small_text
    # only the current generation's data remains
    for name in with_arrays:
        kept = {Path(e["path"]).parts[1] for e in header(root, name)["arrays"].values()}
        assert set(os.listdir(root / f"{name}_data")) == kept
    assert not [p for p in os.listdir(root) if p.endswith(".tmp")]


FINGERPRINT = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[-1])
    def fingerprint(obj):
        # arrays by dtype (byte order included), shape and bytes (pickle drops byte order)
        if isinstance(obj, np.ndarray):
            data = np.ascontiguousarray(obj).tobytes()
            return ["array", obj.dtype.str, list(obj.shape), hashlib.sha256(data).hexdigest()]
        if isinstance(obj, dict):
            return {k: fingerprint(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [type(obj).__name__, [fingerprint(v) for v in obj]]
        return repr(obj)
    """
)


def test_body_is_kept_and_plain_python_reads_converted_items(
    filled: tuple[Path, dict[str, Any]],
) -> None:
    root, vals = filled
    before = parse_item((root / "box.py").read_text(), "box.py")
    convert(root, "hdf5", items=["box"])
    after = parse_item((root / "box.py").read_text(), "box.py")
    assert before is not None and after is not None
    assert after.body == before.body
    assert after.header["generation"] == before.header["generation"] + 1
    assert header(root, "plain")["backend"] == "npy"  # not selected
    code = FINGERPRINT + "import data.box as b; print(json.dumps(fingerprint(b)))"
    env = {**os.environ, "PERSIST_HOOKS_NO_HOOK": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(root.parent)],
        capture_output=True,
        env=env,
        check=True,
        text=True,
    ).stdout
    namespace: dict[str, Any] = {}
    exec(FINGERPRINT, namespace)
    assert json.loads(out) == json.loads(json.dumps(namespace["fingerprint"](vals["box"])))


def test_returns_only_converted_and_skips_same_backend(
    filled: tuple[Path, dict[str, Any]],
) -> None:
    root, _ = filled
    assert convert(root, "npy") == []
    assert convert(root, "hdf5", items=["grid", "small"]) == ["grid"]
    assert convert(root, "hdf5", items=["grid"]) == []
    # the same backend with other options is a conversion
    assert convert(root, "hdf5", options={"compression": "gzip"}, items=["grid"]) == ["grid"]
    assert header(root, "grid")["options"]["compression"] == "gzip"


def test_module_is_callable_and_public_name(filled: tuple[Path, dict[str, Any]]) -> None:
    import persist_hooks.convert as module

    root, vals = filled
    assert module(root, "zarr", items=["plain"]) == ["plain"]
    assert_same(DataSet("data", path=root.parent).plain, vals["plain"])
    assert callable(ph.convert)


def test_errors(filled: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = filled
    before = snapshot(root)
    with pytest.raises(FileNotFoundError):
        convert(tmp_path / "nothing", "hdf5")
    with pytest.raises(BackendError) as info:
        convert(root, "hdf9")
    assert "npy" in str(info.value) and "hdf5" in str(info.value)
    with pytest.raises(BackendError, match="compression"):
        convert(root, "hdf5", options={"compression": "zip"})
    with pytest.raises(KeyError, match="nope"):
        convert(root, "hdf5", items=["plain", "nope"])
    assert snapshot(root) == before


@pytest.mark.parametrize("target", ["hdf5", "zarr"])
def test_unstorable_dtype_changes_nothing(tmp_path: Path, target: str) -> None:
    ds = DataSet("data", "w", path=tmp_path)
    ds.ok = np.arange(1000.0)
    ds.when = {"t": np.arange(1000).astype("g")}  # longdouble: only npy stores it
    root = tmp_path / "data"
    before = snapshot(root)
    with pytest.raises(BackendError) as info:
        convert(root, target)
    message = str(info.value)
    assert "'when'" in message and "float128" in message and "npy" in message
    assert snapshot(root) == before
    assert np.array_equal(ds.when["t"], np.arange(1000).astype("g"))


def test_failure_midway_leaves_item_with_old_data(
    filled: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from persist_hooks_hdf5._backend import Hdf5Backend

    root, vals = filled
    original = Hdf5Backend.write
    calls: list[str] = []

    def failing_write(self: Hdf5Backend, root: Path, stem: str, arrays: Any, **kw: Any) -> Any:
        calls.append(stem)
        if stem.startswith("box_data/"):
            original(self, root, stem, arrays, **kw)  # the new data is written ...
            raise OSError(28, "No space left on device")  # ... then the disk fills up
        return original(self, root, stem, arrays, **kw)

    monkeypatch.setattr(Hdf5Backend, "write", failing_write)
    box_before = {p: b for p, b in snapshot(root).items() if p.startswith("box")}
    with pytest.raises(OSError, match="No space"):
        convert(root, "hdf5")
    assert calls == ["plain_data/g2", "box_data/g2"]
    # the failed item: exactly as before, old data readable, nothing new left behind
    assert {p: b for p, b in snapshot(root).items() if p.startswith("box")} == box_before
    assert header(root, "box")["backend"] == "npy"
    ds = DataSet("data", path=root.parent)
    assert_same(ds.box, vals["box"])
    # the item converted before the failure stays converted
    assert header(root, "plain")["backend"] == "hdf5"
    assert_same(ds.plain, vals["plain"])
    monkeypatch.undo()
    assert convert(root, "hdf5") == ["box", "grid", "texts"]  # a retry finishes the job
    assert_same(ds.box, vals["box"])


def test_grown_arrays_convert_with_their_rows(tmp_path: Path) -> None:
    ds = DataSet("data", "a", path=tmp_path, backend="npy")
    ds.x = np.arange(1000.0)
    ds.x.append(np.arange(10.0))  # header still says 1000 rows
    root = tmp_path / "data"
    convert(root, "zarr")
    expected = np.concatenate([np.arange(1000.0), np.arange(10.0)])
    assert_same(DataSet("data", path=tmp_path).x, expected)
    assert header(root, "x")["arrays"]["array_0"]["shape"] == [1010]


def test_foreign_items_are_left_alone(tmp_path: Path) -> None:
    ds = DataSet("data", "w", path=tmp_path)
    ds.x = np.arange(1000.0)
    root = tmp_path / "data"
    (root / "hand.py").write_text("hand = [1, 2]\n")
    ds["hand"] = None
    assert convert(root, "hdf5") == ["x"]
    assert (root / "hand.py").read_text() == "hand = [1, 2]\n"
    assert ds.hand == [1, 2]


READER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from persist_hooks.dataset import DataSet
    parent, stop = sys.argv[1], sys.argv[2]
    ds = DataSet("data", "r", path=parent)
    reads = stale = 0
    while True:
        finished = os.path.exists(stop)
        for name in ("a", "b"):
            v = getattr(ds, name)  # must never fail
            try:
                data = np.asarray(v["data"])
            except FileNotFoundError:
                # a lazy hdf5/zarr handle whose item was rewritten since: read the item again
                stale += 1
                continue
            if data.shape != (5000,) or data[0] != v["tag"] or data[-1] != v["tag"]:
                raise AssertionError(f"wrong value of {name}: {v['tag']} {data[:1]} {v['data']!r}")
            reads += 1
        if finished:
            break
    print(json.dumps({"reads": reads, "stale": stale}))
    """
)


@pytest.mark.parametrize(
    "cycle",
    [
        ("hdf5", "npy"),
        ("zarr", "npy"),
    ],
)
def test_reader_in_another_process_never_fails(tmp_path: Path, cycle: tuple[str, str]) -> None:
    ds = DataSet("data", "w", path=tmp_path)
    ds.a = {"tag": 1.0, "data": np.full(5000, 1.0)}
    ds.b = {"tag": 2.0, "data": np.full(5000, 2.0)}
    root = tmp_path / "data"
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tmp_path), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)  # let the reader start reading
        for _ in range(5):
            for backend in cycle:
                assert convert(root, backend) == ["a", "b"]
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert json.loads(out)["reads"] > 0

"""Interoperability with dask: archiving dask arrays without computing them, writing them chunk by
chunk on every backend (on a ``dask.distributed`` cluster for zarr), and ``DataSet.open(as_=...)``.

Remote storage is tested with the zarr plugin (plugins/persist-hooks-zarr/tests), xarray with
its plugin (plugins/persist-hooks-xarray/tests).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import persist_hooks as ph
from persist_hooks.backends.lazy import LazyArray, dims_of, lazy_source, set_dims
from persist_hooks.backends.npy import NpyBackend
from persist_hooks.interop import StoredArray

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

BACKENDS = [b for b in ("npy", "hdf5", "zarr") if b in ph.backends()]


class Counter:
    """Counts computed dask blocks (thread-safe: the threaded scheduler runs blocks in parallel)."""

    def __init__(self) -> None:
        self.blocks = 0
        self._lock = threading.Lock()

    def __call__(self, block: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if block.size:  # dask calls it once on an empty array to learn the output type
            with self._lock:
                self.blocks += 1
        return block


def counted(x: Any) -> tuple[Any, Counter]:
    counter = Counter()
    return x.map_blocks(counter, dtype=x.dtype), counter


# ---------------------------------------------------------------- archiving without computing


def test_archive_externalises_dask_arrays_without_computing_them() -> None:
    x, counter = counted(da.arange(1000, chunks=100))
    a = ph.Archive(array_threshold=10)
    a.insert(x=[x, x])
    assert counter.blocks == 0
    (placeholder,) = a.data.values()
    assert placeholder.shape == (1000,) and placeholder.dtype == x.dtype
    assert placeholder.strides == (0,)  # takes no memory
    assert lazy_source(placeholder) is x
    assert "_arrays['array_0']" in str(a)


def test_small_dask_arrays_are_computed_into_the_source() -> None:
    a = ph.Archive(scoped=False, array_threshold=100)
    a.insert(x=da.arange(4, chunks=2))
    assert a.data == {}
    assert ph.restore(str(a))["x"].tolist() == [0, 1, 2, 3]


def test_placeholders_never_leak_as_data() -> None:
    assert lazy_source(np.zeros(3)) is None
    assert lazy_source(np.broadcast_to(np.zeros(()), (5,))) is None  # zero strides alone
    lazy = LazyArray(da.ones((2, 3), chunks=1), dims=("a", "b"))
    assert dims_of(np.asarray(lazy)) == ("a", "b")
    assert lazy.compute().tolist() == [[1.0] * 3] * 2
    with pytest.raises(ValueError, match="2 dimension names"):
        set_dims(np.zeros(3), ("a", "b"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dataset_round_trip_of_dask_arrays(backend: str, tmp_path: Path) -> None:
    x, counter = counted(da.arange(60_000, chunks=7_000).astype(">f8").reshape(300, 200))
    text = da.from_array(np.array(["ab", "cde", ""] * 100), chunks=70)
    ds = ph.DataSet("d", "w", path=tmp_path, backend=backend, array_threshold=50)
    ds.x = {"x": x, "again": x, "text": text, "small": da.arange(5, chunks=2)}
    assert counter.blocks > 0  # computed while being written, by the backend
    got = ds.x
    assert got["x"] is got["again"]
    np.testing.assert_array_equal(np.asarray(got["x"]), np.arange(60_000.0).reshape(300, 200))
    assert np.asarray(got["x"]).dtype == np.dtype(">f8")
    np.testing.assert_array_equal(np.asarray(got["text"]), np.array(["ab", "cde", ""] * 100))
    assert got["small"].tolist() == [0, 1, 2, 3, 4]
    assert data_problems(tmp_path / "d") == []


def data_problems(path: Path) -> list[str]:
    """What ``ph.verify`` finds wrong with the stored arrays."""
    report = ph.verify(path)
    return [str(p) for p in report.problems if p.kind.endswith("-data")]


def test_npy_and_hdf5_write_row_blocks_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 MB written in 1 MB blocks: the writer never holds more than a few blocks."""
    from persist_hooks.backends import npy

    monkeypatch.setattr(npy, "BLOCK_BYTES", 1 << 20)
    if "hdf5" in BACKENDS:
        from persist_hooks_hdf5 import _backend as hdf5

        monkeypatch.setattr(hdf5, "BLOCK_BYTES", 1 << 20)
    x = da.random.default_rng(1).random((1000, 1000), chunks=(100, 1000))
    expected = x.compute()
    for backend in BACKENDS[:2]:
        ds = ph.DataSet(f"d{backend}", "w", path=tmp_path, backend=backend)
        tracemalloc.start()
        try:
            ds.x = x
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        np.testing.assert_array_equal(np.asarray(ds.x), expected)
        assert peak < x.nbytes / 2, f"{backend}: peak {peak / 1e6:.1f} MB while writing 8 MB"


def test_backends_without_lazy_support_get_computed_arrays(tmp_path: Path) -> None:
    seen: list[Any] = []

    class Recording(NpyBackend):
        name = "recording"

        def write(self, root: Path, stem: str, arrays: Any, *, durable: bool = False) -> Any:
            seen.extend(arrays.values())
            return super().write(root, stem, arrays, durable=durable)

    assert not Recording.supports_lazy_arrays
    a = ph.Archive(array_threshold=10)
    a.insert(x=da.arange(100, chunks=30))
    Recording().write(tmp_path, "g1", a.data)
    assert lazy_source(seen[0]) is None and seen[0].tolist() == list(range(100))


# ---------------------------------------------------------------- DataSet.open


@pytest.mark.parametrize("backend", BACKENDS)
def test_open_as_dask_numpy_proxy(backend: str, tmp_path: Path) -> None:
    ds = ph.DataSet("d", "w", path=tmp_path, backend=backend, array_threshold=10)
    data = np.arange(3000, dtype=">i4").reshape(100, 30)
    ds.x = [data, "label", np.array(["x", "yz"] * 20)]
    r = ph.DataSet("d", "r", path=tmp_path)
    arr, label, text = r.open("x", as_="dask")
    assert isinstance(arr, da.Array) and isinstance(text, da.Array) and label == "label"
    assert arr.dtype == data.dtype and arr.shape == data.shape
    np.testing.assert_array_equal(arr.compute(), data)
    np.testing.assert_array_equal(text.compute(), np.array(["x", "yz"] * 20))
    assert r.open("x", as_="dask", chunks=(10, 30))[0].chunks[0] == (10,) * 10
    as_numpy = r.open("x", as_="numpy")[0]
    assert type(as_numpy) is np.ndarray
    np.testing.assert_array_equal(as_numpy, data)
    np.testing.assert_array_equal(np.asarray(r.open("x")[0]), data)
    with pytest.raises(ValueError, match="as_ must be one of"):
        r.open("x", as_="pandas")
    with pytest.raises(AttributeError, match="no item"):
        r.open("missing", as_="dask")


def test_open_as_dask_reads_nothing_until_computed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = ph.DataSet("d", "w", path=tmp_path, array_threshold=10)
    ds.x = np.arange(1000.0)
    reads: list[Any] = []
    original = StoredArray.__getitem__

    def spy(self: StoredArray, index: Any) -> Any:
        reads.append(index)
        return original(self, index)

    monkeypatch.setattr(StoredArray, "__getitem__", spy)
    lazy = ds.open("x", as_="dask", chunks=250)
    assert reads == []
    assert float(lazy[:250].sum().compute()) == sum(range(250))
    assert len(reads) == 1


def test_open_as_dask_safe_loading(tmp_path: Path) -> None:
    ds = ph.DataSet("d", "w", path=tmp_path, array_threshold=10)
    ds.x = {"a": np.arange(100)}
    r = ph.DataSet("d", "r", path=tmp_path, trusted=False)
    assert int(r.open("x", as_="dask")["a"].sum().compute()) == 4950


def test_stored_array_pickles(tmp_path: Path) -> None:
    b = NpyBackend()
    entry = b.write(tmp_path, "g1", {"a": np.arange(10)})["a"]
    s = pickle.loads(pickle.dumps(StoredArray(b, tmp_path, entry)))
    assert s[2:4].tolist() == [2, 3] and np.asarray(s).sum() == 45


def test_open_as_dask_without_dask_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = ph.DataSet("d", "w", path=tmp_path, array_threshold=10)
    ds.x = np.arange(100)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"pip install 'dask\[array\]'"):
        ds.open("x", as_="dask")


def test_import_does_not_load_dask_xarray_or_fsspec(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np, persist_hooks as ph\n"
        "ds = ph.DataSet('d', 'w', path=sys.argv[1]); ds.x = [np.arange(1000), {'a': 1}]\n"
        "assert ph.representers(); ds.x; ph.verify(ds._root)\n"
        "loaded = sorted(m for m in ('dask', 'xarray', 'fsspec', 'distributed') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "PERSIST_HOOKS_BACKEND": "npy"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- dask.distributed


@pytest.fixture(scope="module")
def cluster_client() -> Any:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.skipif("zarr" not in BACKENDS, reason="needs persist-hooks-zarr")
def test_zarr_write_on_a_cluster_never_materialises_in_the_client(cluster_client: Any, tmp_path: Path) -> None:
    """128 MB written by the workers: the client's traced memory stays far below the array."""
    x = da.random.default_rng(0).standard_normal((4000, 4000), chunks=(250, 4000))  # 8 MB chunks
    ds = ph.DataSet("big", "w", path=tmp_path, backend="zarr")
    from distributed import get_task_stream

    tracemalloc.start()
    try:
        with get_task_stream(cluster_client) as stream:
            ds.x = {"field": x}
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 8, f"client peak {peak / 1e6:.1f} MB for a {x.nbytes / 1e6:.0f} MB array"
    workers = {task["worker"] for task in stream.data}
    assert len(stream.data) >= x.npartitions and len(workers) == 2  # chunks computed on workers
    stored = ds.open("x", as_="dask")["field"]
    assert stored.chunks == x.chunks  # zarr chunks are dask's: workers never share a chunk
    assert float(abs(stored - x).max().compute()) == 0.0  # read back on the workers


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "zarr"])
def test_open_as_dask_computes_on_cluster_workers(backend: str, cluster_client: Any, tmp_path: Path) -> None:
    data = np.arange(200_000.0).reshape(400, 500)
    ds = ph.DataSet("d", "w", path=tmp_path, backend=backend)
    ds.x = data
    ds.y = da.from_array(data, chunks=(100, 500)) + 1  # written through the cluster's client
    lazy = ds.open("x", as_="dask", chunks=(100, 500))
    assert float(lazy.sum().compute()) == data.sum()
    np.testing.assert_array_equal(np.asarray(ds.y), data + 1)

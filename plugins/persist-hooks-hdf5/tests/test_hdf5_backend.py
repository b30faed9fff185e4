"""The hdf5 backend: the shared conformance suite, HDF5 specifics and DataSet round trips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from persist_hooks_hdf5 import Hdf5Backend

import persist_hooks as ph
from persist_hooks.errors import BackendError
from persist_hooks.testing import BackendTests, assert_identical, sample_array

h5py = pytest.importorskip("h5py")


class TestHdf5Conformance(BackendTests):
    backend_cls = Hdf5Backend
    invalid_options = [
        {"compression": "zip"},
        {"compression_opts": 12},
        {"compression_opts": True},
        {"shuffle": 1},
    ]


class TestHdf5CompressedConformance(BackendTests):
    backend_cls = Hdf5Backend
    backend_options = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


def test_layout_is_chunked_growable_and_readable_by_h5py(tmp_path: Path) -> None:
    big = sample_array("<f8", (300_000, 2), seed=1)
    arrays = {"array_0": big, "weird key": np.arange(3), "s": np.array(["ab", "€"])}
    entries = Hdf5Backend(compression="lzf").write(tmp_path, "x_data/g1", arrays)
    assert {e["path"] for e in entries.values()} == {"x_data/g1.h5"}
    assert [e["key"] for e in entries.values()] == ["array_0", "_1", "s"]
    with h5py.File(tmp_path / "x_data/g1.h5", "r") as f:
        ds = f["array_0"]
        assert ds.maxshape == (None, 2) and ds.compression == "lzf"
        assert np.prod(ds.chunks) * 8 >= 1 << 20
        assert_identical(ds[()], big)
        assert f["s"].attrs["persist_hooks_view"] == "<U2"


def test_unsupported_dtypes_name_npy(tmp_path: Path) -> None:
    for dt in ("g", "G", [("a", "<i4"), ("b", "g")]):
        with pytest.raises(BackendError, match="npy") as info:
            Hdf5Backend().check_dtype(np.dtype(dt))
        assert str(np.dtype(dt)) in str(info.value)
    with pytest.raises(BackendError, match="object arrays stay in the Python source"):
        Hdf5Backend().write(tmp_path, "g1", {"a": np.empty(2, object)})


def test_h5py_is_imported_lazily() -> None:
    code = (
        "import sys, persist_hooks_hdf5, persist_hooks.plugins as p; p.backends(); "
        "print('h5py' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dataset_roundtrip_and_append(tmp_path: Path) -> None:
    big = sample_array("<f8", (200_000,), seed=2)
    ds = ph.DataSet("d", "w", path=tmp_path, backend="hdf5")
    ds.x = big
    assert list((tmp_path / "d").rglob("*.h5"))
    assert_identical(np.asarray(ph.DataSet("d", "r", path=tmp_path).x), big)
    rows = np.arange(1000.0)
    with ph.DataSet("d", "a", path=tmp_path) as appendable:
        appendable.x.append(rows)
    got = np.asarray(ph.DataSet("d", "r", path=tmp_path).x)
    assert_identical(got, np.concatenate([big, rows]))
    with pytest.raises(ph.ReadOnlyError):
        ph.DataSet("d", "r", path=tmp_path).x.append(rows)


def test_waits_for_another_process_holding_the_file(tmp_path: Path) -> None:
    """HDF5 locks open files: a reader meeting a writer's lock waits instead of failing."""
    b = Hdf5Backend()
    entry = b.write(tmp_path, "g1", {"a": np.arange(10.0)})["a"]
    path = tmp_path / entry["path"]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import h5py, sys, time\n"
            f"f = h5py.File({str(path)!r}, 'r+')\n"
            "print('held', flush=True)\n"
            "time.sleep(0.5)\n"
            "f.close()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert_identical(np.asarray(b.open(tmp_path, entry)), np.arange(10.0))
    finally:
        holder.wait(timeout=30)


def test_mixed_backend_dataset(tmp_path: Path) -> None:
    """Each item records its backend: npy and hdf5 items live side by side in one DataSet."""
    a, b = sample_array("<f8", (5000, 2), seed=3), sample_array(">i4", (4000,), seed=4)
    ph.DataSet("d", "w", path=tmp_path, backend="hdf5").a = [a, "small"]
    ph.DataSet("d", "w", path=tmp_path, backend="npy").b = b
    ds = ph.DataSet("d", "r", path=tmp_path)
    got_a = ds.a
    assert got_a[1] == "small"
    assert_identical(np.asarray(got_a[0]), a)
    assert_identical(np.asarray(ds.b), b)
    assert list((tmp_path / "d").rglob("*.h5")) and list((tmp_path / "d").rglob("*.npy"))


def test_datetime_and_structured_are_hdf5_native_views(tmp_path: Path) -> None:
    """Compound types stay compound; datetimes are int64 with the numpy dtype in an attribute."""
    when = np.array(["2020-01-01T00:00:00.123", "NaT", "1969-12-31T23:59:59"], "<M8[ms]")
    rec_dt = np.dtype({"names": ["a", "s", "t"], "formats": ["<i4", "U2", ">m8[s]"],
                       "offsets": [0, 8, 20], "itemsize": 32})  # fmt: skip
    rec = sample_array(rec_dt, (5,), seed=5)
    entries = Hdf5Backend().write(tmp_path, "g1", {"when": when, "rec": rec})
    with h5py.File(tmp_path / "g1.h5", "r") as f:
        assert f["when"].dtype == np.dtype("<i8")
        assert_identical(f["when"][()].view("<M8[ms]"), when)
        assert f["rec"].dtype.names == ("a", "s", "t")  # an HDF5 compound type
        assert f["rec"].dtype["s"] == np.dtype(("<u4", (2,)))
        assert "persist_hooks_view" in f["rec"].attrs
    for key, arr in (("when", when), ("rec", rec)):
        proxy = Hdf5Backend().open(tmp_path, entries[key], mode="a")
        assert proxy.dtype == arr.dtype
        assert_identical(proxy[1:], arr[1:])
        proxy[0] = arr[-1]
        proxy.append(arr[:2])
        expected = np.empty(len(arr) + 2, arr.dtype)
        expected[0], expected[1 : len(arr)], expected[len(arr) :] = arr[-1], arr[1:], arr[:2]
        assert_identical(proxy[...], expected)
        untrusted = Hdf5Backend().open(tmp_path, entries[key], trusted=False)
        assert untrusted.dtype == arr.dtype


def test_value_survives_removal_of_its_file(tmp_path: Path) -> None:
    """A read proxy pins its file: unlinking it (a rewrite of the item) keeps the value readable."""
    arr = np.arange(9000.0).reshape(3000, 3)
    b = Hdf5Backend()
    entry = b.write(tmp_path, "x_data/g1", {"a": arr})["a"]
    reader = b.open(tmp_path, entry)
    writer = b.open(tmp_path, entry, mode="a")
    b.delete(tmp_path, [entry])
    assert not (tmp_path / entry["path"]).exists()
    assert_identical(reader[10:20], arr[10:20])
    assert reader.shape == arr.shape
    with pytest.raises(FileNotFoundError, match="re-read the item"):
        writer[0] = 1.0  # changing data nobody will read is refused
    b.write(tmp_path, "x_data/g1", {"a": arr + 1})  # the same path, another file
    assert_identical(np.asarray(reader), arr)
    with pytest.raises(FileNotFoundError):
        writer.append(arr[:1])
    reader.close()
    assert_identical(np.asarray(reader), arr + 1)  # closed: opens by path again


def test_one_open_per_slice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shape lookup and the read of one proxy operation share one opening of the file."""
    from persist_hooks_hdf5 import _backend

    b = Hdf5Backend()
    entry = b.write(tmp_path, "g1", {"a": np.arange(100.0)})["a"]
    proxy = b.open(tmp_path, entry)  # trusted: does not open the file with h5py
    opened: list[object] = []
    real = _backend._h5open

    def counting(*args: object, **kwargs: object) -> object:
        opened.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_backend, "_h5open", counting)
    assert_identical(proxy[40:45], np.arange(40.0, 45.0))
    assert len(opened) == 1


def test_write_never_truncates_or_removes_an_existing_file(tmp_path: Path) -> None:
    """The file is created exclusively (h5py mode "x"): an existing one is an error and stays.

    Truncating even an empty file would make ext4 start writeback when HDF5 closes it,
    which the DataSet's next rename then waits for.
    """
    b = Hdf5Backend()
    (tmp_path / "g1.h5").write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        b.write(tmp_path, "g1", {"a": np.arange(3.0)})
    assert (tmp_path / "g1.h5").read_bytes() == b"someone else's"
    entry = b.write(tmp_path, "g2", {"a": np.arange(3.0)})["a"]
    assert_identical(np.asarray(b.open(tmp_path, entry)), np.arange(3.0))


# ----------------------------------------------------------------- chunks written as plain bytes


def _creation(path: Path, name: str) -> tuple[int, int]:
    with h5py.File(path, "r") as f:
        plist = f[name].id.get_create_plist()
        return plist.get_alloc_time(), plist.get_fill_time()


@pytest.mark.parametrize(
    ("dtype", "shape"),
    [
        ("<f8", (300_000,)),  # 3 chunks, the last one partial
        (">i4", (100_001, 3)),  # big-endian, 2-d, rows that do not divide the chunk
        ("<c16", (70_000,)),
        ("?", (200_000,)),
        ("<U3", (100_000,)),  # stored as uint32 code units on one more axis
        ("<M8[ms]", (150_000,)),  # stored as int64
        ("|S5", (1,)),
        ("<f2", (4, 0)),  # empty: nothing to write
    ],
)
def test_chunks_written_as_plain_bytes_read_back_bit_exact(
    tmp_path: Path, dtype: str, shape: tuple[int, ...]
) -> None:
    """Uncompressed chunked arrays: HDF5 allocates every chunk, the bytes go in with pwrite."""
    arr = sample_array(dtype, shape, seed=3)
    entry = Hdf5Backend().write(tmp_path, "g1", {"a": arr})["a"]
    with h5py.File(tmp_path / "g1.h5", "r") as f:  # any HDF5 reader sees the array
        raw = f["a"][()]
    if arr.dtype.kind == "U":
        raw = np.ascontiguousarray(raw).view(arr.dtype).reshape(arr.shape)
    elif arr.dtype.kind == "M":
        raw = raw.view(arr.dtype)
    assert_identical(raw, arr)
    assert_identical(np.asarray(Hdf5Backend().open(tmp_path, entry)), arr)
    if arr.size:
        early, never = h5py.h5d.ALLOC_TIME_EARLY, h5py.h5d.FILL_TIME_NEVER
        assert _creation(tmp_path / "g1.h5", "a") == (early, never)


def test_hdf5_writes_what_cannot_be_written_as_plain_bytes(tmp_path: Path) -> None:
    """Filters, a non-contiguous source and compound types go through HDF5's own writes."""
    arrays = {
        "strided": sample_array("<f8", (1000, 4), seed=1)[:, ::2],
        "compound": sample_array([("a", "<i4"), ("b", "<f8")], (500,), seed=2),
    }
    Hdf5Backend().write(tmp_path, "g1", arrays)
    Hdf5Backend(compression="gzip").write(tmp_path, "g2", {"gz": np.arange(50_000.0)})
    default = h5py.h5d.FILL_TIME_IFSET
    assert _creation(tmp_path / "g1.h5", "strided")[1] == default
    assert _creation(tmp_path / "g1.h5", "compound")[1] == default
    assert _creation(tmp_path / "g2.h5", "gz")[1] == default
    with h5py.File(tmp_path / "g1.h5", "r") as f:
        assert_identical(f["strided"][()], arrays["strided"])
        assert_identical(f["compound"][()], arrays["compound"])


def test_unexpected_chunk_report_falls_back_to_hdf5(tmp_path: Path) -> None:
    """A dataset whose chunks are not all allocated yields no spans (HDF5 then writes)."""
    from persist_hooks_hdf5._backend import _raw_spans

    arr = np.arange(300_000.0)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("a", shape=arr.shape, dtype=arr.dtype, chunks=(131072,))
        assert _raw_spans(ds, memoryview(arr.view(np.uint8)), 131072) is None
        ds[:1000] = 1.0  # one chunk allocated of three
        assert _raw_spans(ds, memoryview(arr.view(np.uint8)), 131072) is None


def test_short_plain_writes_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import persist_hooks_hdf5._backend as backend_module

    real = backend_module.os.pwrite
    calls: list[int] = []

    def short(fd: int, data: memoryview, offset: int) -> int:
        calls.append(len(data))
        return real(fd, data[:100_003], offset)

    monkeypatch.setattr(backend_module.os, "pwrite", short)
    arr = sample_array("<f8", (400_000,), seed=4)
    entry = Hdf5Backend().write(tmp_path, "g1", {"a": arr})["a"]
    assert len(calls) >= arr.nbytes // 100_003
    assert_identical(np.asarray(Hdf5Backend().open(tmp_path, entry)), arr)


def test_failed_plain_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import persist_hooks_hdf5._backend as backend_module

    def full(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backend_module.os, "pwrite", full)
    with pytest.raises(OSError, match="No space"):
        Hdf5Backend().write(tmp_path, "x_data/g1", {"a": np.arange(10_000.0)})
    assert list(tmp_path.iterdir()) == []


def test_plain_bytes_go_into_allocated_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HDF5 only extends the file over the chunks: they are allocated before the writes
    (faster than filling holes), and a full disk fails there, naming the file."""
    import errno

    import persist_hooks_hdf5._backend as backend_module

    real = backend_module.preallocate
    ranges: list[tuple[int, int]] = []

    def recording(fd: int, size: int, offset: int = 0) -> None:
        ranges.append((offset, size))
        real(fd, size, offset)

    monkeypatch.setattr(backend_module, "preallocate", recording)
    arrays = {"a": np.arange(300_000.0), "b": np.ones((1000, 70), "<i4")}
    entries = Hdf5Backend().write(tmp_path, "g1", arrays)
    assert sum(size for _, size in ranges) == sum(a.nbytes for a in arrays.values())
    with h5py.File(tmp_path / "g1.h5", "r") as f:
        for key, arr in arrays.items():
            assert_identical(f[entries[key]["key"]][()], arr)

    def full(fd: int, size: int, offset: int = 0) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backend_module, "preallocate", full)
    with pytest.raises(OSError, match="No space") as info:
        Hdf5Backend().write(tmp_path, "x_data/g2", arrays)
    assert info.value.filename == str(tmp_path / "x_data" / "g2.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g1.h5"]


@pytest.mark.parametrize("compression", [None, "gzip"], ids=["plain-bytes", "through-hdf5"])
def test_a_failed_write_returns_only_after_on_entries_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str | None
) -> None:
    """on_entries may run on the checksum's pool thread while the data is written: a write
    that fails waits for it, so nothing it does outlives the call."""
    import errno
    import threading
    import time

    import persist_hooks_hdf5._backend as backend_module

    started, finished = threading.Event(), threading.Event()

    def on_entries(entries: dict[str, Any]) -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    def full(*args: Any) -> None:
        assert started.wait(10), "on_entries did not run during the write"
        raise OSError(errno.ENOSPC, "No space left on device")

    if compression is None:
        monkeypatch.setattr(backend_module.os, "pwrite", full)
    else:
        monkeypatch.setattr(backend_module, "_fill", full)
    arr = np.arange(200_000.0)  # over 1 MiB: checksummed on a pool thread
    with pytest.raises(OSError, match="No space"):
        Hdf5Backend(compression=compression).write(
            tmp_path, "x_data/g1", {"a": arr}, on_entries=on_entries
        )
    assert finished.is_set()
    assert list(tmp_path.iterdir()) == []


def test_growth_after_a_shrink_reads_zeros(tmp_path: Path) -> None:
    """Chunks allocated up front have no fill: rows past an old end must still read as zeros."""
    b = Hdf5Backend()
    entry = b.write(tmp_path, "g1", {"a": np.ones((200_000, 2))})["a"]
    proxy = b.open(tmp_path, entry, mode="a")
    proxy.resize(150_000)
    proxy.resize(400_000)
    proxy[450_000] = 7.0  # growth by assignment past the end
    out = np.asarray(proxy)
    assert out.shape == (450_001, 2)
    assert (out[:150_000] == 1).all() and (out[150_000:450_000] == 0).all()
    assert (out[450_000] == 7).all()
    proxy.append(np.full((5, 2), 3.0))
    assert_identical(proxy[-5:], np.full((5, 2), 3.0))

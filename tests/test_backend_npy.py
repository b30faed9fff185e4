"""The npy backend: the shared conformance suite plus npy specifics (layout, header growth, costs)."""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from persist_hooks.backends import npy
from persist_hooks.backends.base import PendingChecksum, checksum
from persist_hooks.backends.npy import NpyBackend, ReadOnlyMemmap
from persist_hooks.errors import BackendError, FormatError
from persist_hooks.testing import BackendTests, assert_identical, sample_array


class TestNpyConformance(BackendTests):
    backend_cls = NpyBackend


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "ds"
    d.mkdir()
    return d


def _header(path: Path) -> tuple[tuple[int, int], int, dict[str, Any]]:
    """(version, data offset, header fields) of an npy file, read with numpy's public API."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
    mm = np.load(path, mmap_mode="r", allow_pickle=True)  # allow_pickle lifts the header size limit
    fortran = bool(mm.ndim > 1 and mm.flags.f_contiguous and not mm.flags.c_contiguous)
    offset = mm.offset if isinstance(mm, np.memmap) else path.stat().st_size - mm.nbytes
    return version, offset, {"shape": mm.shape, "fortran_order": fortran, "dtype": mm.dtype}


def test_file_layout_and_entries(root: Path) -> None:
    arrays = {"array_0": np.arange(3), "weird key/../x": np.zeros((2, 2), ">f4")}
    entries = NpyBackend().write(root, "x_data/g3", arrays)
    assert entries == {
        "array_0": {
            "path": "x_data/g3_0.npy",
            "shape": [3],
            "dtype": "<i8",
            "checksum": checksum(arrays["array_0"]),
        },
        "weird key/../x": {
            "path": "x_data/g3_1.npy",
            "shape": [2, 2],
            "dtype": ">f4",
            "checksum": checksum(arrays["weird key/../x"]),
        },
    }
    assert sorted(p.name for p in (root / "x_data").iterdir()) == ["g3_0.npy", "g3_1.npy"]
    for key, arr in arrays.items():
        assert_identical(np.load(root / entries[key]["path"]), arr)  # standard npy


@pytest.mark.parametrize("shape", [(0,), (7,), (10**6, 3), (5, 4, 3), ()])
def test_header_is_aligned_and_has_room_for_growth(root: Path, shape: tuple[int, ...]) -> None:
    arr = np.zeros(shape, np.uint8)
    entry = NpyBackend().write(root, "g1", {"a": arr})["a"]
    version, offset, _ = _header(root / entry["path"])
    assert version == (1, 0) and offset % 64 == 0
    if shape:
        big = npy._header_bytes(
            arr.dtype, False, (10**20 + 1, *shape[1:]), total=offset, version=version
        )
        assert big is not None and len(big) == offset


def test_append_rewrites_header_in_place(root: Path) -> None:
    b = NpyBackend()
    entry = b.write(root, "g1", {"a": np.arange(10.0).reshape(5, 2)})["a"]
    path = root / entry["path"]
    _, offset, _ = _header(path)
    inode = path.stat().st_ino
    p = b.open(root, entry, mode="a")
    p.append(np.ones((3, 2)))
    p.append(np.full(2, 9.0))
    _, offset2, header = _header(path)
    assert (offset2, header["shape"], path.stat().st_ino) == (offset, (9, 2), inode)
    assert path.stat().st_size == offset + 9 * 16
    assert_identical(
        np.load(path),
        np.concatenate([np.arange(10.0).reshape(5, 2), np.ones((3, 2)), [[9.0, 9.0]]]),
    )


def test_fortran_file_is_kept_then_rewritten_once_for_append(root: Path) -> None:
    arr = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    b = NpyBackend()
    entry = b.write(root, "g1", {"a": arr})["a"]
    path = root / entry["path"]
    assert _header(path)[2]["fortran_order"] is True
    mm = b.open(root, entry)
    assert mm.flags.f_contiguous and isinstance(mm, np.memmap)
    p = b.open(root, entry, mode="a")
    p.append(np.arange(4.0))
    assert _header(path)[2]["fortran_order"] is False
    inode = path.stat().st_ino
    p.append(np.arange(4.0) + 1)
    assert path.stat().st_ino == inode  # only the first append rewrote the file
    assert_identical(p[...], np.concatenate([arr, [np.arange(4.0)], [np.arange(4.0) + 1]]))
    assert_identical(mm, arr)  # an earlier reader keeps its (old) data


def test_foreign_files_without_padding_still_grow(root: Path) -> None:
    """A hand-made npy file with no spare header room is rewritten once (O(n)) and stays correct."""
    arr = np.arange(6, dtype="<i2")
    header = "{'descr': '<i2', 'fortran_order': False, 'shape': (6,), }"
    pad = (-(10 + len(header) + 1)) % 64
    raw = (
        b"\x93NUMPY\x01\x00"
        + (len(header) + pad + 1).to_bytes(2, "little")
        + header.encode()
        + b" " * pad
        + b"\n"
    )
    (root / "hand.npy").write_bytes(raw + arr.tobytes())
    entry = {"path": "hand.npy", "shape": [6], "dtype": "<i2"}
    assert_identical(NpyBackend().open(root, entry, trusted=False), arr)
    p = NpyBackend().open(root, entry, mode="a")
    p.append(np.arange(10**4, dtype="<i2"))  # 5-digit length: more than the header had room for
    assert_identical(
        np.load(root / "hand.npy"), np.concatenate([arr, np.arange(10**4, dtype="<i2")])
    )


def test_numpy_save_files_are_appendable(root: Path) -> None:
    np.save(root / "saved.npy", np.eye(3))
    entry = {"path": "saved.npy", "shape": [3, 3], "dtype": "<f8"}
    p = NpyBackend().open(root, entry, mode="a")
    p.append(np.ones(3))
    assert_identical(np.load(root / "saved.npy"), np.vstack([np.eye(3), np.ones(3)]))


def test_shrink_keeps_bytes_and_regrowth_reads_zeros(root: Path) -> None:
    b = NpyBackend()
    entry = b.write(root, "g1", {"a": np.arange(1.0, 9.0)})["a"]
    path = root / entry["path"]
    size = path.stat().st_size
    reader = b.open(root, entry)  # a mapped reader must survive the shrink
    p = b.open(root, entry, mode="a")
    p.resize(2)
    assert path.stat().st_size == size and p.shape == (2,)
    assert_identical(reader, np.arange(1.0, 9.0))
    p.resize(5)
    assert_identical(p[...], np.array([1.0, 2.0, 0.0, 0.0, 0.0]))
    p.append(7.0)
    assert_identical(np.load(path), np.array([1.0, 2.0, 0, 0, 0, 7.0]))


def test_stale_bytes_after_a_crashed_append_are_not_resurrected(root: Path) -> None:
    b = NpyBackend()
    entry = b.write(root, "g1", {"a": np.ones(2)})["a"]
    path = root / entry["path"]
    with open(path, "ab") as fh:  # data of an append whose header update never happened
        fh.write(np.full(3, 5.0).tobytes())
    assert_identical(b.open(root, entry, trusted=False), np.ones(2))
    p = b.open(root, entry, mode="a")
    p[3] = 4.0
    assert_identical(p[...], np.array([1.0, 1.0, 0.0, 4.0]))


def test_non_contiguous_arrays_stream_in_blocks(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(npy, "BLOCK_BYTES", 64)
    base = sample_array(">c16", (40, 9), seed=1)
    cases = {
        "a": base[::3, ::-2],
        "b": base.T[1:],
        "c": sample_array([("x", "<i4"), ("y", "S3")], (50,))[::2],
    }
    entries = NpyBackend().write(root, "g1", cases)
    for key, arr in cases.items():
        assert_identical(np.load(root / entries[key]["path"]), np.ascontiguousarray(arr))
    p = NpyBackend().open(root, entries["a"], mode="a")
    p.append(base[:5, ::-2][::-1])
    assert_identical(p[...], np.concatenate([cases["a"], base[:5, ::-2][::-1]]).astype(">c16"))


def test_read_modes(root: Path) -> None:
    b = NpyBackend()
    entries = b.write(root, "g1", {"a": np.arange(4), "z": np.zeros((0, 3)), "s": np.array(2.0)})
    a = b.open(root, entries["a"])
    assert type(a) is ReadOnlyMemmap and isinstance(a, np.memmap) and not a.flags.writeable
    z = b.open(root, entries["z"])
    assert z.shape == (0, 3) and not z.flags.writeable and isinstance(z, ReadOnlyMemmap)
    s = b.open(root, entries["s"])
    assert s.shape == () and float(s) == 2.0
    with pytest.raises(ValueError, match="mode"):
        b.open(root, entries["a"], mode="w")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [np.arange(12.0).reshape(4, 3), np.zeros((0, 3)), np.array([{"a": 1}, None], dtype=object)],
    ids=["mapped", "empty", "objects"],
)
def test_arrays_read_in_mode_r_refuse_writes_as_a_read_only_proxy(
    root: Path, value: np.ndarray[Any, Any]
) -> None:
    """What the DataSet contract says of an ``r`` DataSet's arrays: every write through one
    raises ReadOnlyError (a ValueError, as numpy's own refusal), and nothing changes."""
    from persist_hooks.errors import ReadOnlyError

    if value.dtype.hasobject:  # no backend writes these; an older or hand-made file may hold them
        np.save(root / "g1_0.npy", value, allow_pickle=True)
        entry: dict[str, Any] = {"path": "g1_0.npy", "shape": [2], "dtype": "|O"}
    else:
        entry = NpyBackend().write(root, "g1", {"a": value})["a"]
    m = NpyBackend().open(root, entry)
    before = (root / entry["path"]).read_bytes()
    assert m.read_only and isinstance(m, np.memmap)
    writes = [
        lambda: m.__setitem__(0, 1.0),
        lambda: m.__setitem__(..., 1.0),
        lambda: m.append(value[:1]),
        lambda: m.resize(9),
        lambda: m.attrs.__setitem__("units", "m"),
    ]
    if m.size:
        writes.append(lambda: m[1:].__setitem__(0, 1.0))  # a view of the map is one too
    for attempt in writes:
        with pytest.raises(ReadOnlyError, match=r"read-only.*mode='a'") as info:
            attempt()
        assert isinstance(info.value, ValueError)
    assert (root / entry["path"]).read_bytes() == before


def test_an_array_read_in_mode_r_is_a_numpy_memmap_in_every_other_way(root: Path) -> None:
    ref = np.arange(12.0).reshape(4, 3)
    entry = NpyBackend().write(root, "g1", {"a": ref})["a"]
    npy.NpyDriver(root / entry["path"], entry["path"]).set_attrs({"units": "m"})
    m = NpyBackend().open(root, entry)
    assert dict(m.attrs) == {"units": "m"}
    assert_identical(np.asarray(m), ref)
    view = m[1:, ::2]
    assert type(view) is ReadOnlyMemmap and view.base_map is m.base_map and view.read_only
    assert dict(view.attrs) == {"units": "m"}
    for result in (m + 1, m[[0, 2]], np.sqrt(m), np.array(m)):
        assert type(result) is np.ndarray and result.flags.writeable  # plain, as memmap's
        result[0] = -1.0
    copied = m.copy()  # a memmap's copy is a memmap of nothing; writable
    copied[0] = -1.0
    assert copied.base_map is None and m[0, 0] == 0.0
    assert type(m.sum()) is np.float64 and m.sum() == ref.sum()
    assert len(m) == 4 and [row.tolist() for row in m] == ref.tolist()
    clone = pickle.loads(pickle.dumps(m))  # a copy in memory, as numpy pickles a memmap
    assert_identical(np.asarray(clone), ref)
    clone[0, 0] = 5.0
    assert m[0, 0] == 0.0


def test_pickled_object_files(root: Path) -> None:
    obj = np.array([{"a": 1}, None], dtype=object)
    np.save(root / "obj.npy", obj, allow_pickle=True)
    entry = {"path": "obj.npy", "shape": [2], "dtype": "|O"}
    b = NpyBackend()
    assert b.open(root, entry, trusted=True)[0] == {"a": 1}
    with pytest.raises(FormatError, match=r"obj\.npy.*pickled"):
        b.open(root, entry, trusted=False)
    with pytest.raises(BackendError, match="pickled"):
        b.open(root, entry, mode="a")


def test_dtype_errors_give_advice() -> None:
    with pytest.raises(BackendError, match="object arrays stay in the Python source"):
        NpyBackend().check_dtype(np.dtype(object))
    with pytest.raises(BackendError, match=r"StringDType.*astype\(str\)"):
        NpyBackend().check_dtype(np.dtypes.StringDType())


@pytest.mark.parametrize(
    "names", [["中", "b"], [f"field_{i:05d}" for i in range(4000)]], ids=["utf8", "huge"]
)
def test_header_versions_3_and_2(root: Path, names: list[str]) -> None:
    dtype = np.dtype([(n, "<i2") for n in names])
    arr = sample_array(dtype, (3,), seed=2)
    b = NpyBackend()
    entry = b.write(root, "g1", {"a": arr})["a"]
    version, offset, _ = _header(root / entry["path"])
    assert version == ((3, 0) if names[0] == "中" else (2, 0)) and offset % 64 == 0
    assert_identical(b.open(root, entry, trusted=False), arr)
    p = b.open(root, entry, mode="a")
    p.append(arr[:1])
    assert_identical(p[...], np.concatenate([arr, arr[:1]]))


def test_attrs_sidecar(root: Path) -> None:
    b = NpyBackend()
    entry = b.write(root, "x_data/g1", {"a": np.arange(3)})["a"]
    p = b.open(root, entry, mode="a")
    p.attrs["units"] = "m"
    side = root / "x_data/g1_0.npy.attrs.json"
    assert side.exists() and '"units": "m"' in side.read_text()
    assert b.paths([entry]) == {"x_data/g1_0.npy"}
    side.write_text("{not json")
    with pytest.raises(FormatError, match=r"attrs\.json"):
        dict(p.attrs)
    side.write_text('{"a": 1}')
    assert dict(p.attrs) == {"a": 1}
    del p.attrs["a"]
    assert not side.exists()  # an empty sidecar is removed


def test_durable_fsyncs_only_when_asked(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    b = NpyBackend()
    arrays = {"a": np.arange(3), "b": np.ones(2)}
    b.write(root, "d/g1", arrays)
    assert calls == []
    b.write(root, "d/g2", arrays, durable=True)
    assert len(calls) >= 3  # two files and at least their directory


def test_plain_loader_maps_files(root: Path) -> None:
    from persist_hooks.testing import run_plain_loader

    b = NpyBackend()
    entries = b.write(root, "x_data/g1", {"array_0": np.arange(5.0), "array_1": np.zeros(0)})
    report = run_plain_loader(root, b.plain_loader(entries))
    assert report["types"] == {"array_0": "numpy.memmap", "array_1": "numpy.ndarray"}


def test_failure_mid_write_removes_files_and_new_directories(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = npy._write_file
    calls: list[int] = []

    def failing(fd: int, header: bytes, arr: Any, fortran: bool, crc: Any = None) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(fd, header, arr, fortran, crc)

    monkeypatch.setattr(npy, "_write_file", failing)
    with pytest.raises(OSError, match="No space"):
        NpyBackend().write(root, "x_data/deep/g1", {"a": np.arange(3), "b": np.arange(4)})
    assert len(calls) == 2
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(5000.0),
        np.asfortranarray(np.arange(6000, dtype="<i4").reshape(60, 100)),
        np.arange(8000, dtype=">u2").reshape(80, 100)[:, ::2],  # not contiguous
        np.zeros((0, 3)),
    ],
    ids=["c", "fortran", "strided", "empty"],
)
def test_short_writes_are_continued(
    root: Path, monkeypatch: pytest.MonkeyPatch, arr: np.ndarray[Any, Any]
) -> None:
    """The file system may write less than asked (a signal, a quota): the rest follows."""
    real_write, real_writev = os.write, os.writev

    def short_write(fd: int, data: Any) -> int:
        return real_write(fd, memoryview(data)[:777])

    def short_writev(fd: int, buffers: Any) -> int:
        first = memoryview(buffers[0])
        return real_writev(fd, [first[:50]] if len(first) > 50 else [first, buffers[1][:333]])

    monkeypatch.setattr(os, "write", short_write)
    monkeypatch.setattr(os, "writev", short_writev)
    entry = NpyBackend().write(root, "g1", {"a": arr})["a"]
    monkeypatch.undo()
    back = np.load(root / entry["path"])
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert np.isfortran(back) == (np.isfortran(arr) and arr.ndim > 1)
    assert entry["checksum"] == checksum(arr)


# ------------------------------------------------------------------ checksums on pool threads


def test_checksums_from_many_threads_at_once_are_each_right() -> None:
    """More concurrent writers than pool threads: each gets its own array's checksum."""
    import threading

    from persist_hooks.backends.base import start_checksum

    arrays = [np.full(1 << 18, i, dtype="<f8") for i in range(12)]
    results: dict[int, str | None] = {}
    barrier = threading.Barrier(len(arrays))

    def writer(i: int) -> None:
        barrier.wait()
        results[i] = start_checksum(arrays[i])()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(arrays))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: checksum(a) for i, a in enumerate(arrays)}


def test_checksum_pool_keeps_no_reference_to_the_array() -> None:
    import weakref

    from persist_hooks.backends.base import start_checksum

    arr = np.arange(1 << 18, dtype="<f8")
    ref = weakref.ref(arr)
    expected = checksum(arr)
    assert start_checksum(arr)() == expected
    del arr
    assert ref() is None


def test_checksum_errors_reach_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from persist_hooks.backends import base

    def broken(arr: Any) -> str:
        raise MemoryError("no room")

    monkeypatch.setattr(base, "checksum", broken)
    result = base.start_checksum(np.zeros(1 << 18))
    with pytest.raises(MemoryError, match="no room"):
        result()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_checksums_work_in_a_forked_child_after_the_parent_used_the_pool() -> None:
    from persist_hooks.backends.base import start_checksum

    arr = np.arange(1 << 18, dtype="<f8")
    assert start_checksum(arr)() == checksum(arr)  # the parent's pool threads exist now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        import signal

        signal.alarm(30)  # a pool that waits for the parent's threads would hang: die instead
        ok = start_checksum(arr)() == checksum(arr)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_checksum_without_overlap_is_computed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``overlap=False`` (for writers that hold the GIL) never involves a pool thread."""
    from persist_hooks.backends import base

    def no_pool() -> Any:
        raise AssertionError("a pool thread was asked for")

    monkeypatch.setattr(base, "_checksum_pool", no_pool)
    arr = np.arange(1 << 18, dtype="<f8")
    assert base.start_checksum(arr, overlap=False)() == checksum(arr)


def test_then_runs_with_the_checksum_on_a_pool_thread_for_a_large_array() -> None:
    import threading

    from persist_hooks.backends.base import start_checksum

    big, small = np.arange(1 << 18, dtype="<f8"), np.arange(10.0)
    seen: list[tuple[str | None, int]] = []

    def then(value: str | None) -> None:
        seen.append((value, threading.get_ident()))

    assert start_checksum(big, then=then)() == checksum(big)
    assert start_checksum(small, then=then)() == checksum(small)  # small: at once, here
    assert [value for value, _ in seen] == [checksum(big), checksum(small)]
    assert seen[0][1] != threading.get_ident() and seen[1][1] == threading.get_ident()


@pytest.mark.parametrize("size", [10, 1 << 18], ids=["small", "large"])
def test_errors_of_then_reach_the_caller(size: int) -> None:
    from persist_hooks.backends.base import start_checksum

    def then(value: str | None) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        start_checksum(np.zeros(size), then=then)()


# ------------------------------------------------------------------ paced checksums

PACED_BYTES = (41 << 20) + 12_345 * 8  # over PACE_MIN_BYTES, not whole pieces


def _paced_array() -> np.ndarray[Any, Any]:
    return np.arange(PACED_BYTES // 8, dtype="<f8")


def _tokens_to_finish(nbytes: int) -> int:
    """Pieces the writer must report before a paced checksum of ``nbytes`` can finish."""
    from persist_hooks.backends import base

    waited = -(-(nbytes - base._PACE_TAIL * base.PACE_PIECE) // base.PACE_PIECE)
    return waited - base._PACE_AHEAD


def _start_paced(
    monkeypatch: pytest.MonkeyPatch,
    patience: float,
    arr: np.ndarray[Any, Any] | None = None,
    *,
    paced: bool = True,
) -> tuple[np.ndarray[Any, Any], PendingChecksum, threading.Event]:
    """Start the checksum of ``arr`` (default: :func:`_paced_array`) with a ``then`` that sets
    the returned event, the writer's patience set to ``patience`` seconds."""
    from persist_hooks.backends import base

    monkeypatch.setattr(base, "_PACE_PATIENCE", patience)
    arr = _paced_array() if arr is None else arr
    done = threading.Event()
    crc = base.start_checksum(arr, then=lambda value: done.set(), paced=paced)
    return arr, crc, done


def test_a_paced_checksum_follows_the_writer_and_finishes_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It waits for the writer's progress, and is done (``then`` too) a few pieces before
    the writer reports its last one."""
    from persist_hooks.backends import base

    arr, crc, done = _start_paced(monkeypatch, 60.0)
    assert arr.nbytes >= base.PACE_MIN_BYTES
    needed = _tokens_to_finish(arr.nbytes)
    assert 0 < needed < arr.nbytes // base.PACE_PIECE
    crc.advance(base.PACE_PIECE * needed - 1)  # one byte short
    # free-running, 40 MB took a few ms; paced, it waits for the last piece it lacks
    assert not done.wait(0.3)
    crc.advance(1)
    assert done.wait(30), "the checksum did not finish once the writer was far enough"
    assert crc() == checksum(arr)


def test_a_paced_checksum_runs_free_when_the_writer_stalls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arr, crc, done = _start_paced(monkeypatch, 0.01)
    assert done.wait(30), "a checksum whose writer never reports must not wait forever"
    assert crc() == checksum(arr)


def test_a_paced_checksum_runs_free_once_the_writer_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A writer that fails half-way releases it (calling it does too): no pool thread waits."""
    from persist_hooks.backends import base

    arr, crc, done = _start_paced(monkeypatch, 60.0)
    crc.advance(base.PACE_PIECE)
    crc.release()
    assert done.wait(30)
    crc.release()  # idempotent
    assert crc() == checksum(arr)
    _, again, _ = _start_paced(monkeypatch, 60.0, arr)
    assert again() == checksum(arr)  # the call alone lets it finish


@pytest.mark.parametrize("kind", ["fortran", "small", "not asked"])
def test_checksums_that_are_not_paced_never_wait(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from persist_hooks.backends import base

    if kind == "fortran":  # written in F order: the checksum's C order is not the writer's
        arr = np.asfortranarray(_paced_array()[:-1].reshape(-1, 2))
    elif kind == "small":
        arr = np.arange(base.PACE_MIN_BYTES // 8 - 1, dtype="<f8")
    else:
        arr = _paced_array()
    arr, crc, done = _start_paced(monkeypatch, 60.0, arr, paced=kind != "not asked")
    assert done.wait(30)
    assert crc() == checksum(arr)


def _record_large_writes(monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None) -> list[int]:
    """Patch ``os.write``/``os.writev`` to record where each write of over 1 MB starts in its
    file (and to fail with ENOSPC after ``fail_after`` of them)."""
    import errno

    starts: list[int] = []
    real_write, real_writev = os.write, os.writev

    def note(fd: int, nbytes: int) -> None:
        if nbytes > 1 << 20:
            if fail_after is not None and len(starts) >= fail_after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            starts.append(os.lseek(fd, 0, os.SEEK_CUR))

    def write(fd: int, data: Any) -> int:
        note(fd, memoryview(data).nbytes)
        return real_write(fd, data)

    def writev(fd: int, buffers: Any) -> int:
        note(fd, sum(memoryview(b).nbytes for b in buffers))
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "writev", writev)
    return starts


def test_a_large_array_is_written_in_pieces_that_end_on_piece_boundaries(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the header, each write starts at a multiple of PACE_PIECE in the file (writes off
    the page boundary were slower), and the checksum recorded is the array's."""
    from persist_hooks.backends import base

    arr = _paced_array()
    starts = _record_large_writes(monkeypatch)
    entry = NpyBackend().write(root, "g1", {"a": arr})["a"]
    monkeypatch.undo()
    assert starts[0] == 0 and len(starts) == -(-(arr.nbytes + 128) // base.PACE_PIECE)
    assert all(s % base.PACE_PIECE == 0 for s in starts)
    assert entry["checksum"] == checksum(arr)
    np.testing.assert_array_equal(np.load(root / entry["path"]), arr)


def test_a_write_failing_half_way_leaves_no_paced_checksum_waiting(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from persist_hooks.backends import base

    monkeypatch.setattr(base, "_PACE_PATIENCE", 600.0)  # a waiting checksum would hang the test
    finished = threading.Event()
    _record_large_writes(monkeypatch, fail_after=3)
    with pytest.raises(OSError, match="No space left") as info:
        NpyBackend().write(
            root, "g1", {"a": _paced_array()}, on_entries=lambda entries: finished.set()
        )
    monkeypatch.undo()
    assert finished.is_set()  # the write returned after its checksum and on_entries
    assert info.value.filename == str(root / "g1_0.npy")
    assert list(root.iterdir()) == []


# ------------------------------------------------------------------ on_entries
# (what every backend owes is in the conformance suite: BackendTests.test_*on_entries*)


def test_on_entries_runs_while_the_last_array_is_written(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool thread stages while this one writes: the write waits until on_entries ran."""
    import threading

    started = threading.Event()
    real = npy._write_file

    def on_entries(entries: dict[str, Any]) -> None:
        started.set()

    def write_file(fd: int, header: bytes, arr: Any, fortran: bool, crc: Any = None) -> None:
        assert started.wait(10), "on_entries did not run during the write"
        real(fd, header, arr, fortran, crc)

    monkeypatch.setattr(npy, "_write_file", write_file)
    big = np.arange(1 << 18, dtype="<f8")
    entries = NpyBackend().write(root, "g1", {"a": big}, on_entries=on_entries)
    np.testing.assert_array_equal(np.load(root / entries["a"]["path"]), big)


def test_a_failed_write_returns_only_after_on_entries_finished(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing on_entries does may outlive the failed write (its caller cleans up after)."""
    import threading
    import time

    started, finished = threading.Event(), threading.Event()

    def on_entries(entries: dict[str, Any]) -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    def failing(fd: int, header: bytes, arr: Any, fortran: bool, crc: Any = None) -> None:
        assert started.wait(10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(npy, "_write_file", failing)
    with pytest.raises(OSError, match="No space") as info:
        NpyBackend().write(root, "g1", {"a": np.zeros(1 << 18)}, on_entries=on_entries)
    assert finished.is_set()
    assert info.value.filename == str(root / "g1_0.npy")  # the error names the file
    assert list(root.iterdir()) == []


def test_a_subclass_with_its_own_write_does_not_inherit_on_entries() -> None:
    class Plain(NpyBackend):
        name = "plain-npy"

        def write(self, root: Path, stem: str, arrays: Any, *, durable: bool = False) -> Any:
            return super().write(root, stem, arrays, durable=durable)

    class Declared(Plain):
        supports_on_entries = True

        def write(self, root: Path, stem: str, arrays: Any, **kw: Any) -> Any:
            return NpyBackend.write(self, root, stem, arrays, **kw)

    assert NpyBackend.supports_on_entries and not Plain.supports_on_entries
    assert Declared.supports_on_entries

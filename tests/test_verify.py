"""persist_hooks.verify: every problem kind on a crafted DataSet, repair, clean DataSets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import persist_hooks
import persist_hooks.verify
from persist_hooks.dataset import DataSet
from persist_hooks.errors import LockTimeout
from persist_hooks.locking import writer_lock
from persist_hooks.verify import KINDS, Problem, VerifyReport, verify

BACKENDS = ["npy", "hdf5", "zarr"]


def make(tmp_path: Path, backend: str = "npy") -> Path:
    ds = DataSet("d", "w", path=tmp_path, backend=backend, array_threshold=10)
    ds.x = [np.arange(100.0), {"a": 1}]
    ds.y = np.arange(50, dtype=np.int32).reshape(10, 5)
    ds.small = 3
    ds["small"] = {"units": "m"}
    ds["meta_only"] = "just metadata"
    return tmp_path / "d"


def snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def header(root: Path, item: str) -> dict:
    line = (root / f"{item}.py").read_text().splitlines()[1]
    return json.loads(line[len("# persist_hooks: ") :])


# ------------------------------------------------------------------ clean DataSets


@pytest.mark.parametrize("backend", BACKENDS)
def test_clean_dataset_of_each_backend_is_ok(tmp_path: Path, backend: str) -> None:
    root = make(tmp_path, backend)
    report = verify(root)
    assert report.ok, str(report)
    assert report.problems == [] and report.repaired == []
    assert report.items == 3 and report.arrays == 2
    assert header(root, "x")["backend"] == backend


def test_clean_after_overwrites_and_backups(tmp_path: Path) -> None:
    ds = DataSet("d", "w", path=tmp_path, array_threshold=10, backup_data=True)
    for i in range(4):
        ds.x = np.arange(20) + i
    del ds.x
    ds.z = np.zeros(30)
    assert verify(tmp_path / "d").ok


def test_report_str_and_json(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / ".x.py.0123456789abcdef.tmp").write_text("partial")
    report = verify(root)
    text = str(report)
    assert "DAMAGED" in text and "temporary" in text and ".x.py.0123456789abcdef.tmp" in text
    data = json.loads(report.to_json())
    assert data["ok"] is False
    assert data["problems"][0]["kind"] == "temporary"
    assert data["problems"][0]["repairable"] is True
    assert isinstance(report.problems[0], Problem) and isinstance(report, VerifyReport)


def test_module_is_callable_as_persist_hooks_verify(tmp_path: Path) -> None:
    root = make(tmp_path)
    assert persist_hooks.verify(root).ok  # type: ignore[operator]


def test_missing_path_and_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        verify(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="not a DataSet"):
        verify(tmp_path / "plain")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="not a DataSet"):
        verify(tmp_path / "afile")


# ------------------------------------------------------------------ each problem kind


def kinds_of(root: Path, **kw: bool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in verify(root, **kw).problems:
        out.setdefault(p.kind, []).append(Path(p.path).name)
    return out


def test_bad_marker(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "_this_dir_is_a_DataSet").write_text("persist_hooks DataSet format 99\n")
    assert kinds_of(root) == {"bad-marker": ["_this_dir_is_a_DataSet"]}


def test_missing_init(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "__init__.py").unlink()
    found = kinds_of(root)
    assert found == {"missing-init": ["__init__.py"]}


def test_bad_init_syntax(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "__init__.py").write_text("_info_dict = {\n")
    report = verify(root)
    assert report.kinds() == {"bad-init"}
    assert "line" in report.problems[0].message


def test_bad_init_without_info_dict(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "__init__.py").write_text("x = 1\n")
    assert kinds_of(root) == {"bad-init": ["__init__.py"]}


def test_hand_written_init_is_read_without_running_it(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "__init__.py").write_text(
        "_info_dict = {'x': None, 'y': None}\n_info_dict['small'] = 1\n"
        "raise SystemExit('must not run')\n"
    )
    assert verify(root).ok
    (root / "__init__.py").write_text("_info_dict = dict(x=None, y=None, small=None)\n")
    assert verify(root, trusted=True).ok


def test_invalid_key(tmp_path: Path) -> None:
    root = make(tmp_path)
    text = (root / "__init__.py").read_text()
    text = text.replace(
        "# -- end of keys", "# -- key: test_x\n_info_dict['test_x'] = 1\n# -- end of keys"
    )
    (root / "__init__.py").write_text(text)
    report = verify(root)
    assert report.kinds() == {"invalid-key"}
    assert "test_x" in report.problems[0].message


def test_item_without_a_key_block_is_a_key_not_a_problem(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "extra.py").write_text("extra = 1\n")  # items need no block in __init__.py
    assert kinds_of(root) == {}
    assert "extra" in DataSet("d", path=tmp_path)


def test_item_with_syntax_error(tmp_path: Path) -> None:
    root = make(tmp_path)
    p = root / "small.py"
    p.write_text(p.read_text().replace("small = ", "small = (("))
    report = verify(root)
    assert report.kinds() == {"bad-item"}
    assert report.problems[0].path == str(p) and "line" in report.problems[0].message


def test_bad_header(tmp_path: Path) -> None:
    root = make(tmp_path)
    p = root / "x.py"
    lines = p.read_text().splitlines(keepends=True)
    lines[1] = '# persist_hooks: {"format": 1, "arrays": \n'
    p.write_text("".join(lines))
    found = kinds_of(root)
    assert found.pop("bad-header") == ["x.py"]
    # its generation is no longer referenced by a valid header: not called orphan either
    assert found == {}


def test_bad_header_entry(tmp_path: Path) -> None:
    root = make(tmp_path)
    p = root / "x.py"
    h = header(root, "x")
    h["arrays"]["array_0"]["path"] = "../../etc/passwd"
    lines = p.read_text().splitlines(keepends=True)
    lines[1] = "# persist_hooks: " + json.dumps(h) + "\n"
    p.write_text("".join(lines))
    assert "bad-header" in kinds_of(root)


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_data(tmp_path: Path, backend: str) -> None:
    root = make(tmp_path, backend)
    data = root / header(root, "y")["arrays"]["array_0"]["path"]
    if data.is_dir():
        import shutil

        shutil.rmtree(data)
    else:
        data.unlink()
    report = verify(root)
    assert report.kinds() == {"missing-data"}
    assert report.problems[0].path == str(data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_shape_or_dtype(tmp_path: Path, backend: str) -> None:
    root = make(tmp_path, backend)
    p = root / "y.py"
    h = header(root, "y")
    h["arrays"]["array_0"]["dtype"] = "<f8"
    lines = p.read_text().splitlines(keepends=True)
    lines[1] = "# persist_hooks: " + json.dumps(h) + "\n"
    p.write_text("".join(lines))
    report = verify(root)
    assert report.kinds() == {"bad-data"}, str(report)
    assert "float64" in report.problems[0].message


def _flip_one_byte(root: Path, item: str, backend: str) -> Path:
    """Change one stored byte of the item's first array, keeping the file readable."""
    entry = header(root, item)["arrays"]["array_0"]
    data = root / entry["path"]
    if backend == "npy":
        size = data.stat().st_size
        with open(data, "r+b") as fh:
            fh.seek(size - 3)
            byte = fh.read(1)
            fh.seek(size - 3)
            fh.write(bytes([byte[0] ^ 0xFF]))
    elif backend == "hdf5":
        import h5py

        with h5py.File(data, "r+") as f:
            f[entry["key"]][-1] += 1
    else:
        import zarr

        z = zarr.open_array(data / entry["key"], mode="r+")
        z[-1] = z[-1] + 1
    return data


@pytest.mark.parametrize("backend", BACKENDS)
def test_changed_bytes_are_a_checksum_mismatch(tmp_path: Path, backend: str) -> None:
    root = make(tmp_path, backend)
    assert header(root, "y")["arrays"]["array_0"]["checksum"].startswith("crc32c:")
    data = _flip_one_byte(root, "y", backend)
    report = verify(root)
    assert report.kinds() == {"bad-checksum"}, str(report)
    problem = report.problems[0]
    assert problem.path == str(data) and not problem.repairable
    assert "y.py" in problem.message and "array_0" in problem.message
    assert verify(root, quick=True).ok  # a quick check reads no data
    assert not verify(root, repair=True).ok  # nothing to repair: the data is damaged


def _set_checksum(root: Path, item: str, value: str) -> None:
    py = root / f"{item}.py"
    old = header(root, item)["arrays"]["array_0"]["checksum"]
    py.write_text(py.read_text().replace(f'"checksum": "{old}"', f'"checksum": "{value}"'))


def test_zlib_crc32_written_without_crc32c_still_verifies(tmp_path: Path) -> None:
    """Writers without the crc32c package record zlib's CRC-32; verify checks either."""
    import zlib

    root = make(tmp_path, "npy")
    arr = DataSet("d", path=tmp_path).y
    crc = zlib.crc32(np.ascontiguousarray(arr).view(np.uint8).data)
    _set_checksum(root, "y", f"crc32:{crc:08x}")
    assert verify(root).ok, str(verify(root))
    _set_checksum(root, "y", f"crc32:{crc ^ 1:08x}")
    assert verify(root).kinds() == {"bad-checksum"}


def test_unknown_checksum_algorithm_is_reported(tmp_path: Path) -> None:
    root = make(tmp_path, "npy")
    _set_checksum(root, "y", "sha1:00")
    report = verify(root)
    assert report.kinds() == {"bad-checksum"} and "unknown algorithm" in str(report)


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_writes_are_no_mismatch(tmp_path: Path, backend: str) -> None:
    """Appends and assignments through a proxy leave the recorded checksum stale, not wrong."""
    root = make(tmp_path, backend)
    with DataSet("d", "a", path=tmp_path) as ds:
        proxy = ds.y
        proxy.append(np.ones(5, np.int32))
        proxy[0, 0] = -1
    report = verify(root)
    assert report.ok, str(report)
    assert [p.name for p in (root / "y_data").iterdir() if p.name.endswith(".modified")]


def test_entries_without_checksum_still_verify(tmp_path: Path) -> None:
    """Items written before checksums existed (format 1 without the key) verify as before."""
    root = make(tmp_path)
    p = root / "y.py"
    h = header(root, "y")
    del h["arrays"]["array_0"]["checksum"]
    lines = p.read_text().splitlines(keepends=True)
    lines[1] = "# persist_hooks: " + json.dumps(h) + "\n"
    p.write_text("".join(lines))
    assert verify(root).ok
    _flip_one_byte(root, "y", "npy")
    assert verify(root).ok  # nothing to compare with


def test_quick_from_the_command_line(tmp_path: Path) -> None:
    from persist_hooks.cli import main

    root = make(tmp_path)
    _flip_one_byte(root, "y", "npy")
    assert main(["verify", str(root), "--quick"]) == 0
    assert main(["verify", str(root)]) == 1


def test_superseded_zarr_group_is_kept_for_its_grace_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader may still use a superseded zarr group: no problem until the grace period ends."""
    root = make(tmp_path, "zarr")
    ds = DataSet("d", "w", path=tmp_path, backend="zarr", array_threshold=10)
    ds.y = np.arange(60, dtype=np.int32).reshape(12, 5)
    names = sorted(os.listdir(root / "y_data"))
    assert names == ["g1.zarr", "g1.zarr.superseded", "g2.zarr"]
    assert verify(root).ok and verify(root, repair=True).repaired == []
    monkeypatch.setenv("PERSIST_HOOKS_GRACE_SECONDS", "0")
    found = kinds_of(root)
    assert found == {"orphan-data": ["g1.zarr", "g1.zarr.superseded"]}
    assert verify(root, repair=True).ok
    assert sorted(os.listdir(root / "y_data")) == ["g2.zarr"]


def test_truncated_npy_is_bad_data(tmp_path: Path) -> None:
    root = make(tmp_path)
    data = root / header(root, "x")["arrays"]["array_0"]["path"]
    data.write_bytes(data.read_bytes()[:200])
    report = verify(root)
    assert report.kinds() == {"bad-data"}
    assert report.problems[0].path == str(data)


def test_orphan_generation_and_orphan_data_dir(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "x_data" / "g99_0.npy").write_bytes(b"old generation")
    (root / "gone_data").mkdir()
    (root / "gone_data" / "g1_0.npy").write_bytes(b"first write that died")
    found = kinds_of(root)
    assert found == {"orphan-data": ["g99_0.npy", "g1_0.npy"]}
    assert all(p.repairable for p in verify(root).problems)


def test_temporaries_in_root_and_data_dir(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / ".x.py.0123456789abcdef.tmp").write_text("partial")
    (root / "x_data" / ".g1_0.npy.attrs.json.ab_cd12.tmp").write_text("partial")
    found = kinds_of(root)
    assert sorted(found["temporary"]) == sorted(
        [".x.py.0123456789abcdef.tmp", ".g1_0.npy.attrs.json.ab_cd12.tmp"]
    )
    assert set(found) == {"temporary"}


def test_every_kind_is_covered() -> None:
    tested = {
        "bad-marker",
        "missing-init",
        "bad-init",
        "invalid-key",
        "bad-item",
        "bad-header",
        "missing-data",
        "bad-data",
        "bad-checksum",
        "orphan-data",
        "temporary",
    }
    assert tested == set(KINDS)


# ------------------------------------------------------------------ repair


def test_repair_removes_only_orphans_and_temporaries(tmp_path: Path) -> None:
    root = make(tmp_path)
    # user files, and things that are damaged but not repairable, must survive byte-identical
    (root / "README.txt").write_text("my notes")
    (root / "notes.tmp").write_text("user temp-looking file, not ours")
    (root / "x_data" / "my_own_file.txt").write_text("user file in a data dir")
    (root / "extra.py").write_text("extra = (1\n")  # a broken item: reported, never removed
    before = snapshot(root)
    leftovers = [
        root / ".x.py.0123456789abcdef.tmp",
        root / ".__init__.py.fedcba9876543210.tmp",
        root / "x_data" / "g99_0.npy",
        root / "gone_data" / "g1_0.npy",
    ]
    (root / "gone_data").mkdir()
    for p in leftovers:
        p.write_bytes(b"junk")
    report = verify(root, repair=True)
    assert sorted(report.repaired) == sorted(str(p) for p in leftovers)
    assert not report.ok  # the broken item remains
    assert {p.kind for p in report.problems if not p.repairable} == {"bad-item"}
    assert snapshot(root) == before
    assert not (root / "gone_data").exists()
    assert DataSet("d", path=tmp_path).y.shape == (10, 5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_repair_then_clean(tmp_path: Path, backend: str) -> None:
    root = make(tmp_path, backend)
    before = snapshot(root)
    (root / ".y.py.0123456789abcdef.tmp").write_text("x")
    (root / "y_data" / "g42.h5").write_bytes(b"partial")
    report = verify(root, repair=True)
    assert report.ok and len(report.repaired) == 2
    assert snapshot(root) == before
    assert verify(root).ok


def test_repair_waits_for_the_writer_lock(tmp_path: Path) -> None:
    root = make(tmp_path)
    import threading

    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with writer_lock(root).hold(timeout=5):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(5)
        with pytest.raises(LockTimeout):
            verify(root, repair=True, timeout=0.2)
        assert verify(root).ok  # without repair: no lock needed
    finally:
        release.set()
        t.join(10)


def test_unsafe_item_is_refused_unless_trusted(tmp_path: Path) -> None:
    pytest.importorskip("persist_hooks.safe")
    root = make(tmp_path)
    p = root / "small.py"
    p.write_text(p.read_text().replace("small = 3", "small = __import__('os').getcwd()"))
    report = verify(root)
    assert report.kinds() == {"bad-item"}
    assert "safe" in report.problems[0].message and report.problems[0].path == str(p)
    assert verify(root, trusted=True).ok  # trusted: a syntax check only


def test_safe_callables_let_user_classes_pass_the_untrusted_check(tmp_path: Path) -> None:
    from archive_helpers import Plain

    import persist_hooks as ph

    ds = ph.DataSet("d", "w", path=tmp_path)
    ds.p = Plain(a=1)
    refused = verify(tmp_path / "d")
    assert not refused.ok and refused.kinds() == {"bad-item"}
    assert verify(tmp_path / "d", safe_callables=["archive_helpers.Plain"]).ok

"""The zarr backend: the shared conformance suite, zarr specifics and DataSet round trips."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from persist_hooks_zarr import ZarrBackend

import persist_hooks as ph
from persist_hooks.errors import BackendError
from persist_hooks.testing import BackendTests, assert_identical, sample_array

zarr = pytest.importorskip("zarr")


class TestZarrConformance(BackendTests):
    backend_cls = ZarrBackend
    invalid_options = [{"compression": "gzip"}, {"compression": 1}]

    def corrupt(
        self,
        root: Path,
        entry: Mapping[str, Any],
        how: Literal["truncate-data", "truncate-header", "garbage"],
    ) -> str:
        """Damage a chunk (truncate-data) or the array's ``zarr.json`` (the others)."""
        array_dir = root / entry["path"] / entry["key"]
        if how == "truncate-data":
            chunk = sorted(p for p in (array_dir / "c").rglob("*") if p.is_file())[0]
            with open(chunk, "r+b") as fh:
                fh.truncate(chunk.stat().st_size - 1)
        elif how == "truncate-header":
            with open(array_dir / "zarr.json", "r+b") as fh:
                fh.truncate(10)
        else:
            (array_dir / "zarr.json").write_bytes(sample_array("u1", (256,), seed=7).tobytes())
        return str(entry["path"])


class TestZarrUncompressedConformance(TestZarrConformance):
    backend_options = {"compression": None}

    def corrupt(
        self,
        root: Path,
        entry: Mapping[str, Any],
        how: Literal["truncate-data", "truncate-header", "garbage"],
    ) -> str:
        if how == "truncate-data":
            how = "garbage"  # an uncompressed chunk one byte short is not detectably damaged
        return super().corrupt(root, entry, how)


def test_layout_uses_standard_zarr_dtypes(tmp_path: Path) -> None:
    big = sample_array(">f8", (300_000, 2), seed=1)
    arrays = {
        "array_0": big,
        "weird key": np.arange(3),
        "s": np.array(["ab", "€"]),
        "b": np.array([b"x\x00y"]),
    }
    entries = ZarrBackend().write(tmp_path, "x_data/g1", arrays)
    assert {e["path"] for e in entries.values()} == {"x_data/g1.zarr"}
    assert [e["key"] for e in entries.values()] == ["array_0", "_1", "s", "b"]
    group = zarr.open_group(tmp_path / "x_data/g1.zarr", mode="r")
    z = group["array_0"]
    assert np.prod(z.chunks) * 8 >= 1 << 20
    assert_identical(z[...].astype(">f8"), big)
    assert group["s"].dtype == np.dtype("u4") and group["s"].shape == (2, 2)
    assert group["b"].dtype == np.dtype("u1") and group["b"].shape == (1, 3)


def test_unsupported_dtypes_name_npy(tmp_path: Path) -> None:
    for dt in ("g", "G", [("a", "<i4"), ("b", "g")]):
        with pytest.raises(BackendError, match="npy") as info:
            ZarrBackend().check_dtype(np.dtype(dt))
        assert str(np.dtype(dt)) in str(info.value)
    with pytest.raises(BackendError, match="object arrays stay in the Python source"):
        ZarrBackend().write(tmp_path, "g1", {"a": np.empty(2, object)})


def test_datetime_and_structured_use_standard_zarr_dtypes(tmp_path: Path) -> None:
    """datetimes are int64, structured and void data raw bits: any zarr v3 client reads them."""
    when = np.array(["2020-01-01T00:00:00.123", "NaT"], ">M8[ms]")
    rec = sample_array([("a", "<i4"), ("s", "U2"), ("t", "<m8[s]")], (3,), seed=5)
    entries = ZarrBackend().write(tmp_path, "g1", {"when": when, "rec": rec})
    group = zarr.open_group(tmp_path / "g1.zarr", mode="r")
    assert group["when"].dtype == np.dtype("i8")
    assert_identical(group["when"][...].astype(">i8").view(">M8[ms]"), when)
    assert group["rec"].dtype == np.dtype(f"V{rec.dtype.itemsize}")
    for key, arr in (("when", when), ("rec", rec)):
        proxy = ZarrBackend().open(tmp_path, entries[key], mode="a")
        assert_identical(proxy[1:], arr[1:])
        proxy.append(arr[:1])
        assert_identical(proxy[-1:], arr[:1])


def test_zarr_is_imported_lazily() -> None:
    code = (
        "import sys, persist_hooks_zarr, persist_hooks.plugins as p; p.backends(); "
        "print('zarr' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dataset_roundtrip_and_append(tmp_path: Path) -> None:
    big = sample_array("<f8", (200_000,), seed=2)
    ds = ph.DataSet("d", "w", path=tmp_path, backend="zarr")
    ds.x = big
    assert list((tmp_path / "d").rglob("*.zarr"))
    assert_identical(np.asarray(ph.DataSet("d", "r", path=tmp_path).x), big)
    rows = np.arange(1000.0)
    with ph.DataSet("d", "a", path=tmp_path) as appendable:
        appendable.x.append(rows)
    got = np.asarray(ph.DataSet("d", "r", path=tmp_path).x)
    assert_identical(got, np.concatenate([big, rows]))
    with pytest.raises(ph.ReadOnlyError):
        ph.DataSet("d", "r", path=tmp_path).x.append(rows)


def test_mixed_backend_dataset(tmp_path: Path) -> None:
    """Each item records its backend: npy and zarr items live side by side in one DataSet."""
    a, b = sample_array("<f8", (5000, 2), seed=3), sample_array(">i4", (4000,), seed=4)
    ph.DataSet("d", "w", path=tmp_path, backend="zarr").a = [a, "small"]
    ph.DataSet("d", "w", path=tmp_path, backend="npy").b = b
    ds = ph.DataSet("d", "r", path=tmp_path)
    got_a = ds.a
    assert got_a[1] == "small"
    assert_identical(np.asarray(got_a[0]), a)
    assert_identical(np.asarray(ds.b), b)
    assert list((tmp_path / "d").rglob("*.zarr")) and list((tmp_path / "d").rglob("*.npy"))


# ------------------------------------------------------------------ opening from zarr.json


def _item_array_dir(root: Path, entry: Mapping[str, Any]) -> Path:
    return root / entry["path"] / entry["key"]


def test_open_reads_the_metadata_itself_and_a_read_opens_the_array_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening an item costs no zarr round trip; reading a slice costs one open."""
    import persist_hooks_zarr._backend as zb

    entry = ZarrBackend().write(tmp_path, "g1", {"a": np.arange(100.0)})["a"]
    opened: list[str] = []
    real = zb._open_array

    def counting(group: Any, key: str, mode: str = "r") -> Any:
        opened.append(mode)
        return real(group, key, mode)

    monkeypatch.setattr(zb, "_open_array", counting)
    proxy = ZarrBackend().open(tmp_path, entry)
    assert opened == []
    assert np.array_equal(proxy[40:45], np.arange(40.0, 45.0))
    assert opened == ["r"]  # one open for the read, shape included


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["attributes"].pop("persist_hooks_dtype"), "lacks a valid"),
        (lambda m: m.__setitem__("data_type", "int64"), "does not store"),
        (lambda m: m.__setitem__("data_type", {"name": "odd"}), "damaged zarr array|lacks|store"),
        (lambda m: m.__setitem__("shape", [-1]), "damaged zarr array|lacks|store"),
    ],
)
def test_open_judges_edited_metadata(
    tmp_path: Path, edit: Any, message: str
) -> None:
    """Metadata the fast path reads is checked as zarr's own open would be; anything
    unusual is left to zarr, whose complaint is reported as a FormatError."""
    import json

    entry = ZarrBackend().write(tmp_path, "g1", {"a": np.arange(10.0)})["a"]
    meta_path = _item_array_dir(tmp_path, entry) / "zarr.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ph.FormatError, match=message):
        ZarrBackend().open(tmp_path, entry)


def test_open_of_a_removed_array_raises_file_not_found(tmp_path: Path) -> None:
    import shutil

    entry = ZarrBackend().write(tmp_path, "g1", {"a": np.arange(10.0)})["a"]
    shutil.rmtree(_item_array_dir(tmp_path, entry))
    with pytest.raises(FileNotFoundError, match="No such zarr array"):
        ZarrBackend().open(tmp_path, entry)

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
    for dt in ("<M8[ns]", "V5", [("a", "<i4")]):
        with pytest.raises(BackendError, match="npy"):
            ZarrBackend().check_dtype(np.dtype(dt))
    with pytest.raises(BackendError, match="object arrays stay in the Python source"):
        ZarrBackend().write(tmp_path, "g1", {"a": np.empty(2, object)})


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

"""xarray DataArrays and Datasets: readable calls, externalised arrays, safe loading, open_zarr."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import persist_hooks as ph

xr = pytest.importorskip("xarray")
# import dask now, not inside a test: dask imports the importlib_metadata backport, which puts
# a finder on sys.meta_path that the suite's import hygiene would remove after the test
with contextlib.suppress(ImportError):  # without dask, the dask tests skip themselves
    import dask.array  # noqa: F401

BACKENDS = [b for b in ("npy", "hdf5", "zarr") if b in ph.backends()]


def temperature() -> Any:
    return xr.DataArray(
        np.random.default_rng(0).random((50, 40)),
        dims=("time", "x"),
        coords={
            "time": np.arange(50.0),
            "x": np.arange(40),
            "label": ("x", np.array([f"p{i}" for i in range(40)])),
            "height": 2.0,
        },
        name="t2m",
        attrs={"units": "K", "history": ["made", "tested"]},
    )


def weather() -> Any:
    t = temperature()
    return xr.Dataset(
        {"t2m": t, "pressure": (("time",), np.linspace(1000, 990, 50), {"units": "hPa"})},
        attrs={"title": "demo"},
    )


def test_representers_are_registered_by_name_and_declared_safe() -> None:
    assert ph.representers()["xarray.core.dataarray.DataArray"] == "xarray"
    assert {"xarray.DataArray", "xarray.Dataset"} <= ph.plugins.safe_callables()


def test_source_is_readable() -> None:
    a = ph.Archive(scoped=False)
    a.insert(t=xr.DataArray(np.arange(3), dims="x", coords={"x": [10, 20, 30]}, name="t"))
    src = str(a)
    assert "DataArray(array([0, 1, 2], dtype='int64'), dims=('x',), coords={'x': (('x',), " in src
    xr.testing.assert_identical(ph.restore(src, safe=True)["t"], a_restored := ph.restore(src)["t"])
    assert a_restored.name == "t"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("trusted", [True, False])
def test_dataset_round_trip(backend: str, trusted: bool, tmp_path: Path) -> None:
    ds = ph.DataSet("d", "w", path=tmp_path, backend=backend, array_threshold=30)
    ds.t = temperature()
    ds.w = weather()
    ds.both = [ds.t, ds.w]
    r = ph.DataSet("d", "r", path=tmp_path, trusted=trusted)
    xr.testing.assert_identical(r.t, temperature())
    xr.testing.assert_identical(r.w, weather())
    xr.testing.assert_identical(r.both[1], weather())
    text = (tmp_path / "d" / "t.py").read_text()
    assert "_arrays['array_" in text and "DataArray(" in text  # the arrays left the source


def test_open_as_dask_gives_dask_backed_xarray(tmp_path: Path) -> None:
    pytest.importorskip("dask.array")
    ds = ph.DataSet("d", "w", path=tmp_path, array_threshold=30)
    ds.w = weather()
    lazy = ds.open("w", as_="dask")
    assert type(lazy["t2m"].data).__name__ == "Array"
    xr.testing.assert_identical(lazy.compute(), weather())


@pytest.mark.skipif("zarr" not in BACKENDS, reason="needs persist-hooks-zarr")
def test_zarr_groups_open_with_xarray_open_zarr_using_the_dims(tmp_path: Path) -> None:
    ds = ph.DataSet("d", "w", path=tmp_path, backend="zarr", array_threshold=30)
    ds.t = temperature()
    header = json.loads((tmp_path / "d" / "t.py").read_text().splitlines()[1].split(":", 1)[1])
    (group,) = {e["path"] for e in header["arrays"].values()}
    opened = xr.open_zarr(tmp_path / "d" / group, consolidated=False)
    assert {"time": 50, "x": 40}.items() <= dict(opened.sizes).items()
    (values,) = [v for v in opened.data_vars.values() if v.dims == ("time", "x")]
    np.testing.assert_array_equal(values.values, temperature().values)


@pytest.mark.skipif("zarr" not in BACKENDS, reason="needs persist-hooks-zarr")
def test_dask_backed_data_array_is_written_without_computing(tmp_path: Path) -> None:
    da = pytest.importorskip("dask.array")
    computed: list[int] = []

    def spy(block: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if block.size:
            computed.append(block.size)
        return block

    data = da.ones((400, 30), chunks=(100, 30)).map_blocks(spy, dtype="f8")
    lazy = xr.DataArray(data, dims=("y", "x"), name="ones")
    a = ph.Archive(array_threshold=10)
    a.insert(v=lazy)
    assert computed == []  # archiving does not compute
    ds = ph.DataSet("d", "w", path=tmp_path, backend="zarr")
    ds.v = lazy
    assert sum(computed) == 400 * 30  # the backend computed each chunk once
    back = ds.open("v", as_="dask")
    assert back.dims == ("y", "x") and back.data.chunks == data.chunks
    xr.testing.assert_identical(back.compute(), lazy.compute())


def test_plugin_import_does_not_import_xarray() -> None:
    code = "import sys, persist_hooks_xarray, persist_hooks as ph; ph.representers(); print('xarray' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"

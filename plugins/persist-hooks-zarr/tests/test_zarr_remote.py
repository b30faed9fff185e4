"""The zarr backend's ``url`` option: arrays in fsspec storage (``memory://``, ``file://``), the
``.py`` files local; plus dask writes into zarr and ``dimension_names`` for ``xarray.open_zarr``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from persist_hooks_zarr import ZarrBackend

import persist_hooks as ph
from persist_hooks.errors import BackendError, FormatError

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("zarr")
# import dask now, not inside a test: dask imports the importlib_metadata backport, which puts
# a finder on sys.meta_path that the suite's import hygiene would remove after the test
with contextlib.suppress(ImportError):  # without dask, the dask tests skip themselves
    import dask.array  # noqa: F401


@pytest.fixture(params=["memory", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        base = f"memory://persist-hooks-tests/{tmp_path.name}"
        yield base
        memory = fsspec.filesystem("memory")
        if memory.exists(f"/persist-hooks-tests/{tmp_path.name}"):
            memory.rm(f"/persist-hooks-tests/{tmp_path.name}", recursive=True)
    else:
        remote = tmp_path / "remote"
        remote.mkdir()
        yield remote.as_uri()


def remote_files(url: str) -> list[str]:
    fs, path = fsspec.core.url_to_fs(url)
    return sorted(p[len(path) :] for p in fs.find(path)) if fs.exists(path) else []


def header(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text().splitlines()[1].split(":", 1)[1])  # type: ignore[no-any-return]


def test_arrays_go_to_the_url_and_py_files_stay_local(url: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    ds = ph.DataSet("data", "w", path=local, backend="zarr", backend_options={"url": url})
    x = np.arange(10_000.0).reshape(100, 100)
    ds.x = {"a": x, "text": np.array(["ab", "c"] * 100)}
    assert (local / "data" / "x.py").is_file() and not (local / "data" / "x_data").exists()
    files = remote_files(url)
    assert any(f.startswith("/data/x_data/g1-") and f.endswith("zarr.json") for f in files)
    entries = header(local / "data" / "x.py")["arrays"]
    assert {e["url"] for e in entries.values()} == {f"{url}/data"}
    got = ph.DataSet("data", "r", path=local).x
    np.testing.assert_array_equal(np.asarray(got["a"]), x)
    np.testing.assert_array_equal(np.asarray(got["text"]), np.array(["ab", "c"] * 100))
    assert ph.DataSet("data", "r", path=local, trusted=False).open("x", as_="numpy")["a"].sum() == x.sum()
    report = ph.verify(local / "data")
    assert not [p for p in report.problems if p.kind.endswith("-data")], report


def test_superseded_and_deleted_data_is_removed_remotely(url: str, tmp_path: Path) -> None:
    ds = ph.DataSet("data", "w", path=tmp_path / "local", backend="zarr", backend_options={"url": url})
    ds.x = np.arange(1000)
    first = {f.split("/")[3] for f in remote_files(url)}
    ds.x = np.arange(2000)
    second = {f.split("/")[3] for f in remote_files(url)}
    assert len(first) == len(second) == 1 and first != second  # the old generation is gone
    ds.y = np.arange(1000)
    del ds.x
    assert all("/x_data/" not in f for f in remote_files(url))
    ds.z = np.arange(1000)
    ds.clear()
    assert [f for f in remote_files(url) if f.endswith("zarr.json")] == []


def test_backup_data_keeps_the_previous_generation(url: str, tmp_path: Path) -> None:
    ds = ph.DataSet(
        "data", "w", path=tmp_path / "local", backend="zarr", backend_options={"url": url}, backup_data=True
    )
    ds.x = np.arange(1000)
    ds.x = np.arange(2000)
    assert len({f.split("/")[3] for f in remote_files(url)}) == 2
    ds.x = np.arange(3000)  # the new backup replaces the old one: its data goes
    assert len({f.split("/")[3] for f in remote_files(url)}) == 2
    assert np.asarray(ds.x).size == 3000


def test_reading_never_depends_on_configuration(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[tool.persist_hooks]\nbackend = "zarr"\n[tool.persist_hooks.zarr]\nurl = "{url}"\n'
    )
    monkeypatch.chdir(project)
    monkeypatch.delenv("PERSIST_HOOKS_BACKEND", raising=False)
    ds = ph.DataSet("data", "w", path=tmp_path / "local")
    ds.x = np.arange(1000)
    assert remote_files(url)
    (project / "pyproject.toml").write_text('[tool.persist_hooks]\nbackend = "npy"\n')
    monkeypatch.chdir(tmp_path)
    assert np.asarray(ph.DataSet("data", "r", path=tmp_path / "local").x).sum() == 499_500


def test_missing_remote_data_is_reported(url: str, tmp_path: Path) -> None:
    ds = ph.DataSet("data", "w", path=tmp_path / "local", backend="zarr", backend_options={"url": url})
    ds.x = np.arange(1000)
    fs, path = fsspec.core.url_to_fs(url)
    fs.rm(path.rstrip("/") + "/data", recursive=True)
    report = ph.verify(tmp_path / "local" / "data")
    assert [p.kind for p in report.problems if p.kind.endswith("-data")] == ["missing-data"]
    with pytest.raises(FormatError, match="missing"):
        ds.x  # noqa: B018


def test_item_imports_without_persist_hooks_from_a_file_url(tmp_path: Path) -> None:
    url = (tmp_path / "remote").as_uri()
    ds = ph.DataSet("data", "w", path=tmp_path, backend="zarr", backend_options={"url": url})
    ds.x = [np.arange(1000.0), "label"]
    code = "import data.x as x; print(x[0].sum(), x[1])"
    env = {**os.environ, "PERSIST_HOOKS_NO_HOOK": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["499500.0", "label"]


def test_url_option_is_checked() -> None:
    assert ZarrBackend(url="memory://b/").options["url"] == "memory://b"
    with pytest.raises(BackendError, match="fsspec URL"):
        ZarrBackend(url="not a url")


def test_a_forged_header_cannot_delete_foreign_data(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign" / "precious"
    foreign.mkdir(parents=True)
    (foreign / "zarr.json").write_text('{"node_type": "array", "attributes": {}}')
    entry = {"path": "foreign", "url": tmp_path.as_uri(), "key": "precious", "shape": [1], "dtype": "<f8"}
    ZarrBackend().delete(tmp_path, [entry])
    assert (foreign / "zarr.json").exists()
    with pytest.raises(FormatError):
        ZarrBackend().delete(tmp_path, [dict(entry, path="../etc")])


# ---------------------------------------------------------------- dask and xarray


def test_dask_array_written_with_its_chunks(tmp_path: Path) -> None:
    da = pytest.importorskip("dask.array")
    x = da.arange(100_000, chunks=25_000).astype(">i8")
    ds = ph.DataSet("d", "w", path=tmp_path, backend="zarr")
    ds.x = x
    lazy = ds.open("x", as_="dask")
    assert lazy.chunks == x.chunks and lazy.dtype == np.dtype(">i8")
    np.testing.assert_array_equal(lazy.compute(), np.arange(100_000))
    irregular = da.concatenate([da.ones(10, chunks=10), da.ones(30, chunks=30)])
    ds.y = irregular  # chunks (10, 30): rechunked to the default layout, not to dask's
    assert np.asarray(ds.y).sum() == 40


def test_dimension_names_open_with_xarray(tmp_path: Path) -> None:
    xr = pytest.importorskip("xarray")
    ds = ph.DataSet("d", "w", path=tmp_path, backend="zarr", array_threshold=5)
    ds.x = {"a": np.zeros((20, 3)), "b": np.ones(7), "c": np.ones(20)}
    (group,) = {e["path"] for e in header(tmp_path / "d" / "x.py")["arrays"].values()}
    opened = xr.open_zarr(tmp_path / "d" / group, consolidated=False)
    assert sorted(opened.sizes.values()) == [3, 7, 20] and opened.sizes["dim_0"] == 20
    assert {v.shape: float(v.sum()) for v in opened.data_vars.values()} == {(20, 3): 0, (7,): 7, (20,): 20}

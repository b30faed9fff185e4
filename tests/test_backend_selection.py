"""Which backend writes a DataSet item: argument > environment > nearest pyproject.toml > npy.

Checked through real DataSet writes (the header of each item records the backend and
its options) rather than by calling the configuration functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from persist_hooks import config, plugins
from persist_hooks._format import parse_item
from persist_hooks.dataset import DataSet
from persist_hooks.errors import BackendError

pytest.importorskip("h5py")
pytest.importorskip("zarr")

BIG = np.arange(1000.0)  # above the default array_threshold: stored by the backend


@pytest.fixture(autouse=True)
def clean_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(config.BACKEND_ENV, raising=False)
    monkeypatch.delenv(plugins.DISABLE_AUTOLOAD_ENV, raising=False)
    config.clear_cache()
    yield
    config.clear_cache()
    plugins.reset()


def header(root: Path, name: str) -> dict[str, Any]:
    path = root / f"{name}.py"
    item = parse_item(path.read_text(), str(path))
    assert item is not None
    return item.header


def written_by(workdir: Path, store: Path, backend: str | None = None, **kw: Any) -> str:
    """Write one item from ``workdir`` and return the backend its header records."""
    os.chdir(workdir)
    ds = DataSet("data", "w", path=store, backend=backend, **kw)
    ds.x = BIG
    assert np.array_equal(ds.x, BIG)
    return str(header(store / "data", "x")["backend"])


def pyproject(directory: Path, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(text)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """outer/ (zarr) > middle/ (a pyproject without our table) > inner/ (hdf5) > deep/."""
    monkeypatch.chdir(tmp_path)  # restored after the test
    pyproject(tmp_path / "outer", '[tool.persist_hooks]\nbackend = "zarr"\n')
    pyproject(tmp_path / "outer" / "middle", '[project]\nname = "unrelated"\n')
    pyproject(
        tmp_path / "outer" / "middle" / "inner",
        '[project]\nname = "x"\n\n[tool.persist_hooks]\nbackend = "hdf5"\n',
    )
    (tmp_path / "outer" / "middle" / "inner" / "deep").mkdir()
    (tmp_path / "outer" / "side").mkdir()
    (tmp_path / "elsewhere").mkdir()
    return tmp_path


def test_default_is_npy(tree: Path) -> None:
    assert written_by(tree / "elsewhere", tree / "store") == "npy"


def test_nearest_pyproject_with_the_table_wins(tree: Path) -> None:
    inner = tree / "outer" / "middle" / "inner"
    assert written_by(inner / "deep", tree / "s1") == "hdf5"
    assert written_by(inner, tree / "s2") == "hdf5"
    # the middle pyproject has no [tool.persist_hooks]: skipped, the outer one applies
    assert written_by(tree / "outer" / "middle", tree / "s3") == "zarr"
    assert written_by(tree / "outer" / "side", tree / "s4") == "zarr"


def test_env_overrides_pyproject(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tree / "outer" / "middle" / "inner" / "deep"
    monkeypatch.setenv(config.BACKEND_ENV, "zarr")
    assert written_by(deep, tree / "s1") == "zarr"
    monkeypatch.setenv(config.BACKEND_ENV, "npy")
    assert written_by(deep, tree / "s2") == "npy"
    monkeypatch.setenv(config.BACKEND_ENV, "")  # empty: ignored
    assert written_by(deep, tree / "s3") == "hdf5"
    monkeypatch.setenv(config.BACKEND_ENV, "hdf5")
    assert written_by(tree / "elsewhere", tree / "s4") == "hdf5"


def test_argument_overrides_env_and_pyproject(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tree / "outer" / "middle" / "inner" / "deep"
    monkeypatch.setenv(config.BACKEND_ENV, "zarr")
    assert written_by(deep, tree / "s1", backend="npy") == "npy"
    assert written_by(deep, tree / "s2", backend="hdf5") == "hdf5"
    monkeypatch.delenv(config.BACKEND_ENV)
    assert written_by(deep, tree / "s3", backend="zarr") == "zarr"


def test_pyproject_change_is_seen(tree: Path) -> None:
    inner = tree / "outer" / "middle" / "inner"
    assert written_by(inner, tree / "s1") == "hdf5"
    pyproject(inner, '[tool.persist_hooks]\nbackend = "npy"\n\n[tool.persist_hooks.npy]\n')
    assert written_by(inner, tree / "s2") == "npy"


def test_backend_options_from_pyproject_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyproject(
        tmp_path / "proj",
        '[tool.persist_hooks]\nbackend = "hdf5"\n\n'
        '[tool.persist_hooks.hdf5]\ncompression = "gzip"\ncompression_opts = 1\nshuffle = true\n\n'
        '[tool.persist_hooks.zarr]\ncompression = "none-such"\n',  # never used below
    )
    monkeypatch.chdir(tmp_path / "proj")
    ds = DataSet("data", "w", path=tmp_path)
    ds.x = BIG
    h = header(tmp_path / "data", "x")
    assert h["backend"] == "hdf5"
    assert h["options"] == {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    import h5py

    path = tmp_path / "data" / h["arrays"]["array_0"]["path"]
    with h5py.File(path, "r") as f:
        assert f[h["arrays"]["array_0"]["key"]].compression == "gzip"
    # the options of the chosen backend apply wherever its name came from ...
    monkeypatch.setenv(config.BACKEND_ENV, "npy")
    ds2 = DataSet("data2", "w", path=tmp_path, backend="hdf5")
    ds2.x = BIG
    assert header(tmp_path / "data2", "x")["options"]["compression"] == "gzip"
    # ... and the backend_options argument overrides them key by key
    ds3 = DataSet("data3", "w", path=tmp_path, backend="hdf5", backend_options={"shuffle": False})
    ds3.x = BIG
    assert header(tmp_path / "data3", "x")["options"] == {
        "compression": "gzip",
        "compression_opts": 1,
        "shuffle": False,
    }
    # a bad option in the configuration names it
    monkeypatch.setenv(config.BACKEND_ENV, "zarr")
    ds4 = DataSet("data4", "w", path=tmp_path)
    with pytest.raises(BackendError, match="compression"):
        ds4.x = BIG
    assert "x" not in ds4


def test_reading_never_depends_on_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ds = DataSet("data", "w", path=tmp_path, backend="hdf5", backend_options={"compression": "lzf"})
    ds.x = {"a": BIG, "b": BIG.astype("f4")}
    ds.y = BIG  # written by hdf5 too
    for env in ("zarr", "npy", "no-such-backend"):
        monkeypatch.setenv(config.BACKEND_ENV, env)
        for mode in ("r", "a"):
            got = DataSet("data", mode, path=tmp_path)
            assert np.array_equal(got.x["a"], BIG) and got.x["b"].dtype == np.float32
            assert np.array_equal(got.y, BIG)
    # and a pyproject naming another backend with options it would reject
    pyproject(
        tmp_path, '[tool.persist_hooks]\nbackend = "zarr"\n[tool.persist_hooks.hdf5]\nx = 1\n'
    )
    monkeypatch.delenv(config.BACKEND_ENV)
    assert np.array_equal(DataSet("data", path=tmp_path).y, BIG)
    assert header(tmp_path / "data", "y")["backend"] == "hdf5"


def test_mixed_backend_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    values = {
        "by_npy": [BIG, np.arange(500, dtype=">i2")],
        "by_hdf5": {"m": np.ones((40, 30), "c16"), "s": np.array([b"ab"] * 200)},
        "by_zarr": (np.array(["xyz", "q"] * 300), np.arange(2000) % 2 == 0),
    }
    for name, backend in (("by_npy", "npy"), ("by_hdf5", "hdf5"), ("by_zarr", "zarr")):
        setattr(DataSet("data", "w", path=tmp_path, backend=backend), name, values[name])
        DataSet("data", "w", path=tmp_path)[name] = f"written by {backend}"
    root = tmp_path / "data"
    assert [header(root, n)["backend"] for n in values] == ["npy", "hdf5", "zarr"]
    for mode in ("r", "a"):
        ds = DataSet("data", mode, path=tmp_path)
        assert list(ds) == list(values)
        assert ds["by_zarr"] == "written by zarr"
        for name, expected in values.items():
            got = getattr(ds, name)
            items = expected.items() if isinstance(expected, dict) else enumerate(expected)
            for k, arr in items:
                out = np.asarray(got[k])
                assert out.dtype == arr.dtype and np.array_equal(out, arr), (name, k)
    # rewriting one item with another backend leaves the others alone
    DataSet("data", "w", path=tmp_path, backend="zarr").by_npy = values["by_npy"]
    assert [header(root, n)["backend"] for n in values] == ["zarr", "hdf5", "zarr"]
    assert sorted(os.listdir(root / "by_npy_data")) == ["g2.zarr"]


def test_unknown_backend_lists_installed_ones(tmp_path: Path) -> None:
    ds = DataSet("data", "w", path=tmp_path, backend="hdf9")
    with pytest.raises(BackendError) as info:
        ds.x = BIG
    message = str(info.value)
    assert "'hdf9'" in message and "hdf5, npy, zarr" in message
    assert "x" not in ds and not (tmp_path / "data" / "x.py").exists()


def test_unknown_backend_from_env_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.BACKEND_ENV, "parquet")
    ds = DataSet("data", "w", path=tmp_path)
    with pytest.raises(BackendError, match=r"'parquet'.*installed backends: hdf5, npy, zarr"):
        ds.x = BIG
    assert "x" not in ds


def test_missing_plugin_names_the_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(plugins.DISABLE_AUTOLOAD_ENV, "1")
    plugins.reset()
    assert plugins.backends() == ["npy"]
    for backend, dist in (("hdf5", "persist-hooks-hdf5"), ("zarr", "persist-hooks-zarr")):
        ds = DataSet("data", "w", path=tmp_path, backend=backend)
        with pytest.raises(BackendError) as info:
            ds.x = BIG
        message = str(info.value)
        assert f"pip install {dist}" in message and "installed backends: npy" in message

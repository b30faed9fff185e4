"""Backend configuration: argument > PERSIST_HOOKS_BACKEND > nearest [tool.persist_hooks] > "npy"."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from persist_hooks import config, plugins
from persist_hooks.backends.npy import NpyBackend
from persist_hooks.errors import BackendError, FormatError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.BACKEND_ENV, raising=False)
    monkeypatch.delenv(config.DURABLE_ENV, raising=False)
    config.clear_cache()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with no [tool.persist_hooks] anywhere above it."""
    if config.project_config(tmp_path)[0] is not None:
        pytest.skip("a pyproject.toml with [tool.persist_hooks] sits above the temporary directory")
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf8")
    return path


def test_default_is_npy(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert config.resolve_backend() == ("npy", {})
    assert config.durable_default() is False


def test_pyproject_beats_default(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "pyproject.toml", '[tool.persist_hooks]\nbackend = "zarr"\n')
    (project / "src" / "pkg").mkdir(parents=True)
    monkeypatch.chdir(project / "src" / "pkg")
    assert config.resolve_backend() == ("zarr", {})
    assert config.resolve_backend(cwd=project) == ("zarr", {})


def test_env_beats_pyproject(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "pyproject.toml", '[tool.persist_hooks]\nbackend = "zarr"\n')
    monkeypatch.chdir(project)
    monkeypatch.setenv(config.BACKEND_ENV, "hdf5")
    assert config.resolve_backend() == ("hdf5", {})
    monkeypatch.setenv(config.BACKEND_ENV, "")  # empty counts as unset
    assert config.resolve_backend() == ("zarr", {})


def test_argument_beats_env(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "pyproject.toml", '[tool.persist_hooks]\nbackend = "zarr"\n')
    monkeypatch.setenv(config.BACKEND_ENV, "hdf5")
    assert config.resolve_backend("npy", cwd=project) == ("npy", {})


def test_nearest_file_with_the_table_wins(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.persist_hooks]\nbackend = "zarr"\n')
    inner = project / "a" / "b"
    write(inner / "pyproject.toml", '[project]\nname = "x"\n[tool.ruff]\nline-length = 80\n')
    assert config.resolve_backend(cwd=inner) == ("zarr", {})  # inner file has no table: skipped
    assert config.project_config(inner)[0] == project / "pyproject.toml"
    write(inner / "pyproject.toml", '[tool.persist_hooks]\nbackend = "hdf5"\n')
    assert config.resolve_backend(cwd=inner / "deeper") == ("hdf5", {})
    assert config.resolve_backend(cwd=project / "a") == ("zarr", {})


def test_empty_table_stops_the_search(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.persist_hooks]\nbackend = "zarr"\n')
    write(project / "sub" / "pyproject.toml", "[tool.persist_hooks]\n")
    assert config.resolve_backend(cwd=project / "sub") == ("npy", {})


def test_options_from_subtable_and_argument(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        project / "pyproject.toml",
        '[tool.persist_hooks]\nbackend = "hdf5"\ndurable = true\n'
        '[tool.persist_hooks.hdf5]\ncompression = "gzip"\ncompression_opts = 4\n'
        "[tool.persist_hooks.zarr]\nchunks = 1024\n",
    )
    assert config.resolve_backend(cwd=project) == (
        "hdf5",
        {"compression": "gzip", "compression_opts": 4},
    )
    assert config.resolve_backend(None, {"compression_opts": 9}, cwd=project) == (
        "hdf5",
        {"compression": "gzip", "compression_opts": 9},
    )
    # options follow the backend, however it was chosen
    assert config.resolve_backend("zarr", cwd=project) == ("zarr", {"chunks": 1024})
    monkeypatch.setenv(config.BACKEND_ENV, "zarr")
    assert config.resolve_backend(cwd=project) == ("zarr", {"chunks": 1024})
    assert config.resolve_backend("npy", cwd=project) == ("npy", {})


def test_durable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.durable_default(project) is False
    write(project / "pyproject.toml", "[tool.persist_hooks]\ndurable = true\n")
    assert config.durable_default(project) is True
    for value, expected in [
        ("0", False),
        ("off", False),
        ("No", False),
        ("", False),
        ("1", True),
        ("yes", True),
    ]:
        monkeypatch.setenv(config.DURABLE_ENV, value)
        assert config.durable_default(project) is expected, value
    monkeypatch.delenv(config.DURABLE_ENV)
    write(project / "pyproject.toml", "[tool.persist_hooks]\ndurable = false\n")
    assert config.durable_default(project) is False
    monkeypatch.setenv(config.DURABLE_ENV, "1")
    assert config.durable_default(project) is True


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[tool.persist_hooks\nbackend = 1\n", "invalid TOML"),
        ('[tool.persist_hooks]\nbackend = "a"\nbackend = "b"\n', "invalid TOML"),
        ("[tool.persist_hooks]\nbackend = 3\n", "tool.persist_hooks.backend"),
        ('[tool.persist_hooks]\nbackend = ""\n', "tool.persist_hooks.backend"),
        ('[tool.persist_hooks]\nbackend = "hdf5"\nhdf5 = 3\n', "tool.persist_hooks.hdf5"),
        ("[tool]\npersist_hooks = 3\n", "tool.persist_hooks must be a table"),
    ],
)
def test_malformed_pyproject_names_the_file(project: Path, text: str, match: str) -> None:
    path = write(project / "pyproject.toml", text)
    with pytest.raises(FormatError, match=match) as info:
        config.resolve_backend(cwd=project)
    assert str(path) in str(info.value)


def test_malformed_durable(project: Path) -> None:
    path = write(project / "pyproject.toml", '[tool.persist_hooks]\ndurable = "yes"\n')
    with pytest.raises(FormatError, match="durable") as info:
        config.durable_default(project)
    assert str(path) in str(info.value)


def test_malformed_file_on_the_way_up_is_reported(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.persist_hooks]\nbackend = "zarr"\n')
    bad = write(project / "sub" / "pyproject.toml", "not = [toml\n")
    with pytest.raises(FormatError) as info:
        config.resolve_backend(cwd=project / "sub")
    assert str(bad) in str(info.value)


def test_bad_argument(project: Path) -> None:
    with pytest.raises(TypeError, match="backend argument"):
        config.resolve_backend("", cwd=project)
    with pytest.raises(TypeError, match="backend argument"):
        config.resolve_backend(3, cwd=project)  # type: ignore[arg-type]


def test_parsed_files_are_cached_until_they_change(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(project / "pyproject.toml", '[tool.persist_hooks]\nbackend = "zarr"\n')
    parses: list[object] = []
    real = tomllib.load

    def counting(fh: object) -> object:
        parses.append(fh)
        return real(fh)  # type: ignore[arg-type]

    monkeypatch.setattr(tomllib, "load", counting)
    for _ in range(3):
        assert config.resolve_backend(cwd=project) == ("zarr", {})
    assert len(parses) == 1
    write(path, '[tool.persist_hooks]\nbackend = "hdf5"\n')
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert config.resolve_backend(cwd=project) == ("hdf5", {})
    assert len(parses) == 2


def test_get_backend() -> None:
    assert config.get_backend("npy") == NpyBackend()
    assert isinstance(config.get_backend("npy"), NpyBackend)
    with pytest.raises(BackendError, match="no_such_option"):
        config.get_backend("npy", no_such_option=1)
    with pytest.raises(BackendError, match="'nope' is not installed") as info:
        config.get_backend("nope")
    assert "npy" in str(info.value)  # lists what is installed


def test_get_backend_install_hint() -> None:
    if "hdf5" in plugins.backends():
        pytest.skip("the hdf5 backend is installed here")
    with pytest.raises(BackendError, match="pip install persist-hooks-hdf5"):
        config.get_backend("hdf5")


def test_configured_backend_end_to_end(project: Path) -> None:
    write(
        project / "pyproject.toml",
        '[tool.persist_hooks]\nbackend = "npy"\n[tool.persist_hooks.npy]\nlevel = 3\n',
    )
    name, options = config.resolve_backend(cwd=project)
    with pytest.raises(BackendError, match="'level'"):
        config.get_backend(name, **options)

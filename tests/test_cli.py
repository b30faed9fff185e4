"""The ``persist-hooks`` command, run through its real entry points in subprocesses, and the
progress reporter's decisions (in-process, with a fake terminal and a fake tqdm).

Commands are run as ``.venv/bin/persist-hooks`` (the console script pyproject declares)
and as ``python -m persist_hooks``.  DataSets are written in ``tmp_path`` with the npy
backend, plus hdf5 / zarr items when those plugins are installed.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import persist_hooks as ph
from persist_hooks import _format as fmt
from persist_hooks import _progress
from persist_hooks._progress import Progress, bar_allowed, progress

INSTALLED = set(ph.backends())
OTHER_BACKENDS = sorted(INSTALLED - {"npy"})


def _script() -> str:
    found = Path(sys.executable).parent / "persist-hooks"
    if found.exists():
        return str(found)
    which = shutil.which("persist-hooks")
    if which is None:  # pragma: no cover - the distribution is installed for the tests
        pytest.skip("the persist-hooks console script is not installed")
    return which


SCRIPT = _script()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PERSIST_HOOKS_BACKEND", "PERSIST_HOOKS_DISABLE_PLUGIN_AUTOLOAD"):
        env.pop(var, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(
    *args: str | Path, module: bool = False, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``persist-hooks ARGS`` (or ``python -m persist_hooks ARGS``) and capture its output."""
    cmd = [sys.executable, "-m", "persist_hooks"] if module else [SCRIPT]
    return subprocess.run(
        [*cmd, *map(str, args)],
        capture_output=True,
        text=True,
        env={**_env(), **env},
        cwd=cwd,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def header(path: Path) -> dict[str, Any]:
    item = fmt.parse_item(path.read_text(), str(path))
    assert item is not None
    return item.header


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DataSet with npy items (arrays and not), a metadata-only key, and hdf5/zarr items."""
    where = tmp_path_factory.mktemp("cli")
    ds = ph.DataSet("mydata", "w", path=where, array_threshold=100, backend="npy")
    ds.x = [np.arange(1000.0), {"a": 1}]
    ds["x"] = "a list of an array and a dict"
    ds.n = {"alpha": 0.1}
    ds["note"] = "metadata only"
    for backend in OTHER_BACKENDS:
        other = ph.DataSet("mydata", "w", path=where, array_threshold=100, backend=backend)
        setattr(other, f"in_{backend}", np.ones((50, 4)))
        other.close()
    ds.close()
    return where / "mydata"


@pytest.fixture
def copy(dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the module's DataSet, for commands that change it."""
    target = tmp_path / "mydata"
    shutil.copytree(dataset, target)
    return target


# ---------------------------------------------------------------- entry points and usage


@pytest.mark.parametrize("module", [False, True], ids=["console-script", "python-m"])
def test_help_from_both_entry_points(module: bool) -> None:
    result = run("--help", module=module)
    assert result.returncode == 0, result.stderr
    for command in ("info", "show", "verify", "convert", "plugins", "demo"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],  # no command
        ["bogus"],
        ["info"],  # PATH missing
        ["show", "somewhere"],  # ITEM missing
        ["convert", "somewhere"],  # --backend missing
        ["verify", "somewhere", "--no-such-flag"],
    ],
    ids=["no-command", "unknown-command", "no-path", "no-item", "no-backend", "bad-flag"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "usage:" in result.stderr


def test_unknown_backend_is_a_usage_error(copy: Path) -> None:
    result = run("convert", copy, "--backend", "nosuch")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "'nosuch'" in line and "npy" in line
    bad_option = run("convert", copy, "--backend", "npy", "--option", "level=3")
    assert bad_option.returncode == 2
    assert "'level'" in one_line_error(bad_option)
    assert header(copy / "x.py")["backend"] == "npy"


@pytest.mark.parametrize(
    "command", [["info"], ["verify"], ["show", "x"], ["convert", "--backend", "npy"]]
)
def test_missing_dataset_exits_1_with_one_line(tmp_path: Path, command: list[str]) -> None:
    name, *rest = command
    result = run(name, tmp_path / "nowhere", *rest)
    assert result.returncode == 1
    assert "nowhere" in one_line_error(result)


def test_not_a_dataset_exits_1(tmp_path: Path) -> None:
    result = run("info", tmp_path)
    assert result.returncode == 1
    assert "not a DataSet" in one_line_error(result)


def test_debug_shows_the_traceback(dataset: Path) -> None:
    result = run("--debug", "show", dataset, "nope", module=True)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "no item 'nope'" in result.stderr.splitlines()[-1]


# ---------------------------------------------------------------- info


def test_info_table(dataset: Path) -> None:
    result = run("info", dataset)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("DataSet mydata at ")
    assert lines[1].split() == ["KEY", "KIND", "BACKEND", "ARRAYS", "SIZE", "METADATA"]
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert rows["x"].split()[1:4] == ["item", "npy", "1"]
    assert "'a list of an array and a dict'" in rows["x"]
    assert rows["n"].split()[1:4] == ["item", "-", "0"]
    assert rows["note"].split()[1] == "metadata"
    for backend in OTHER_BACKENDS:
        assert rows[f"in_{backend}"].split()[1:4] == ["item", backend, "1"]
    # columns are aligned: every row starts its SIZE column's right edge at the same place
    size_end = lines[1].index("SIZE") + len("SIZE")
    assert all(line[size_end - 1] != " " for line in lines[2:-1])
    assert lines[-1].startswith(f"{2 + len(OTHER_BACKENDS)} item(s)")


def test_info_json_has_the_documented_keys(dataset: Path) -> None:
    result = run("info", dataset, "--json", module=True)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert set(info) == {
        "path",
        "name",
        "format",
        "metadata_available",
        "keys",
        "items",
        "metadata_only",
        "total_size",
    }
    assert info["path"] == str(dataset) and info["name"] == "mydata" and info["format"] == 1
    assert info["items"] == 2 + len(OTHER_BACKENDS) and info["metadata_only"] == 1
    keys = {k["name"]: k for k in info["keys"]}
    for entry in keys.values():
        assert set(entry) == {
            "name",
            "kind",
            "format",
            "backend",
            "arrays",
            "size",
            "generation",
            "metadata",
        }
    x = keys["x"]
    assert (x["kind"], x["format"], x["backend"], x["arrays"], x["generation"]) == (
        "item",
        "persist_hooks",
        "npy",
        1,
        1,
    )
    data_file = dataset / header(dataset / "x.py")["arrays"]["array_0"]["path"]
    assert x["size"] == (dataset / "x.py").stat().st_size + data_file.stat().st_size
    assert x["metadata"] == repr("a list of an array and a dict")
    assert keys["n"]["backend"] is None and keys["n"]["arrays"] == 0
    assert keys["note"] == {
        "name": "note",
        "kind": "metadata",
        "format": None,
        "backend": None,
        "arrays": 0,
        "size": None,
        "generation": None,
        "metadata": "'metadata only'",
    }
    for backend in OTHER_BACKENDS:
        assert keys[f"in_{backend}"]["backend"] == backend
    assert info["total_size"] >= sum(k["size"] or 0 for k in info["keys"])


def test_info_loads_no_item_and_no_array(copy: Path) -> None:
    # an item whose body fails when run, and an array file that is garbage
    py = copy / "n.py"
    py.write_text(
        py.read_text().replace("# persist_hooks: begin\n", "# persist_hooks: begin\n1 / 0\n")
    )
    data_file = copy / header(copy / "x.py")["arrays"]["array_0"]["path"]
    data_file.write_bytes(b"not an npy file")
    result = run("info", copy, "--json")
    assert result.returncode == 0, result.stderr
    keys = {k["name"]: k for k in json.loads(result.stdout)["keys"]}
    assert keys["x"]["arrays"] == 1 and keys["n"]["kind"] == "item"
    shown = run("show", copy, "n")
    assert shown.returncode == 0 and "1 / 0" in shown.stdout


def test_info_of_a_foreign_dataset(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    (root / "_this_dir_is_a_DataSet").write_text("")  # persist 3.x marker
    (root / "__init__.py").write_text("_info_dict = {'a': 'meta a'}\n")
    (root / "a.py").write_text("a = [1, 2]\n")
    result = run("info", root, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["format"] is None
    (a,) = info["keys"]
    assert (a["name"], a["kind"], a["format"], a["arrays"], a["metadata"]) == (
        "a",
        "item",
        "foreign",
        None,
        "'meta a'",
    )


# ---------------------------------------------------------------- show


def test_show_source_arrays_and_metadata(dataset: Path) -> None:
    from persist_hooks.backends.npy import NpyBackend

    result = run("show", dataset, "x")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    entry = header(dataset / "x.py")["arrays"]["array_0"]
    assert NpyBackend().describe(entry) in out
    assert "'a list of an array and a dict'" in out
    body = fmt.parse_item((dataset / "x.py").read_text(), "x.py")
    assert body is not None
    for line in body.body.splitlines():
        assert f"    {line}" in out


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_show_describes_plugin_backends(dataset: Path, backend: str) -> None:
    result = run("show", dataset, f"in_{backend}", "--json")
    assert result.returncode == 0, result.stderr
    detail = json.loads(result.stdout)
    assert detail["backend"] == backend
    (array,) = detail["arrays"]
    assert array["shape"] == [50, 4]
    assert f"({backend})" in array["description"]


@pytest.mark.skipif(not OTHER_BACKENDS, reason="needs the hdf5 or zarr plugin")
def test_show_and_plugins_without_the_items_backend(dataset: Path) -> None:
    backend = OTHER_BACKENDS[0]
    off = {"PERSIST_HOOKS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = run("show", dataset, f"in_{backend}", **off)
    assert result.returncode == 0, result.stderr
    assert f"({backend}) [backend not available]" in result.stdout
    report = json.loads(run("plugins", "--json", **off).stdout)
    assert backend in {m["name"] for m in report["not_installed"]}


def test_show_json_keys_and_metadata_only_key(dataset: Path) -> None:
    result = run("show", dataset, "note", "--json")
    assert result.returncode == 0, result.stderr
    detail = json.loads(result.stdout)
    assert set(detail) == {
        "path",
        "dataset",
        "name",
        "kind",
        "format",
        "file",
        "size",
        "generation",
        "backend",
        "options",
        "metadata",
        "metadata_available",
        "arrays",
        "source",
        "source_line",
    }
    assert detail["kind"] == "metadata" and detail["file"] is None
    assert detail["metadata"] == "'metadata only'"


def test_show_missing_item_exits_1(dataset: Path) -> None:
    result = run("show", dataset, "nope")
    assert result.returncode == 1
    assert "no item 'nope'" in one_line_error(result)


# ---------------------------------------------------------------- verify


def test_verify_ok_json_and_verbose_logging(dataset: Path) -> None:
    result = run("-v", "verify", dataset, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"path", "ok", "problems", "repaired", "items", "arrays"} <= set(report)
    assert report["ok"] is True and report["problems"] == []
    assert report["items"] == 2 + len(OTHER_BACKENDS)
    assert "INFO" in result.stderr and "persist_hooks.cli" in result.stderr


def test_verify_finds_damage_and_repairs_leftovers(copy: Path) -> None:
    leftover = copy / ".x.py.0123456789abcdef.tmp"
    leftover.write_text("half written")
    found = run("verify", copy)
    assert found.returncode == 1
    assert "temporary" in found.stdout
    repaired = run("verify", copy, "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout
    report = json.loads(repaired.stdout)
    assert report["ok"] is True and report["repaired"] == [str(leftover)]
    assert not leftover.exists()
    assert run("verify", copy).returncode == 0
    # damage that repair cannot fix: a missing array file
    (copy / header(copy / "x.py")["arrays"]["array_0"]["path"]).unlink()
    still = run("verify", copy, "--repair", "--json", module=True)
    assert still.returncode == 1
    assert [p["kind"] for p in json.loads(still.stdout)["problems"]] == ["missing-data"]


# ---------------------------------------------------------------- convert


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_convert_changes_the_backend_in_the_header(copy: Path, backend: str) -> None:
    before = np.array(ph.DataSet("mydata", "r", path=copy.parent).x[0])
    result = run("convert", copy, "--backend", backend, "--items", "x", "n")
    assert result.returncode == 0, result.stderr
    assert "converted 1 item(s)" in result.stdout and ": x" in result.stdout
    assert header(copy / "x.py")["backend"] == backend
    assert header(copy / "n.py")["backend"] == "npy"  # no arrays: left alone
    assert np.array_equal(ph.DataSet("mydata", "r", path=copy.parent).x[0], before)
    back = run("convert", copy, "--backend", "npy", module=True)
    assert back.returncode == 0, back.stderr
    assert header(copy / "x.py")["backend"] == "npy"
    assert all(header(copy / f"in_{b}.py")["backend"] == "npy" for b in OTHER_BACKENDS)
    assert run("verify", copy).returncode == 0


def test_convert_nothing_to_do_and_missing_item(copy: Path) -> None:
    result = run("convert", copy, "--backend", "npy", "--items", "x")
    assert result.returncode == 0, result.stderr
    assert "nothing to convert" in result.stdout
    missing = run("convert", copy, "--backend", "npy", "--items", "nope")
    assert missing.returncode == 1
    assert "nope" in one_line_error(missing)


# ---------------------------------------------------------------- plugins, demo


def test_plugins_text_and_json() -> None:
    text = run("plugins")
    assert text.returncode == 0, text.stderr
    assert "persist_hooks.representers.builtins" in text.stdout and "npy" in text.stdout
    result = run("plugins", "--json", module=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"plugins", "backends", "not_installed"}
    version = importlib.metadata.version("persist-hooks")
    plugins = {p["name"]: p for p in report["plugins"]}
    for p in plugins.values():
        assert set(p) == {"name", "distribution", "version", "representers", "backends"}
    builtins = plugins["persist_hooks.representers.builtins"]
    assert builtins["distribution"] == "persist-hooks" and builtins["version"] == version
    assert "builtins.list" in builtins["representers"]
    backends = {b["name"]: b for b in report["backends"]}
    assert set(backends) == INSTALLED
    for b in backends.values():
        assert set(b) == {"name", "plugin", "class", "distribution", "version"}
    assert backends["npy"]["distribution"] == "persist-hooks"
    assert backends["npy"]["plugin"] == "persist_hooks.backends.npy"
    for name in OTHER_BACKENDS:
        dist = backends[name]["distribution"]
        assert backends[name]["version"] == importlib.metadata.version(dist)
        assert name in plugins[backends[name]["plugin"]]["backends"]
    assert {m["name"] for m in report["not_installed"]} == {"npy", "hdf5", "zarr"} - INSTALLED


def test_demo_runs(tmp_path: Path) -> None:
    result = run("demo", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "shared object stays shared:       True" in result.stdout
    assert (tmp_path / "mydata" / "_this_dir_is_a_DataSet").is_file()


# ---------------------------------------------------------------- progress reporter


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeBar:
    instances: list[FakeBar] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.updates: list[int] = []
        self.closed = False
        FakeBar.instances.append(self)

    def update(self, n: int) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeBar]]:
    module = types.ModuleType("tqdm")
    module.tqdm = FakeBar  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tqdm", module)
    monkeypatch.delenv(_progress.ENV_VAR, raising=False)
    FakeBar.instances = []
    yield FakeBar
    FakeBar.instances = []


def test_progress_is_silent_without_a_tty(fake_tqdm: type[FakeBar]) -> None:
    stream = io.StringIO()
    with progress(10, "writing", stream=stream, delay=0) as advance:
        advance(5)
        advance(5)
    assert fake_tqdm.instances == [] and stream.getvalue() == ""
    assert not bar_allowed(stream)


def test_progress_is_silent_when_disabled(
    fake_tqdm: type[FakeBar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_progress.ENV_VAR, "0")
    assert not bar_allowed(FakeTTY())
    with progress(10, "writing", stream=FakeTTY(), delay=0) as advance:
        advance(10)
    assert fake_tqdm.instances == []


def test_progress_draws_a_bar_on_a_tty(
    fake_tqdm: type[FakeBar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_progress.ENV_VAR, "1")
    stream = FakeTTY()
    assert bar_allowed(stream)
    with progress(10, "converting", unit="item", stream=stream, delay=0) as advance:
        advance(3)
        advance(2)
    (bar,) = fake_tqdm.instances
    assert bar.kwargs["total"] == 10 and bar.kwargs["desc"] == "converting"
    assert bar.kwargs["file"] is stream and bar.kwargs["unit"] == "item"
    assert bar.kwargs["initial"] == 3 and bar.updates == [2]  # started at the first advance
    assert bar.closed


def test_progress_starts_only_after_the_delay(fake_tqdm: type[FakeBar]) -> None:
    now = [100.0]
    reporter = Progress(None, "slow", stream=FakeTTY(), delay=1.0, clock=lambda: now[0])
    reporter.advance(4)
    now[0] += 0.5
    reporter.advance(1)
    assert fake_tqdm.instances == [] and reporter.bar is None  # quick so far: nothing drawn
    now[0] += 0.6
    reporter.advance(1)
    (bar,) = fake_tqdm.instances
    assert bar.kwargs["initial"] == 6 and bar.kwargs["total"] is None
    reporter.advance(2)
    assert bar.updates == [2] and reporter.done == 8
    reporter.close()
    reporter.advance(1)  # after close: counted, not drawn
    assert bar.closed and bar.updates == [2] and reporter.done == 9


def test_progress_without_tqdm_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    monkeypatch.delenv(_progress.ENV_VAR, raising=False)
    reporter = Progress(5, stream=FakeTTY(), delay=0)
    reporter.advance(5)
    assert reporter.bar is None
    reporter.close()


def test_progress_closes_the_bar_on_error(fake_tqdm: type[FakeBar]) -> None:
    with pytest.raises(RuntimeError), progress(2, stream=FakeTTY(), delay=0) as advance:
        advance(1)
        raise RuntimeError("boom")
    (bar,) = fake_tqdm.instances
    assert bar.closed


def test_importing_persist_hooks_and_the_cli_does_not_import_tqdm() -> None:
    code = (
        "import sys, persist_hooks, persist_hooks.cli, persist_hooks._progress\n"
        "print('tqdm' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("backend", ph.backends())
def test_dataset_writes_report_progress_in_bytes(
    fake_tqdm: type[FakeBar], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str
) -> None:
    """An item write longer than the delay draws a bar in bytes: npy per piece of a large
    array, hdf5 and zarr per array; quick writes (the default delay) draw nothing."""
    from persist_hooks.backends import npy
    from persist_hooks.dataset import DataSet

    ds = DataSet("d", "w", path=tmp_path, backend=backend)
    monkeypatch.setattr(sys, "stderr", FakeTTY())
    arrays = [np.arange(10_000, dtype="f8"), np.ones(500, dtype="i4")]
    ds.quick = arrays
    assert fake_tqdm.instances == []  # well under a second: no bar
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    monkeypatch.setattr(npy, "WRITE_PIECE", 8_000)
    ds.x = arrays
    (bar,) = fake_tqdm.instances
    total = sum(a.nbytes for a in arrays)
    assert bar.kwargs["total"] == total and bar.kwargs["unit"] == "B"
    assert bar.kwargs["desc"] == "writing d.x" and bar.closed
    assert bar.kwargs["initial"] + sum(bar.updates) == total
    if backend == "npy":
        assert len(bar.updates) >= 10  # 80,000 bytes in pieces of 8,000, then the small one

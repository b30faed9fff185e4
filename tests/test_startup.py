"""Interpreter start-up (persist_hooks._startup, run by persist_hooks_hook.pth): cheap and optional.

Every test runs fresh interpreters of the test environment, where the .pth is installed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from importhook_helpers.datasets import last_json, run_python

import persist_hooks

STARTUP = Path(persist_hooks.__file__).with_name("_startup.py")

REPORT = """
import json, sys
print(json.dumps({
    "meta_path": [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path],
    "modules": sorted(sys.modules),
}))
"""


def startup_state(tmp_path: Path, **env: str) -> dict[str, list[str]]:
    result = last_json(run_python(REPORT, cwd=tmp_path, **env))
    assert isinstance(result, dict)
    return result


def test_pth_file_is_installed() -> None:
    pth = [Path(p) / "persist_hooks_hook.pth" for p in sys.path if p.endswith("site-packages")]
    texts = [p.read_text().strip() for p in pth if p.is_file()]
    assert texts == ["import persist_hooks._startup"], pth


def test_hook_is_active_at_startup_in_front_of_pathfinder(tmp_path: Path) -> None:
    state = startup_state(tmp_path)
    meta_path = state["meta_path"]
    assert meta_path.count("DataSetFinder") == 1
    assert meta_path[meta_path.index("DataSetFinder") + 1] == "PathFinder"
    modules = set(state["modules"])
    assert "persist_hooks.importer" in modules
    heavy = {"numpy", "pluggy", "fasteners", "persist_hooks.archive", "persist_hooks._reader"}
    assert not heavy & modules
    # Immediately in front of PathFinder, not at index 0: finders that others put in
    # front of PathFinder (setuptools' distutils shim here) stay in front of ours.
    without = startup_state(tmp_path, PERSIST_HOOKS_NO_HOOK="1")["meta_path"]
    expected = list(without)
    expected.insert(without.index("PathFinder"), "DataSetFinder")
    assert meta_path == expected


@pytest.mark.parametrize("value", ["1", "yes"])
def test_opt_out_with_environment_variable(tmp_path: Path, value: str) -> None:
    state = startup_state(tmp_path, PERSIST_HOOKS_NO_HOOK=value)
    assert "DataSetFinder" not in state["meta_path"]
    assert "persist_hooks.importer" not in state["modules"]
    assert "DataSetFinder" in startup_state(tmp_path, PERSIST_HOOKS_NO_HOOK="0")["meta_path"]


def test_installing_at_startup_imports_nothing_but_the_importer(tmp_path: Path) -> None:
    with_hook = set(startup_state(tmp_path)["modules"])
    without_hook = set(startup_state(tmp_path, PERSIST_HOOKS_NO_HOOK="1")["modules"])
    assert with_hook - without_hook == {"persist_hooks.importer"}
    assert without_hook <= with_hook


def test_broken_installation_does_not_break_the_interpreter(tmp_path: Path) -> None:
    # A persist_hooks whose importer cannot be imported, found first via PYTHONPATH,
    # started by the real _startup.py (the installed .pth imports persist_hooks._startup).
    fake = tmp_path / "fake" / "persist_hooks"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    shutil.copy(STARTUP, fake / "_startup.py")
    (fake / "importer.py").write_text("raise RuntimeError('broken on purpose')\n")
    proc = run_python("print('still running')", cwd=tmp_path, pythonpath=[tmp_path / "fake"])
    assert proc.stdout == "still running\n"
    assert proc.stderr.startswith("persist_hooks: import hook not installed (RuntimeError: broken")
    assert proc.stderr.count("\n") == 1



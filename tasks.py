#!/usr/bin/env python3
"""Set up a development environment and run the demo or the checks: needs only python3 (>= 3.11).

    python3 tasks.py demo    # create .venv if needed, install, run the demo
    python3 tasks.py test    # create .venv if needed, install, run ruff, mypy --strict and pytest
    python3 tasks.py bench   # run the benchmarks (compares against pickle, numpy, persist 3.2.1 ...)

The virtual environment lives in ``.venv`` beside this file (``PERSIST_HOOKS_VENV``
overrides); it is reinstalled only when a ``pyproject.toml`` or this file changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("PERSIST_HOOKS_VENV", HERE / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".persist_hooks-installed"
BENCH_EXTRAS = ["joblib", "diskcache"]


def _plugins() -> list[Path]:
    return sorted(p for p in (HERE / "plugins").glob("*") if (p / "pyproject.toml").is_file())


def _fingerprint() -> str:
    h = hashlib.sha256(sys.version.encode())
    for path in [HERE / "pyproject.toml", Path(__file__), *(p / "pyproject.toml" for p in _plugins())]:
        h.update(path.read_bytes())
    return h.hexdigest()


def _run(*cmd: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=HERE, check=check).returncode


def setup() -> None:
    """Create the virtual environment and install the project, its plugins and test tools."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs under any python3
        sys.exit(f"persist_hooks needs Python >= 3.11, this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run(*pip, "--upgrade", "pip", "hatchling")
    _run(*pip, "-e", ".[test,docs]")
    for plugin in _plugins():
        _run(*pip, "-e", plugin)
    STAMP.write_text(fingerprint)


def demo() -> int:
    """Run the README's demo."""
    setup()
    return _run(PY, "-m", "persist_hooks.demo", check=False)


def test() -> int:
    """Run ruff, mypy --strict and the whole pytest suite; non-zero on any failure."""
    setup()
    status = 0
    status |= _run(PY, "-m", "ruff", "check", "persist_hooks", "tests", "plugins", "benchmarks", "tasks.py", check=False)
    status |= _run(PY, "-m", "mypy", "--strict", "persist_hooks", check=False)
    status |= _run(PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *sys.argv[2:], check=False)
    print("ALL CHECKS PASSED" if status == 0 else "SOME CHECKS FAILED", flush=True)
    return status


def bench() -> int:
    """Run every benchmark script (installs the comparison packages first)."""
    setup()
    _run(PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", *BENCH_EXTRAS, check=False)
    status = 0
    for script in sorted((HERE / "benchmarks").glob("*.py")):
        status |= _run(PY, script, *sys.argv[2:], check=False)
    return status


def main() -> int:
    commands = {"setup": lambda: setup() or 0, "demo": demo, "test": test, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]]()


if __name__ == "__main__":
    sys.exit(main())

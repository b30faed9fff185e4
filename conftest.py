"""Project-wide pytest configuration: import-state hygiene and the --long switch.

Every test runs with ``sys.path`` and ``sys.meta_path`` restored afterwards and with
modules imported from pytest's temporary directories removed from ``sys.modules``,
so DataSets and saved archives imported by one test never leak into another.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run reliability tests with many more iterations",
    )


@pytest.fixture(autouse=True)
def _import_state_hygiene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved_path = list(sys.path)
    saved_meta = list(sys.meta_path)
    before = set(sys.modules)
    yield
    sys.path[:] = saved_path
    base = str(tmp_path_factory.getbasetemp())
    # finders a test installed go; a library's own (importlib_metadata adds one on import,
    # and stays imported) must stay, or later tests see no installed distributions
    added = [f for f in sys.meta_path if not any(f is s for s in saved_meta)]
    sys.meta_path[:] = saved_meta + [f for f in added if _library_finder(f, base)]
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if isinstance(module, types.ModuleType):
            origin = str(getattr(module, "__file__", None) or "")
            if not origin.startswith(base):
                continue  # a library module: keep it (extension modules cannot be re-imported)
        sys.modules.pop(name, None)  # imported from a test's directory, or a DataSet item object


def _library_finder(finder: object, base: str) -> bool:
    cls = finder if isinstance(finder, type) else type(finder)
    module = sys.modules.get(cls.__module__)
    origin = str(getattr(module, "__file__", None) or "")
    return (
        module is not None
        and not cls.__module__.startswith(("persist_hooks", "conftest", "test_"))
        and not origin.startswith(base)
    )


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True when the suite runs with --long (reliability tests iterate more)."""
    return bool(request.config.getoption("--long"))

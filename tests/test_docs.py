"""The documentation: the site builds with warnings as errors, every example runs, the
example plugin distribution installs and works.

* ``test_site_builds``: ``mkdocs build --strict`` (API reference from the docstrings
  included) into a temporary directory.
* ``test_page_examples``: every fenced ``python`` block of each ``docs/*.md`` page runs,
  in order, in one fresh namespace per page, in a fresh interpreter whose working
  directory is an empty temporary directory.  A block preceded by the line
  ``<!-- skip -->`` is illustrative only and is not run.  ``--8<-- "path"`` lines
  (pymdownx.snippets) are replaced by the file they name, as the site does.
* ``test_docstring_examples``: the ``>>>`` examples of the modules the API reference
  renders run as doctests (``ELLIPSIS``, ``NORMALIZE_WHITESPACE``), each module in a
  fresh interpreter in an empty temporary directory.
* ``test_example_plugin``: ``docs/example_plugin`` is pip-installed into a temporary
  ``--target`` directory; with it on ``PYTHONPATH`` its entry point is found, and an
  ``Interval`` archives through its representer and loads back with ``safe=True``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PLUGIN = DOCS / "example_plugin"
PAGES = sorted(DOCS.glob("*.md"))
SKIP_MARK = "<!-- skip -->"

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n`]*$")
_SNIPPET = re.compile(r"""^[ \t]*--8<--[ \t]+["'](?P<path>[^"']+)["'][ \t]*$""")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PERSIST_HOOKS_BACKEND", "PERSIST_HOOKS_DISABLE_PLUGIN_AUTOLOAD",
                "PERSIST_HOOKS_NO_HOOK"):
        env.pop(var, None)
    env.update(PYTHONDONTWRITEBYTECODE="1", NO_MKDOCS_2_WARNING="1", **extra)
    return env


def code_blocks(text: str, lang: str = "python") -> list[tuple[int, str, bool]]:
    """``(first line number, dedented code, skipped)`` of each fenced ``lang`` block."""
    lines = text.splitlines()
    blocks: list[tuple[int, str, bool]] = []
    previous = ""
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, start = m["indent"], i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"unclosed code fence at line {i + 1}")
        if m["lang"] == lang:
            body = [line[len(indent):] if line.startswith(indent) else line for line in lines[start:end]]
            blocks.append((start + 1, "\n".join(body) + "\n", previous == SKIP_MARK))
        previous = "```"
        i = end + 1
    return blocks


def expand_snippets(code: str) -> str:
    out = []
    for line in code.splitlines(keepends=True):
        m = _SNIPPET.match(line)
        out.append((ROOT / m["path"]).read_text() if m else line)
    return "".join(out)


_RUNNER = textwrap.dedent(
    """
    import json, sys
    page, blocks = sys.argv[1], json.loads(sys.stdin.read())
    namespace = {"__name__": "__main__"}
    for lineno, code in blocks:
        # pad so that tracebacks give the line number in the markdown page
        exec(compile("\\n" * (lineno - 1) + code, page, "exec"), namespace)
    """
)


def test_code_blocks_parser() -> None:
    text = "x\n\n```python\na = 1\n```\n<!-- skip -->\n```python\nb\n```\n* item\n\n  ```python\n  c = 2\n  ```\n"
    assert code_blocks(text) == [(4, "a = 1\n", False), (8, "b\n", True), (13, "c = 2\n", False)]


def test_every_page_has_examples() -> None:
    assert {p.name for p in PAGES} >= {"index.md", "guide.md", "format.md", "plugins.md", "memoize.md"}
    for page in PAGES:
        blocks = code_blocks(page.read_text())
        skipped = sum(skip for _, _, skip in blocks)
        # illustrative blocks are the exception: most of a page's examples run
        assert skipped <= max(1, len(blocks) // 3), f"{page.name}: {skipped} of {len(blocks)} blocks skipped"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples(page: Path, tmp_path: Path) -> None:
    blocks = [(n, expand_snippets(code)) for n, code, skip in code_blocks(page.read_text()) if not skip]
    if not blocks:
        pytest.skip(f"{page.name} has no python examples")
    env = _env(PYTHONPATH=str(PLUGIN / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(page)],
        input=json.dumps(blocks),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"an example in {page.name} failed:\n{proc.stderr}\n--- stdout:\n{proc.stdout}"


# the modules whose docstrings docs/reference/*.md renders
REFERENCE_MODULES = [
    "persist_hooks",
    "persist_hooks.archive",
    "persist_hooks.archive.restore",
    "persist_hooks.backends.base",
    "persist_hooks.convert",
    "persist_hooks.dataset",
    "persist_hooks.errors",
    "persist_hooks.hookspecs",
    "persist_hooks.importer",
    "persist_hooks.memoize",
    "persist_hooks.plugins",
    "persist_hooks.rep",
    "persist_hooks.testing",
    "persist_hooks.verify",
]

_DOCTEST_RUNNER = textwrap.dedent(
    """
    import doctest, importlib, sys
    module = importlib.import_module(sys.argv[1])
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags)
    print(f"{result.attempted} examples, {result.failed} failed")
    sys.exit(1 if result.failed else 0)
    """
)


def test_reference_covers_public_api() -> None:
    text = "".join(p.read_text() for p in (DOCS / "reference").glob("*.md"))
    directives = set(re.findall(r"^::: (persist_hooks[\w.]*)", text, re.MULTILINE))
    import persist_hooks

    missing = [name for name in persist_hooks.__all__ if f"persist_hooks.{name}" not in directives]
    assert not missing, f"public names without an API reference entry: {missing}"


def _all_modules() -> list[str]:
    """Every module of the package: each public function's docstring example must run."""
    import pkgutil

    import persist_hooks

    found = pkgutil.walk_packages(persist_hooks.__path__, "persist_hooks.")
    return sorted({*REFERENCE_MODULES, *(m.name for m in found if not m.name.endswith("__main__"))})


@pytest.mark.parametrize("module", _all_modules())
def test_docstring_examples(module: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _DOCTEST_RUNNER, module],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"doctests of {module} failed:\n{proc.stdout}\n{proc.stderr}"


def test_site_builds(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    site = tmp_path / "site"
    for page in ["index.html", "guide/index.html", "plugins/index.html", "reference/archive/index.html"]:
        assert (site / page).is_file(), page
    reference = (site / "reference" / "archive" / "index.html").read_text()
    assert "insert" in reference and "array_threshold" in reference  # docstrings rendered


_PLUGIN_CHECK = textwrap.dedent(
    """
    import sys
    import persist_hooks as ph
    from ph_interval import Interval

    assert ph.representers()[Interval] == "ph_interval", ph.representers().get(Interval)
    iv = Interval(0.0, 1.5, closed="left")
    a = ph.Archive(scoped=False)
    a.insert(x=[iv, iv, Interval(1, 2)])
    src = str(a)
    assert "Interval(0.0, 1.5, closed='left')" in src and "__reduce" not in src, src
    d = ph.restore(src, safe=True)
    assert d["x"] == [iv, iv, Interval(1, 2)] and d["x"][0] is d["x"][1], d

    ds = ph.DataSet("intervals", "w", path=sys.argv[1])
    ds.spans = {"a": iv}
    assert ph.DataSet("intervals", "r", path=sys.argv[1], trusted=False).spans == {"a": iv}
    print("ok")
    """
)

_UNSAFE_WITHOUT_PLUGIN = textwrap.dedent(
    """
    import sys
    import persist_hooks as ph

    try:
        ph.restore(sys.argv[1], safe=True)
    except ph.UnsafeArchiveError as exc:
        print("refused:", exc)
    else:
        raise SystemExit("the safe loader called a callable that no plugin declared")
    """
)


def test_example_plugin(tmp_path: Path) -> None:
    target = tmp_path / "site-packages"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--no-index", "-q", "--target", str(target), str(PLUGIN)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert list(target.glob("ph_interval-*.dist-info"))

    env = _env(PYTHONPATH=str(target))
    proc = subprocess.run(
        [sys.executable, "-c", _PLUGIN_CHECK, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr

    # without the plugin's declarations the same source is refused by the safe loader
    src = "from ph_interval import Interval\nx = Interval(1, 2)\ndel Interval\n"
    env = _env(PYTHONPATH=str(target), PERSIST_HOOKS_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run(
        [sys.executable, "-c", _UNSAFE_WITHOUT_PLUGIN, src],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0 and "refused" in proc.stdout, proc.stdout + proc.stderr

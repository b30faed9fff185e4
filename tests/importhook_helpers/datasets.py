"""DataSet directories written by hand (docs/format.md, format 1) and fresh interpreters.

The files are written without persist_hooks so that the import hook is tested against the
documented format, not against its own writer.

Example:
    >>> import tempfile, pathlib
    >>> root = make_dataset(pathlib.Path(tempfile.mkdtemp()), "mydata", {"x": "[1, 2]"})
    >>> sorted(p.name for p in root.iterdir())
    ['__init__.py', '_this_dir_is_a_DataSet', 'x.py']
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

MARKER = "_this_dir_is_a_DataSet"
MARKER_TEXT = "persist_hooks DataSet format 1\n"

# The plain-Python footer of __init__.py (docs/format.md): items import lazily without
# persist_hooks.
INIT_FOOTER = '''\
def __getattr__(name):
    import importlib
    import os
    if not name.startswith('_') and os.path.isfile(
            os.path.join(os.path.dirname(__file__), name + '.py')):
        return importlib.import_module(__name__ + '.' + name)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


def __dir__():
    return sorted(set(globals()) | set(_info_dict))
'''


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "f.txt"
        >>> atomic_write(p, "hi"); p.read_text()
        'hi'
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def init_text(name: str, info: Mapping[str, object]) -> str:
    """The text of a DataSet's ``__init__.py`` with one key block per entry of ``info``.

    Example:
        >>> "_info_dict['x'] = 'doc'" in init_text("d", {"x": "doc"})
        True
    """
    blocks = "".join(f"# -- key: {key}\n_info_dict[{key!r}] = {value!r}\n" for key, value in info.items())
    return (
        f'"""DataSet {name!r} written by hand (format 1); see docs/format.md."""\n'
        f"_info_dict = {{}}\n{blocks}# -- end of keys\n{INIT_FOOTER}"
    )


def item_text(name: str, dataset: str, expr: str) -> str:
    """The text of a format-1 item file binding ``name`` to the Python expression ``expr``.

    Example:
        >>> "x = [1]" in item_text("x", "d", "[1]")
        True
    """
    header = {"format": 1, "generation": 1, "backend": "npy", "options": {}, "arrays": {}}
    return (
        f'"""Item {name!r} of DataSet {dataset!r}, written by hand (format 1)."""\n'
        f"# persist_hooks: {json.dumps(header)}\n"
        "_arrays = {}\n"
        "# persist_hooks: begin\n"
        f"{name} = {expr}\n"
        "# persist_hooks: end\n"
        "import sys as _sys\n"
        f"_sys.modules[__name__] = {name}\n"
    )


def make_dataset(
    parent: Path,
    name: str,
    items: Mapping[str, str],
    metadata: Mapping[str, object] | None = None,
    *,
    raw_items: Mapping[str, str] | None = None,
) -> Path:
    """Create DataSet ``parent/name``: ``items`` maps item names to Python expressions.

    ``metadata`` gives ``_info_dict`` entries (keys without an item are metadata-only);
    ``raw_items`` maps item names to whole plain-Python files (a valid item too).

    Example:
        >>> import tempfile, pathlib
        >>> root = make_dataset(pathlib.Path(tempfile.mkdtemp()), "d", {}, {"b": 1})
        >>> (root / MARKER).read_text() == MARKER_TEXT
        True
    """
    root = parent / name
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(MARKER_TEXT)
    raw_items = dict(raw_items or {})
    info: dict[str, object] = {key: None for key in [*items, *raw_items]}
    info.update(metadata or {})
    atomic_write(root / "__init__.py", init_text(name, info))
    for key, expr in items.items():
        atomic_write(root / f"{key}.py", item_text(key, name, expr))
    for key, text in raw_items.items():
        atomic_write(root / f"{key}.py", text)
    return root


def python_env(*, hook: bool = True, pythonpath: list[Path] | None = None, **extra: str) -> dict[str, str]:
    """An environment for a fresh interpreter: hook on or off, ``PYTHONPATH`` as given.

    Variables that would change import behaviour (``PYTHONDONTWRITEBYTECODE``,
    ``PYTHONPYCACHEPREFIX``, ``PERSIST_HOOKS_*``) are removed unless given in ``extra``.

    Example:
        >>> python_env(hook=False)["PERSIST_HOOKS_NO_HOOK"]
        '1'
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PERSIST_HOOKS_")
        and key not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONPATH")
    }
    if not hook:
        env["PERSIST_HOOKS_NO_HOOK"] = "1"
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    env.update(extra)
    return env


def run_python(
    code: str,
    *,
    cwd: Path,
    hook: bool = True,
    pythonpath: list[Path] | None = None,
    args: tuple[str, ...] = (),
    check: bool = True,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (the test's own Python, so the .pth applies).

    Raises ``AssertionError`` with the child's output when it fails and ``check`` is true.

    Example:
        >>> import pathlib
        >>> run_python("print(1 + 1)", cwd=pathlib.Path(".")).stdout
        '2\\n'
    """
    proc = subprocess.run(
        [sys.executable, *args, "-c", code],
        cwd=cwd,
        env=python_env(hook=hook, pythonpath=pythonpath, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"child failed ({proc.returncode})\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def last_json(proc: subprocess.CompletedProcess[str]) -> object:
    """The JSON value printed on the child's last line of output.

    Example:
        >>> import pathlib
        >>> last_json(run_python("import json; print(json.dumps([1]))", cwd=pathlib.Path(".")))
        [1]
    """
    return json.loads(proc.stdout.strip().splitlines()[-1])

"""The core works without the hdf5/zarr plugins, and never imports h5py or zarr for npy work.

Each check runs in a fresh interpreter: what is imported, and which plugins are
loaded, is process state that the test session itself has already changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

BLOCKER = textwrap.dedent(
    """
    import sys

    class _Unavailable:
        # behave as if h5py, zarr and the plugin distributions were not installed
        blocked = {"h5py", "zarr", "persist_hooks_hdf5", "persist_hooks_zarr"}

        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.partition(".")[0] in cls.blocked:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _Unavailable)
    """
)

WORK = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import persist_hooks as ph
    from persist_hooks.archive import Archive, restore
    tmp = sys.argv[1]
    out = {}

    # archive and restore
    a = Archive(array_threshold=10)
    a.insert(x=[np.arange(100.0), {"k": 1}])
    got = restore(str(a), arrays=a.data)["x"]
    out["archive"] = bool(np.array_equal(got[0], np.arange(100.0))) and got[1] == {"k": 1}

    # DataSet write and read (npy: the default, and by name)
    ds = ph.DataSet("mydata", "w", path=tmp)
    ds.x = {"big": np.arange(1000.0), "small": [1, 2]}
    ds["x"] = "metadata"
    ph.DataSet("mydata", "w", path=tmp, backend="npy").y = np.ones((200, 5), "f4")
    back = ph.DataSet("mydata", "r", path=tmp)
    out["dataset"] = (
        bool(np.array_equal(back.x["big"], np.arange(1000.0)))
        and back.x["small"] == [1, 2]
        and back["x"] == "metadata"
        and list(back) == ["x", "y"]
        and float(np.asarray(back.y).sum()) == 1000.0
    )
    grow = ph.DataSet("mydata", "a", path=tmp)
    grow.y.append(np.zeros((3, 5), "f4"))
    out["append"] = grow.y.shape == (203, 5)

    # the import hook
    sys.path.insert(0, tmp)
    ph.install()
    import mydata.x
    out["import"] = bool(np.array_equal(mydata.x["big"], np.arange(1000.0)))
    """
)


def run(code: str, tmp: Path, **env: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PERSIST_HOOKS_")}
    environ.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp)],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_core_works_without_plugins(tmp_path: Path) -> None:
    code = (
        BLOCKER
        + WORK
        + textwrap.dedent(
            """
            out["backends"] = ph.backends()
            try:
                import h5py  # noqa: F401
                out["h5py_blocked"] = False
            except ImportError:
                out["h5py_blocked"] = True
            messages = {}
            for name in ("hdf5", "zarr"):
                try:
                    ph.DataSet("other", "w", path=tmp, backend=name).z = np.arange(1000.0)
                    messages[name] = None
                except ph.BackendError as exc:
                    messages[name] = str(exc)
            out["errors"] = messages
            out["left"] = sorted(os.listdir(os.path.join(tmp, "other")))
            out["modules"] = sorted(
                m for m in sys.modules if m.partition(".")[0] in _Unavailable.blocked
            )
            print(json.dumps(out))
            """
        )
    )
    out = run(code, tmp_path, PERSIST_HOOKS_DISABLE_PLUGIN_AUTOLOAD="1")
    assert out["h5py_blocked"] is True
    assert out["archive"] and out["dataset"] and out["append"] and out["import"]
    assert out["backends"] == ["npy"]
    for name, dist in (("hdf5", "persist-hooks-hdf5"), ("zarr", "persist-hooks-zarr")):
        message = out["errors"][name]
        assert message is not None, f"backend={name!r} did not fail"
        assert f"pip install {dist}" in message and "installed backends: npy" in message
    assert not [f for f in out["left"] if f.endswith(".py") and f != "__init__.py"]
    assert out["modules"] == []


def test_npy_work_never_imports_h5py_or_zarr(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    pytest.importorskip("zarr")
    # a DataSet that also holds hdf5 and zarr items, written by another process
    setup = textwrap.dedent(
        """
        import sys, numpy as np, persist_hooks as ph
        ds = ph.DataSet("mixed", "w", path=sys.argv[1], backend="hdf5")
        ds.h = np.arange(1000.0)
        ph.DataSet("mixed", "w", path=sys.argv[1], backend="zarr").z = np.arange(1000.0)
        ph.DataSet("mixed", "w", path=sys.argv[1], backend="npy").n = np.arange(1000.0)
        print("{}")
        """
    )
    run(setup, tmp_path)
    code = WORK + textwrap.dedent(
        """
        heavy = lambda: sorted(m for m in sys.modules if m.partition(".")[0] in ("h5py", "zarr"))
        out["after_work"] = heavy()
        out["backends"] = ph.backends()  # loads the plugins' entry points
        mixed = ph.DataSet("mixed", "r", path=tmp)
        out["mixed_keys"] = list(mixed)
        out["mixed_n"] = float(mixed.n.sum())
        import mixed.n
        out["after_mixed"] = heavy()
        out["plugins"] = sorted(m for m in sys.modules if m.startswith("persist_hooks_"))
        float(np.asarray(mixed.h).sum())  # reading an hdf5 item does import h5py
        out["after_h5"] = heavy()
        print(json.dumps(out))
        """
    )
    out = run(code, tmp_path)
    assert out["archive"] and out["dataset"] and out["append"] and out["import"]
    assert out["after_work"] == []
    assert out["backends"] == ["hdf5", "npy", "zarr"]
    assert out["mixed_keys"] == ["h", "z", "n"] and out["mixed_n"] == 499500.0
    assert out["after_mixed"] == []
    assert "persist_hooks_hdf5" in out["plugins"]  # the plugins are loaded, lazily importing
    assert "h5py" in out["after_h5"] and not [m for m in out["after_h5"] if m.startswith("zarr")]

"""Archive.save(): modules and packages that import in plain Python, without persist_hooks.

Saved archives are imported in a fresh ``python -I -S`` interpreter whose
``sys.path`` holds only the save directory (plus, when arrays or numpy values
are stored, the site-packages directory that holds numpy): persist_hooks is not
importable there.  The loaded names are pickled back to the test, with memory
maps turned into plain arrays, and compared strictly with the originals.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import fractions
import math
import pathlib
import pickle
import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from archive_helpers import FORMAT_IDS, FORMATS, assert_same, numpy_site_dir, run_python

import persist_hooks as ph
from persist_hooks.archive.save import HEADER

fmt = pytest.mark.parametrize("scoped", FORMATS, ids=FORMAT_IDS)
layout = pytest.mark.parametrize("package", [True, False], ids=["package", "module"])

_IMPORT_SCRIPT = r"""
import importlib, importlib.util, pickle, sys
save_dir, out_file, name, with_numpy = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
sys.path.insert(0, save_dir)
if with_numpy:
    sys.path.append(sys.argv[5])
assert importlib.util.find_spec("persist_hooks") is None, "persist_hooks must not be importable here"
mod = importlib.import_module(name)
assert "persist_hooks" not in sys.modules
names = [n for n in vars(mod) if not n.startswith("_")]
private = sorted(n for n in vars(mod) if n.startswith("_") and not n.startswith("__"))
report = {"names": names, "private": private, "numpy_loaded": "numpy" in sys.modules, "types": {}}
values = {n: getattr(mod, n) for n in names}
for n, v in values.items():
    report["types"][n] = type(v).__module__ + "." + type(v).__qualname__


class P(pickle.Pickler):
    def reducer_override(self, obj):
        if with_numpy:
            import numpy
            if isinstance(obj, numpy.memmap):
                return (numpy.array, (numpy.asarray(obj),))
        return NotImplemented


with open(out_file, "wb") as fh:
    P(fh, protocol=5).dump((report, values))
"""


def import_saved(tmp_path: Path, save_dir: Path, name: str, with_numpy: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    out = tmp_path / f"{name}-loaded.pickle"
    args = [str(save_dir), str(out), name, "1" if with_numpy else "0"]
    if with_numpy:
        args.append(numpy_site_dir())
    run_python(_IMPORT_SCRIPT, args=args, flags=("-I", "-S"), env={"PERSIST_HOOKS_NO_HOOK": "1"})
    with open(out, "rb") as fh:
        report, values = pickle.load(fh)
    return report, values


def _plain_values() -> dict[str, Any]:
    shared: list[Any] = [1, "two"]
    cyc: list[Any] = [shared]
    cyc.append(cyc)
    d: dict[Any, Any] = {"a": shared, (1, 2): frozenset({3}), None: {4, 5}}
    d["me"] = d
    return {
        "nums": [0, -1, 10**5000, math.nan, -0.0, math.inf, complex(math.inf, -math.nan), 1.5],
        "text": ["", "héllo ☃", "_g0", "del _g0", b"\x00\xff", bytearray(b"ab")],
        "cyc": cyc,
        "d": d,
        "shared": shared,
        "stdlib": [
            dt.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2), "X"), fold=1),
            dt.date(2024, 2, 29),
            dt.timedelta(-1, 3),
            decimal.Decimal("-0"),
            decimal.Decimal("NaN"),
            fractions.Fraction(1, 3),
            pathlib.PurePosixPath("a/b"),
            collections.OrderedDict(b=1, a=2),
            collections.Counter("hello"),
            collections.defaultdict(list, {"x": [1]}),
            collections.deque([1, 2], maxlen=5),
            uuid.UUID(int=42),
            range(1, 9, 2),
            slice(None, 3),
            ...,
            int,
            len,
        ],
    }


def _numpy_values() -> dict[str, Any]:
    big = np.arange(1000.0)
    return {
        "big": big,
        "again": [big, {"same": big}],
        "fortran": np.asfortranarray(np.arange(600, dtype=">i4").reshape(20, 30)),
        "struct": np.zeros(200, dtype=[("a", "<i4"), ("b", "S3"), ("c", "<c16")]),
        "dates": np.array(["2020-01-01", "NaT"] * 100, dtype="M8[D]"),
        "small": np.array([1.5, np.nan]),
        "zero_d": np.array(-0.0),
        "objs": np.array([1, "x", None] * 50, dtype=object),
        "scalars": [np.float32(0.1), np.int64(-5), np.datetime64("NaT", "ns"), np.float16(-np.nan)],
        "ld": np.array([1, 2, 3], dtype=np.longdouble) / 3,
    }


# -- without arrays ----------------------------------------------------------------------


@fmt
@layout
def test_saved_archive_imports_without_persist_hooks_or_numpy(tmp_path: Path, scoped: bool, package: bool) -> None:
    values = _plain_values()
    a = ph.Archive(scoped=scoped)
    a.insert(**values)
    target = a.save(tmp_path / "out", "plainmod", package=package)
    assert target == (tmp_path / "out" / ("plainmod/__init__.py" if package else "plainmod.py"))
    assert target.read_text(encoding="utf-8").splitlines()[0] == HEADER
    report, loaded = import_saved(tmp_path, tmp_path / "out", "plainmod", with_numpy=False)
    assert sorted(report["names"]) == sorted(values)
    assert report["numpy_loaded"] is False  # numpy is needed only when arrays are present
    assert report["private"] == []
    assert_same(values, {k: loaded[k] for k in values}, target.read_text())
    assert loaded["cyc"][0] is loaded["shared"] and loaded["d"]["a"] is loaded["shared"]


# -- with arrays -------------------------------------------------------------------------


@fmt
@layout
def test_saved_archive_with_arrays(tmp_path: Path, scoped: bool, package: bool) -> None:
    values = _numpy_values()
    a = ph.Archive(scoped=scoped, array_threshold=100)
    a.insert(**values)
    assert len(a.data) == 4  # big (stored once), fortran, struct, dates
    target = a.save(tmp_path / "out", "arrmod", package=package)
    data_dir = target.parent / "_data" if package else tmp_path / "out" / "arrmod_data"
    assert data_dir.is_dir() and len(list(data_dir.glob("*.npy"))) == 4
    text = target.read_text(encoding="utf-8")
    assert "persist_hooks" not in text.replace(HEADER, "").replace("written by persist_hooks", "")
    report, loaded = import_saved(tmp_path, tmp_path / "out", "arrmod", with_numpy=True)
    assert report["numpy_loaded"] is True
    assert report["private"] == []  # _arrays, temporaries and loader helpers are deleted
    memmapped = [n for n, t in report["types"].items() if t == "numpy.memmap"]
    assert sorted(memmapped) == ["big", "dates", "fortran", "struct"]  # externalised: memory-mapped
    assert_same(values, {k: loaded[k] for k in values}, text)
    assert loaded["again"][0] is loaded["big"] is loaded["again"][1]["same"]


@fmt
def test_saved_numpy_values_without_array_table(tmp_path: Path, scoped: bool) -> None:
    values = _numpy_values()
    a = ph.Archive(scoped=scoped)
    a.insert(**values)
    a.save(tmp_path, "inlinearr", package=False)
    assert not (tmp_path / "inlinearr_data").exists()
    _, loaded = import_saved(tmp_path, tmp_path, "inlinearr", with_numpy=True)
    assert_same(values, {k: loaded[k] for k in values})


# -- overwriting ---------------------------------------------------------------------------


@layout
def test_overwrite_own_module_replaces_it_and_its_arrays(tmp_path: Path, package: bool) -> None:
    a = ph.Archive(array_threshold=10)
    a.insert(x=np.arange(100), y=np.ones(50), note="first")
    a.save(tmp_path, "over", package=package)
    b = ph.Archive(array_threshold=10)
    b.insert(x=np.arange(20) * 2, note="second")
    target = b.save(tmp_path, "over", package=package)
    data_dir = target.parent / "_data" if package else tmp_path / "over_data"
    assert len(list(data_dir.glob("*.npy"))) == 1  # the old arrays are gone
    report, loaded = import_saved(tmp_path, tmp_path, "over", with_numpy=True)
    assert sorted(report["names"]) == ["note", "x"]
    assert loaded["note"] == "second"
    assert np.array_equal(loaded["x"], np.arange(20) * 2)
    c = ph.Archive()
    c.insert(z=1)
    c.save(tmp_path, "over", package=package)  # arrays -> no arrays
    assert not data_dir.exists() or not list(data_dir.iterdir())
    report, loaded = import_saved(tmp_path, tmp_path, "over", with_numpy=False)
    assert report["names"] == ["z"]


def test_overwriting_foreign_files_raises(tmp_path: Path) -> None:
    a = ph.Archive()
    a.insert(x=1)
    (tmp_path / "mine.py").write_text("important = 'user code'\n")
    with pytest.raises(FileExistsError):
        a.save(tmp_path, "mine", package=False)
    assert (tmp_path / "mine.py").read_text() == "important = 'user code'\n"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("# user package\n")
    with pytest.raises(FileExistsError):
        a.save(tmp_path, "pkg", package=True)
    assert (tmp_path / "pkg" / "__init__.py").read_text() == "# user package\n"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("keep me\n")
    with pytest.raises(FileExistsError):
        a.save(tmp_path, "notes", package=True)
    assert (tmp_path / "notes" / "readme.txt").read_text() == "keep me\n"
    assert not (tmp_path / "notes" / "__init__.py").exists()


def test_save_names(tmp_path: Path) -> None:
    a = ph.Archive()
    a.insert(only=[1])
    assert a.save(tmp_path, package=False).name == "only.py"  # name defaults to the one item
    b = ph.Archive()
    b.insert(x=1, y=2)
    with pytest.raises(ValueError):
        b.save(tmp_path)
    for bad in ["1x", "class", "_private", "test_mod", "a-b"]:
        with pytest.raises(ValueError):
            b.save(tmp_path, bad)


def test_unknown_backend(tmp_path: Path) -> None:
    a = ph.Archive(array_threshold=1)
    a.insert(x=np.arange(5))
    with pytest.raises(ph.BackendError, match="no-such-backend"):
        a.save(tmp_path, "mod", backend="no-such-backend")
    a.save(tmp_path, "mod2", backend="npy", package=False)
    _, loaded = import_saved(tmp_path, tmp_path, "mod2", with_numpy=True)
    assert np.array_equal(loaded["x"], np.arange(5))


@fmt
@layout
def test_single_item_module_is_the_item(tmp_path: Path, scoped: bool, package: bool) -> None:
    item: list[Any] = [1, {"k": "v"}]
    item.append(item)
    a = ph.Archive(scoped=scoped, single_item_mode=True)
    a.insert(item=item)
    a.save(tmp_path, "itemmod", package=package)
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        import itemmod
        assert type(itemmod) is list, type(itemmod)
        assert itemmod[2] is itemmod and itemmod[1] == {"k": "v"}
        assert "persist_hooks" not in sys.modules
        print("ok")
        """
    )
    assert run_python(code, args=[str(tmp_path)], flags=("-I", "-S")).stdout.strip() == "ok"


def test_saved_module_imports_in_this_process(tmp_path: Path) -> None:
    import importlib
    import sys

    a = ph.Archive(array_threshold=3)
    a.insert(v=[np.arange(10), "x"])
    a.save(tmp_path, "localmod")
    sys.path.insert(0, str(tmp_path))
    mod = importlib.import_module("localmod")
    assert np.array_equal(mod.v[0], np.arange(10)) and mod.v[1] == "x"


@layout
def test_rewrite_of_same_size_is_not_served_from_stale_bytecode(tmp_path: Path, package: bool) -> None:
    """Plain Python caches bytecode by mtime seconds and size: a quick same-size rewrite
    must still be seen (the old tools served stale .pyc files)."""
    for value in ("v1", "v2", "v3"):
        a = ph.Archive()
        a.insert(x=value)
        a.save(tmp_path, "quick", package=package)
        code = "import sys; sys.path.insert(0, sys.argv[1]); import quick; print(quick.x)"
        out = run_python(code, args=[str(tmp_path)], flags=("-I", "-S")).stdout.strip()
        assert out == value


def test_save_data_manifest(tmp_path: Path) -> None:
    a = ph.Archive(array_threshold=3)
    big = np.arange(10.0)
    a.insert(x=[big, big], y=np.ones((2, 3), dtype=">i2"), z=np.arange(2))
    manifest = a.save_data(tmp_path)
    assert sorted(manifest) == ["array_0", "array_1"]
    for key, entry in manifest.items():
        loaded = np.load(tmp_path / entry["path"])
        assert loaded.dtype == a.data[key].dtype and list(loaded.shape) == entry["shape"]
        assert np.array_equal(loaded, a.data[key])

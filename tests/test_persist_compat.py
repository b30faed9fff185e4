"""persist 3.2.1 compatibility: its DataSets and archives read, import and convert.

Every test runs on the committed fixtures (``tests/persist_compat/fixtures``, written by
persist 3.2.1 through ``tests/persist_compat/persist321.py``) and, when the ``persist``
package is importable, also on DataSets that persist 3.2.1 writes afresh in a subprocess
(so persist's import side effects stay out of this process).  Tests that need persist
3.2.1 itself to read back what persist_hooks wrote are skipped without it.  Each test
works on a copy in its own temporary directory.  See docs/persist_compat.md.
"""

from __future__ import annotations

import importlib.util
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from importhook_helpers.datasets import python_env
from persist_compat import expected as E

import persist_hooks as ph
from persist_hooks import _format as fmt
from persist_hooks.errors import UnsafeArchiveError
from persist_hooks.verify import verify

HERE = Path(__file__).resolve().parent / "persist_compat"
FIXTURES = HERE / "fixtures"
PERSIST321 = HERE / "persist321.py"
CHECK_IMPORT = HERE / "check_import.py"

HAVE_PERSIST = importlib.util.find_spec("persist") is not None
needs_persist = pytest.mark.skipif(not HAVE_PERSIST, reason="persist 3.2.1 is not installed")

FIXTURE_ENTRIES = [
    E.DATASET,
    E.NPZ_DATASET,
    E.ARCHIVE_PACKAGE,
    E.ARCHIVE_MODULE + ".py",
    E.ARCHIVE_SOURCE,
    E.ARCHIVE_DATA,
]


def _run(script: Path, *args: object, hook: bool = False, pythonpath: Path | None = None) -> None:
    proc = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        env=python_env(
            hook=hook,
            pythonpath=[pythonpath] if pythonpath else None,
            PYTHONDONTWRITEBYTECODE="1",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{script.name} {args} failed ({proc.returncode})\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )


def persist_read(parent: Path, name: str, tmp: Path) -> dict[str, Any]:
    """What persist 3.2.1's own ``DataSet(name, "r")`` reads (keys, info, items)."""
    dest = tmp / f"persist_read_{name}.pkl"
    _run(PERSIST321, "read", parent, name, dest)
    with open(dest, "rb") as f:
        result: dict[str, Any] = pickle.load(f)
    return result


@pytest.fixture(scope="module")
def fresh_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DataSets and archives written just now by persist 3.2.1 (once per module)."""
    out = tmp_path_factory.mktemp("persist321_fresh")
    _run(PERSIST321, "write", out)
    return out


@pytest.fixture(params=["committed", "fresh"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A private copy of persist 3.2.1's output: the committed fixtures, or fresh ones."""
    if request.param == "committed":
        origin = FIXTURES
    else:
        if not HAVE_PERSIST:
            pytest.skip("persist 3.2.1 is not installed: fresh fixtures cannot be written")
        origin = request.getfixturevalue("fresh_source")
    dest = tmp_path / "src"
    dest.mkdir()
    for entry in FIXTURE_ENTRIES:
        path = origin / entry
        if path.is_dir():
            shutil.copytree(path, dest / entry, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, dest / entry)
    return dest


def _items(ds: ph.DataSet, names: list[str]) -> dict[str, Any]:
    return {name: getattr(ds, name) for name in names}


# ---------------------------------------------------------------- fixtures are persist's


def test_committed_fixtures_are_persist_321_output() -> None:
    # no marker text (persist 3.x leaves it empty), no block structure, no headers
    root = FIXTURES / E.DATASET
    assert (root / "_this_dir_is_a_DataSet").read_text() == ""
    assert fmt.parse_init((root / "__init__.py").read_text()) is None
    for name in E.dataset_objects():
        text = (root / f"{name}.py").read_text()
        assert fmt.parse_item(text, name) is None
        assert text.rstrip().endswith(f"sys.modules[__name__] = {name}")
    assert sorted(p.name for p in (root / "big_data").iterdir()) == ["array_0.npy"]
    assert (FIXTURES / E.NPZ_DATASET / "cube_data.npz").is_file()
    assert not list(FIXTURES.rglob("__pycache__"))


@needs_persist
def test_fresh_output_has_the_committed_layout(fresh_source: Path) -> None:
    def layout(base: Path) -> list[str]:
        return sorted(
            str(p.relative_to(base))
            for entry in FIXTURE_ENTRIES
            for p in [base / entry, *(base / entry).rglob("*")]
            if "__pycache__" not in p.parts
        )

    assert layout(fresh_source) == layout(FIXTURES)


# ---------------------------------------------------------------- reading


def test_dataset_r_lists_keys_and_metadata(source: Path) -> None:
    ds = ph.DataSet(E.DATASET, "r", path=source)
    assert list(ds) == E.dataset_keys()
    assert len(ds) == len(E.dataset_keys())
    assert "metaonly" in ds and "missing" not in ds
    E.assert_same({key: ds[key] for key in ds}, E.dataset_metadata())
    with pytest.raises(KeyError):
        ds["missing"]


def test_dataset_r_items_are_the_same_objects(source: Path) -> None:
    ds = ph.DataSet(E.DATASET, "r", path=source)
    want = E.dataset_objects()
    got = _items(ds, list(want))
    E.assert_same(got, want)
    # persist 3.x items are run whole: their arrays are loaded, plain ndarrays (no memmap)
    assert type(got["big"]) is np.ndarray and type(got["mixed"]["arr"]) is np.ndarray
    with pytest.raises(AttributeError):
        _ = ds.metaonly  # metadata only: no item file
    with pytest.raises(ph.ReadOnlyError):
        ds.small = 1


def test_dataset_r_npz_data_format(source: Path) -> None:
    ds = ph.DataSet(E.NPZ_DATASET, "r", path=source)
    assert list(ds) == list(E.npz_items())
    E.assert_same(_items(ds, list(ds)), E.npz_items())


def test_reading_writes_nothing(source: Path) -> None:
    root = source / E.DATASET
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    ds = ph.DataSet(E.DATASET, "r", path=source)
    _items(ds, list(E.dataset_objects()))
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_archive_source_restores(source: Path) -> None:
    src = (source / E.ARCHIVE_SOURCE).read_text()
    with np.load(source / E.ARCHIVE_DATA) as npz:
        arrays = {key: npz[key] for key in npz.files}
    got = ph.restore(src, arrays=arrays)
    E.assert_same({name: got[name] for name in E.archive_objects()}, E.archive_objects())
    assert set(got) == set(E.archive_objects())
    with pytest.raises(UnsafeArchiveError):
        ph.restore(src, arrays=arrays, safe=True)


# ---------------------------------------------------------------- import hook


def test_import_hook_fresh_interpreter(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "imported.pkl"
    _run(CHECK_IMPORT, source, dest, hook=True, pythonpath=source)
    with open(dest, "rb") as f:
        out = pickle.load(f)
    objects = E.dataset_objects()
    assert out["hook_active"]
    assert out["loader"] == "DataSetLoader"
    E.assert_same(out["info"], E.dataset_metadata())
    E.assert_same(out["attrs"], objects)
    E.assert_same(out["imported"], objects)  # `import p321data.big` gives the object
    E.assert_same(out["from_import"], objects["mixed"])
    assert out["dir_has_items"]
    assert not out["metaonly_attr"]
    assert out["reload_same_module"] and out["reload_cleared"]
    E.assert_same(out["after_reload"], objects)
    assert out["pycache"] == []  # the hook never writes bytecode
    assert out["added"] == {"new": 1}
    E.assert_same(out["info_after_write"], {**E.dataset_metadata(), "added": None})
    E.assert_same(out["small_after_write"], objects["small"])
    E.assert_same(out["npz"], E.npz_items())
    # plain persist Archives are ordinary module/package: the hook leaves them to Python
    assert "DataSetLoader" not in out["archive_loaders"]
    E.assert_same(out["archive"], E.archive_objects())
    E.assert_same(out["module"], E.module_objects())


# ---------------------------------------------------------------- converting


def _converted(source: Path) -> ph.DataSet:
    """Open the persist 3.2.1 DataSet in "a" mode and write a new item and new metadata."""
    ds = ph.DataSet(E.DATASET, "a", path=source, array_threshold=E.ARRAY_THRESHOLD)
    ds.fresh = {"arr": np.arange(30.0), "s": "new"}
    ds["fresh"] = "written by persist_hooks"
    return ds


def test_append_converts_init_keeping_keys_and_metadata(source: Path) -> None:
    _converted(source).close()
    root = source / E.DATASET
    text = (root / "__init__.py").read_text()
    assert fmt.parse_init(text) is not None  # now in the block format
    assert fmt.init_keys(text) == [*E.dataset_keys(), "fresh"]
    assert (root / "_this_dir_is_a_DataSet").read_text() == fmt.MARKER_TEXT
    ds = ph.DataSet(E.DATASET, "r", path=source)
    assert list(ds) == [*E.dataset_keys(), "fresh"]
    E.assert_same(
        {key: ds[key] for key in ds}, {**E.dataset_metadata(), "fresh": "written by persist_hooks"}
    )
    E.assert_same(_items(ds, list(E.dataset_objects())), E.dataset_objects())
    E.assert_same(ds.fresh, {"arr": np.arange(30.0), "s": "new"})
    # the persist 3.2.1 item files are left as they were
    for name in E.dataset_objects():
        assert fmt.parse_item((root / f"{name}.py").read_text(), name) is None
    report = verify(root, trusted=True)  # persist 3.x items are outside the safe language
    assert report.ok, str(report)


def test_overwriting_a_persist_item_replaces_its_data(source: Path) -> None:
    root = source / E.DATASET
    with ph.DataSet(E.DATASET, "a", path=source, array_threshold=E.ARRAY_THRESHOLD) as ds:
        ds.big = np.ones(50)
    assert not (root / "big_data" / "array_0.npy").exists()  # persist's data file is gone
    ds = ph.DataSet(E.DATASET, "r", path=source)
    E.assert_same(ds.big, np.ones(50))
    assert ds["big"] == E.dataset_info()["big"]
    report = verify(root, trusted=True)
    assert report.ok, str(report)


def test_insert_and_delete_on_a_persist_dataset(source: Path) -> None:
    root = source / E.DATASET
    with ph.DataSet(E.DATASET, "a", path=source, array_threshold=E.ARRAY_THRESHOLD) as ds:
        assert ds._insert([4, 5], info="third") == "x_2"  # after persist's x_0, x_1
        del ds.big  # the item goes, its metadata stays
        del ds["x_0"]  # key, metadata and item go
        del ds["metaonly"]
    assert not (root / "big.py").exists() and not (root / "big_data").exists()
    assert not (root / "x_0.py").exists() and not (root / "x_0_data").exists()
    ds = ph.DataSet(E.DATASET, "r", path=source)
    keys = [k for k in E.dataset_keys() if k not in ("x_0", "metaonly")] + ["x_2"]
    assert list(ds) == keys
    assert ds["big"] == E.dataset_info()["big"] and ds["x_2"] == "third"
    assert ds.x_2 == [4, 5]
    E.assert_same(ds.mixed, E.dataset_objects()["mixed"])


@needs_persist
def test_persist_321_reads_the_converted_dataset(source: Path, tmp_path: Path) -> None:
    _converted(source).close()
    got = persist_read(source, E.DATASET, tmp_path)
    assert got["keys"] == [*E.dataset_keys(), "fresh"]
    E.assert_same(got["info"], {**E.dataset_metadata(), "fresh": "written by persist_hooks"})
    E.assert_same(
        got["items"], {**E.dataset_objects(), "fresh": {"arr": np.arange(30.0), "s": "new"}}
    )


@needs_persist
def test_persist_321_writes_after_conversion(source: Path, tmp_path: Path) -> None:
    _converted(source).close()
    _run(PERSIST321, "append", source, E.DATASET)
    # persist 3.2.1 re-wrote __init__.py in its own form; persist_hooks reads it, and
    # converts it again on its next write
    ds = ph.DataSet(E.DATASET, "a", path=source)
    obj, info = E.later_item()
    keys = [*E.dataset_keys(), "fresh", E.LATER]
    assert list(ds) == keys
    assert ds[E.LATER] == info
    E.assert_same(getattr(ds, E.LATER), obj)
    E.assert_same(ds.fresh, {"arr": np.arange(30.0), "s": "new"})
    ds.again = 1
    assert fmt.init_keys((source / E.DATASET / "__init__.py").read_text()) == [*keys, "again"]


# ---------------------------------------------------------------- trust and verify


def test_untrusted_refuses_persist_files(source: Path) -> None:
    ds = ph.DataSet(E.DATASET, "r", path=source, trusted=False)
    with pytest.raises(UnsafeArchiveError):
        list(ds)  # persist's __init__.py builds _info_dict through functions
    _converted(source).close()
    ds = ph.DataSet(E.DATASET, "r", path=source, trusted=False)
    assert list(ds) == [*E.dataset_keys(), "fresh"]  # converted __init__.py: safe
    for name in E.dataset_objects():
        with pytest.raises(UnsafeArchiveError):
            getattr(ds, name)  # persist 3.x item files are outside the safe language
    E.assert_same(ds.fresh, {"arr": np.arange(30.0), "s": "new"})


def test_migrate_by_rewriting_every_item(source: Path, tmp_path: Path) -> None:
    root = source / E.DATASET
    ds = ph.DataSet(E.DATASET, "a", path=source, array_threshold=E.ARRAY_THRESHOLD)
    with ds, ds.locked():
        for name in ds:
            if (root / f"{name}.py").is_file():
                setattr(ds, name, getattr(ds, name))
    for name in E.dataset_objects():
        assert fmt.parse_item((root / f"{name}.py").read_text(), name) is not None
    ds = ph.DataSet(E.DATASET, "r", path=source, trusted=False)
    assert list(ds) == E.dataset_keys()
    E.assert_same({key: ds[key] for key in ds}, E.dataset_metadata())
    E.assert_same(_items(ds, list(E.dataset_objects())), E.dataset_objects())
    report = verify(root)
    assert report.ok, str(report)
    assert not (root / "big_data" / "array_0.npy").exists()
    if HAVE_PERSIST:
        got = persist_read(source, E.DATASET, tmp_path)
        assert got["keys"] == E.dataset_keys()
        E.assert_same(got["items"], E.dataset_objects())


def test_verify_trusted_reports_ok(source: Path) -> None:
    report = verify(source / E.DATASET, trusted=True)
    assert report.ok, str(report)
    assert report.items == len(E.dataset_objects())
    assert report.arrays == 0  # persist 3.x items have no header: their arrays are not checked
    assert verify(source / E.NPZ_DATASET, trusted=True).ok


def test_verify_untrusted_reports_items_it_cannot_check(source: Path) -> None:
    report = verify(source / E.DATASET)
    refused = {Path(p.path).stem for p in report.problems if p.kind == "bad-item"}
    assert refused == set(E.dataset_objects())
    assert all("safe loader" in p.message for p in report.problems if p.kind == "bad-item")
    assert not any(p.repairable for p in report.problems)

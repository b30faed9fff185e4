"""The import hook (persist_hooks.importer): DataSets import lazily, everything else untouched.

Most tests run a fresh interpreter (the hook is active there through the installed .pth,
with no explicit call), on DataSet directories written by hand after docs/format.md.
In-process tests restore sys.path, sys.meta_path and sys.modules afterwards.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import textwrap
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from importhook_helpers.datasets import (
    atomic_write,
    init_text,
    item_text,
    last_json,
    make_dataset,
    run_python,
)

from persist_hooks import importer
from persist_hooks.errors import FormatError
from persist_hooks.importer import (
    MARKER,
    DataSetFinder,
    DataSetLoader,
    HookHandle,
    ShadowedHookWarning,
    install,
    is_installed,
    shadowing_finders,
    uninstall,
)

SLOW_ITEM = '''\
"""A hand-written item that counts its loads and takes a while (a plain-Python item)."""
import builtins
import time
builtins._ph_loads = getattr(builtins, "_ph_loads", 0) + 1
time.sleep(0.2)
{name} = object()
import sys as _sys
_sys.modules[__name__] = {name}
'''


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A directory for sys.path: DataSet ``mydata`` next to ordinary packages.

    * ``mydata``: items ``x``, ``y``, ``n`` (None), metadata-only key ``b``;
    * ``plainpkg``: an ordinary package with module ``mod``;
    * ``nspkg``: a namespace package with module ``mod``;
    * ``pkg``: an ordinary package holding DataSet ``inner`` (item ``z``) and module ``helper``.
    """
    make_dataset(
        tmp_path,
        "mydata",
        {"x": "[1, 2, 3]", "y": "{'a': 1}", "n": "None"},
        {"x": "a list", "b": {"units": "m"}},
    )
    (tmp_path / "plainpkg").mkdir()
    (tmp_path / "plainpkg" / "__init__.py").write_text("VALUE = 'plain'\n")
    (tmp_path / "plainpkg" / "mod.py").write_text("VALUE = 'mod'\n")
    (tmp_path / "nspkg").mkdir()
    (tmp_path / "nspkg" / "mod.py").write_text("VALUE = 'ns'\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "helper.py").write_text("VALUE = 'helper'\n")
    make_dataset(tmp_path / "pkg", "inner", {"z": "'nested'"})
    return tmp_path


def child(tree: Path, code: str, **kwargs: object) -> object:
    """Run ``code`` (dedented) in a fresh interpreter with ``tree`` on sys.path; its JSON."""
    prelude = "import importlib, json, sys\n"
    proc = run_python(prelude + textwrap.dedent(code), cwd=tree, pythonpath=[tree], **kwargs)  # type: ignore[arg-type]
    return last_json(proc)


# ---------------------------------------------------------------- fresh interpreters


def test_import_with_startup_hook_is_lazy(tree: Path) -> None:
    result = child(
        tree,
        """
        import persist_hooks.importer as imp
        import mydata
        r = {"installed": imp.is_installed(),
             "loader": type(mydata.__spec__.loader).__name__,
             "info": mydata._info_dict,
             "lazy": ["x" in vars(mydata), "mydata.x" in sys.modules]}
        x = mydata.x
        r["x"] = x
        r["bound"] = [vars(mydata)["x"] is x, sys.modules["mydata.x"] is x, mydata.x is x]
        r["n"] = [mydata.n is None, "n" in vars(mydata)]
        print(json.dumps(r))
        """,
    )
    assert result == {
        "installed": True,
        "loader": "DataSetLoader",
        "info": {"x": "a list", "y": None, "n": None, "b": {"units": "m"}},
        "lazy": [False, False],
        "x": [1, 2, 3],
        "bound": [True, True, True],
        "n": [True, True],
    }


def test_import_item_gives_the_stored_object(tree: Path) -> None:
    result = child(
        tree,
        """
        import mydata.x
        import mydata.y as yy
        from mydata import x
        r = {"x": mydata.x, "y": yy, "type": type(sys.modules["mydata.x"]).__name__,
             "same": [x is mydata.x, x is sys.modules["mydata.x"], yy is mydata.y,
                      importlib.import_module("mydata.x") is x]}
        import mydata.x  # again: straight from sys.modules
        r["again"] = mydata.x is x
        print(json.dumps(r))
        """,
    )
    assert result == {
        "x": [1, 2, 3],
        "y": {"a": 1},
        "type": "list",
        "same": [True, True, True, True],
        "again": True,
    }


def test_dir_lists_items_not_metadata_only_keys(tree: Path) -> None:
    result = child(
        tree,
        """
        import mydata
        d = dir(mydata)
        print(json.dumps({"items": [k in d for k in ("x", "y", "n")], "b": "b" in d,
                          "info": "_info_dict" in d, "loaded": "x" in vars(mydata)}))
        """,
    )
    assert result == {"items": [True, True, True], "b": False, "info": True, "loaded": False}


def test_metadata_only_key_is_not_importable(tree: Path) -> None:
    result = child(
        tree,
        """
        import mydata
        r = {"info": mydata._info_dict["b"]}
        try:
            import mydata.b
        except ModuleNotFoundError as e:
            r["import"] = ["ModuleNotFoundError", e.name]
        try:
            mydata.b
        except AttributeError as e:
            r["attr"] = ["AttributeError", "only metadata" in str(e)]
        try:
            from mydata import b
        except ImportError as e:
            r["from"] = type(e).__name__
        r["dunder"] = hasattr(mydata, "__wrapped__")
        try:
            mydata.missing
        except AttributeError as e:
            r["missing"] = str(e)
        print(json.dumps(r))
        """,
    )
    assert result == {
        "info": {"units": "m"},
        "import": ["ModuleNotFoundError", "mydata.b"],
        "attr": ["AttributeError", True],
        "from": "ImportError",
        "dunder": False,
        "missing": "module 'mydata' has no attribute 'missing'",
    }


def test_same_directory_imports_as_plain_python_without_the_hook(tree: Path) -> None:
    code = """
        import mydata
        from mydata import y
        import mydata.x
        print(json.dumps({"loader": type(mydata.__spec__.loader).__name__,
                          "x": mydata.x, "y": y, "info": mydata._info_dict,
                          "persist_hooks": "persist_hooks" in sys.modules,
                          "finder": any(type(f).__name__ == "DataSetFinder" for f in sys.meta_path)}))
        """
    expected = {
        "x": [1, 2, 3],
        "y": {"a": 1},
        "info": {"x": "a list", "y": None, "n": None, "b": {"units": "m"}},
    }
    opted_out = child(tree, code, hook=False)
    assert opted_out == {
        **expected,
        "loader": "SourceFileLoader",
        "persist_hooks": True,
        "finder": False,
    }
    # No site-packages at all (-S): persist_hooks is not even importable.
    bare = child(tree, code, args=("-S",))
    assert bare == {
        **expected,
        "loader": "SourceFileLoader",
        "persist_hooks": False,
        "finder": False,
    }
    hooked = child(tree, code)
    assert hooked == {**expected, "loader": "DataSetLoader", "persist_hooks": True, "finder": True}


def test_no_bytecode_is_written_or_read_for_datasets(tree: Path) -> None:
    code = """
        import persist_hooks._reader  # the reader's own modules may be compiled as usual
        sys.dont_write_bytecode = False
        import mydata.x
        import plainpkg.mod
        print(json.dumps(mydata.x))
        """
    assert child(tree, code) == [1, 2, 3]
    assert not (tree / "mydata" / "__pycache__").exists()
    assert (tree / "plainpkg" / "__pycache__").is_dir()

    # Plain Python compiles the DataSet; a same-size rewrite keeping the mtime (what a
    # rewrite within the same second looks like to it) is then served stale from the .pyc.
    assert child(tree, code, hook=False) == [1, 2, 3]
    pycache = tree / "mydata" / "__pycache__"
    pycs = {p.name: p.stat().st_mtime_ns for p in pycache.iterdir()}
    assert any(name.startswith("x.") for name in pycs)
    item = tree / "mydata" / "x.py"
    old = item.stat()
    atomic_write(item, item_text("x", "mydata", "[7, 8, 9]"))
    os.utime(item, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert item.stat().st_size == old.st_size
    assert child(tree, code, hook=False) == [1, 2, 3]  # stale: plain Python's .pyc
    # The hook reads the source itself and leaves the bytecode cache alone.
    assert child(tree, code) == [7, 8, 9]
    assert {p.name: p.stat().st_mtime_ns for p in pycache.iterdir()} == pycs


def test_ordinary_packages_next_to_a_dataset_are_untouched(tree: Path) -> None:
    code = """
        import os
        sys.dont_write_bytecode = False
        import plainpkg.mod, nspkg.mod, mydata
        print(json.dumps({
            "loaders": [type(m.__spec__.loader).__name__ for m in (plainpkg, plainpkg.mod, nspkg.mod)],
            "ns_loader": type(nspkg.__spec__.loader).__name__,
            "ns_path": list(nspkg.__path__),
            "cached": [plainpkg.__cached__, plainpkg.mod.__cached__],
            "values": [plainpkg.VALUE, plainpkg.mod.VALUE, nspkg.mod.VALUE],
            "reloaded": importlib.reload(plainpkg.mod).VALUE,
            "importer_cache": sorted((k, type(v).__name__) for k, v in sys.path_importer_cache.items()
                                     if k.startswith(os.getcwd()))}))
        """
    results = []
    for hook in (True, False):
        for pycache in tree.rglob("__pycache__"):
            shutil.rmtree(pycache)
        results.append(child(tree, code, hook=hook))
        results.append(
            sorted(str(p.relative_to(tree)) for p in tree.rglob("*.pyc") if "mydata" not in p.parts)
        )
    with_hook, pycs_with, without_hook, pycs_without = results
    assert with_hook == without_hook
    assert pycs_with == pycs_without
    assert with_hook["values"] == ["plain", "mod", "ns"]  # type: ignore[index]
    assert with_hook["loaders"] == ["SourceFileLoader"] * 3  # type: ignore[index]
    assert len(pycs_with) == 3  # plainpkg/__init__, plainpkg/mod, nspkg/mod
    assert with_hook["reloaded"] == "mod"  # type: ignore[index]
    assert len(with_hook["importer_cache"]) == 3  # type: ignore[index]  # tree, plainpkg, nspkg


COUNT_PATHFINDER = """
    from importlib.machinery import PathFinder
    asked = []
    _find = PathFinder.find_spec
    def counting(fullname, path=None, target=None):
        asked.append(fullname)
        return _find(fullname, path, target)
    PathFinder.find_spec = counting
    """


def test_installed_finder_answers_for_pathfinder_once_per_import(tree: Path) -> None:
    code = COUNT_PATHFINDER + """
    import plainpkg.mod, nspkg.mod, pkg.helper, mydata, pkg.inner.z
    try:
        import no_such_module_anywhere
    except ModuleNotFoundError:
        pass
    counts = {n: asked.count(n) for n in asked if n.partition(".")[0] in
              ("plainpkg", "nspkg", "pkg", "mydata", "no_such_module_anywhere")}
    from persist_hooks import importer
    finder = [f for f in sys.meta_path if isinstance(f, importer.DataSetFinder)]
    spec = finder[0].find_spec("plainpkg", None) if finder else None
    print(json.dumps({"asked": counts,
                      "spec": spec and [spec.origin == plainpkg.__file__, type(spec.loader).__name__],
                      "standalone": importer.DataSetFinder().find_spec("plainpkg", None)}))
    """
    with_hook = child(tree, code)
    without_hook = child(tree, code, hook=False)
    names = ["plainpkg", "plainpkg.mod", "nspkg", "nspkg.mod", "pkg", "pkg.helper", "mydata",
             "pkg.inner"]
    # PathFinder searches once per import, as without the hook; only a name found
    # nowhere is searched twice (the finder's search, then PathFinder's own).
    assert with_hook == {
        "asked": {**dict.fromkeys(names, 1), "no_such_module_anywhere": 2},
        "spec": [True, "SourceFileLoader"],  # the installed finder answers for PathFinder
        "standalone": None,  # a finder that is not in front of PathFinder does not
    }
    assert without_hook == {
        "asked": {**dict.fromkeys(names, 1), "no_such_module_anywhere": 1, "pkg.inner.z": 1},
        "spec": None,
        "standalone": None,
    }


PASS_THROUGH = """
    import importlib.abc, importlib.util
    from importlib.machinery import PathFinder
    from persist_hooks import importer
    import persist_hooks._reader  # what a DataSet import needs, imported while PathFinder works

    class VirtualLoader(importlib.abc.Loader):
        def create_module(self, spec):
            return None
        def exec_module(self, module):
            module.VALUE = "virtual"

    class Recording:
        "Records what it is asked; claims `claims`, else asks PathFinder if `search`."
        def __init__(self, claims=(), search=False):
            self.asked, self.claims, self.search = [], set(claims), search
        def find_spec(self, name, path, target=None):
            self.asked.append(name)
            if name in self.claims:
                return importlib.util.spec_from_loader(name, VirtualLoader())
            return PathFinder.find_spec(name, path, target) if self.search else None

    def loader_of(name):
        try:
            return type(importlib.import_module(name).__spec__.loader).__name__
        except ModuleNotFoundError:
            return "ModuleNotFoundError"
    """


def test_finders_behind_pathfinder_keep_their_turn(tree: Path) -> None:
    # Editable installs (setuptools, editables) append their finder behind PathFinder.
    code = PASS_THROUGH + """
    behind = Recording(claims={"editable_mod", "plainpkg"})
    sys.meta_path.append(behind)
    r = {"loaders": [loader_of(n) for n in ("editable_mod", "plainpkg", "mydata", "absent_mod")]}
    r["asked"] = [n for n in behind.asked if n != "editable_mod.x"]
    r["value"] = sys.modules["editable_mod"].VALUE
    print(json.dumps(r))
    """
    with_hook = child(tree, code)
    without_hook = child(tree, code, hook=False)
    assert with_hook == {
        "loaders": ["VirtualLoader", "SourceFileLoader", "DataSetLoader", "ModuleNotFoundError"],
        "asked": ["editable_mod", "absent_mod"],  # what PathFinder does not find, only
        "value": "virtual",
    }
    assert without_hook == {**with_hook, "loaders": [  # type: ignore[dict-item]
        "VirtualLoader", "SourceFileLoader", "SourceFileLoader", "ModuleNotFoundError"]}


@pytest.mark.parametrize("arrangement", ["between", "replaced", "removed"])
def test_datasets_import_when_pathfinder_is_not_the_finders_successor(
    tree: Path, arrangement: str
) -> None:
    code = PASS_THROUGH + f"""
    arrangement = {arrangement!r}
    meta_path = sys.meta_path
    other = Recording(claims={{"plainpkg"}}, search=arrangement != "between")
    if arrangement == "between":  # inserted in front of PathFinder after the hook
        meta_path.insert(meta_path.index(PathFinder), other)
    elif arrangement == "replaced":
        meta_path[meta_path.index(PathFinder)] = other
    else:
        meta_path.remove(PathFinder)
    finder = importer._STATE.finder
    r = {{"loaders": [loader_of(n) for n in ("plainpkg", "mydata", "pkg.inner", "nspkg")],
          "answers_for_others": finder.find_spec("nspkg", None) is not None,
          "asked": other.asked if other in meta_path else None}}
    import mydata.x
    r["x"] = mydata.x
    print(json.dumps(r))
    """
    result = child(tree, code)
    if arrangement == "removed":  # nothing imports from sys.path but DataSets
        loaders = ["ModuleNotFoundError", "DataSetLoader", "ModuleNotFoundError"]
    else:
        loaders = ["VirtualLoader", "DataSetLoader", "DataSetLoader"]
    loaders.append("ModuleNotFoundError" if arrangement == "removed" else "NamespaceLoader")
    assert result == {
        "loaders": loaders,
        "answers_for_others": False,
        # The DataSet finder takes DataSets first; everything else reaches the other finder.
        "asked": None if arrangement == "removed" else ["plainpkg", "pkg", "nspkg"],
        "x": [1, 2, 3],
    }


def test_zip_files_on_sys_path(tree: Path) -> None:
    archive = tree / "mods.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zmod.py", "VALUE = 'zip module'\n")
        zf.writestr("zpkg/__init__.py", "")
        zf.writestr("zpkg/sub.py", "VALUE = 'zip package'\n")
        zf.writestr("mydata2/__init__.py", "VALUE = 'zip, not a DataSet'\n")
        zf.writestr(f"mydata2/{MARKER}", "")  # DataSets in zip files are not recognised
    make_dataset(tree, "zmod", {"x": "1"})  # later on sys.path than the zip: shadowed
    code = """
    sys.path.insert(0, "mods.zip")
    import zmod, zpkg.sub, mydata2, mydata
    print(json.dumps([[m.VALUE, type(m.__spec__.loader).__name__] for m in (zmod, zpkg.sub, mydata2)]
                     + [type(mydata.__spec__.loader).__name__]))
    """
    expected = [
        ["zip module", "zipimporter"],
        ["zip package", "zipimporter"],
        ["zip, not a DataSet", "zipimporter"],
    ]
    assert child(tree, code) == [*expected, "DataSetLoader"]
    assert child(tree, code, hook=False) == [*expected, "SourceFileLoader"]


def test_dataset_nested_in_an_ordinary_package(tree: Path) -> None:
    make_dataset(tree / "pkg" / "inner", "deeper", {"d": "'deep'"})  # and in a DataSet
    result = child(
        tree,
        """
        sys.dont_write_bytecode = False
        import pkg.inner.z
        from pkg.inner import z
        import pkg.helper
        import pkg.inner.deeper.d
        print(json.dumps({"z": z, "same": pkg.inner.z is z is sys.modules["pkg.inner.z"],
                          "loaders": [type(m.__spec__.loader).__name__
                                      for m in (pkg, pkg.inner, pkg.helper, pkg.inner.deeper)],
                          "info": pkg.inner._info_dict, "dir": "z" in dir(pkg.inner),
                          "deep": pkg.inner.deeper.d}))
        """,
    )
    assert result == {
        "z": "nested",
        "same": True,
        "loaders": ["SourceFileLoader", "DataSetLoader", "SourceFileLoader", "DataSetLoader"],
        "info": {"z": None},
        "dir": True,
        "deep": "deep",
    }
    assert (tree / "pkg" / "__pycache__").is_dir()
    assert not list((tree / "pkg" / "inner").rglob("__pycache__"))


def test_reload_reflects_another_process_rewrite_and_item_changes(tree: Path) -> None:
    root = tree / "mydata"
    # Another process: x rewritten with the same size (no sleep: same second, likely the
    # same mtime tick), y removed, w added.
    writer = textwrap.dedent(
        f"""
        import os, tempfile
        def write(path, text):
            fd, tmp = tempfile.mkstemp(dir={str(root)!r}, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        write({str(root / "x.py")!r}, {item_text("x", "mydata", "[4, 5, 6]")!r})
        write({str(root / "w.py")!r}, {item_text("w", "mydata", "'new'")!r})
        os.remove({str(root / "y.py")!r})
        write({str(root / "__init__.py")!r}, {init_text("mydata", {"x": "rewritten", "w": None, "b": 2})!r})
        """
    )
    result = child(
        tree,
        f"""
        import subprocess
        import mydata
        from mydata import x
        first = [x, mydata.y]
        subprocess.run([sys.executable, "-c", {writer!r}], check=True)
        r = {{"first": first, "still_bound": mydata.x is x}}
        importlib.reload(mydata)
        r["forgotten"] = ["x" in vars(mydata), "mydata.x" in sys.modules,
                          "y" in vars(mydata), "mydata.y" in sys.modules]
        import mydata.x
        from mydata import x as x2
        r["x"] = [mydata.x, x2, sys.modules["mydata.x"]]
        r["w"] = ["w" in dir(mydata), mydata.w]
        r["y"] = ["y" in dir(mydata), hasattr(mydata, "y")]
        try:
            import mydata.y
            r["import_y"] = "imported"
        except ModuleNotFoundError:
            r["import_y"] = "ModuleNotFoundError"
        r["info"] = mydata._info_dict
        print(json.dumps(r))
        """,
    )
    assert result == {
        "first": [[1, 2, 3], {"a": 1}],
        "still_bound": True,
        "forgotten": [False, False, False, False],
        "x": [[4, 5, 6]] * 3,
        "w": [True, "new"],
        "y": [False, False],
        "import_y": "ModuleNotFoundError",
        "info": {"x": "rewritten", "w": None, "b": 2, "n": None},  # n.py: no metadata
    }


def test_dataset_written_by_the_dataset_class_in_another_process(tree: Path) -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("persist_hooks.dataset")
    writer = textwrap.dedent(
        """
        import sys
        import numpy as np
        from persist_hooks.dataset import DataSet
        with DataSet("real", "w", path=sys.argv[1], array_threshold=10) as ds:
            if sys.argv[2] == "create":
                ds.x = [np.arange(100.0), {"a": 1}]
                ds["x"] = "list with an array"
                ds.y = "small"
                ds["b"] = {"units": "m"}
            else:
                ds.x = [np.arange(5.0), {"a": 2}]
                ds.z = 3
                del ds.y
        """
    )
    script = tree / "writer.py"
    script.write_text(writer)
    run_python(
        f"import runpy, sys; sys.argv = ['', {str(tree)!r}, 'create']; runpy.run_path({str(script)!r})",
        cwd=tree,
    )
    result = child(
        tree,
        f"""
        import subprocess
        import numpy as np
        import real
        import real.x
        r = {{"info": real._info_dict, "x0": [type(real.x[0]).__name__, real.x[0].tolist()[:3]],
              "x1": real.x[1], "y": real.y, "dir": sorted(k for k in dir(real) if not k.startswith("_"))}}
        subprocess.run([sys.executable, {str(script)!r}, {str(tree)!r}, "rewrite"], check=True)
        importlib.reload(real)
        from real import x
        r["after"] = [x[0].tolist(), x[1], real.z, hasattr(real, "y"),
                      sorted(k for k in dir(real) if not k.startswith("_"))]
        print(json.dumps(r))
        """,
    )
    assert result == {
        "info": {"x": "list with an array", "y": None, "b": {"units": "m"}},
        "x0": ["ReadOnlyMemmap", [0.0, 1.0, 2.0]],
        "x1": {"a": 1},
        "y": "small",
        "dir": ["x", "y"],
        "after": [[0.0, 1.0, 2.0, 3.0, 4.0], {"a": 2}, 3, False, ["x", "z"]],
    }
    assert not list((tree / "real").rglob("__pycache__"))


def test_threads_racing_on_first_access_share_one_load(tree: Path) -> None:
    names = ["slow0", "slow1", "slow2"]
    make_dataset(tree, "racy", {}, raw_items={n: SLOW_ITEM.format(name=n) for n in names})
    result = child(
        tree,
        f"""
        import builtins, threading
        import racy
        out = {{}}
        for name in {names!r}:
            barrier = threading.Barrier(9)
            got = [None] * 9
            def work(i):
                barrier.wait()
                if i % 3 == 0:
                    got[i] = getattr(racy, name)
                elif i % 3 == 1:
                    got[i] = importlib.import_module("racy." + name)
                else:
                    got[i] = __import__("racy", fromlist=[name]).__dict__[name]
            threads = [threading.Thread(target=work, args=(i,)) for i in range(9)]
            for t in threads: t.start()
            for t in threads: t.join()
            out[name] = [all(g is got[0] for g in got), type(got[0]).__name__,
                         vars(racy)[name] is got[0], sys.modules["racy." + name] is got[0]]
        out["loads"] = builtins._ph_loads
        print(json.dumps(out))
        """,
    )
    assert result == {**{n: [True, "object", True, True] for n in names}, "loads": 3}


def test_eager_switch_loads_items_at_import(tree: Path) -> None:
    code = """
        import mydata
        print(json.dumps(sorted(k for k in ("x", "y", "n") if k in vars(mydata))))
        """
    assert child(tree, code, PERSIST_HOOKS_EAGER="1") == ["n", "x", "y"]
    assert child(tree, code) == []


def test_untrusted_dataset_is_read_with_trusted_false(tree: Path) -> None:
    make_dataset(tree, "foreign", {}, raw_items={"evil": "import os\nevil = os.getpid()\n"})
    result = child(
        tree,
        """
        import importlib.util
        from persist_hooks.importer import DataSetFinder

        class Untrusting(DataSetFinder):
            def trusted_for(self, root):
                return False

        def load(finder):
            spec = finder.find_spec("foreign", None)
            module = importlib.util.module_from_spec(spec)
            sys.modules["foreign"] = module
            try:
                spec.loader.exec_module(module)
                return [spec.loader.trusted, type(module.evil).__name__]
            except Exception as e:
                return [spec.loader.trusted, type(e).__name__]
            finally:
                sys.modules.pop("foreign", None)

        print(json.dumps({"trusted": load(DataSetFinder()), "untrusted": load(Untrusting())}))
        """,
    )
    # Untrusted: the reader refuses code it may not run (in __init__.py or in the item).
    assert result == {"trusted": [True, "int"], "untrusted": [False, "UnsafeArchiveError"]}


# ---------------------------------------------------------------- in-process


@pytest.fixture
def import_state() -> Iterator[list[str]]:
    """Restore sys.path, sys.meta_path, the finders' caches and the named modules.

    Yields a list to which a test appends the top-level names it imports; they (and their
    submodules) are removed from sys.modules afterwards.
    """
    saved_path = list(sys.path)
    saved_meta_path = list(sys.meta_path)
    names: list[str] = []
    try:
        yield names
    finally:
        sys.path[:] = saved_path
        sys.meta_path[:] = saved_meta_path
        for key in list(sys.modules):
            if key.partition(".")[0] in names:
                del sys.modules[key]
        importlib.invalidate_caches()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def test_install_is_idempotent_and_placed_before_pathfinder(import_state: list[str]) -> None:
    uninstall()
    uninstall()  # idempotent too
    assert not is_installed()
    first = install()
    second = install()
    assert isinstance(first, HookHandle) and first.installed
    assert not second.installed
    finders = [f for f in sys.meta_path if isinstance(f, DataSetFinder)]
    assert len(finders) == 1 and finders[0] is importer._STATE.finder
    index = sys.meta_path.index(finders[0])
    assert sys.meta_path[index + 1] is importlib.machinery.PathFinder
    # Under pytest (default assert mode), its assertion rewriter keeps sys.meta_path[0].
    rewriters = [f for f in sys.meta_path if type(f).__name__ == "AssertionRewritingHook"]
    assert rewriters == sys.meta_path[: len(rewriters)]
    second.uninstall()  # did not install: leaves the hook alone
    assert is_installed()
    first.uninstall()
    assert not is_installed()


def test_handle_is_a_context_manager_that_undoes_only_its_own_install(
    import_state: list[str],
) -> None:
    uninstall()
    with install() as outer:
        assert outer.installed and is_installed()
        with install() as inner:
            assert not inner.installed
        assert is_installed()
    assert not is_installed()


def test_explicit_install_in_process(tmp_path: Path, import_state: list[str]) -> None:
    name = unique("inproc")
    import_state.append(name)
    make_dataset(tmp_path, name, {"x": "[1, 2]"})
    sys.path.insert(0, str(tmp_path))
    uninstall()
    plain = importlib.import_module(name)
    assert type(plain.__spec__.loader).__name__ == "SourceFileLoader"
    del sys.modules[name]
    with install():
        module = importlib.import_module(name)
        assert isinstance(module.__spec__.loader, DataSetLoader)
        assert importlib.import_module(f"{name}.x") == [1, 2]
        assert module.x is sys.modules[f"{name}.x"]
    assert not is_installed()
    # A DataSet module imported while the hook was active keeps loading lazily.
    atomic_write(tmp_path / name / "y.py", item_text("y", name, "'later'"))
    assert module.y == "later"


def test_failed_reload_leaves_the_module_usable(tmp_path: Path, import_state: list[str]) -> None:
    name = unique("broken")
    import_state.append(name)
    root = make_dataset(tmp_path, name, {"x": "[1]", "y": "[2]"})
    sys.path.insert(0, str(tmp_path))
    install()
    module = importlib.import_module(name)
    assert module.x == [1]
    good = (root / "__init__.py").read_text()
    atomic_write(root / "__init__.py", "_info_dict = {\n")  # a bad hand edit
    with pytest.raises(FormatError, match=r"__init__\.py"):
        importlib.reload(module)
    assert module.x == [1] and module.y == [2]
    assert sorted(module._info_dict) == ["x", "y"]
    atomic_write(
        root / "__init__.py",
        good.replace("# -- end of keys", "# -- key: z\n_info_dict['z'] = 'z'\n# -- end of keys"),
    )
    atomic_write(root / "z.py", item_text("z", name, "[3]"))
    importlib.reload(module)
    assert "x" not in vars(module)
    assert module.z == [3] and sys.modules[f"{name}.z"] == [3]


def test_warns_about_finders_that_shadow_datasets(import_state: list[str]) -> None:
    name = unique("shadowed")

    class ClaimsOne:
        def find_spec(self, fullname: str, path: object, target: object = None) -> object:
            if fullname == name:
                return importlib.util.spec_from_loader(fullname, loader=None)
            return None

    claimer = ClaimsOne()
    uninstall()
    sys.meta_path.insert(1, claimer)
    with pytest.warns(ShadowedHookWarning, match="ClaimsOne"):
        handle = install()
    assert handle.installed
    assert shadowing_finders() == [claimer]
    assert shadowing_finders(name) == [claimer]
    assert shadowing_finders("something_else") == []
    with pytest.warns(ShadowedHookWarning):
        assert not install().installed  # already installed: checked all the same
    sys.meta_path.remove(claimer)
    uninstall()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        install()  # nothing unknown in front now: no warning
    assert shadowing_finders() == []


def test_cached_directory_listings_never_hide_a_new_dataset(
    tmp_path: Path, import_state: list[str]
) -> None:
    name = unique("cached")
    directory, other = tmp_path / "entry", tmp_path / "other"
    directory.mkdir()
    other.mkdir()
    entries = [str(directory), str(other)]
    long_ago = 1_000_000_000 * 1_000_000_000 + 123  # 2001
    os.utime(directory, ns=(long_ago, long_ago))
    finder = DataSetFinder()
    sys.meta_path.insert(0, finder)
    assert finder.find_spec(name, entries) is None  # FileFinder has listed `directory`
    make_dataset(directory, name, {"x": "1"})
    os.utime(directory, ns=(long_ago, long_ago))  # same mtime: the cached listing holds
    # Plain Python misses the new directory until importlib.invalidate_caches() ...
    assert importlib.machinery.PathFinder.find_spec(name, entries) is None
    # ... the finder probes the marker when PathFinder finds nothing: never stale.
    spec = finder.find_spec(name, entries)
    assert spec is not None and isinstance(spec.loader, DataSetLoader)
    assert spec.origin == str(directory / name / "__init__.py")
    importlib.invalidate_caches()  # reaches every finder on sys.meta_path
    assert importlib.machinery.PathFinder.find_spec(name, entries) is not None
    spec = finder.find_spec(name, entries)  # now found through PathFinder
    assert spec is not None and isinstance(spec.loader, DataSetLoader)
    assert spec.submodule_search_locations == [str(directory / name)]
    # A removed DataSet is gone at once, whatever the listing says.
    shutil.rmtree(directory / name)
    os.utime(directory, ns=(long_ago, long_ago))
    assert finder.find_spec(name, entries) is None


def test_fresh_dataset_is_found_without_invalidate_caches(tmp_path: Path) -> None:
    finder = DataSetFinder()
    name = unique("fresh")
    entries = [str(tmp_path), str(tmp_path / "missing")]
    assert finder.find_spec(name, entries) is None  # tmp_path's listing is cached now
    make_dataset(tmp_path, name, {})  # within the same timestamp tick, most likely
    spec = finder.find_spec(name, entries)
    assert spec is not None and isinstance(spec.loader, DataSetLoader)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "__init__.py").write_text("")
    assert finder.find_spec(f"sub.{name}", [str(tmp_path / "sub")]) is None
    make_dataset(tmp_path / "sub", name, {})  # inside a package: the same
    assert finder.find_spec(f"sub.{name}", [str(tmp_path / "sub")]) is not None


def test_earlier_ordinary_module_wins_over_a_later_dataset(tmp_path: Path) -> None:
    name = unique("dup")
    first, second, archive = tmp_path / "first", tmp_path / "second", tmp_path / "mods.zip"
    first.mkdir()
    (first / f"{name}.py").write_text("")
    make_dataset(second, name, {})
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{name}.py", "")
    finder = DataSetFinder()
    assert finder.find_spec(name, [str(first), str(second)]) is None
    assert finder.find_spec(name, [str(archive), str(second)]) is None  # module in a zip
    spec = finder.find_spec(name, [str(second), str(first)])
    assert spec is not None and spec.origin == str(second / name / "__init__.py")
    assert spec.submodule_search_locations == [str(second / name)]
    # A namespace portion in front does not hide the DataSet (as with regular packages).
    (first / name).mkdir()
    (first / f"{name}.py").unlink()
    assert finder.find_spec(name, [str(first), str(second)]) is not None


def test_finder_ignores_non_datasets_and_odd_entries(tmp_path: Path) -> None:
    (tmp_path / "notads").mkdir()
    (tmp_path / "notads" / "__init__.py").write_text("")
    (tmp_path / "afile").write_text("")
    finder = DataSetFinder()
    entries = [str(tmp_path / "missing"), str(tmp_path / "afile"), b"bytes", str(tmp_path), "a\0b"]
    assert finder.find_spec("notads", entries) is None  # type: ignore[arg-type]
    assert finder.find_spec("json", None) is None
    assert finder.find_spec("notads.sub", [str(tmp_path / "notads")]) is None
    assert MARKER == "_this_dir_is_a_DataSet"
    reader = pytest.importorskip("persist_hooks._reader")
    assert reader.MARKER == MARKER

"""Import persist 3.2.1 DataSets and archives through persist_hooks' hook (fresh interpreter).

    python tests/persist_compat/check_import.py PARENT PICKLE

``PARENT`` is on ``sys.path`` (through ``PYTHONPATH``); the hook is active through the
installed ``.pth``.  Pickles what the imports gave to ``PICKLE``; the test compares.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import expected as E


def main(parent: Path, dest: Path) -> None:
    from persist_hooks import importer

    out: dict[str, object] = {"hook_active": importer.is_installed()}
    pkg = importlib.import_module(E.DATASET)
    out["loader"] = type(pkg.__spec__.loader).__name__
    out["info"] = dict(pkg._info_dict)
    names = list(E.dataset_objects())
    out["attrs"] = {name: getattr(pkg, name) for name in names}
    out["dir_has_items"] = set(names) <= set(dir(pkg))
    out["metaonly_attr"] = hasattr(pkg, "metaonly")
    # `import p321data.big` binds the object itself; so does `from p321data import mixed`
    for name in names:
        sys.modules.pop(f"{E.DATASET}.{name}", None)
        vars(pkg).pop(name, None)
    out["imported"] = {name: importlib.import_module(f"{E.DATASET}.{name}") for name in names}
    exec(f"from {E.DATASET} import mixed as _m\nout['from_import'] = _m", {"out": out})

    reloaded = importlib.reload(pkg)
    out["reload_same_module"] = reloaded is pkg
    out["reload_cleared"] = not any(k.startswith(E.DATASET + ".") for k in sys.modules)
    out["after_reload"] = {name: getattr(pkg, name) for name in names}
    out["pycache"] = sorted(p.name for p in (parent / E.DATASET).rglob("__pycache__"))

    # persist_hooks writes a new item; a reload shows it next to the persist 3.2.1 ones
    import persist_hooks as ph

    with ph.DataSet(E.DATASET, "a", path=parent) as ds:
        ds.added = {"new": 1}
    importlib.reload(pkg)
    out["added"] = pkg.added
    out["info_after_write"] = dict(pkg._info_dict)
    out["small_after_write"] = pkg.small

    npz = importlib.import_module(E.NPZ_DATASET)
    out["npz"] = {name: getattr(npz, name) for name in E.npz_items()}

    # plain persist Archives are ordinary modules: the hook leaves them alone
    arch = importlib.import_module(E.ARCHIVE_PACKAGE)
    mod = importlib.import_module(E.ARCHIVE_MODULE)
    out["archive_loaders"] = [type(m.__spec__.loader).__name__ for m in (arch, mod)]
    out["archive"] = {name: getattr(arch, name) for name in E.archive_objects()}
    out["module"] = {name: getattr(mod, name) for name in E.module_objects()}
    with open(dest, "wb") as f:
        pickle.dump(out, f)


if __name__ == "__main__":
    assert os.environ.get("PERSIST_HOOKS_NO_HOOK") != "1"
    main(Path(sys.argv[1]), Path(sys.argv[2]))

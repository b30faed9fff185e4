"""Write and read DataSets and archives with persist 3.2.1 (run in a subprocess).

    python tests/persist_compat/persist321.py write OUT          # the fixtures, into OUT
    python tests/persist_compat/persist321.py read PARENT NAME PICKLE
    python tests/persist_compat/persist321.py append PARENT NAME

``write`` regenerates the committed fixtures (``tests/persist_compat/fixtures``; delete
their directories first).  ``read`` opens DataSet ``PARENT/NAME`` with persist 3.2.1's
``DataSet(NAME, "r", path=PARENT)`` and pickles ``{"keys", "info", "items"}`` (every key
with an item file loaded through persist) to ``PICKLE``.  ``append`` writes item
``expected.LATER`` and its metadata with persist 3.2.1.

persist 3.2.1 calls ``ndarray.tostring()`` for arrays below ``array_threshold``;
numpy 2.3 removed that method.  With such a numpy, this script re-defines
``Archive._archive_ndarray`` from persist's own source with ``tobytes()`` (the same bytes),
so what it writes is what persist 3.2.1 writes with an older numpy.
"""

from __future__ import annotations

import inspect
import os
import pickle
import sys
import textwrap
from pathlib import Path

sys.dont_write_bytecode = True  # never leave __pycache__ in the fixtures
sys.path.insert(0, str(Path(__file__).resolve().parent))

import expected as E  # noqa: E402  (after the path set-up)
import numpy as np  # noqa: E402
import persist.archive as pa  # noqa: E402


def _numpy2_shim() -> None:
    if hasattr(np.ndarray, "tostring"):
        return
    source = textwrap.dedent(inspect.getsource(pa.Archive._archive_ndarray))
    assert source.count("obj.tostring()") == 1, "unexpected persist source"
    namespace: dict[str, object] = {}
    code = compile(source.replace("obj.tostring()", "obj.tobytes()"), pa.__file__, "exec")
    exec(code, vars(pa), namespace)
    pa.Archive._archive_ndarray = namespace["_archive_ndarray"]
    pa.Archive._dispatch[np.ndarray] = namespace["_archive_ndarray"]


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ds = pa.DataSet(E.DATASET, "w", path=str(out), array_threshold=E.ARRAY_THRESHOLD)
    for name, obj in E.dataset_items().items():
        setattr(ds, name, obj)
    for name, info in E.dataset_info().items():
        ds[name] = info
    for obj, info in E.inserted():
        ds._insert(obj, info=info)
    ds._close()

    ds = pa.DataSet(
        E.NPZ_DATASET, "w", path=str(out), array_threshold=E.ARRAY_THRESHOLD, data_format="npz"
    )
    for name, obj in E.npz_items().items():
        setattr(ds, name, obj)
    ds._close()

    arch = pa.Archive(array_threshold=E.ARRAY_THRESHOLD)
    arch.insert(**E.archive_objects())
    arch.save(str(out), name=E.ARCHIVE_PACKAGE, package=True)

    arch = pa.Archive(array_threshold=E.ARRAY_THRESHOLD)
    arch.insert(**E.archive_objects())
    (out / E.ARCHIVE_SOURCE).write_text(str(arch))
    np.savez(out / E.ARCHIVE_DATA, **arch.data)

    mod = pa.Archive()
    mod.insert(**E.module_objects())
    mod.save(str(out), name=E.ARCHIVE_MODULE, package=False)


def read(parent: Path, name: str, dest: Path) -> None:
    ds = pa.DataSet(name, "r", path=str(parent))
    keys = list(ds)
    root = parent / name
    items = {k: getattr(ds, k) for k in keys if (root / f"{k}.py").is_file()}
    result = {"keys": keys, "info": {k: ds[k] for k in keys}, "items": items}
    with open(dest, "wb") as f:
        pickle.dump(result, f)


def append(parent: Path, name: str) -> None:
    ds = pa.DataSet(name, "w", path=str(parent), array_threshold=E.ARRAY_THRESHOLD)
    obj, info = E.later_item()
    setattr(ds, E.LATER, obj)
    ds[E.LATER] = info
    ds._close()


def main(argv: list[str]) -> int:
    _numpy2_shim()
    command, *args = argv
    if command == "write":
        write(Path(args[0]))
    elif command == "read":
        read(Path(args[0]), args[1], Path(args[2]))
    elif command == "append":
        append(Path(args[0]), args[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PERSIST_HOOKS_NO_HOOK", "1")
    sys.exit(main(sys.argv[1:]))

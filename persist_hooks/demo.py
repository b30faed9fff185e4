"""The README's demo: archive a graph with sharing, a cycle and a big array; write a DataSet; import it.

Run it with ``python3 tasks.py demo`` (or ``python -m persist_hooks.demo [DIR]``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

import persist_hooks as ph


def _title(text: str) -> None:
    print(f"\n=== {text} ===")


def archive_demo() -> None:
    """Archive a nested object with shared references, a cycle and a large array."""
    shared = {"units": "m", "scale": 0.5}
    node: dict[str, Any] = {"name": "root", "children": []}
    node["children"].append({"name": "leaf", "parent": node})  # a cycle
    big = np.linspace(0.0, 1.0, 2_000)
    data = {"a": [shared, shared, (1, 2.5, "three")], "tree": node, "big": big, "nan": float("nan")}

    archive = ph.Archive(scoped=False, array_threshold=100)
    archive.insert(data=data, shared=shared)
    _title("Archive source (flat format; arrays above 100 elements go to archive.data)")
    print(str(archive), end="")
    print(f"archive.data: {{{', '.join(f'{k!r}: array{v.shape}' for k, v in archive.data.items())}}}")

    restored = ph.restore(str(archive), arrays=archive.data)
    got = restored["data"]
    _title("Restored")
    print("shared object stays shared:      ", got["a"][0] is got["a"][1] is restored["shared"])
    print("cycle restored (leaf.parent is root):", got["tree"]["children"][0]["parent"] is got["tree"])
    print("large array equal:               ", bool(np.array_equal(got["big"], big)))
    print("tuple, nan and strings equal:    ", got["a"][2] == (1, 2.5, "three"), got["nan"] != got["nan"])


def dataset_demo(where: Path) -> None:
    """Write a DataSet and import its items back in a fresh interpreter."""
    _title(f"DataSet 'mydata' in {where}")
    with ph.DataSet("mydata", "w", path=where, array_threshold=1000) as ds:
        ds.x = [np.arange(5_000.0), np.ones((3, 3))]
        ds["x"] = "a list of two arrays"
        ds.params = {"alpha": 0.1, "steps": 10}
        ds["note"] = "metadata only"
        print(repr(ds))
    for path in sorted((where / "mydata").rglob("*")):
        if path.is_file():
            print("  ", path.relative_to(where), f"({path.stat().st_size} bytes)")
    print("\nmydata/x.py:")
    print(textwrap.indent((where / "mydata" / "x.py").read_text(), "    "), end="")

    _title("import mydata.x in a fresh interpreter (the import hook loads items lazily)")
    code = textwrap.dedent(
        """
        import sys
        import mydata
        print("keys and metadata:", mydata._info_dict)
        print("loaded before access:", [k for k in sys.modules if k.startswith("mydata.")])
        import mydata.x
        print("type(mydata.x):", type(mydata.x).__name__, [type(a).__name__ for a in mydata.x])
        from mydata import params
        print("params:", params)
        """
    )
    subprocess.run([sys.executable, "-c", code], cwd=where, check=True)


def main(argv: list[str] | None = None) -> int:
    """Run the demo in a temporary directory (or in ``argv[0]``).

    Example:
        >>> main([])  # doctest: +SKIP
        0
    """
    args = sys.argv[1:] if argv is None else argv
    archive_demo()
    if args:
        dataset_demo(Path(args[0]).resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            dataset_demo(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())

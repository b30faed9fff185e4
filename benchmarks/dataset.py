"""DataSet speed (issue #3): bulk arrays, many small writes, opening, first access; vs persist 3.2.1.

    python benchmarks/dataset.py            # the issue's sizes (~2.5 GB of scratch disk)
    python benchmarks/dataset.py --quick    # smoke run: small sizes, one repeat

Sections, each printed as a table with ratios:

1. bulk: ``--items`` (100) items of ``--n`` (1e6) float64 written through a DataSet
   (``ds.x_i = arr``) and read back whole (``np.array(ds.x_i)``) vs ``np.save`` /
   ``np.load`` of the same arrays (target <= 1.10x); persist 3.2.1 on the same work.
2. small writes: ``--small`` (1,000) small items, each with metadata, added one by
   one (``ds.name = obj; ds[name] = info``: two writes; and ``ds._insert(obj,
   info=info)``: one write): total (target < 2 s) and the time
   of the first and last 100 (equal when each write is O(1) in the item count);
   persist 3.2.1 on ``--persist-small`` items (it rewrites all metadata per write).
3. open: DataSets of ``--open-sizes`` (10, 1,000, 10,000) items with metadata:
   ``import mydata`` in a fresh interpreter (the import hook, active through the
   installed ``.pth``), and ``DataSet(..., "r")`` + ``list(ds)`` in a fresh
   interpreter (cold: compiles ``__init__.py``) and again in it (warm); target
   <= 10 ms at 1,000.  persist 3.2.1's ``import`` and ``DataSet`` on the sizes up
   to ``--persist-max-items`` (100: persist 3.2.1 writes cost O(items), 1,000 takes ~30 min).
4. first access: open the DataSet and read one element of a ``--big`` (1e8)
   element float64 item in a fresh interpreter (memory map; target < 5 ms) vs
   ``np.load(mmap_mode="r")`` of the same file.

Times are best-of ``--repeat`` (bulk; DataSet and numpy runs in turns) or medians
over ``--runs`` fresh interpreters (open, first access); warm page cache; no fsync
in either side.  Bulk runs each write into a new directory (nothing is deleted until the section
ends), start once creating a file is fast again (ext4 without a journal slows file
creation after many deletions) and right after touching as much memory as they
write (freed memory returned to a VM's host costs a page fault to reuse); see
``_timing.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
from _timing import best, best_pair, quiet_file_system

from persist_hooks.dataset import DataSet


def persist_archive() -> Any | None:
    """persist 3.2.1's ``archive`` module, or ``None`` if it is not installed."""
    try:
        from persist import archive  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    return archive


def fresh(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def ratio(ours: float, ref: float | None) -> str:
    return f"{ours / ref:7.2f}x" if ref else "    n/a"


def ms(t: float | None) -> str:
    return f"{t * 1e3:10.2f}" if t is not None else "       n/a"


# ------------------------------------------------------------------ 1. bulk arrays


def bench_bulk(work: Path, items: int, n: int, repeat: int) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(n) for _ in range(items)]
    names = [f"x_{i}" for i in range(items)]
    # Every run writes into a new directory and nothing is deleted until the section
    # ends: deleting the previous run's files would slow this run's file creations
    # (see _timing.quiet_file_system), and more so for the side that creates more.
    runs = itertools.count()
    npy_dir = ds_dir = work

    def np_setup() -> None:
        nonlocal npy_dir
        npy_dir = work / f"npy{next(runs)}"
        npy_dir.mkdir()

    def np_write() -> None:
        for name, arr in zip(names, arrays, strict=True):
            np.save(npy_dir / f"{name}.npy", arr)

    def np_read() -> None:
        for name in names:
            np.load(npy_dir / f"{name}.npy")

    def ph_setup() -> None:
        nonlocal ds_dir
        ds_dir = work / f"ph{next(runs)}"
        DataSet("data", "w", path=ds_dir).warm = arrays[0][:1000]  # create, load the backend

    def ph_write() -> None:
        ds = DataSet("data", "w", path=ds_dir)
        for name, arr in zip(names, arrays, strict=True):
            setattr(ds, name, arr)

    def ph_read() -> None:
        ds = DataSet("data", "r", path=ds_dir)
        for name in names:
            np.array(getattr(ds, name))

    state = quiet_file_system(work)
    prime = items * n * 8 + (64 << 20)  # what a run writes or reads, and some room
    t_ph_w, t_np_w = best_pair(
        ph_write, np_write, repeat, setup_a=ph_setup, setup_b=np_setup, prime=prime
    )
    t_ph_r, t_np_r = best_pair(ph_read, np_read, repeat, prime=prime)  # the last written
    assert np.array_equal(DataSet("data", path=ds_dir).x_1, arrays[1])
    t_p_w = t_p_r = None
    archive = persist_archive()
    if archive is not None:
        p_dir = work

        def p_setup() -> None:
            nonlocal p_dir
            p_dir = work / f"persist{next(runs)}"
            p_dir.mkdir()

        def p_write() -> None:
            ds = archive.DataSet("pdata", "w", path=str(p_dir), array_threshold=100)
            for name, arr in zip(names, arrays, strict=True):
                setattr(ds, name, arr)

        def p_read() -> None:
            ds = archive.DataSet("pdata", "r", path=str(p_dir))
            for name in names:
                np.array(getattr(ds, name))

        t_p_w = best(p_write, repeat, setup=p_setup, prime=prime)
        t_p_r = best(p_read, repeat, prime=prime)
    for entry in work.iterdir():
        if entry.name.startswith(("npy", "ph", "persist")):
            fresh(entry)
    print(f"\n1. {items} items of {n:.0e} float64 ({items * n * 8 / 1e9:.2f} GB), best of {repeat}")
    print(f"   at the start: {state}")
    print("   target: DataSet <= 1.10x np.save/np.load")
    print(f"{'':>6} {'np ms':>10} {'DataSet ms':>10} {'ratio':>8} {'persist ms':>10} {'ratio':>8}")
    print(
        f"{'write':>6} {ms(t_np_w)} {ms(t_ph_w)} {ratio(t_ph_w, t_np_w)} {ms(t_p_w)}"
        f" {ratio(t_p_w, t_np_w) if t_p_w else '    n/a'}"
    )
    print(
        f"{'read':>6} {ms(t_np_r)} {ms(t_ph_r)} {ratio(t_ph_r, t_np_r)} {ms(t_p_r)}"
        f" {ratio(t_p_r, t_np_r) if t_p_r else '    n/a'}"
    )


# ------------------------------------------------------------------ 2. many small writes


def small_value(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"i": i, "values": [i, i * 0.5, f"s{i}"]}, {"index": i, "label": f"item {i}"}


def add_small(ds: Any, count: int, *, insert: bool = False) -> list[float]:
    """Add ``count`` small items with metadata one by one; return each item's time.

    ``ds.name = obj; ds[name] = info`` (two writes), or with ``insert`` one
    ``ds._insert(obj, info=info)`` (one write of the item and its metadata).
    """
    times = []
    for i in range(count):
        obj, info = small_value(i)
        t = time.perf_counter()
        if insert:
            ds._insert(obj, info=info)
        else:
            setattr(ds, f"item_{i}", obj)
            ds[f"item_{i}"] = info
        times.append(time.perf_counter() - t)
    return times


def bench_small(work: Path, count: int, persist_count: int) -> None:
    root = work / "small"
    fresh(root)
    DataSet("warm", "w", path=root).x = 1  # imports outside the timings
    times = add_small(DataSet("data", "w", path=root), count)
    ds = DataSet("data", path=root)
    assert len(ds) == count and ds[f"item_{count - 1}"]["index"] == count - 1
    inserted = add_small(DataSet("data2", "w", path=root), count, insert=True)
    assert len(DataSet("data2", path=root)) == count
    k = min(100, count // 2)
    print(f"\n2. {count} small items with metadata added one by one (target < 2 s in total)")
    print(f"{'':>14} {'total s':>8} {f'first {k} s':>11} {f'last {k} s':>11} {'last/first':>10}")
    for label, ts in (("ds.x=; ds[x]=", times), ("ds._insert", inserted)):
        first, last = sum(ts[:k]), sum(ts[-k:])
        print(f"{label:>14} {sum(ts):8.3f} {first:11.3f} {last:11.3f} {last / first:9.2f}x")
    fresh(root)
    archive = persist_archive()
    if archive is not None and persist_count:
        p_root = work / "psmall"
        fresh(p_root)
        p_root.mkdir()
        ptimes = add_small(archive.DataSet("pdata", "w", path=str(p_root)), persist_count)
        pk = min(k, persist_count // 2)
        pf, pl = sum(ptimes[:pk]), sum(ptimes[-pk:])
        print(
            f"{'persist 3.2.1':>14} {sum(ptimes):8.3f} {pf:11.3f} {pl:11.3f} {pl / pf:9.2f}x"
            f"   ({persist_count} items; first/last {pk})"
        )
        fresh(p_root)


# ------------------------------------------------------------------ 3. opening


OPEN_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    path, name, what = sys.argv[1], sys.argv[2], sys.argv[3]
    out = {}
    if what in ("import", "import-warm"):
        sys.path.insert(0, path)
        if what == "import-warm":
            __import__("warmup")  # the hook's own modules are loaded by a first DataSet
        t = time.perf_counter()
        __import__(name)
        out["import"] = time.perf_counter() - t
        out["hook"] = type(sys.modules[name].__loader__).__module__
    elif what == "dataset":
        from persist_hooks.dataset import DataSet
        for run in ("cold", "warm"):
            t = time.perf_counter()
            keys = list(DataSet(name, "r", path=path))
            out[run] = time.perf_counter() - t
        out["keys"] = len(keys)
    elif what == "persist":
        from persist import archive
        for run in ("cold", "warm"):
            t = time.perf_counter()
            ds = archive.DataSet(name, "r", path=path)
            keys = list(ds)
            out[run] = time.perf_counter() - t
        out["keys"] = len(keys)
    print(json.dumps(out))
    """
)


def run_open(path: Path, name: str, what: str, runs: int) -> dict[str, float]:
    """Medians over ``runs`` fresh interpreters of the timings OPEN_SCRIPT prints."""
    results: list[dict[str, Any]] = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", OPEN_SCRIPT, str(path), name, what],
            capture_output=True,
            text=True,
            check=True,
            cwd=path,
        )
        results.append(json.loads(proc.stdout))
    keys = [k for k, v in results[0].items() if isinstance(v, float)]
    out: dict[str, Any] = {k: statistics.median(r[k] for r in results) for k in keys}
    out.update({k: v for k, v in results[0].items() if not isinstance(v, float)})
    return out


def build_open(root: Path, count: int) -> None:
    fresh(root)
    DataSet("warmup", "w", path=root).x = 1
    ds = DataSet("mydata", "w", path=root)
    with ds.locked():
        for i in range(count):
            obj, info = small_value(i)
            setattr(ds, f"item_{i}", obj)
            ds[f"item_{i}"] = info


def bench_open(work: Path, sizes: list[int], runs: int, persist_max: int) -> None:
    archive = persist_archive()
    print(
        f"\n3. opening a DataSet of N small items with metadata (median of {runs} fresh interpreters)"
    )
    print("   target: <= 10 ms at 1,000 items; cold = first DataSet in the process, warm = second")
    print("   import: in a fresh interpreter / after importing another (1-item) DataSet first")
    print(
        f"{'N':>7} {'import ms':>10} {'2nd import':>10} {'DS cold ms':>10} {'DS warm ms':>10} "
        f"{'persist import':>14} {'persist DS':>10} {'ratio DS':>8}"
    )
    for count in sizes:
        root = work / f"open_{count}"
        build_open(root, count)
        imp = run_open(root, "mydata", "import", runs)
        imp_warm = run_open(root, "mydata", "import-warm", runs)
        if str(imp.get("hook", "")).split(".")[0] != "persist_hooks":
            print(
                f"   (warning: 'import mydata' did not use the persist_hooks hook: {imp['hook']})"
            )
        opened = run_open(root, "mydata", "dataset", runs)
        assert opened["keys"] == count
        p_imp = p_ds = None
        if archive is not None and count <= persist_max:
            p_root = work / f"popen_{count}"
            fresh(p_root)
            p_root.mkdir()
            pds = archive.DataSet("pdata", "w", path=str(p_root))
            for i in range(count):
                obj, info = small_value(i)
                setattr(pds, f"item_{i}", obj)
                pds[f"item_{i}"] = info
            env_free = run_open(p_root, "pdata", "import", runs)
            p_imp = env_free["import"]
            p_ds = run_open(p_root, "pdata", "persist", runs)["cold"]
            fresh(p_root)
        print(
            f"{count:>7} {ms(imp['import'])} {ms(imp_warm['import'])} {ms(opened['cold'])} "
            f"{ms(opened['warm'])} "
            f"{ms(p_imp):>14} {ms(p_ds)} {ratio(p_ds, opened['cold']) if p_ds else '    n/a'}"
        )
        fresh(root)
    if archive is not None:
        print(f"   (persist 3.2.1 measured up to {persist_max} items: --persist-max-items)")


# ------------------------------------------------------------------ 4. first access


FIRST_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    path, n, file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    import numpy as np
    from persist_hooks.dataset import DataSet
    t = time.perf_counter()
    x = DataSet("data", "r", path=path).big
    v = float(x[n // 2])
    t_ds = time.perf_counter() - t  # cold: builds the plugin host too
    del x
    t = time.perf_counter()
    x = DataSet("data", "r", path=path).big
    v = float(x[n // 2 + 1]) - 1
    t_warm = time.perf_counter() - t
    t = time.perf_counter()
    y = np.load(file, mmap_mode="r")
    w = float(y[n // 2])
    t_np = time.perf_counter() - t
    assert v == w == n // 2, (v, w)
    print(json.dumps({"ds": t_ds, "warm": t_warm, "np": t_np, "type": type(x).__name__}))
    """
)


def bench_first_access(work: Path, n: int, runs: int) -> None:
    root = work / "big"
    fresh(root)
    arr = np.arange(n, dtype=np.float64)
    DataSet("data", "w", path=root).big = arr
    del arr
    entry = next(iter(json_header(root / "data" / "big.py")["arrays"].values()))
    file = root / "data" / entry["path"]
    results = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", FIRST_SCRIPT, str(root), str(n), str(file)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(proc.stdout))
    t_ds = statistics.median(r["ds"] for r in results)
    t_warm = statistics.median(r["warm"] for r in results)
    t_np = statistics.median(r["np"] for r in results)
    print(f"\n4. first access to a {n:.0e}-element float64 item ({n * 8 / 1e9:.2f} GB) in a fresh")
    print(f"   interpreter (numpy imported), median of {runs}; target < 5 ms for DataSet open +")
    print("   item + one element.  cold: the first DataSet use in the process (builds the")
    print("   plugin host: representers, entry points); warm: a second DataSet object.")
    print(f"{'cold ms':>10} {'warm ms':>10} {'np.load(mmap) ms':>16} {'warm ratio':>10}  returned")
    print(f"{ms(t_ds)} {ms(t_warm)} {ms(t_np):>16} {ratio(t_warm, t_np):>10}  {results[0]['type']}")
    fresh(root)


def json_header(path: Path) -> dict[str, Any]:
    from persist_hooks._format import parse_item

    item = parse_item(path.read_text(), str(path))
    assert item is not None
    return item.header


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, 1 repeat")
    parser.add_argument("--items", type=int, default=None, help="bulk items (100)")
    parser.add_argument("--n", type=float, default=None, help="elements per bulk item (1e6)")
    parser.add_argument("--repeat", type=int, default=None, help="bulk runs, best kept (2)")
    parser.add_argument("--small", type=int, default=None, help="small items added (1000)")
    parser.add_argument(
        "--persist-small", type=int, default=None, help="small items for persist 3.2.1 (100)"
    )
    parser.add_argument(
        "--open-sizes", type=int, nargs="+", default=None, help="items (10 1000 10000)"
    )
    parser.add_argument(
        "--persist-max-items",
        type=int,
        default=None,
        help="largest DataSet built with persist 3.2.1 for the open test (100; 1000 takes ~30 min: its writes are O(items))",
    )
    parser.add_argument("--runs", type=int, default=None, help="fresh interpreters per timing (5)")
    parser.add_argument("--big", type=float, default=None, help="first-access item size (1e8)")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument(
        "--only", nargs="+", choices=["bulk", "small", "open", "first"], default=None
    )
    args = parser.parse_args(argv)
    q = args.quick
    items = args.items or (10 if q else 100)
    n = int(args.n or (1e5 if q else 1e6))
    repeat = args.repeat or (1 if q else 2)
    small = args.small or (200 if q else 1000)
    persist_small = args.persist_small if args.persist_small is not None else (20 if q else 100)
    open_sizes = args.open_sizes or ([10, 100, 1000] if q else [10, 1000, 10000])
    persist_max = args.persist_max_items if args.persist_max_items is not None else 100
    runs = args.runs or (2 if q else 5)
    big = int(args.big or (1e6 if q else 1e8))
    only = set(args.only or ["bulk", "small", "open", "first"])
    for var in ("PERSIST_HOOKS_DURABLE", "PERSIST_HOOKS_BACKEND", "PERSIST_HOOKS_NO_HOOK"):
        os.environ.pop(var, None)
    work = Path(tempfile.mkdtemp(prefix="ph-bench-dataset-", dir=args.dir))
    archive = persist_archive()
    print(
        f"persist 3.2.1: {'installed' if archive is not None else 'not installed (skipped)'}; "
        f"scratch {work}"
    )
    try:
        if "bulk" in only:
            bench_bulk(work, items, n, repeat)
        if "small" in only:
            bench_small(work, small, persist_small)
        if "open" in only:
            bench_open(work, open_sizes, runs, persist_max)
        if "first" in only:
            bench_first_access(work, big, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

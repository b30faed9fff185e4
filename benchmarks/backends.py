"""Storage backends: DataSet write/read per backend vs the library directly, slices, appends.

    python benchmarks/backends.py                 # 1e6 and 1e7 float64
    python benchmarks/backends.py --sizes 1e6 1e7 1e8   # 1e8 needs ~2.4 GB of disk and RAM
    python benchmarks/backends.py --quick         # smoke run: 1e5 and 1e6, one repeat

For each size N and each installed backend (``npy``, ``hdf5``, ``zarr``), in one run:

* write: ``ds.x = arr`` through a DataSet vs the library writing the same array
  (``np.save``; ``h5py`` ``create_dataset``; ``zarr.create_array``), like with like
  in two situations: *new* (the item does not exist / the file was removed before
  the run, untimed) and *replace* (the item exists and the write supersedes it /
  the library overwrites its existing file: ``np.save`` and ``h5py.File(..., "w")``
  truncate it, zarr ``overwrite=True`` removes its chunks, all inside the timing,
  as a DataSet's write removes the superseded generation; a superseded zarr group
  is kept for its grace period, so the DataSet does not pay for that removal
  then).  The DataSet also computes each array's checksum (in a thread, overlapping
  the write).  The library is timed with the layout the backend uses (same chunks
  and codecs; for zarr a group holding the array, as the backend writes an item:
  the ratio measures persist_hooks' overhead, target <= 1.10x) and, new files only,
  with the library's defaults (h5py contiguous, a bare zarr array with automatic
  chunks: the cost of the layout choice).
* read: ``np.array(ds.x)`` (the whole array in memory, from a freshly read item)
  vs ``np.load`` / ``f[key][()]`` / ``zarr.open_array(...)[...]``.
* slice (largest N only): 1,000 elements from the middle, opening the item and
  reading them (``ds.x[m:m+1000]``) vs the library opening the file and slicing
  (``np.load(mmap_mode="r")``, ``h5py``, ``zarr``); target within 1.5x.  h5py
  opens the file as the backend does (chunk cache off: uncompressed chunks are
  read partially); with h5py's default 1 MiB cache it reads the whole chunk.
* append: 100 appends of 1,000 rows through a writable proxy (DataSet mode
  ``"a"``), onto an array of N_max elements and onto one of 1,000: the time
  per append at the start and the end, and for both starting sizes, shows the
  cost is O(rows appended), not O(array size).

Times are the best of ``--repeat`` runs, warm page cache, no fsync (``durable``
off in both); a DataSet and its same-layout library take turns run by run.  Each write/read measurement starts once creating a file in the
scratch directory is fast again (ext4 without a journal slows file creation after
many deletions), and each run right after touching as much memory as it writes
(freed memory returned to a VM's host costs a page fault to reuse); both are
printed and explained in ``_timing.py``.  Nothing here asserts: numbers are
printed for people.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _timing import best, best_pair, quiet_file_system

import persist_hooks as ph
from persist_hooks.dataset import DataSet

SLICE = 1000
APPENDS = 100
ROWS = 1000


def fresh(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# ------------------------------------------------------------------ the libraries directly


class Library:
    """Write/read/slice one array with the library itself, in a given layout."""

    label = "?"

    def __init__(self, work: Path, chunked: bool) -> None:
        self.work = work
        self.chunked = chunked

    def write(self, arr: np.ndarray[Any, Any]) -> None:
        raise NotImplementedError

    def read(self) -> np.ndarray[Any, Any]:
        raise NotImplementedError

    def slice(self, start: int, stop: int) -> np.ndarray[Any, Any]:
        raise NotImplementedError

    def slice_default(self, start: int, stop: int) -> np.ndarray[Any, Any] | None:
        """The slice read with the library's default open settings, if they differ."""
        return None

    def clear(self) -> None:
        fresh(self.path)

    @property
    def path(self) -> Path:
        raise NotImplementedError


class NumpyLib(Library):
    label = "np.save/np.load"

    @property
    def path(self) -> Path:
        return self.work / "direct.npy"

    def write(self, arr: np.ndarray[Any, Any]) -> None:
        np.save(self.path, arr)

    def read(self) -> np.ndarray[Any, Any]:
        return np.asarray(np.load(self.path))

    def slice(self, start: int, stop: int) -> np.ndarray[Any, Any]:
        return np.array(np.load(self.path, mmap_mode="r")[start:stop])


class H5pyLib(Library):
    @property
    def label(self) -> str:  # type: ignore[override]
        return "h5py (backend layout)" if self.chunked else "h5py (contiguous)"

    @property
    def path(self) -> Path:
        return self.work / "direct.h5"

    def write(self, arr: np.ndarray[Any, Any]) -> None:
        import h5py  # type: ignore[import-untyped]

        kw: dict[str, Any] = {}
        if self.chunked:
            from persist_hooks_hdf5._backend import _layout

            chunks, maxshape = _layout(arr.shape, arr.dtype.itemsize, arr.ndim)
            kw = {"chunks": chunks, "maxshape": maxshape}
        with h5py.File(self.path, "w", rdcc_nbytes=0 if self.chunked else 1 << 20) as f:
            ds = f.create_dataset("a", shape=arr.shape, dtype=arr.dtype, **kw)
            ds[...] = arr

    def read(self) -> np.ndarray[Any, Any]:
        import h5py

        with h5py.File(self.path, "r", rdcc_nbytes=0 if self.chunked else 1 << 20) as f:
            return np.asarray(f["a"][()])

    def slice(self, start: int, stop: int) -> np.ndarray[Any, Any]:
        import h5py

        with h5py.File(self.path, "r", rdcc_nbytes=0 if self.chunked else 1 << 20) as f:
            return np.asarray(f["a"][start:stop])

    def slice_default(self, start: int, stop: int) -> np.ndarray[Any, Any] | None:
        import h5py

        with h5py.File(self.path, "r") as f:  # 1 MiB chunk cache: reads the whole chunk
            return np.asarray(f["a"][start:stop])


class ZarrLib(Library):
    @property
    def label(self) -> str:  # type: ignore[override]
        return "zarr (backend layout)" if self.chunked else "zarr (auto chunks)"

    @property
    def path(self) -> Path:
        return self.work / "direct.zarr"

    def write(self, arr: np.ndarray[Any, Any]) -> None:
        """Backend layout: a group holding the array (as the backend writes an item, so
        any zarr client finds its arrays by name), its chunks; default: a bare array."""
        import zarr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.chunked:
                from persist_hooks_zarr._backend import _chunks

                group = zarr.open_group(store=str(self.path), mode="w", zarr_format=3)
                z = group.create_array(
                    "a",
                    shape=arr.shape,
                    dtype=arr.dtype,
                    chunks=_chunks(arr.shape, arr.dtype.itemsize, arr.ndim),
                )
            else:
                z = zarr.create_array(
                    store=str(self.path),
                    shape=arr.shape,
                    dtype=arr.dtype,
                    chunks="auto",
                    overwrite=True,
                )
            z[...] = arr

    def _array(self) -> Any:
        import zarr

        if self.chunked:
            return zarr.open_array(str(self.path), path="a", mode="r")
        return zarr.open_array(str(self.path), mode="r")

    def read(self) -> np.ndarray[Any, Any]:
        return np.asarray(self._array()[...])

    def slice(self, start: int, stop: int) -> np.ndarray[Any, Any]:
        return np.asarray(self._array()[start:stop])


LIBRARIES: dict[str, list[type[Library]]] = {
    "npy": [NumpyLib],
    "hdf5": [H5pyLib, H5pyLib],
    "zarr": [ZarrLib, ZarrLib],
}


def libraries(backend: str, work: Path) -> list[Library]:
    """The reference implementations for ``backend``: [same layout, library defaults]."""
    classes = LIBRARIES.get(backend, [])
    return [cls(work, chunked=(i == 0)) for i, cls in enumerate(classes)]


# ------------------------------------------------------------------ measurements


def ratio(ours: float, ref: float) -> str:
    return f"{ours / ref:6.2f}x" if ref > 0 else "   n/a"


def bench_size(
    n: int, backends: list[str], work: Path, repeat: int, rows: list[list[str]], states: list[str]
) -> None:
    arr = np.random.default_rng(0).standard_normal(n)
    for backend in backends:
        root = work / f"ds_{backend}"
        fresh(root)
        ds = DataSet("data", "w", path=root, backend=backend, durable=False)
        ds.x = arr[:1000]  # create the DataSet, import the backend's library: outside the timings
        states.append(f"{n:.0e} {backend}: {quiet_file_system(work)}")
        prime = arr.nbytes + (16 << 20)

        def write(ds: DataSet = ds) -> None:
            ds.x = arr

        def remove_item(ds: DataSet = ds) -> None:
            if "x" in ds:
                del ds.x

        reader = DataSet("data", "r", path=root)

        def read(reader: DataSet = reader) -> np.ndarray[Any, Any]:
            return np.array(reader.x)

        results: list[tuple[str, float, float, float]] = []
        for i, lib in enumerate(libraries(backend, work)):
            lib.write(arr[:1000])  # import the library outside the timings
            lib_write = functools.partial(lib.write, arr)
            if i == 0:  # the same layout: timed in turns with the DataSet
                t_write, t_lw = best_pair(  # a new item / file
                    write, lib_write, repeat, setup_a=remove_item, setup_b=lib.clear, prime=prime
                )
                write()
                lib_write()
                # each run supersedes the item the previous wrote / overwrites the file
                t_replace, t_lrep = best_pair(write, lib_write, repeat, prime=prime)
                assert np.array_equal(read(), arr) and np.array_equal(lib.read(), arr)
                t_read, t_lr = best_pair(read, lib.read, repeat, prime=prime)
            else:
                t_lw = best(lib_write, repeat, setup=lib.clear, prime=prime)
                t_lr = best(lib.read, repeat, prime=prime)
                t_lrep = best(lib_write, repeat, prime=prime)
            results.append((lib.label, t_lw, t_lr, t_lrep))
            lib.clear()
        if not results:  # a third-party backend has no reference
            t_write = best(write, repeat, setup=remove_item, prime=prime)
            t_replace = best(write, repeat, prime=prime)
            assert np.array_equal(read(), arr)
            t_read = best(read, repeat, prime=prime)
        # a third-party backend has no reference: ratios n/a
        _, t_lw0, t_lr0, t_lrep0 = results[0] if results else ("", 0.0, 0.0, 0.0)
        defaults = "; ".join(
            f"{label}: w {t_lw * 1e3:.1f} ms {ratio(t_write, t_lw).strip()}, "
            f"r {t_lr * 1e3:.1f} ms {ratio(t_read, t_lr).strip()}"
            for label, t_lw, t_lr, _ in results[1:]
        )
        rows.append(
            [
                f"{n:.0e}",
                backend,
                f"{t_write * 1e3:9.1f}",
                f"{t_lw0 * 1e3:9.1f}",
                ratio(t_write, t_lw0),
                f"{t_replace * 1e3:9.1f}",
                f"{t_lrep0 * 1e3:9.1f}",
                ratio(t_replace, t_lrep0),
                f"{t_read * 1e3:9.1f}",
                f"{t_lr0 * 1e3:9.1f}",
                ratio(t_read, t_lr0),
                defaults,
            ]
        )
        fresh(root)


def bench_slice(n: int, backends: list[str], work: Path, repeat: int) -> None:
    arr = np.random.default_rng(1).standard_normal(n)
    mid = n // 2
    print(f"\n1,000-element slice from the middle of a {n:.0e}-element float64 array")
    print(f"(open the item/file and read the slice; best of {max(repeat, 20)}; target <= 1.5x)")
    print(f"{'backend':>8} {'DataSet ms':>11} {'library ms':>11} {'ratio':>7}  library")
    for backend in backends:
        root = work / f"slice_{backend}"
        fresh(root)
        DataSet("data", "w", path=root, backend=backend).x = arr
        ds = DataSet("data", "r", path=root)

        def ours(ds: DataSet = ds) -> np.ndarray[Any, Any]:
            return np.array(ds.x[mid : mid + SLICE])

        assert np.array_equal(ours(), arr[mid : mid + SLICE])
        t_ours = best(ours, max(repeat, 20))
        refs = libraries(backend, work)
        if refs:
            lib = refs[0]
            lib.write(arr)
            lib.slice(0, 1)  # import the library outside the timings
            assert np.array_equal(lib.slice(mid, mid + SLICE), arr[mid : mid + SLICE])
            t_lib = best(functools.partial(lib.slice, mid, mid + SLICE), max(repeat, 20))
            t_default = 0.0
            if lib.slice_default(mid, mid + 1) is not None:
                t_default = best(
                    functools.partial(lib.slice_default, mid, mid + SLICE), max(repeat, 20)
                )
            lib.clear()
            label = lib.label
        else:
            t_lib, t_default, label = 0.0, 0.0, "-"
        print(
            f"{backend:>8} {t_ours * 1e3:11.3f} {t_lib * 1e3:11.3f} {ratio(t_ours, t_lib)}  {label}"
        )
        if t_default:
            print(
                f"{'':>8} {'':>11} {t_default * 1e3:11.3f} {ratio(t_ours, t_default)}  "
                "same file, the library's default open (1 MiB chunk cache)"
            )
        fresh(root)


def bench_append(big: int, backends: list[str], work: Path) -> None:
    print(f"\n{APPENDS} appends of {ROWS} rows through a writable proxy (DataSet mode 'a')")
    print("per-append time, median of the first 10 / last 10 appends, ms")
    print(f"{'backend':>8} {'start size':>11} {'first 10':>9} {'last 10':>9} {'total s':>8}")
    rows = np.random.default_rng(2).standard_normal(ROWS)
    for backend in backends:
        for start in (big, 1000):
            root = work / f"append_{backend}"
            fresh(root)
            DataSet("data", "w", path=root, backend=backend).x = np.zeros(start)
            ds = DataSet("data", "a", path=root)
            proxy = ds.x
            if not hasattr(proxy, "append"):
                print(f"{backend:>8} {start:11.0e}   (no append: {type(proxy).__name__})")
                continue
            times = []
            t0 = time.perf_counter()
            for _ in range(APPENDS):
                t = time.perf_counter()
                proxy.append(rows)
                times.append(time.perf_counter() - t)
            total = time.perf_counter() - t0
            assert len(ds.x) == start + APPENDS * ROWS
            first = statistics.median(times[:10]) * 1e3
            last = statistics.median(times[-10:]) * 1e3
            print(f"{backend:>8} {start:11.0e} {first:9.3f} {last:9.3f} {total:8.3f}")
            fresh(root)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=float,
        nargs="+",
        default=None,
        help="array sizes in elements (default 1e6 1e7; 1e8 needs ~2.4 GB of disk and RAM)",
    )
    parser.add_argument("--repeat", type=int, default=None, help="runs per timing (best kept)")
    parser.add_argument("--backends", nargs="+", default=None, help="default: all installed")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, 1 repeat")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ([1e5, 1e6] if args.quick else [1e6, 1e7]))]
    repeat = args.repeat or (1 if args.quick else 3)
    backends = args.backends or ph.backends()
    os.environ.pop("PERSIST_HOOKS_DURABLE", None)
    work = Path(tempfile.mkdtemp(prefix="ph-bench-backends-", dir=args.dir))
    try:
        print(f"backends: {', '.join(backends)}; sizes: {sizes}; best of {repeat}; {work}")
        rows: list[list[str]] = []
        states: list[str] = []
        for n in sizes:
            bench_size(n, backends, work, repeat, rows, states)
        print("\nat the start of each write/read measurement (see _timing.quiet_file_system):")
        for state in states:
            print(f"  {state}")
        print("\nwrite and read of N float64 through DataSet vs the library (same layout);")
        print("new: into a new item / file; replace: superseding the item / overwriting the file;")
        print("target <= 1.10x; last column: vs the library's default layout (w new / r ratios)")
        print(
            f"{'N':>6} {'backend':>7} {'new ms':>9} {'lib ms':>9} {'ratio':>7} "
            f"{'repl. ms':>9} {'lib ms':>9} {'ratio':>7} "
            f"{'read ms':>9} {'lib ms':>9} {'ratio':>7}  library defaults"
        )
        for row in rows:
            print(" ".join([f"{row[0]:>6}", f"{row[1]:>7}", *row[2:11]]) + "  " + row[11])
        bench_slice(max(sizes), backends, work, repeat)
        bench_append(max(sizes), backends, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Memoisation overhead: ``persist_hooks.memoize`` vs joblib.Memory, diskcache and pypersist.

    python benchmarks/memoize.py [--hits 2000] [--misses 200] [--array-misses 10] [--repeat 3]

For each tool the same two trivial functions are memoised in a fresh temporary
directory: ``small(i)`` returns ``i + 1``; ``big(i)`` returns a 1e6-element float64
array.  Measured per call (best of ``--repeat`` runs):

* hit: the same arguments again and again (the entry exists);
* miss: new arguments each call (the cost of hashing, storing and the lookup
  that failed; the functions themselves cost ~nothing).

joblib is measured plain and with ``mmap_mode='r'`` (arrays come back
memory-mapped, as persist_hooks' do).  Tools that are not installed are skipped.
Targets (issue #6): a small hit costs no more than diskcache's and >= 4x less than
joblib's; an array hit costs no more than joblib with ``mmap_mode='r'``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

N_ARRAY = 1_000_000


def small(i: int) -> int:
    return i + 1


def big(i: int) -> np.ndarray[Any, Any]:
    return np.full(N_ARRAY, float(i))


Decorator = Callable[[Callable[..., Any], str], Callable[..., Any]]


def tools(base: str) -> dict[str, Decorator]:
    """Name -> ``decorate(func, kind)``, each tool caching under its own directory."""
    found: dict[str, Decorator] = {}

    def ph(func: Callable[..., Any], kind: str) -> Callable[..., Any]:
        from persist_hooks.memoize import memoize

        return memoize(path=os.path.join(base, "ph", kind), verbosity=0)(func)

    found["persist_hooks"] = ph
    try:
        import joblib

        def jl(func: Callable[..., Any], kind: str) -> Callable[..., Any]:
            memory = joblib.Memory(os.path.join(base, "joblib", kind), verbose=0)
            return memory.cache(func)

        def jl_mmap(func: Callable[..., Any], kind: str) -> Callable[..., Any]:
            memory = joblib.Memory(
                os.path.join(base, "joblib_mmap", kind), mmap_mode="r", verbose=0
            )
            return memory.cache(func)

        found["joblib"] = jl
        found["joblib mmap"] = jl_mmap
    except ImportError:
        pass
    try:
        import diskcache

        def dc(func: Callable[..., Any], kind: str) -> Callable[..., Any]:
            cache = diskcache.Cache(os.path.join(base, "diskcache", kind))
            return cache.memoize()(func)  # type: ignore[no-any-return]

        found["diskcache"] = dc
    except ImportError:
        pass
    try:
        import pypersist

        def pp(func: Callable[..., Any], kind: str) -> Callable[..., Any]:
            path = os.path.join(base, "pypersist", kind)
            return pypersist.persist(cache=f"file://{path}/", funcname=func.__name__)(func)  # type: ignore[no-any-return]

        found["pypersist"] = pp
    except ImportError:
        pass
    return found


def per_call(fn: Callable[[int], Any], args: list[int], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        for a in args:
            fn(a)
        best = min(best, (time.perf_counter() - t) / len(args))
    return best


def measure(
    decorate: Decorator, hits: int, misses: int, array_misses: int, repeat: int
) -> dict[str, float]:
    out: dict[str, float] = {}
    f_small = decorate(small, "small")
    f_small(0)
    out["hit small"] = per_call(f_small, [0] * hits, repeat)
    counter = iter(range(1, 10**9))
    out["miss small"] = per_call(lambda _: f_small(next(counter)), [0] * misses, repeat)
    f_big = decorate(big, "big")
    f_big(0)
    out["hit array"] = per_call(
        lambda a: np.asarray(f_big(a))[-1], [0] * max(hits // 10, 10), repeat
    )
    out["miss array"] = per_call(lambda _: f_big(next(counter)), [0] * array_misses, 1)
    hits_kept = getattr(getattr(f_big, "cache", None), "_hits", None)
    if isinstance(hits_kept, dict):  # persist_hooks: without the per-process kept values

        def uncached(a: int) -> Any:
            hits_kept.clear()
            return np.asarray(f_big(a))[-1]

        out["hit array uncached"] = per_call(uncached, [0] * max(hits // 10, 10), repeat)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--misses", type=int, default=200)
    parser.add_argument("--array-misses", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("pypersist").setLevel(logging.ERROR)
    base = tempfile.mkdtemp(prefix="bench_memoize_")
    try:
        results: dict[str, dict[str, float]] = {}
        for name, decorate in tools(base).items():
            results[name] = measure(
                decorate, args.hits, args.misses, args.array_misses, args.repeat
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    columns = ["hit small", "miss small", "hit array", "miss array"]
    print(f"{'per call':<14}" + "".join(f"{c:>14}" for c in columns))
    for name, row in results.items():
        print(f"{name:<14}" + "".join(f"{row[c] * 1e6:>12.1f}us" for c in columns))
    ours = results["persist_hooks"]
    print(
        f"{'(uncached)':<14}{'':>14}{'':>14}{ours['hit array uncached'] * 1e6:>12.1f}us"
        "   <- persist_hooks array hit that re-reads the DataSet (first hit in a process)"
    )
    print("\nratio other / persist_hooks (> 1: persist_hooks is faster)")
    for name, row in results.items():
        if name != "persist_hooks":
            print(f"{name:<14}" + "".join(f"{row[c] / ours[c]:>14.2f}" for c in columns))
    print("\ntargets:")
    if "diskcache" in results:
        ok = ours["hit small"] <= results["diskcache"]["hit small"]
        print(f"  small hit <= diskcache:        {'ok' if ok else 'MISSED'}")
    if "joblib" in results:
        ratio = results["joblib"]["hit small"] / ours["hit small"]
        print(f"  small hit >= 4x below joblib:  {'ok' if ratio >= 4 else 'MISSED'} ({ratio:.1f}x)")
    if "joblib mmap" in results:
        ok = ours["hit array"] <= results["joblib mmap"]["hit array"]
        print(f"  array hit <= joblib mmap:      {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()

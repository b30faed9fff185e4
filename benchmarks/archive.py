"""Archive speed: persist_hooks vs pickle and persist 3.2.1 on the same graphs, in one run.

    python benchmarks/archive.py [--sizes 1000 10000 100000] [--repeat 3]

The graph: a list of N small dicts holding lists, tuples, strings, floats and one
object shared by all.  Prints archive and restore times, the ratios to
``pickle.dumps``/``pickle.loads`` and to ``compile`` + ``exec`` of the same source,
and the growth from one size to the next (near 10 for a tenfold N means linear).
Targets (issue #2): archiving within 5x of pickle.dumps and >= 100x faster than
persist 3.2.1 at N=1e4; restore within 3x of compile+exec of the same source.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
from collections.abc import Callable
from typing import Any

import persist_hooks as ph


class Shared:
    """The object every record refers to."""

    def __init__(self) -> None:
        self.name = "shared"
        self.values = [1, 2, 3]


def build(n: int) -> list[dict[str, Any]]:
    shared = Shared()
    return [
        {"i": i, "x": i * 0.25, "s": f"item {i}", "l": [i, i + 1, i + 2], "t": (i, "a", 1.5), "o": shared}
        for i in range(n)
    ]


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def persist_321(data: Any, scoped: bool) -> tuple[float, str] | None:
    try:
        from persist import archive as old  # type: ignore[import-not-found]
    except ImportError:
        return None
    t = time.perf_counter()
    a = old.Archive(scoped=scoped)
    a.insert(data=data)
    src = str(a)
    return time.perf_counter() - t, src


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ph.restore(str(ph.Archive()))  # load plugins outside the timings
    print(f"{'N':>7} {'format':>6} {'archive':>9} {'xpickle':>8} {'restore':>9} {'x(compile+exec)':>16} "
          f"{'xpickle.loads':>14} {'persist3.2.1':>13} {'speedup':>8}")
    previous: dict[str, float] = {}
    for n in args.sizes:
        data = build(n)
        t_dumps = best(lambda data=data: pickle.dumps(data), args.repeat)
        blob = pickle.dumps(data)
        t_loads = best(lambda blob=blob: pickle.loads(blob), args.repeat)
        for scoped in (True, False):
            label = "scoped" if scoped else "flat"

            def archive(data: Any = data, scoped: bool = scoped) -> str:
                a = ph.Archive(scoped=scoped)
                a.insert(data=data)
                return str(a)

            src = archive()
            t_arch = best(archive, args.repeat)
            t_restore = best(lambda src=src: ph.restore(src, env={"__name__": __name__}), args.repeat)

            def compile_exec(src: str = src) -> None:
                exec(compile(src, "<bench>", "exec"), {"__name__": __name__})

            t_ce = best(compile_exec, args.repeat)
            old = None
            if n <= 10_000 and (scoped or n <= 1_000):
                old = persist_321(data, scoped)
            old_txt = f"{old[0] * 1e3:10.1f}ms" if old else f"{'n/a':>13}"
            speed = f"{old[0] / t_arch:7.0f}x" if old else f"{'':>8}"
            print(
                f"{n:>7} {label:>6} {t_arch * 1e3:7.1f}ms {t_arch / t_dumps:7.1f}x {t_restore * 1e3:7.1f}ms "
                f"{t_restore / t_ce:15.2f}x {t_restore / t_loads:13.1f}x {old_txt} {speed}"
            )
            key = label
            if key in previous:
                print(f"{'':>15} growth of archive time from previous N: {t_arch / previous[key]:.1f}x")
            previous[key] = t_arch
        print(f"{n:>7} pickle dumps {t_dumps * 1e3:.2f}ms loads {t_loads * 1e3:.2f}ms")


if __name__ == "__main__":
    main()

"""Import-hook cost: ``import numpy`` with and without the hook, and interpreter start-up.

    python benchmarks/importhook.py --runs 30 --module numpy

Targets (issue #3): no measurable difference in ``python -X importtime -c "import numpy"``
with and without the hook; start-up work of ``persist_hooks._startup`` + importer under 1 ms.

Compares ``import numpy`` with and without the persist_hooks import hook (the hook is
switched off with ``PERSIST_HOOKS_NO_HOOK=1``): ``-X importtime`` cumulative time, and the
CPU time of whole ``python -c 'import numpy'`` runs; and reports the interpreter start-up
share of ``persist_hooks._startup``. Runs of the variants alternate so that drifting
machine load affects them alike; ``min`` and ``median`` over the runs are reported (min is
the least noisy estimate of the cost itself). Whole-process differences below about 1%
drown in the noise of a shared machine, so the finder's own cost is also measured
directly: the lookups that ``import numpy`` sends to it are recorded and replayed with and
without it (:func:`finder_overhead`).

"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S.*?)\s*$")


@dataclass(frozen=True)
class Entry:
    """One ``-X importtime`` line: self and cumulative microseconds and nesting depth."""

    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(stderr: str) -> dict[str, Entry]:
    """Parse ``-X importtime`` output into ``{module: Entry}`` (first occurrence wins).

    Example:
        >>> parse_importtime("import time:       180 |        437 |   importlib")
        {'importlib': Entry(self_us=180, cumulative_us=437, depth=1)}
    """
    entries: dict[str, Entry] = {}
    for line in stderr.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        self_us, cum_us, indent, name = match.groups()
        entries.setdefault(name, Entry(int(self_us), int(cum_us), len(indent) // 2))
    return entries


def import_times(
    code: str = "pass",
    *,
    runs: int = 10,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    cwd: str | os.PathLike[str] | None = None,
) -> list[dict[str, Entry]]:
    """Run ``python -X importtime -c code`` ``runs`` times; one parsed table per run.

    Example:
        >>> len(import_times(runs=1))
        1
    """
    tables = []
    for _ in range(runs):
        proc = subprocess.run(
            [python, "-X", "importtime", "-c", code],
            env=dict(os.environ if env is None else env),
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        )
        tables.append(parse_importtime(proc.stderr))
    return tables


@dataclass(frozen=True)
class Summary:
    """Statistics of one quantity over runs, in microseconds."""

    min_us: float
    median_us: float
    runs: int

    def __str__(self) -> str:
        return f"min {self.min_us / 1000:.2f} ms, median {self.median_us / 1000:.2f} ms ({self.runs} runs)"


def summarize(values: Sequence[float]) -> Summary:
    """``min`` and ``median`` of ``values``.

    Example:
        >>> summarize([3, 1, 2])
        Summary(min_us=1, median_us=2, runs=3)
    """
    return Summary(min(values), statistics.median(values), len(values))


def cumulative(tables: Sequence[Mapping[str, Entry]], module: str) -> list[int]:
    """The cumulative import time of ``module`` in each run (runs without it are skipped).

    Example:
        >>> cumulative([{"a": Entry(1, 5, 0)}, {}], "a")
        [5]
    """
    return [table[module].cumulative_us for table in tables if module in table]


def compare(
    code: str,
    variants: Mapping[str, Mapping[str, str]],
    module: str,
    *,
    runs: int = 10,
    python: str = sys.executable,
) -> dict[str, Summary]:
    """Cumulative import time of ``module`` under ``code`` for each environment in ``variants``.

    The variants' runs are interleaved (a, b, a, b, ...), one warm-up run each first.

    Example:
        >>> env = dict(os.environ)
        >>> sorted(compare("import json", {"a": env, "b": env}, "json", runs=1))
        ['a', 'b']
    """
    samples: dict[str, list[int]] = {label: [] for label in variants}
    for env in variants.values():
        import_times(code, runs=1, env=env, python=python)  # warm the page cache / pycs
    for _ in range(runs):
        for label, env in variants.items():
            samples[label] += cumulative(import_times(code, runs=1, env=env, python=python), module)
    return {label: summarize(values) for label, values in samples.items() if values}


def wall_times(
    code: str,
    variants: Mapping[str, Mapping[str, str]],
    *,
    runs: int = 20,
    python: str = sys.executable,
) -> dict[str, Summary]:
    """Wall-clock time of a whole ``python -c code`` run per environment, interleaved.

    Example:
        >>> env = dict(os.environ)
        >>> sorted(wall_times("pass", {"a": env}, runs=1))
        ['a']
    """
    samples: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(runs + 1):  # the first round warms up and is dropped
        for label, env in variants.items():
            start = time.perf_counter_ns()
            subprocess.run([python, "-c", code], env=dict(env), check=True)
            samples[label].append((time.perf_counter_ns() - start) / 1000)
    return {label: summarize(values[1:]) for label, values in samples.items()}


def cpu_times(
    code: str,
    variants: Mapping[str, Mapping[str, str]],
    *,
    runs: int = 20,
    python: str = sys.executable,
) -> dict[str, Summary]:
    """CPU time (user + system) of a whole ``python -c code`` run per environment.

    Unlike wall-clock time it does not grow while the child waits for a busy CPU, so it
    compares variants fairly on a loaded machine. Runs are interleaved; a warm-up round
    is dropped. POSIX only (``resource``).

    Example:
        >>> env = dict(os.environ)
        >>> sorted(cpu_times("pass", {"a": env}, runs=1))
        ['a']
    """
    import resource

    samples: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(runs + 1):
        for label, env in variants.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([python, "-c", code], env=dict(env), check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            samples[label].append(spent * 1e6)
    return {label: summarize(values[1:]) for label, values in samples.items()}


def hook_variants(
    base: Mapping[str, str] | None = None, *, pycache_prefix: str | None = None
) -> dict[str, dict[str, str]]:
    """Environments with the persist_hooks hook (the default) and without it.

    Measurements need cached bytecode, as an installed package has: ``pycache_prefix``
    (a directory) lets the children write and reuse ``.pyc`` files there, without touching
    the source tree, even when ``PYTHONDONTWRITEBYTECODE`` is set in ``base``.

    Example:
        >>> hook_variants({})["without hook"]
        {'PERSIST_HOOKS_NO_HOOK': '1'}
    """
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if k != "PERSIST_HOOKS_NO_HOOK"
    }
    if pycache_prefix is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache_prefix
    return {"with hook": dict(env), "without hook": {**env, "PERSIST_HOOKS_NO_HOOK": "1"}}


def main(argv: Sequence[str] | None = None) -> None:
    """Print the hook's effect on ``import <module>`` and its start-up cost."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", default="numpy")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="importtime-pycache-") as prefix:
        variants = hook_variants(pycache_prefix=prefix)
        code = f"import {args.module}"
        results = compare(code, variants, args.module, runs=args.runs, python=args.python)
        for label, summary in results.items():
            print(f"import {args.module} {label:>13}: {summary}")
        startup: dict[str, list[dict[str, Entry]]] = {label: [] for label in variants}
        for _ in range(args.runs):  # interleaved, as in compare()
            for label, env in variants.items():
                startup[label] += import_times("pass", runs=1, python=args.python, env=env)
        for label, tables in startup.items():
            for module in ("persist_hooks._startup", "persist_hooks", "persist_hooks.importer"):
                values = cumulative(tables, module)
                if values:
                    print(f"start-up {label}, {module} cumulative: {summarize(values)}")
            own = [
                sum(t[m].self_us for m in ("persist_hooks._startup", "persist_hooks.importer") if m in t)
                for t in tables
            ]
            print(f"start-up {label}, _startup + importer self time: {summarize(own)}")
        for label, summary in wall_times("pass", variants, runs=args.runs, python=args.python).items():
            print(f"python -c pass, wall clock, {label:>13}: {summary}")
        single = {
            label: {**env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
            for label, env in variants.items()
        }
        for label, summary in cpu_times(code, single, runs=args.runs, python=args.python).items():
            print(f"python -c '{code}', CPU time, {label:>13}: {summary}")
        overhead = finder_overhead(args.module, python=args.python)
        print(
            f"finder overhead per import {args.module} (replayed lookups, {overhead.rounds} rounds): "
            f"min {overhead.min_us:.1f} us, median {overhead.median_us:.1f} us over "
            f"{overhead.lookups} lookups ({1000 * overhead.min_us / overhead.lookups:.0f} ns each); "
            f"{100 * overhead.min_us / overhead.import_us:.3f}% of the import's "
            f"{overhead.import_us / 1000:.1f} ms CPU"
        )


# Records the lookups of ``import {module}`` that reach the DataSet finder (a recorder
# just in front of it), then replays them: "baseline" is what the import system does
# without the hook (PathFinder.find_spec), "hooked" what it does with it (the finder,
# then PathFinder when the finder answered None). Each round replays all lookups once per
# variant, in alternating order, timed in thread CPU time (preemption by other processes
# does not count). {module} is imported first, so every lookup meets warm FileFinder
# caches, as all but the first lookup in a directory do; the finder's stats also meet a
# warm dentry cache, so a first import can cost it somewhat more (a cold stat of a
# missing marker file: ~5-8 us here, warm ~2-3 us).
_FINDER_OVERHEAD = """
import gc, json, sys, time
from importlib.machinery import PathFinder
from persist_hooks import importer
finder = importer._STATE.finder
assert sys.meta_path[sys.meta_path.index(finder) + 1] is PathFinder, sys.meta_path
lookups = []
class Recorder:
    @staticmethod
    def find_spec(name, path, target=None):
        lookups.append((name, path))
        return None
sys.meta_path.insert(sys.meta_path.index(finder), Recorder)
start = time.process_time_ns()
import {module}
import_ns = time.process_time_ns() - start
sys.meta_path.remove(Recorder)
pf_find = PathFinder.find_spec
find = finder.find_spec
clock = time.thread_time_ns
def baseline():
    start = clock()
    for name, path in lookups:
        pf_find(name, path)
    return clock() - start
def hooked():
    start = clock()
    for name, path in lookups:
        if find(name, path) is None:
            pf_find(name, path)
    return clock() - start
gc.disable()
base, hook = [], []
for i in range({rounds}):
    if i % 2:
        base.append(baseline()); hook.append(hooked())
    else:
        hook.append(hooked()); base.append(baseline())
print(json.dumps([base, hook, len(lookups), import_ns]))
"""


@dataclass(frozen=True)
class Overhead:
    """The finder's extra work per ``import <module>``, in microseconds of CPU.

    ``min_us``: the difference of the variants' fastest rounds (the cost itself);
    ``median_us``: the difference of their median rounds (shows the noise).
    """

    min_us: float
    median_us: float
    rounds: int
    lookups: int
    import_us: float


def finder_overhead(module: str, *, rounds: int = 301, python: str = sys.executable) -> Overhead:
    """What the DataSet finder adds to the lookups of ``import module`` (replayed in a child).

    Needs the hook installed in the child (the default at start-up).

    Example:
        >>> o = finder_overhead("csv", rounds=3)
        >>> o.rounds, o.lookups > 0
        (3, True)
    """
    import json

    out = subprocess.run(
        [python, "-c", _FINDER_OVERHEAD.format(module=module, rounds=rounds)],
        env={k: v for k, v in os.environ.items() if k != "PERSIST_HOOKS_NO_HOOK"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    base, hook, lookups, import_ns = json.loads(out.strip().splitlines()[-1])
    return Overhead(
        (min(hook) - min(base)) / 1000,
        (statistics.median(hook) - statistics.median(base)) / 1000,
        len(base),
        int(lookups),
        import_ns / 1000,
    )


if __name__ == "__main__":
    main()

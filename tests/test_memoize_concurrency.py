"""Concurrency of :mod:`persist_hooks.memoize`: processes and threads sharing one cache.

Helpers run in subprocesses from :mod:`memo_helpers.workers`; every computation
appends a line to a log file, so the tests count computations across processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from memo_helpers import workers

from persist_hooks.memoize import memoize

TESTS = str(Path(__file__).parent)
RUN = "import memo_helpers.workers as w; w.main()"


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-c", RUN, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _lines(log: Path, prefix: str) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if line.startswith(prefix)]


def _wait_for(log: Path, prefix: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not _lines(log, prefix):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {prefix!r} line in {log} after {timeout} s")
        time.sleep(0.01)


def test_two_processes_compute_at_most_twice(tmp_path: Path) -> None:
    cache, log = tmp_path / "cache", tmp_path / "log"
    procs = [_spawn("square", str(cache), str(log), "7", "1.0") for _ in range(3)]
    outputs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "49"
    computed = _lines(log, "compute 7")
    assert 1 <= len(computed) <= 2  # the per-entry lock makes it 1 in practice
    assert len(computed) == 1
    f = memoize(path=cache, funcname="slow_square", ignore=("log", "delay"))(workers.slow_square)
    assert f(7, str(log), 0.0) == 49
    assert len(_lines(log, "compute 7")) == 1


def test_threads_compute_once(tmp_path: Path) -> None:
    log = tmp_path / "log"
    f = memoize(path=tmp_path / "cache", funcname="slow_square", ignore=("log", "delay"))(
        workers.slow_square
    )
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(f(5, str(log), 0.3))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [25] * 4
    assert len(_lines(log, "compute 5")) == 1


def test_killed_process_leaves_no_blocking_lock(tmp_path: Path) -> None:
    cache, log = tmp_path / "cache", tmp_path / "log"
    proc = _spawn("hold", str(cache), str(log), "3")
    try:
        _wait_for(log, "compute 3")  # it holds the entry lock now, computing for 60 s
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    f = memoize(path=cache, funcname="slow_square", ignore=("log", "delay"), lock_timeout=30)(
        workers.slow_square
    )
    started = time.monotonic()
    assert f(3, str(log), 0.0) == 9
    assert time.monotonic() - started < 5  # not a wait for the lock timeout
    assert len(_lines(log, "compute 3")) == 2
    assert f(3, str(log), 0.0) == 9


@pytest.mark.parametrize("writes", [40])
def test_reader_never_sees_a_truncated_result(tmp_path: Path, writes: int) -> None:
    cache, log = tmp_path / "cache", tmp_path / "log"
    f = memoize(path=cache, funcname="big", ignore=("log",))(workers.big)
    key = f.cache.key(0, str(log))
    f.cache[key] = np.full(200_000, -1.0)
    proc = _spawn("write_big", str(cache), str(log), str(writes))
    seen = set()
    reads = 0
    try:
        while not _lines(log, "done"):
            value = f.cache[key]  # the entry always exists: old or new, never partial
            assert value.shape == (200_000,)
            first = float(value[0])
            assert np.all(value == first)
            seen.add(first)
            reads += 1
            value = f(0, str(log))
            assert value.shape == (200_000,) and np.all(value == value[0])
    finally:
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert reads > 0
    assert float(f.cache[key][0]) == writes - 1
    assert not _lines(log, "big")  # f(...) never had to compute: always a hit

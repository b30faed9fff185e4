"""Functions the memoize concurrency tests run in subprocesses.

Run as ``python -c "import memo_helpers.workers as w; w.main()" <command> <cache> <log> <arg>``
with the ``tests`` directory on ``PYTHONPATH``.  Every computation appends one line
to ``<log>`` (``O_APPEND``: lines of several processes never mix), so a test counts
how often a result was computed.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from persist_hooks.memoize import memoize


def _note(log: str, what: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{what} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def slow_square(x: int, log: str, delay: float) -> int:
    """``x * x`` after ``delay`` seconds, noting the computation in ``log``."""
    _note(log, f"compute {x}")
    time.sleep(delay)
    return x * x


def big(n: int, log: str) -> np.ndarray:
    """A large array whose every element is ``n`` (a truncated read would show)."""
    _note(log, f"big {n}")
    return np.full(200_000, float(n))


def main() -> None:
    command, cache, log, arg = sys.argv[1:5]
    if command == "square":
        f = memoize(path=cache, funcname="slow_square", ignore=("log", "delay"))(slow_square)
        print(f(int(arg), log, float(sys.argv[5])), flush=True)
    elif command == "hold":  # start computing, say so, then get killed
        f = memoize(path=cache, funcname="slow_square", ignore=("log", "delay"))(slow_square)
        f(int(arg), log, 60.0)
    elif command == "write_big":  # overwrite one entry again and again
        f = memoize(path=cache, funcname="big", ignore=("log",))(big)
        key = f.cache.key(0, log)
        for i in range(int(arg)):
            f.cache[key] = np.full(200_000, float(i))
        _note(log, "done")
    else:
        raise SystemExit(f"unknown command {command!r}")

"""Timing helper shared by the benchmark scripts (run as scripts: this directory is on sys.path)."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any


def best(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    """Best wall time of ``fn()`` over ``repeat`` runs (``setup()`` before each, untimed).

    Every run starts with no dirty pages (``os.sync``): otherwise the run that follows
    a big write pays for that write's writeback, whichever library it measures.
    """
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        os.sync()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)

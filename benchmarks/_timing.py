"""Timing helper shared by the benchmark scripts (run as scripts: this directory is on sys.path)."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def prime_memory(nbytes: int) -> None:
    """Touch and release about ``2 * nbytes`` of memory, so the run that follows gets backed pages.

    A virtual machine whose balloon driver reports free pages to the host (virtio-balloon
    free page reporting, as on the machines these benchmarks were tuned on) hands memory
    freed more than ~2 s ago back to the host; touching it again costs a host page fault,
    ~4 us per 4 KiB page.  An 800 MB write into the page cache then takes 0.5-1.2 s
    instead of 0.25 s, depending on which side of a comparison happened to get returned
    pages.  Memory touched and freed just before a run is mostly reused first, so
    both sides run on backed pages.  On a machine without reporting this costs a memset.
    """
    if nbytes > 0:
        # the kernel does not hand out exactly the pages just freed: touching twice as
        # much (at least 256 MB) made an 8 MB write reliably take its backed-memory time
        buffer = np.ones(max(2 * nbytes, 256 << 20) // 8)
        del buffer


def best(
    fn: Callable[[], Any],
    repeat: int,
    setup: Callable[[], Any] | None = None,
    *,
    prime: int = 0,
) -> float:
    """Best wall time of ``fn()`` over ``repeat`` runs (``setup()`` before each, untimed).

    Every run starts with no dirty pages (``os.sync``): otherwise the run that follows
    a big write pays for that write's writeback, whichever library it measures.  With
    ``prime`` (bytes; about what the run allocates or writes), every run starts right
    after :func:`prime_memory`.
    """
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        os.sync()
        prime_memory(prime)
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def create_latency(directory: str | os.PathLike[str], files: int = 16) -> float:
    """Median seconds to create an empty file in ``directory`` (the files are removed)."""
    times = []
    paths = [os.path.join(directory, f".probe-{os.getpid()}-{i}") for i in range(files)]
    for path in paths:
        t = time.perf_counter()
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        times.append(time.perf_counter() - t)
    for path in paths:
        os.unlink(path)
    return sorted(times)[files // 2]


def quiet_file_system(
    directory: str | os.PathLike[str], *, limit: float = 60e-6, wait: float = 120.0
) -> str:
    """Wait (up to ``wait`` s) until creating a file in ``directory`` takes <= ``limit`` s.

    ext4 without a journal (``tune2fs -O ^has_journal``, as on the machines these
    benchmarks were tuned on) does not reuse an inode freed in the last 60 s (360 s
    while its inode table block is dirty): every file creation scans past all of them,
    ~0.15 us each.  After a benchmark deleted a few thousand files, every ``open(...,
    O_CREAT)`` and ``mkdir`` in that block group costs 0.3-0.5 ms instead of 20 us, for
    a minute, whatever library makes them.  Timing writes in that state measures how
    many files each side creates, times the other side's deletions.  Returns a line
    describing the state the measurement starts in.
    """
    os.makedirs(directory, exist_ok=True)
    start = time.monotonic()
    os.sync()  # a clean inode table block holds a freed inode back for 60 s, a dirty one 360 s
    latency = create_latency(directory)
    while latency > limit and time.monotonic() - start < wait:
        time.sleep(5.0)
        os.sync()
        latency = create_latency(directory)
    waited = time.monotonic() - start
    state = "quiet" if latency <= limit else f"NOT quiet after {wait:.0f} s"
    return f"file creation {latency * 1e6:.0f} us ({state}; waited {waited:.0f} s)"


def best_pair(
    a: Callable[[], Any],
    b: Callable[[], Any],
    repeat: int,
    *,
    setup_a: Callable[[], Any] | None = None,
    setup_b: Callable[[], Any] | None = None,
    prime: int = 0,
) -> tuple[float, float]:
    """Best wall times of ``a()`` and ``b()``, their runs taken in turns (ABBAAB...).

    Each run is prepared as in :func:`best`.  Taking turns exposes both sides to the
    same machine state (another process's I/O, the file system slowing down after
    deletions, memory returned to the host), which drifts over seconds: timing all
    runs of one side and then all of the other moved a ratio by up to 1.4x here.
    """
    times: tuple[list[float], list[float]] = ([], [])
    sides = ((a, setup_a), (b, setup_b))
    for i in range(repeat):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for side in order:
            fn, setup = sides[side]
            times[side].append(best(fn, 1, setup=setup, prime=prime))
    return min(times[0]), min(times[1])

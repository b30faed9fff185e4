"""Issue #5 crash safety: SIGKILL a writer at a random moment during a write, many times.

A helper process writes a small item and a large one (16 MB, a write takes a
measurable time) alternately; the test kills it with SIGKILL after a random
delay once it is writing.  Afterwards: the DataSet opens, ``verify`` finds no
damage except repairable leftovers (temporaries, orphaned generations), each
item holds its last committed value or the one being written, and leftovers
are removed by the next writer (even iterations) or by ``verify(repair=True)``
(odd ones).  Default: 5 kills per backend; ``--long``: 100.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from relhelpers import LARGE, SMALL, check, kill, read_log, spawn, value, wait_for

import persist_hooks
from persist_hooks.dataset import DataSet
from persist_hooks.verify import verify

BACKENDS = persist_hooks.backends()
SIZES = {"small": SMALL, "large": LARGE}


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_killed_at_random_moments(
    tmp_path: Path,
    backend: str,
    long_run: bool,
    reliability_report: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # superseded zarr generations are kept for a grace period (backends/retention.py); one
    # expiring between a write and the check below would be a repairable orphan, so the
    # period outlasts the test (expiry itself is tested with the retention policy)
    monkeypatch.setenv("PERSIST_HOOKS_GRACE_SECONDS", "86400")
    kills = 100 if long_run else 5
    rng = random.Random(f"crash-{backend}")
    root = tmp_path / "data"
    log = tmp_path / "commits.log"
    ds = DataSet("data", "w", path=tmp_path, backend=backend)
    ds.small, ds.large = value(0, SMALL), value(1, LARGE)
    log.write_text("small 0\nlarge 1\n")
    next_id = 2
    leftovers: Counter[str] = Counter()
    in_flight_committed = 0
    t0 = time.monotonic()
    for k in range(kills):
        before = len(read_log(log))
        proc = spawn(
            "rel_crash_writer.py",
            {
                "path": str(tmp_path),
                "backend": backend,
                "log": str(log),
                "sizes": SIZES,
                "first_id": next_id,
                "max_writes": 10_000,
            },
        )
        try:
            # kill only once it is writing: after its first commit, at a random moment
            wait_for(
                lambda b=before, p=proc: len(read_log(log)) > b or p.poll() is not None,
                60,
                "the writer's first commit",
            )
            assert proc.poll() is None, proc.communicate(timeout=10)
            time.sleep(rng.uniform(0, 0.25))
        finally:
            kill(proc)
        commits = read_log(log)
        last = {item: vid for item, vid in commits}
        next_id = commits[-1][1] + 1  # the write that was in flight, if any, had this id
        in_flight = "small" if commits[-1][0] == "large" else "large"

        report = verify(root)
        damage = [p for p in report.problems if not p.repairable]
        assert not damage, str(report)
        leftovers.update(p.kind for p in report.problems)

        reader = DataSet("data", "r", path=tmp_path)
        committed = False
        for item in ("small", "large"):
            got = check(getattr(reader, item))
            allowed = {last[item]} | ({next_id} if item == in_flight else set())
            assert got in allowed, (item, got, allowed)  # its old value or the new one
            committed |= got == next_id
        if committed:  # the kill fell between the commit and the log line: log it now
            in_flight_committed += 1
            with log.open("a") as f:
                f.write(f"{in_flight} {next_id}\n")
            next_id += 1

        if k % 2 == 0:  # the next writer cleans up
            writer = DataSet("data", "w", path=tmp_path, backend=backend)
            writer.small = value(next_id, SMALL)
            writer.large = value(next_id + 1, LARGE)
            with log.open("a") as f:
                f.write(f"small {next_id}\nlarge {next_id + 1}\n")
            next_id += 2
            after = verify(root)
        else:
            after = verify(root, repair=True)
            assert after.ok, str(after)
            after = verify(root)
        assert after.ok and not after.problems, str(after)
    elapsed = time.monotonic() - t0
    reliability_report(
        f"{backend}: {kills} SIGKILLs, {len(read_log(log))} committed writes, leftovers found "
        f"{dict(leftovers) or 'none'}, {in_flight_committed} in-flight writes had committed, "
        f"0 damaged, in {elapsed:.1f} s"
    )

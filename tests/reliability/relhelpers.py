"""Shared by the reliability tests and their helper scripts: self-checking values, subprocesses.

A value is ``{"id": vid, "n": n, "crc": crc, "data": array}``: ``data[0]`` is the
id, ``data[-1]`` the CRC-32 of the rest, so a reader that mixed the source of one
version with the array of another (a torn read) or saw a partly written array is
detected by :func:`check`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SMALL = 200  # above the DataSet's array_threshold: the array lives in a file of its own
LARGE = 2_000_000  # 16 MB: a write takes a measurable time


def value(vid: int, n: int = SMALL) -> dict[str, Any]:
    """A self-checking value with id ``vid`` and an ``int64`` array of ``n`` elements."""
    data = np.arange(n, dtype=np.int64)
    data *= 7
    data += vid
    data[0] = vid
    crc = zlib.crc32(memoryview(data[:-1]))
    data[-1] = crc
    return {"id": vid, "n": n, "crc": crc, "data": data}


def check(v: Any) -> int:
    """The id of a stored value; ``AssertionError`` if it is torn or damaged."""
    assert isinstance(v, dict) and set(v) == {"id", "n", "crc", "data"}, f"bad value {v!r:.200}"
    data = np.ascontiguousarray(np.asarray(v["data"]))
    assert data.shape == (v["n"],), f"shape {data.shape} != ({v['n']},)"
    assert int(data[0]) == v["id"], f"torn: header id {v['id']} but array id {int(data[0])}"
    crc = zlib.crc32(memoryview(data[:-1]))
    assert int(data[-1]) == crc == v["crc"], f"torn or damaged array of value {v['id']}"
    return int(v["id"])


def env() -> dict[str, str]:
    """Environment for helper processes (no start-up import hook, unbuffered output)."""
    return {**os.environ, "PERSIST_HOOKS_NO_HOOK": "1", "PYTHONUNBUFFERED": "1"}


def spawn(script: str, config: dict[str, Any]) -> subprocess.Popen[str]:
    """Start ``tests/reliability/<script>`` with ``config`` as JSON in argv[1]."""
    return subprocess.Popen(
        [sys.executable, str(HERE / script), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """Wait (bounded) for a helper; return the JSON of its last stdout line."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"helper {proc.args} hung; stderr:\n{err[-3000:]}") from None
    assert proc.returncode == 0, f"helper failed ({proc.returncode}):\n{err[-3000:]}"
    return dict(json.loads(out.strip().splitlines()[-1]))


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate()`` until true; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc`` (if still running) and reap it."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):  # a process we cannot reap
        proc.communicate(timeout=10)


def read_log(path: Path) -> list[tuple[str, int]]:
    """Lines ``<item> <id>`` of a commit log, in commit order."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        item, vid = line.split()
        out.append((item, int(vid)))
    return out

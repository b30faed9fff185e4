"""Issue #5 lock behaviour, across real processes.

* A process holding the writer lock makes another process's write time out
  with :class:`persist_hooks.LockTimeout` naming the lock file (and the
  holder's pid), after about its timeout, having written nothing.
* A lock left by a SIGKILLed process does not block anyone (the kernel
  releases ``lockf`` locks of dead processes; the lock file stays, harmlessly).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from relhelpers import finish, kill, spawn

from persist_hooks.dataset import DataSet
from persist_hooks.errors import LockTimeout
from persist_hooks.locking import LOCK_NAME, writer_lock
from persist_hooks.verify import verify


def start_holder(tmp_path: Path) -> subprocess.Popen[str]:
    proc = spawn("rel_lock_holder.py", {"path": str(tmp_path)})
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded: the holder takes the lock at once or fails
    if line.strip() != "locked":
        kill(proc)
        raise AssertionError(
            f"holder did not lock: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        )
    return proc


def test_other_process_times_out_naming_the_lock(tmp_path: Path) -> None:
    ds = DataSet("data", "w", path=tmp_path)
    ds.x = 1
    holder = start_holder(tmp_path)
    try:
        out = finish(
            spawn("rel_lock_try.py", {"path": str(tmp_path), "timeout": 0.5, "value": 2}), 60
        )
    finally:
        kill(holder)
    lock = str(tmp_path / "data" / LOCK_NAME)
    assert out["result"] == "LockTimeout", out
    assert out["lock_path"] == lock
    assert lock in out["message"] and str(holder.pid) in out["message"], out["message"]
    assert 0.4 <= out["seconds"] < 10, out
    assert DataSet("data", path=tmp_path).x == 1  # nothing was written
    assert verify(tmp_path / "data").ok


def test_this_process_times_out_too(tmp_path: Path) -> None:
    ds = DataSet("data", "w", path=tmp_path, timeout=0.3)
    holder = start_holder(tmp_path)
    try:
        t0 = time.monotonic()
        with pytest.raises(LockTimeout) as info:
            ds.x = 1
        assert time.monotonic() - t0 < 10
    finally:
        kill(holder)
    assert info.value.lock_path == str(tmp_path / "data" / LOCK_NAME)
    assert str(tmp_path / "data" / LOCK_NAME) in str(info.value)
    ds.x = 2  # the lock is free again after the holder is gone
    assert ds.x == 2


@pytest.mark.parametrize("who", ["process", "this-process"])
def test_lock_of_sigkilled_process_does_not_block(tmp_path: Path, who: str) -> None:
    DataSet("data", "w", path=tmp_path)
    holder = start_holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    assert holder.returncode == -signal.SIGKILL
    kill(holder)
    assert (tmp_path / "data" / LOCK_NAME).exists()  # the file stays; the lock is gone
    if who == "process":
        out = finish(
            spawn("rel_lock_try.py", {"path": str(tmp_path), "timeout": 5, "value": 3}), 60
        )
        assert out["result"] == "written" and out["seconds"] < 2, out
        assert DataSet("data", path=tmp_path).x == 3
    else:
        t0 = time.monotonic()
        with writer_lock(tmp_path / "data").hold(timeout=5):
            pass
        assert time.monotonic() - t0 < 2
    assert verify(tmp_path / "data").ok


def test_killed_holder_mid_batch_leaves_no_damage(tmp_path: Path) -> None:
    """A holder killed while holding the lock (between writes of a batch) blocks no one and
    leaves a DataSet that verifies clean."""
    ds = DataSet("data", "w", path=tmp_path)
    holder = start_holder(tmp_path)
    kill(holder)
    with ds.locked(timeout=5):
        ds.y = [1, 2]
    assert verify(tmp_path / "data").ok

"""Tests of persist_hooks.locking: one re-entrant writer lock per path per process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from persist_hooks.errors import LockTimeout
from persist_hooks.locking import LOCK_NAME, WriterLock, lock_path, writer_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from persist_hooks.locking import writer_lock
    lock = writer_lock(sys.argv[1])
    lock.acquire(timeout=10)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
    print("released", flush=True)
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PERSIST_HOOKS_NO_HOOK": "1"}


@contextlib.contextmanager
def holding(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """A subprocess that holds the writer lock of ``path`` (once this yields) for ``seconds``."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A subprocess holding the writer lock of ``tmp_path`` for up to 30 s."""
    with holding(tmp_path, 30) as proc:
        yield proc


def test_one_lock_per_real_path(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "ds")
    a = writer_lock(tmp_path / "ds")
    assert a is writer_lock(str(tmp_path / "ds") + "/.")
    assert a is writer_lock(tmp_path / "link")
    assert a is not writer_lock(tmp_path)
    assert a.path == str((tmp_path / "ds").resolve() / LOCK_NAME)
    assert lock_path(tmp_path / "ds") == tmp_path / "ds" / LOCK_NAME


def test_reentrant_and_released_at_last_level(tmp_path: Path) -> None:
    lock = writer_lock(tmp_path)
    assert not lock.held
    with lock.hold(timeout=1):
        with lock.hold(timeout=1):
            assert lock.held
        assert lock.held
    assert not lock.held
    with pytest.raises(RuntimeError, match="un-acquired"):
        lock.release()
    with pytest.raises(ValueError, match="timeout"):
        lock.acquire(timeout=-1)


def test_threads_are_serialised(tmp_path: Path) -> None:
    lock = writer_lock(tmp_path)
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with lock.hold(timeout=5):
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(5)
        assert not lock.held
        t0 = time.monotonic()
        with pytest.raises(LockTimeout, match="another thread") as info:
            lock.acquire(timeout=0.2)
        assert time.monotonic() - t0 >= 0.19
        assert info.value.lock_path == lock.path
    finally:
        leave.set()
        thread.join()
    with lock.hold(timeout=5):
        assert lock.held


def test_timeout_while_another_process_holds_it(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = writer_lock(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(LockTimeout) as info:
        lock.acquire(timeout=0.3)
    waited = time.monotonic() - t0
    assert 0.29 <= waited < 5
    message = str(info.value)
    assert lock.path in message
    assert f"process {holder.pid}" in message  # the holder is named (Linux F_GETLK)
    assert "timeout" in message
    assert isinstance(info.value, TimeoutError)
    assert not lock.held


def test_two_objects_in_one_process_share_the_lock(
    tmp_path: Path,
) -> None:
    """A second holder in this process must not drop the first one's file lock."""
    first = writer_lock(tmp_path)
    second = writer_lock(tmp_path / ".")
    first.acquire(timeout=1)
    try:
        acquired_elsewhere = threading.Event()
        errors: list[BaseException] = []

        def other_thread() -> None:
            try:
                second.acquire(timeout=0.2)
                acquired_elsewhere.set()
                second.release()
            except LockTimeout as exc:
                errors.append(exc)

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert not acquired_elsewhere.is_set() and errors
        # another process still cannot get it
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys\nfrom persist_hooks.locking import writer_lock\n"
                "from persist_hooks.errors import LockTimeout\n"
                "try:\n    writer_lock(sys.argv[1]).acquire(timeout=0.2)\n"
                "except LockTimeout:\n    print('timeout')\nelse:\n    print('acquired')\n",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=_env(),
            check=True,
        )
        assert proc.stdout.strip() == "timeout"
    finally:
        first.release()


def test_lock_of_a_killed_process_blocks_no_one(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = writer_lock(tmp_path)
    with pytest.raises(LockTimeout):
        lock.acquire(timeout=0.1)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    t0 = time.monotonic()
    with lock.hold(timeout=5):
        assert lock.held
    assert time.monotonic() - t0 < 1
    assert (tmp_path / LOCK_NAME).exists()  # the file stays; it is harmless


def test_released_lock_is_available_to_another_process(tmp_path: Path) -> None:
    lock = writer_lock(tmp_path)
    with lock.hold(timeout=1):
        pass
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    out, _ = proc.communicate(timeout=30)
    assert out.split() == ["locked", "released"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_inherit_the_hold(tmp_path: Path) -> None:
    lock = writer_lock(tmp_path)
    lock.acquire(timeout=1)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 0
            try:
                if lock.held:
                    code = 1
                else:
                    try:
                        lock.acquire(timeout=0.1)  # the parent holds the file lock
                        code = 2
                    except LockTimeout:
                        code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert lock.held
    finally:
        lock.release()


def test_writer_lock_type() -> None:
    assert isinstance(writer_lock(Path.cwd()), WriterLock)


def test_a_waiting_writer_gets_the_lock_when_the_holder_releases_it(tmp_path: Path) -> None:
    """The first try fails while another process holds the lock; fasteners' loop then waits."""
    with holding(tmp_path, 0.5) as proc:
        assert proc.stdout is not None
        lock = writer_lock(tmp_path)
        t0 = time.monotonic()
        with lock.hold(timeout=20):
            waited = time.monotonic() - t0
            assert proc.stdout.readline().strip() == "released"
        assert 0.2 < waited < 20
        proc.wait(timeout=30)


def test_the_lock_never_recreates_a_removed_directory(tmp_path: Path) -> None:
    root = tmp_path / "gone"
    root.mkdir()
    lock = writer_lock(root)
    with lock.hold(timeout=1):
        pass
    (root / LOCK_NAME).unlink()
    root.rmdir()
    with pytest.raises(FileNotFoundError):
        lock.acquire(timeout=1)
    assert not root.exists() and not lock.held
    root.mkdir()
    with lock.hold(timeout=1):  # usable again once the directory is back
        assert lock.held


def test_the_note_is_for_the_holder_and_replaced_in_place(tmp_path: Path) -> None:
    lock = writer_lock(tmp_path)
    with pytest.raises(RuntimeError, match="holder"):
        lock.read_note()
    with lock.hold(timeout=1):
        assert lock.read_note() == b""
        lock.write_note(b"a long first note")
        inode = os.stat(tmp_path / LOCK_NAME).st_ino
        lock.write_note(b"short")
        assert lock.read_note() == b"short"
        with pytest.raises(ValueError, match="at most"):
            lock.write_note(b"x" * (1 << 17))
    assert (tmp_path / LOCK_NAME).read_bytes() == b"short"
    assert os.stat(tmp_path / LOCK_NAME).st_ino == inode  # the lock file itself, never replaced
    with lock.hold(timeout=1):
        assert lock.read_note() == b"short"  # kept between holds


def test_the_lock_file_is_never_opened_through_a_symbolic_link(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    root = tmp_path / "ds"
    root.mkdir()
    (root / LOCK_NAME).symlink_to(precious)
    with pytest.raises(OSError):
        writer_lock(root).acquire(timeout=1)
    assert precious.read_text() == "keep me"

"""Tests of persist_hooks._fileio: atomic, stale-proof text file replacement."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persist_hooks import _fileio
from persist_hooks._fileio import (
    atomic_write_text,
    file_signature,
    is_temporary_name,
    prepare_text,
    read_text,
    remove_stale_temporaries,
    temporary_path,
)


def test_write_read_roundtrip_exact_text(tmp_path: Path) -> None:
    p = tmp_path / "f.py"
    text = "x = 'é'\r\ny = 2\n"  # newlines are kept as given, UTF-8
    atomic_write_text(p, text)
    assert p.read_bytes() == text.encode("utf-8")
    got, sig = read_text(p)
    assert got == text
    assert sig == file_signature(p)
    assert os.listdir(tmp_path) == ["f.py"]


def test_new_version_has_later_whole_second_mtime(tmp_path: Path) -> None:
    p = tmp_path / "f.py"
    seconds = []
    for i in range(5):  # far more than one rewrite per second
        atomic_write_text(p, f"x = {i}\n")
        seconds.append(p.stat().st_mtime_ns // 1_000_000_000)
    assert all(b > a for a, b in itertools.pairwise(seconds))
    assert seconds[-1] - time.time() < 10  # drift only as much as needed


def test_mtime_untouched_when_a_second_has_passed(tmp_path: Path) -> None:
    p = tmp_path / "f.py"
    atomic_write_text(p, "x = 1\n")
    old = time.time_ns() - 5_000_000_000
    os.utime(p, ns=(old, old))
    before = time.time_ns()
    atomic_write_text(p, "x = 2\n")
    assert p.stat().st_mtime_ns >= before - 50_000_000  # "now", not old + 1 s


def test_signature_changes_on_every_rewrite(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    sigs = set()
    for _ in range(4):
        atomic_write_text(p, "same")
        sigs.add(file_signature(p))
    assert len(sigs) == 4
    assert file_signature(tmp_path / "missing") is None


def test_plain_python_pycache_never_stale(tmp_path: Path) -> None:
    """Rewrite a module with the same size within one second; bytecode must not be reused."""
    script = (
        "import importlib, sys, os\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from persist_hooks._fileio import atomic_write_text\n"
        "p = os.path.join(sys.argv[1], 'mod_pyc.py')\n"
        "atomic_write_text(p, 'value = 1\\n')\n"
        "import mod_pyc\n"
        "assert mod_pyc.value == 1\n"
        "atomic_write_text(p, 'value = 2\\n')\n"
        "importlib.reload(mod_pyc)\n"
        "print(mod_pyc.value)\n"
    )
    env = {**os.environ, "PERSIST_HOOKS_NO_HOOK": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == "2"
    assert (tmp_path / "__pycache__").is_dir()  # bytecode was written and checked


def test_prepare_then_commit_or_discard(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")
    pending = prepare_text(p, "new")
    assert p.read_text() == "old"
    assert pending.temp.exists() and is_temporary_name(pending.temp.name)
    pending.commit()
    assert p.read_text() == "new" and not pending.temp.exists()
    with pytest.raises(RuntimeError):
        pending.commit()
    with prepare_text(p, "discarded") as pending2:
        pass  # not committed: removed on exit
    assert p.read_text() == "new"
    assert not pending2.temp.exists()
    assert os.listdir(tmp_path) == ["f.txt"]


def test_durable_write(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    atomic_write_text(p, "data", durable=True)
    assert p.read_text() == "data"
    _fileio.fsync_dir(tmp_path)


def test_failure_midway_leaves_no_temporary_and_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")
    real_write = os.write

    def failing_write(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data)[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_fileio.os, "write", failing_write)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(p, "new content")
    monkeypatch.undo()
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_interrupt_midway_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_fileio, "_bump_mtime", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(tmp_path / "f.txt", "x")
    assert os.listdir(tmp_path) == []


def test_temporary_names_and_stale_removal(tmp_path: Path) -> None:
    t = temporary_path(tmp_path / "x.py")
    assert t.parent == tmp_path and t.name.startswith(".x.py.") and t.name.endswith(".tmp")
    assert temporary_path(tmp_path / "x.py") != t
    t.write_text("partial")
    (tmp_path / "x.py").write_text("keep")
    (tmp_path / ".hidden.tmp").write_text("not ours: no random part")
    young = temporary_path(tmp_path / "y.py")
    young.write_text("being written")
    old = time.time() - 3600
    os.utime(t, (old, old))
    assert remove_stale_temporaries(tmp_path, min_age=60) == [t]
    assert young.exists()
    assert remove_stale_temporaries(tmp_path) == [young]
    assert sorted(os.listdir(tmp_path)) == [".hidden.tmp", "x.py"]
    assert remove_stale_temporaries(tmp_path / "missing") == []


# ------------------------------------------------------------------ replace_file / remove_file


@pytest.fixture(params=["exchange", "os.replace"])
def swap_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways :func:`replace_file` can work (renameat2 exchange where Linux has it)."""
    if request.param == "os.replace":
        monkeypatch.setattr(_fileio, "_exchange", None)
    elif _fileio._lookup_exchange() is None:
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    return str(request.param)


def test_replace_file_over_existing_leaves_only_the_new_file(tmp_path: Path, swap_mode: str) -> None:
    (tmp_path / "a").write_text("old")
    new = tmp_path / ".a.0123456789abcdef.tmp"
    new.write_text("new")
    with open(tmp_path / "a") as held:  # a reader that opened the old version
        _fileio.replace_file(new, tmp_path / "a")
        assert os.listdir(tmp_path) == ["a"]  # nothing left behind, at once
        assert (tmp_path / "a").read_text() == "new"
        assert held.read() == "old"  # the old version stays readable through its descriptor


def test_replace_file_onto_a_missing_target(tmp_path: Path, swap_mode: str) -> None:
    (tmp_path / "b").write_text("new")
    _fileio.replace_file(tmp_path / "b", tmp_path / "a")
    assert os.listdir(tmp_path) == ["a"] and (tmp_path / "a").read_text() == "new"


def test_replace_file_missing_source_raises(tmp_path: Path, swap_mode: str) -> None:
    (tmp_path / "a").write_text("old")
    with pytest.raises(FileNotFoundError):
        _fileio.replace_file(tmp_path / "nope", tmp_path / "a")
    assert (tmp_path / "a").read_text() == "old"


def test_replace_file_changes_the_signature(tmp_path: Path, swap_mode: str) -> None:
    p = tmp_path / "f.py"
    atomic_write_text(p, "a = 1\n")
    before = file_signature(p)
    atomic_write_text(p, "a = 2\n")
    assert file_signature(p) != before and p.read_text() == "a = 2\n"


def test_remove_file_name_goes_at_once_and_data_stays_readable_to_holders(tmp_path: Path) -> None:
    p = tmp_path / "big.npy"
    p.write_bytes(b"x" * 100_000)
    with open(p, "rb") as held:
        _fileio.remove_file(p)
        assert os.listdir(tmp_path) == []
        assert len(held.read()) == 100_000
    with pytest.raises(FileNotFoundError):
        _fileio.remove_file(p)


def test_remove_file_unlinks_links_and_fifos_without_touching_targets(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    (tmp_path / "link").symlink_to(target)
    _fileio.remove_file(tmp_path / "link")
    assert target.read_text() == "keep me" and not (tmp_path / "link").exists()
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        _fileio.remove_file(tmp_path / "fifo")  # must not block opening it
    assert os.listdir(tmp_path) == ["target"]


def test_remove_file_many_at_once_closes_every_descriptor(tmp_path: Path) -> None:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc/self/fd")
    before = len(os.listdir(fd_dir))
    for i in range(300):  # more than the background queue holds: some close inline
        (tmp_path / f"f{i}").write_bytes(b"x")
        _fileio.remove_file(tmp_path / f"f{i}")
    assert os.listdir(tmp_path) == []
    deadline = time.monotonic() + 10
    while len(os.listdir(fd_dir)) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(os.listdir(fd_dir)) <= before

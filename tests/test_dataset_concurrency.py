"""DataSet under real concurrency: writer and reader processes, and writers killed with SIGKILL.

Values carry their identity twice — in the item's source (``check``) and in its
external array (``data``, a file of its own) — so a reader that mixed two
versions of an item (a torn read) is detected.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from persist_hooks.dataset import DataSet

SIZE = 300  # > array_threshold: the array lives in its own .npy file


def value(tag: int) -> dict[str, Any]:
    return {"check": tag, "data": np.full(SIZE, tag, dtype=np.int64)}


def tag_of(v: Any) -> int:
    """The tag of a stored value, or raise AssertionError if the value is torn."""
    data = np.asarray(v["data"])
    assert data.shape == (SIZE,), data.shape
    assert int(data[0]) == int(data[-1]) == v["check"], (int(data[0]), v["check"])
    return int(v["check"])


COMMON = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np
    from persist_hooks.dataset import DataSet
    SIZE = __SIZE__
    def value(tag):
        return {"check": tag, "data": np.full(SIZE, tag, dtype=np.int64)}
    def tag_of(v):
        data = np.asarray(v["data"])
        if data.shape != (SIZE,) or not (int(data[0]) == int(data[-1]) == v["check"]):
            raise AssertionError(f"torn value: check {v['check']} data {data[:1]} {data[-1:]}")
        return int(v["check"])
    path, go = sys.argv[1], sys.argv[2]
    """
).replace("__SIZE__", str(SIZE))

WRITER = COMMON + textwrap.dedent(
    """
    w, n_writes, log = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    ds = DataSet("data", "w", path=path, timeout=60)
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(n_writes):
        tag = w * 100000 + i + 1
        setattr(ds, f"own{w}", value(tag))          # only this writer writes it
        with ds.locked():                           # a shared item: log the commit order
            shared = f"shared{i % 2}"
            setattr(ds, shared, value(tag))
            ds[shared] = tag
            with open(log, "a") as f:
                f.write(f"{shared} {tag}\\n")
    print(json.dumps({"own": tag}))
    """
)

READER = COMMON + textwrap.dedent(
    """
    stop, names = sys.argv[3], sys.argv[4].split(",")
    ds = DataSet("data", "r", path=path)
    while not os.path.exists(go):
        time.sleep(0.001)
    reads = errors = 0
    first_error = None
    while not os.path.exists(stop):
        for name in names:
            try:
                tag_of(getattr(ds, name))
                if name.startswith("shared"):
                    int(ds[name])
                reads += 1
            except Exception as exc:
                errors += 1
                first_error = first_error or f"{name}: {type(exc).__name__}: {exc}"
    print(json.dumps({"reads": reads, "errors": errors, "first_error": first_error}))
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PERSIST_HOOKS_NO_HOOK": "1"}


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    writers, n_writes, n_readers = 3, 25, 2
    ds = DataSet("data", "w", path=tmp_path)
    names = [f"own{w}" for w in range(writers)] + ["shared0", "shared1"]
    for name in names:
        setattr(ds, name, value(0))
        ds[name] = 0
    go, stop, log = tmp_path / "go", tmp_path / "stop", tmp_path / "log"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(tmp_path), str(go), str(stop), ",".join(names)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(n_readers)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(go), str(w), str(n_writes), str(log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for w in range(writers)
    ]
    time.sleep(0.5)  # let every process import and wait at the start line
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    time.sleep(0.1)  # readers see the final state for a moment
    stop.touch()
    reader_outs = [p.communicate(timeout=60) for p in readers]
    for proc, (_, err) in zip(procs + readers, outs + reader_outs, strict=True):
        assert proc.returncode == 0, err
    for out, _ in reader_outs:
        stats = json.loads(out)
        assert stats["errors"] == 0, stats["first_error"]
        assert stats["reads"] > 0
    final = DataSet("data", path=tmp_path)
    # no lost write: each writer's own item holds its last write
    for w, (out, _) in enumerate(outs):
        assert tag_of(getattr(final, f"own{w}")) == json.loads(out)["own"]
    # last writer wins on shared items: the value committed last (log order, under the lock)
    last: dict[str, int] = {}
    for line in log.read_text().splitlines():
        name, tag = line.split()
        last[name] = int(tag)
    assert len(log.read_text().splitlines()) == writers * n_writes
    for name in ("shared0", "shared1"):
        assert tag_of(getattr(final, name)) == last[name]
        assert final[name] == last[name]
    assert sorted(final) == sorted(names)
    # nothing is left behind: one generation per item, no temporaries
    root = tmp_path / "data"
    for name in names:
        assert len(os.listdir(root / f"{name}_data")) == 1
    assert not [n for n in os.listdir(root) if n.endswith(".tmp")]


KILLED_WRITER = COMMON + textwrap.dedent(
    """
    start = int(sys.argv[3])
    ds = DataSet("data", "w", path=path, timeout=30)
    print("ready", flush=True)
    tag = start
    while True:
        tag += 1
        for name in ("a", "b"):
            print(f"start {name} {tag}", flush=True)
            setattr(ds, name, value(tag))
            print(f"done {name} {tag}", flush=True)
        print(f"start meta {tag}", flush=True)
        ds["a"] = tag
        print(f"done meta {tag}", flush=True)
        if tag % 3 == 0:
            ds._insert(value(tag), info=tag)
    """
)


def test_writer_killed_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("PERSIST_HOOKS_TEST_SEED", "3"))
    ds = DataSet("data", "w", path=tmp_path)
    ds.a, ds.b = value(0), value(0)
    ds["a"] = 0
    committed = {"a": 0, "b": 0, "meta": 0}
    tag = 0
    for _ in range(6):
        with open(tmp_path / "stderr", "w+") as errfile:
            proc = subprocess.Popen(
                [sys.executable, "-c", KILLED_WRITER, str(tmp_path), "unused", str(tag)],
                stdout=subprocess.PIPE,
                stderr=errfile,
                text=True,
                env=_env(),
            )
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", errfile.read()
            time.sleep(rng.uniform(0.01, 0.3))
            proc.send_signal(signal.SIGKILL)
            out = proc.stdout.read()  # the same reader as readline: nothing buffered is lost
            proc.stdout.close()
            proc.wait(30)
            errfile.seek(0)
            assert "Error" not in errfile.read()
        in_flight: dict[str, int] = {}
        for line in out.splitlines():
            state, name, t = line.split()
            if state == "start":
                in_flight[name] = int(t)
            else:
                committed[name] = int(t)
                in_flight.pop(name, None)
            tag = max(tag, int(t))
        # afterwards the DataSet opens, every item loads, each holds its old or new value
        after = DataSet("data", path=tmp_path)
        for name in ("a", "b"):
            got = tag_of(getattr(after, name))
            assert got in {committed[name], in_flight.get(name, committed[name])}
            committed[name] = got
        meta = after["a"]
        assert meta in {committed["meta"], in_flight.get("meta", committed["meta"])}
        committed["meta"] = meta
        for name in after:
            if name.startswith("x_"):
                got = tag_of(getattr(after, name))
                assert after[name] == got  # key committed only after its item
    # the next writer gets the lock at once and cleans up what the dead ones left
    writer = DataSet("data", "w", path=tmp_path, timeout=5)
    writer.a = value(-1)
    writer.b = value(-1)
    root = tmp_path / "data"
    assert not [n for n in os.listdir(root) if n.endswith(".tmp")]
    assert len(os.listdir(root / "a_data")) == 1 and len(os.listdir(root / "b_data")) == 1
    assert tag_of(DataSet("data", path=tmp_path).a) == -1


CREATOR = COMMON + textwrap.dedent(
    """
    w = int(sys.argv[3])
    while not os.path.exists(go):
        time.sleep(0.0005)
    ds = DataSet("fresh", "w", path=path)
    setattr(ds, f"w{w}", value(w))
    ds[f"w{w}"] = w
    """
)


def test_processes_creating_the_same_dataset_at_once(tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATOR, str(tmp_path), str(go), str(w)],
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for w in range(4)
    ]
    time.sleep(0.5)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    ds = DataSet("fresh", path=tmp_path)
    assert sorted(ds) == [f"w{w}" for w in range(4)]
    assert all(tag_of(getattr(ds, f"w{w}")) == ds[f"w{w}"] == w for w in range(4))

"""Tests of :mod:`persist_hooks.memoize`: keys, entries, invalidation and the seed's examples.

Each pitfall listed in issue #6 has its own test; concurrency between processes
lives in ``test_memoize_concurrency.py``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from memo_helpers import mod_a, mod_b

from persist_hooks import DataSet
from persist_hooks.memoize import MemoCache, Memoized, memoize


class Counter:
    """Counts calls of the functions it wraps."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> None:
        self.n += 1


# ---------------------------------------------------------------- the seed's examples


def test_double(tmp_path: Path) -> None:
    calls = Counter()

    @memoize(path=tmp_path)
    def double(x: int) -> int:
        calls()
        return 2 * x

    assert double(3) == 6
    assert double(3) == 6
    assert calls.n == 1
    assert double.cache[(("x", 3),)] == 6
    assert isinstance(double, Memoized) and isinstance(double.cache, MemoCache)


def test_power_custom_key_hash_pickle(tmp_path: Path) -> None:
    calls = Counter()

    @memoize(
        path=tmp_path,
        key=lambda x, y: (x, y),
        hash=lambda k: "{}_to_the_power_of_{}".format(*k),
        unhash=lambda s: tuple(int(p) for p in s.split("_to_the_power_of_")),
        pickle=str,
        unpickle=int,
    )
    def power(x: int, y: int) -> int:
        calls()
        return x**y

    assert power(2, 4) == 16
    assert power(10, 3) == 1000
    assert power(2, 4) == 16
    assert calls.n == 2
    assert power.cache[(2, 4)] == 16
    name = power.cache.item_name((2, 4))
    assert name.startswith("k_2_to_the_power_of_4__")
    stored = DataSet(power.dataset_name, path=tmp_path)
    assert getattr(stored, name) == "16"  # stored as the string pickle= made
    assert sorted(power.cache) == [(2, 4), (10, 3)]


def test_method_with_custom_key(tmp_path: Path) -> None:
    calls = Counter()

    class A:
        def __init__(self, x: int) -> None:
            self.x = x

        @memoize(path=tmp_path, key=lambda self, a: (self.x, a))
        def this_plus_number(self, a: int) -> int:
            calls()
            return self.x + a

    a = A(5)
    assert a.this_plus_number(10) == 15
    assert a.this_plus_number(10) == 15
    assert A(5).this_plus_number(10) == 15
    assert calls.n == 1
    assert a.this_plus_number.cache[(5, 10)] == 15
    assert A.this_plus_number.cache[(5, 10)] == 15
    assert A(6).this_plus_number(10) == 16


# ---------------------------------------------------------------- keys


def test_positional_and_keyword_calls_share_an_entry(tmp_path: Path) -> None:
    calls = Counter()

    @memoize(path=tmp_path)
    def f(x: int, y: int = 2) -> int:
        calls()
        return x * y

    assert f(1) == f(x=1) == f(1, 2) == f(y=2, x=1) == 2
    assert calls.n == 1
    assert f.cache.key(1) == (("x", 1), ("y", 2))


def test_default_none_parameter(tmp_path: Path) -> None:
    calls = Counter()

    @memoize(path=tmp_path)
    def f(x: int, y: Any = None) -> Any:
        calls()
        return (x, y)

    assert f(1) == (1, None)
    assert f(1, None) == (1, None)
    assert f(1, y=None) == (1, None)
    assert calls.n == 1
    assert f(1, 0) == (1, 0)
    assert calls.n == 2


def test_array_arguments_with_defaults(tmp_path: Path) -> None:
    calls = Counter()

    @memoize(path=tmp_path)
    def f(a: np.ndarray, b: np.ndarray = np.zeros(3), scale: float = 1.0) -> float:  # noqa: B008
        calls()
        return float((a + b).sum() * scale)

    assert f(np.arange(3)) == 3.0
    assert f(np.arange(3), b=np.zeros(3)) == 3.0
    assert f(a=np.arange(3), scale=1.0) == 3.0
    assert calls.n == 1
    assert f(np.arange(3.0)) == 3.0  # another dtype: another key
    assert f(np.arange(3)[::-1].copy()) == 3.0  # other content
    assert f(np.arange(6)[::2]) == 6.0  # non-contiguous argument
    assert calls.n == 4
    assert f(np.array([0, 2, 4])) == 6.0  # same content as the strided one
    assert calls.n == 4


def test_varargs_kwargs_and_ignore(tmp_path: Path) -> None:
    calls = Counter()

    @memoize(path=tmp_path, ignore=("verbose",))
    def g(*args: int, verbose: bool = False, **kw: int) -> int:
        calls()
        return sum(args) + sum(kw.values())

    assert g(1, 2, a=3, b=4) == 10
    assert g(1, 2, b=4, a=3, verbose=True) == 10
    assert calls.n == 1
    assert g(2, 1, a=3, b=4) == 10
    assert calls.n == 2


def test_unencodable_argument_is_a_type_error(tmp_path: Path) -> None:
    @memoize(path=tmp_path)
    def f(x: Any) -> int:
        return 1

    with pytest.raises(TypeError):
        f(lambda: None)


# ---------------------------------------------------------------- the mapping


def test_setitem_overwrites(tmp_path: Path) -> None:
    @memoize(path=tmp_path)
    def f(x: int) -> int:
        return x

    k = f.cache.key(1)
    f.cache[k] = 5
    assert f.cache[k] == 5
    f.cache[k] = 6
    assert f.cache[k] == 6
    assert f(1) == 6
    f.cache[k] = (1, "a")  # a kept (immutable) value is replaced too
    assert f(1) == (1, "a")
    f.cache[k] = 7
    assert f(1) == 7


def test_contains_never_raises(tmp_path: Path) -> None:
    @memoize(path=tmp_path)
    def f(x: Any) -> Any:
        return x

    f(1)
    assert f.cache.key(1) in f.cache
    assert f.cache.key(2) not in f.cache
    assert (("x", lambda: 0),) not in f.cache  # cannot even be hashed
    assert object() not in f.cache

    @memoize(path=tmp_path, key=lambda x: x, hash=lambda k: 1 / 0)  # type: ignore[arg-type,return-value]
    def g(x: int) -> int:
        return x

    assert 1 not in g.cache

    @memoize(path=tmp_path, key=lambda x: x, hash=lambda k: k)
    def h(x: Any) -> Any:
        return x

    assert 3 not in h.cache  # hash= returned a non-str
    assert "a/b" not in h.cache


def test_delitem_len_clear_and_iteration(tmp_path: Path) -> None:
    @memoize(path=tmp_path)
    def f(x: int) -> int:
        return x

    for i in range(3):
        f(i)
    assert len(f.cache) == 3
    del f.cache[f.cache.key(0)]
    assert len(f.cache) == 2 and f.cache.key(0) not in f.cache
    with pytest.raises(KeyError):
        del f.cache[f.cache.key(0)]
    with pytest.raises(KeyError):
        f.cache[f.cache.key(9)]
    with pytest.raises(TypeError, match="storekey"):
        list(f.cache)
    f.cache.clear()
    assert len(f.cache) == 0

    @memoize(path=tmp_path, storekey=True)
    def g(x: int, y: int = 0) -> int:
        return x + y

    g(1)
    g(2, y=3)
    assert sorted(g.cache) == [(("x", 1), ("y", 0)), (("x", 2), ("y", 3))]
    assert dict(g.cache.items())[(("x", 2), ("y", 3))] == 5


def test_metadata_in_info_dict(tmp_path: Path) -> None:
    @memoize(path=tmp_path, metadata=lambda: {"user": "me"}, storekey=True)
    def f(x: int) -> int:
        return x

    f(4)
    ds = DataSet(f.dataset_name, path=tmp_path)
    (name,) = list(ds)
    info = ds[name]
    assert info["metadata"] == {"user": "me"}
    assert info["code"] == f.code_digest
    assert info["key"] == (("x", 4),)
    assert isinstance(info["time"], str) and info["duration"] >= 0
    assert getattr(ds, name) == 4


def test_storekey_detects_hash_collisions(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls = Counter()

    @memoize(path=tmp_path, hash=lambda k: "same", storekey=True)
    def f(x: int) -> int:
        calls()
        return x * 10

    assert f(1) == 10
    with caplog.at_level(logging.WARNING, logger="persist_hooks.memoize"):
        assert f(2) == 20  # same hash, other key: recomputed, not 10
    assert "collision" in caplog.text
    assert f(2) == 20
    assert calls.n == 2
    assert f.cache.key(1) not in f.cache  # the entry now holds x=2

    @memoize(path=tmp_path / "nokey", hash=lambda k: "same")
    def g(x: int) -> int:
        return x * 10

    assert g(1) == 10
    assert g(2) == 10  # without storekey a collision goes unnoticed (documented)


# ---------------------------------------------------------------- identity


def test_same_named_functions_in_different_modules(tmp_path: Path) -> None:
    a = memoize(path=tmp_path)(mod_a.square)
    b = memoize(path=tmp_path)(mod_b.square)
    assert a.dataset_name != b.dataset_name
    assert a(3) == 9
    assert b(3) == 10
    assert a(3) == 9


def test_closures_do_not_share(tmp_path: Path) -> None:
    def make(n: int) -> Any:
        def add(x: int) -> int:
            return x + n

        return add

    one = memoize(path=tmp_path)(make(1))
    two = memoize(path=tmp_path)(make(2))
    again = memoize(path=tmp_path)(make(1))
    assert one(10) == 11
    assert two(10) == 12
    assert one.dataset_name == again.dataset_name != two.dataset_name


def test_function_in_main_script(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from persist_hooks.memoize import memoize

            @memoize(path=sys.argv[1])
            def triple(x):
                print("computing", flush=True)
                return 3 * x

            print(triple(5), triple(x=5), flush=True)
            """
        )
    )
    cache = tmp_path / "cache"
    runs = [
        subprocess.run(
            [sys.executable, str(script), str(cache)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    assert runs == ["computing\n15 15\n", "15 15\n"]


# ---------------------------------------------------------------- invalidation


def _load(path: Path, name: str, body: str) -> Any:
    file = path / f"{name}.py"
    file.write_text(textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V1 = '''
CALLS = []

def f(x):
    """Version one."""
    CALLS.append(x)
    return x + 1  # add one
'''
V1_DOCS = '''
CALLS = []


def f(x):
    """Version one, with a better docstring."""
    # a new comment
    CALLS.append(x)
    return x + 1  # add one, really
'''
V2 = """
CALLS = []

def f(x):
    CALLS.append(x)
    return x + 2
"""


def test_invalidation_by_code(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    m1 = _load(tmp_path, "inv_v1", V1)
    f1 = memoize(path=cache, funcname="inv")(m1.f)
    assert f1(1) == 2 and m1.CALLS == [1]

    m1b = _load(tmp_path, "inv_v1_docs", V1_DOCS)  # comments and docstring edited
    f1b = memoize(path=cache, funcname="inv")(m1b.f)
    assert f1b.code_digest == f1.code_digest
    assert f1b(1) == 2 and m1b.CALLS == []

    m2 = _load(tmp_path, "inv_v2", V2)  # code edited: a miss
    f2 = memoize(path=cache, funcname="inv")(m2.f)
    assert f2.code_digest != f1.code_digest
    assert f2(1) == 3 and m2.CALLS == [1]
    assert len(f2.cache) == 1 and len(f1.cache) == 1  # the old result is kept aside

    removed = f2.cache.prune()
    assert len(removed) == 1 and removed[0].endswith(f1.code_digest[:10])
    assert len(f1.cache) == 0 and len(f2.cache) == 1
    f1(1)
    assert m1.CALLS == [1, 1]  # recomputed after prune
    assert f2(1) == 3 and m2.CALLS == [1]


# ---------------------------------------------------------------- results


def test_array_result_comes_back_memory_mapped(tmp_path: Path) -> None:
    calls = Counter()

    @memoize(path=tmp_path)
    def f(n: int) -> np.ndarray:
        calls()
        return np.arange(float(n))

    first = f(100_000)
    second = f(100_000)
    assert calls.n == 1
    assert isinstance(second, np.memmap) and not second.flags.writeable
    np.testing.assert_array_equal(first, second)
    second.shape = (1000, 100)  # our kept value is not affected
    third = f(100_000)
    assert third.shape == (100_000,)
    with pytest.raises(ValueError):
        third[0] = 1.0


def test_mutable_results_are_fresh_each_hit(tmp_path: Path) -> None:
    @memoize(path=tmp_path)
    def f(x: int) -> list[int]:
        return [x]

    f(1).append(2)
    assert f(1) == [1]
    f(1).append(3)
    assert f(1) == [1]


def test_unstorable_result_is_returned_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Counter()

    @memoize(path=tmp_path)
    def f(x: int) -> Any:
        calls()
        return lambda: x

    with caplog.at_level(logging.WARNING, logger="persist_hooks.memoize"):
        assert f(1)() == 1
    assert "not stored" in caplog.text
    assert f(1)() == 1 and calls.n == 2


def test_verbosity_through_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    @memoize(path=tmp_path, verbosity=3)
    def loud(x: int) -> int:
        return x

    @memoize(path=tmp_path, verbosity=0)
    def quiet(x: int) -> int:
        return x

    with caplog.at_level(logging.DEBUG, logger="persist_hooks.memoize"):
        loud(1)
        loud(1)
        quiet(1)
        quiet(1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("computing" in m for m in messages)
    assert any("hit" in m for m in messages)
    assert all("quiet" not in m for m in messages)


def test_default_path_is_persist_cache_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    @memoize
    def f(x: int) -> int:
        return x

    assert f(2) == 2
    assert f.cache.path == os.path.join(tmp_path, "persist_cache", f.dataset_name)
    name = f.dataset_name  # <qualname>__<module>_<id>, prefixed: it starts with "test"
    assert name.startswith("f_test_default_path") and "__test_memoize_" in name
    assert name.isidentifier()
    assert (tmp_path / "persist_cache" / f.dataset_name / "__init__.py").exists()


def test_module_level_memoized_function_pickles_by_reference() -> None:
    import pickle

    from memo_helpers import decorated

    assert pickle.loads(pickle.dumps(decorated.cube)) is decorated.cube
    assert not os.path.exists("unused_memo_cache")  # decorating writes nothing


def test_persist_hooks_memoize_is_the_decorator(tmp_path: Path) -> None:
    import persist_hooks
    import persist_hooks.memoize

    @persist_hooks.memoize(path=tmp_path)
    def f(x: int) -> int:
        return x + 1

    assert f(1) == 2 and isinstance(f, Memoized)


def test_cache_directory_removed_while_in_use(tmp_path: Path) -> None:
    import shutil

    @memoize(path=tmp_path / "c")
    def f(x: int) -> int:
        return x + 1

    assert f(1) == 2
    shutil.rmtree(tmp_path / "c")
    assert f(2) == 3 and f(1) == 2
    assert len(f.cache) == 2


def test_untrusted_cache_never_executes_code(tmp_path: Path) -> None:
    from persist_hooks.errors import UnsafeArchiveError

    @memoize(path=tmp_path, trusted=False)
    def f(x: int) -> Any:
        return {"a": [x, 2.5]}

    assert f(1) == {"a": [1, 2.5]}
    assert f(1) == {"a": [1, 2.5]}
    item = Path(f.cache.path) / f"{f.cache.item_name(f.cache.key(1))}.py"
    text = item.read_text()
    item.write_text(text.replace("{'a': [1, 2.5]}", "__import__('os').getcwd()"))
    with pytest.raises(UnsafeArchiveError):
        f(1)

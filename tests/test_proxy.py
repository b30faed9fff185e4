"""ArrayProxy: indexing parity with numpy (hypothesis), growth, read-only, locking, copy and pickle policy.

Two drivers are exercised: an in-memory box-only driver (the path HDF5/zarr
drivers take: the proxy splits every index into a box plus an in-memory rest)
and the npy driver (native numpy indexing on a memory map).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import multiprocessing
import operator
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from persist_hooks.backends.npy import NpyBackend
from persist_hooks.backends.proxy import ArrayDriver, ArrayProxy, split_index
from persist_hooks.errors import BackendError, ReadOnlyError
from persist_hooks.testing import CountingLock, assert_identical

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class BoxDriver(ArrayDriver):
    """An in-memory driver that, like h5py or zarr, only accepts boxes of positive-step slices."""

    def __init__(self, data: np.ndarray[Any, Any], lock: CountingLock | None = None) -> None:
        self.data = data.copy()
        self.lock = lock
        self.reads: list[tuple[slice, ...]] = []
        self.attrs: dict[str, Any] = {}

    def _check_box(self, box: Any) -> None:
        assert isinstance(box, tuple) and len(box) == self.data.ndim, box
        for s, n in zip(box, self.data.shape, strict=True):
            assert isinstance(s, slice) and s.step >= 1 and 0 <= s.start <= s.stop <= n, (
                box,
                self.data.shape,
            )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    def read(self, index: Any) -> Any:
        self._check_box(index)
        self.reads.append(index)
        return self.data[index].copy()

    def write(self, index: Any, value: Any) -> None:
        self._check_box(index)
        if self.lock is not None:
            assert self.lock.held, "writes must run under the writer lock"
        self.data[index] = value

    def resize(self, length: int) -> None:
        if self.lock is not None:
            assert self.lock.held
        new = np.zeros((length, *self.data.shape[1:]), self.data.dtype)
        keep = min(length, self.data.shape[0])
        new[:keep] = self.data[:keep]
        self.data = new

    def get_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def set_attrs(self, attrs: dict[str, Any]) -> None:
        self.attrs = dict(attrs)

    @property
    def location(self) -> str:
        return "memory"


# --------------------------------------------------------------------------- strategies

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6)


def _axis_item(n: int) -> st.SearchStrategy[Any]:
    """An index item for one axis of length ``n``: a full slice, any slice, or (if possible) an int."""
    slices = st.builds(
        slice,
        st.none() | st.integers(-7, 7),
        st.none() | st.integers(-7, 7),
        st.sampled_from([None, 1, 2, -1, -2]),
    )
    items = st.just(slice(None)) | slices
    return items | st.integers(-n, n - 1) if n else items


@st.composite
def array_and_index(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], Any]:
    """A small int array and any numpy index for it (basic, integer arrays, boolean masks, mixtures)."""
    shape = draw(shapes)
    arr = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) * 7 - 3
    kind = draw(st.sampled_from(["basic", "int", "bool", "mixed", "bool-partial"]))
    if kind == "int" and all(shape):
        index_shapes = hnp.array_shapes(min_dims=0, max_dims=2, max_side=4)
        key = draw(hnp.integer_array_indices(shape, result_shape=index_shapes))
    elif kind == "bool":
        key = draw(hnp.arrays(bool, shape))
    elif kind == "bool-partial":
        k = draw(st.integers(1, len(shape)))
        key = draw(hnp.arrays(bool, shape[:k]))
    elif kind == "mixed" and all(shape):
        axis = draw(st.integers(0, len(shape) - 1))
        n = shape[axis]
        idx = draw(st.lists(st.integers(-n, n - 1), max_size=5))
        parts: list[Any] = [idx if a == axis else draw(_axis_item(m)) for a, m in enumerate(shape)]
        if draw(st.booleans()):
            parts.insert(draw(st.integers(0, len(parts))), None)
        key = tuple(parts)
    else:
        key = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return arr, key


def _numpy_result(arr: np.ndarray[Any, Any], key: Any) -> tuple[Any, type[BaseException] | None]:
    try:
        return arr[key], None
    except (IndexError, ValueError, TypeError) as exc:
        return None, type(exc)


# --------------------------------------------------------------------------- split_index


@SETTINGS
@given(array_and_index())
def test_split_index_reproduces_numpy(case: tuple[np.ndarray[Any, Any], Any]) -> None:
    arr, key = case
    want, error = _numpy_result(arr, key)
    if error is not None:
        with pytest.raises(IndexError):
            split_index(key, arr.shape)
        return
    box, rest = split_index(key, arr.shape)
    assert len(box) == arr.ndim
    assert all(isinstance(s, slice) and s.step >= 1 for s in box)
    assert_identical(np.asarray(arr[box][rest]), np.asarray(want))


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ((0, 0, 0), (2, 2)),
        (5, (3,)),
        ([0, 3], (3,)),
        (np.array([True, False]), (3,)),
        ((Ellipsis, 0, Ellipsis), (2, 2)),
        (1.5, (3,)),
        ("a", (3,)),
    ],
)
def test_split_index_errors_like_numpy(key: Any, shape: tuple[int, ...]) -> None:
    with pytest.raises(IndexError):
        np.zeros(shape)[key]
    with pytest.raises(IndexError):
        split_index(key, shape)


def test_split_index_box_is_tight() -> None:
    box, rest = split_index((slice(8, 1, -3), [4, 2]), (10, 6))
    assert box == (slice(2, 9, 3), slice(2, 5, 1))
    assert rest[0] == slice(None, None, -1) and rest[1].tolist() == [2, 0]


# --------------------------------------------------------------------------- parity through proxies


@pytest.fixture(scope="module")
def npy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy_npy")


_counter = itertools.count()


def _npy_proxy(root: Path, arr: np.ndarray[Any, Any], **kw: Any) -> ArrayProxy:
    backend = NpyBackend()
    entry = backend.write(root, f"h/g{next(_counter)}", {"a": arr})["a"]
    proxy = backend.open(root, entry, mode="a", **kw)
    assert isinstance(proxy, ArrayProxy)
    return proxy


def _proxies(root: Path, arr: np.ndarray[Any, Any]) -> list[ArrayProxy]:
    return [ArrayProxy(BoxDriver(arr)), _npy_proxy(root, arr)]


@SETTINGS
@given(case=array_and_index())
def test_getitem_parity(npy_root: Path, case: tuple[np.ndarray[Any, Any], Any]) -> None:
    arr, key = case
    want, error = _numpy_result(arr, key)
    for proxy in _proxies(npy_root, arr):
        if error is not None:
            with pytest.raises(error):
                proxy[key]
            continue
        got = proxy[key]
        assert np.isscalar(got) == np.isscalar(want), (key, got, want)
        assert_identical(np.asarray(got), np.asarray(want))
        if isinstance(got, np.ndarray):
            assert type(got) is np.ndarray  # never a memmap or view of the store


@SETTINGS
@given(case=array_and_index(), scalar=st.booleans())
def test_setitem_parity(
    npy_root: Path, case: tuple[np.ndarray[Any, Any], Any], scalar: bool
) -> None:
    arr, key = case
    target, error = _numpy_result(arr, key)
    assume(error is None)
    value: Any = -5 if scalar else -(np.arange(np.size(target)).reshape(np.shape(target)) + 100)
    want = arr.copy()
    want[key] = value
    for proxy in _proxies(npy_root, arr):
        lock = CountingLock()
        proxy = ArrayProxy(proxy.driver, writer_lock=lock)
        if isinstance(proxy.driver, BoxDriver):
            proxy.driver.lock = lock
        proxy[key] = value
        assert lock.count == 1
        assert_identical(proxy[...], want)


def test_box_driver_reads_only_the_box() -> None:
    drv = BoxDriver(np.arange(1000).reshape(100, 10))
    p = ArrayProxy(drv)
    assert p[10:20:3, ::-4].tolist() == np.arange(1000).reshape(100, 10)[10:20:3, ::-4].tolist()
    assert drv.reads == [(slice(10, 20, 3), slice(1, 10, 4))]


def test_box_driver_basic_write_does_not_read() -> None:
    drv = BoxDriver(np.zeros((10, 4)))
    p = ArrayProxy(drv)
    p[2:8:2, 1] = [1, 2, 3]
    assert drv.reads == []
    p[[1, 3], 0] = 9  # fancy: read-modify-write of the box
    assert drv.reads == [(slice(1, 4, 1), slice(0, 1, 1))]
    want = np.zeros((10, 4))
    want[2:8:2, 1] = [1, 2, 3]
    want[[1, 3], 0] = 9
    assert_identical(drv.data, want)


def test_false_scalar_index_writes_nothing() -> None:
    drv = BoxDriver(np.arange(6).reshape(2, 3))
    p = ArrayProxy(drv)
    p[False, 0] = 99
    assert_identical(drv.data, np.arange(6).reshape(2, 3))


# --------------------------------------------------------------------------- growth and resize


class AppendMachine(RuleBasedStateMachine):
    """Random appends, resizes and assignments on an npy proxy against a numpy model."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        arr = np.arange(6, dtype=">i4").reshape(3, 2)
        self.model = arr.copy()
        self.proxy = _npy_proxy(Path(self.tmp.name), arr)

    @rule(rows=st.integers(0, 5), one=st.booleans())
    def append(self, rows: int, one: bool) -> None:
        new = np.arange(rows * 2, dtype="<i8").reshape(rows, 2) + len(self.model) * 10
        if one:
            new = new[:1]
            self.proxy.append(new[0] if len(new) else np.zeros((0, 2), "<i8"))
        else:
            self.proxy.append(new)
        self.model = np.concatenate([self.model, new]).astype(">i4")

    @rule(length=st.integers(0, 12))
    def resize(self, length: int) -> None:
        self.proxy.resize(length)
        grown = np.zeros((length, 2), ">i4")
        keep = min(length, len(self.model))
        grown[:keep] = self.model[:keep]
        self.model = grown

    @rule(past=st.integers(0, 4), value=st.integers(-100, 100))
    def assign_past_end(self, past: int, value: int) -> None:
        i = len(self.model) + past
        self.proxy[i] = value
        grown = np.zeros((i + 1, 2), ">i4")
        grown[: len(self.model)] = self.model
        grown[i] = value
        self.model = grown

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data())
    def assign_inside(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(-len(self.model), len(self.model) - 1))
        self.proxy[i, 1] = 77
        self.model[i, 1] = 77

    @invariant()
    def same(self) -> None:
        assert self.proxy.shape == self.model.shape
        assert_identical(self.proxy[...], self.model)

    def teardown(self) -> None:
        self.tmp.cleanup()


TestAppendMachine = AppendMachine.TestCase
TestAppendMachine.settings = settings(max_examples=40, stateful_step_count=15, deadline=None)


def test_append_is_constant_in_file_size(tmp_path: Path) -> None:
    """Appending never rewrites the data: the bytes before the end are untouched, header length fixed."""
    p = _npy_proxy(tmp_path, np.arange(1000.0))
    path = p.driver.path  # type: ignore[attr-defined]
    head_before = path.read_bytes()[:64]
    inode = os.stat(path).st_ino
    for k in range(50):
        p.append(np.full(3, float(k)))
    assert os.stat(path).st_ino == inode  # same file, not a rewrite
    data = path.read_bytes()
    assert len(data) == 128 + 8 * (1000 + 150)
    assert data[:10] == head_before[:10]
    assert np.load(path).shape == (1150,)


def test_growth_validates_before_resizing() -> None:
    drv = BoxDriver(np.zeros((2, 3)))
    p = ArrayProxy(drv)
    with pytest.raises(ValueError):
        p[5] = np.zeros(4)
    assert p.shape == (2, 3)
    p[3:5] = 1.0  # valid numpy (clipped, empty selection): no growth
    assert p.shape == (2, 3)
    p[:100] = 2.0  # valid numpy: clipped
    assert p.shape == (2, 3) and p[...].tolist() == [[2.0] * 3] * 2
    p[3:5] = np.ones((2, 3))  # numpy would refuse: grows
    assert p.shape == (5, 3) and p[2].tolist() == [0, 0, 0] and p[4].tolist() == [1, 1, 1]


def test_failed_write_after_growth_shrinks_back() -> None:
    drv = BoxDriver(np.zeros(3))
    p = ArrayProxy(drv)
    with pytest.raises(ValueError):
        p[4] = "not a number"
    assert p.shape == (3,)


def test_negative_and_clipped_indices_never_grow() -> None:
    p = ArrayProxy(BoxDriver(np.zeros(3)))
    with pytest.raises(IndexError):
        p[-4] = 1
    p[1:] = 2  # open slice: numpy semantics, no growth
    p[::-1] = [5, 6, 7]
    assert p.shape == (3,) and p[...].tolist() == [7, 6, 5]


def test_append_shape_and_casting_errors() -> None:
    p = ArrayProxy(BoxDriver(np.zeros((2, 3), np.int32)))
    with pytest.raises(ValueError, match="rows of shape"):
        p.append(np.zeros((1, 4), np.int32))
    with pytest.raises(TypeError):
        p.append(np.zeros(3, np.float64))
    p.append([1, 2, 3])
    assert p.shape == (3, 3) and p[2].tolist() == [1, 2, 3]


def test_box_driver_default_append() -> None:
    p = ArrayProxy(BoxDriver(np.arange(4).reshape(2, 2)))
    p.append([[4, 5], [6, 7]])
    assert p[...].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]


# --------------------------------------------------------------------------- read only, lock, attrs


def test_read_only_refuses_every_write() -> None:
    drv = BoxDriver(np.arange(4))
    p = ArrayProxy(drv, read_only=True)
    writes = [
        lambda: operator.setitem(p, 0, 1),
        lambda: p.append(1),
        lambda: p.resize(9),
        lambda: operator.setitem(p.attrs, "a", 1),
        lambda: operator.delitem(p.attrs, "a"),
    ]
    for attempt in writes:
        with pytest.raises(ReadOnlyError, match="read-only") as info:
            attempt()
        assert isinstance(info.value, ValueError)
        assert "mode='a'" in str(info.value)
    assert drv.data.tolist() == [0, 1, 2, 3] and p.shape == (4,)


def test_driver_without_writes() -> None:
    class ReadOnlyDriver(ArrayDriver):
        shape = (3,)
        dtype = np.dtype("f8")

        def read(self, index: Any) -> Any:
            return np.zeros(3)[index]

    p = ArrayProxy(ReadOnlyDriver())
    with pytest.raises(BackendError, match="does not support writes"):
        p[0] = 1.0
    with pytest.raises(BackendError, match="cannot be resized"):
        p.append(1.0)
    with pytest.raises(BackendError, match="attributes"):
        p.attrs["a"] = 1
    assert dict(p.attrs) == {}


def test_lock_is_held_around_driver_writes() -> None:
    lock = CountingLock()
    drv = BoxDriver(np.zeros((3, 2)), lock=lock)
    p = ArrayProxy(drv, writer_lock=lock)
    p[0] = 1
    p.append([2, 2])
    p[6] = 3
    p.resize(2)
    p.attrs["x"] = 1
    assert lock.count == 5
    _ = p[...], p.shape, list(p)
    assert lock.count == 5  # reads take no lock


def test_attrs_mapping() -> None:
    p = ArrayProxy(BoxDriver(np.zeros(1)))
    p.attrs.update(a=1, b=[1, 2])
    assert len(p.attrs) == 2 and sorted(p.attrs) == ["a", "b"] and p.attrs["b"] == [1, 2]
    del p.attrs["a"]
    assert dict(p.attrs) == {"b": [1, 2]} and "ProxyAttrs" in repr(p.attrs)
    with pytest.raises(KeyError):
        del p.attrs["missing"]


def test_npy_attrs_must_be_json(tmp_path: Path) -> None:
    p = _npy_proxy(tmp_path, np.zeros(2))
    with pytest.raises(BackendError, match="JSON"):
        p.attrs["f"] = object()
    assert dict(p.attrs) == {}


# --------------------------------------------------------------------------- protocol details


def test_len_iter_bool_and_repr() -> None:
    big = np.arange(300_000, dtype=np.float64).reshape(100_000, 3)  # 2.4 MB
    drv = BoxDriver(big)
    p = ArrayProxy(drv)
    rows = list(p)
    assert len(rows) == 100_000 and len(p) == 100_000
    assert_identical(np.stack(rows), big)
    sizes = [(s[0].stop - s[0].start) * 24 for s in drv.reads]
    assert len(sizes) == 3 and max(sizes) <= 1 << 20 and max(sizes) > (1 << 20) - 24
    assert "memory" in repr(p) and "(100000, 3)" in repr(p) and "writable" in repr(p)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(p)
    assert bool(ArrayProxy(BoxDriver(np.array([3])))) is True
    assert bool(ArrayProxy(BoxDriver(np.array(0.0)))) is False
    zero_d = ArrayProxy(BoxDriver(np.array(2.0)))
    with pytest.raises(TypeError):
        len(zero_d)
    with pytest.raises(TypeError):
        iter(zero_d).__next__()
    assert list(ArrayProxy(BoxDriver(np.zeros((0, 3))))) == []
    assert [r.tolist() for r in ArrayProxy(BoxDriver(np.zeros((2, 0))))] == [[], []]


def test_numpy_functions_accept_proxies(tmp_path: Path) -> None:
    arr = np.arange(12.0).reshape(3, 4)
    p = _npy_proxy(tmp_path, arr)
    assert np.sum(p) == arr.sum()
    assert_identical(np.asarray(p), arr)
    assert_identical(np.asarray(p, dtype=np.float32), arr.astype(np.float32))
    assert_identical(np.concatenate([p, p]), np.concatenate([arr, arr]))
    assert_identical(np.array(p) + 1, arr + 1)
    assert (p.shape, p.ndim, p.size, p.nbytes, p.dtype) == (arr.shape, 2, 12, 96, arr.dtype)


def test_no_file_handle_outlives_an_operation(tmp_path: Path) -> None:
    p = _npy_proxy(tmp_path, np.arange(10.0))
    path = str(p.driver.path)  # type: ignore[attr-defined]

    def handles() -> int:
        fds = Path("/proc/self/fd")
        if not fds.exists():
            pytest.skip("needs /proc")
        n = 0
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):
                n += os.readlink(fd) == path
        return n

    _ = p[2:5], p[[1, 3]], list(p), p.shape
    p[0] = 5
    p.append([1.0, 2.0])
    p[20] = 3.0
    p.attrs["a"] = 1
    assert handles() == 0


# --------------------------------------------------------------------------- copy and pickle policy


def test_copy_is_another_handle_deepcopy_is_an_array() -> None:
    drv = BoxDriver(np.arange(4))
    p = ArrayProxy(drv, writer_lock=CountingLock())
    same = copy.copy(p)
    assert isinstance(same, ArrayProxy) and same is not p and same.driver is drv
    same[0] = 10
    assert p[0] == 10
    deep = copy.deepcopy({"a": p, "b": [p]})
    assert type(deep["a"]) is np.ndarray and deep["a"] is deep["b"][0]
    p[1] = 20
    assert deep["a"].tolist() == [10, 1, 2, 3]


def test_pickle_gives_read_only_handle(tmp_path: Path) -> None:
    p = _npy_proxy(tmp_path, np.arange(5.0), writer_lock=CountingLock())
    clone = pickle.loads(pickle.dumps(p))
    assert isinstance(clone, ArrayProxy) and clone.read_only and not p.read_only
    assert_identical(clone[...], np.arange(5.0))
    p.append(5.0)
    assert clone.shape == (6,)  # re-opens the same file
    with pytest.raises(ReadOnlyError):
        clone[0] = 1.0


def test_proxy_travels_to_another_process(tmp_path: Path) -> None:
    arr = np.arange(20.0).reshape(4, 5)
    p = _npy_proxy(tmp_path, arr, writer_lock=CountingLock())
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        assert pool.apply(np.sum, (p,)) == arr.sum()
        with pytest.raises(ReadOnlyError):
            pool.apply(operator.setitem, (p, 0, 1.0))
    assert_identical(p[...], arr)


@pytest.mark.parametrize("direct_max", [0, 1 << 40], ids=["always-map", "always-read"])
def test_npy_read_paths_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct_max: int
) -> None:
    """Rows read directly and rows read through a memory map give numpy's answers."""
    from persist_hooks.backends import npy
    from persist_hooks.testing import index_cases

    monkeypatch.setattr(npy, "_DIRECT_READ_MAX", direct_max)
    ref = np.arange(8 * 7, dtype=">i8").reshape(8, 7)
    p = _npy_proxy(tmp_path, ref)
    for key in index_cases((8, 7)):
        assert_identical(np.asarray(p[key]), np.asarray(ref[key]))


# ------------------------------------------------------------------ in-place changes and sessions


class SessionDriver(BoxDriver):
    """A box driver that records the sessions the proxy opens around its operations."""

    def __init__(self, data: np.ndarray[Any, Any]) -> None:
        super().__init__(data)
        self.sessions: list[bool] = []
        self.closed = 0

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Any:
        self.sessions.append(write)
        yield

    def close(self) -> None:
        self.closed += 1


def test_modified_marker_is_created_once_before_the_first_change(tmp_path: Path) -> None:
    marker = tmp_path / "g1_0.npy.modified"
    driver = SessionDriver(np.arange(6.0).reshape(3, 2))
    proxy = ArrayProxy(driver, modified_marker=marker)
    proxy[...]
    np.asarray(proxy)
    assert not marker.exists()  # reads change nothing
    proxy.append([6.0, 7.0])
    assert marker.exists()
    marker.unlink()
    proxy[0, 0] = 1.0
    assert not marker.exists()  # once per proxy: O(1), never a stat per write
    other = copy.copy(proxy)
    other.resize(2)
    assert marker.exists()  # a copy is another handle: it marks once too
    read_only = ArrayProxy(SessionDriver(np.zeros(2)), read_only=True, modified_marker=marker)
    with pytest.raises(ReadOnlyError):
        read_only[0] = 1.0


def test_each_operation_is_one_session() -> None:
    driver = SessionDriver(np.arange(12.0).reshape(4, 3))
    proxy = ArrayProxy(driver)
    proxy[1:3, ::2]
    proxy[0] = 5.0
    proxy.append(np.ones(3))
    proxy.resize(2)
    assert driver.sessions == [False, True, True, True]
    proxy.close()
    assert driver.closed == 1

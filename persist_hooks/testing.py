"""Conformance tests every storage backend must pass: subclass :class:`BackendTests`.

In the style of zarr's ``zarr.testing.store.StoreTests``: a backend's test
module (ours, the HDF5/zarr plugins', a third party's) subclasses
:class:`BackendTests` and sets :attr:`BackendTests.backend_cls` (and options);
pytest then runs the whole protocol check against it::

    from persist_hooks.testing import BackendTests
    from mypackage import MyBackend

    class TestMyBackend(BackendTests):
        backend_cls = MyBackend
        backend_options = {"compression": "gzip"}
        invalid_options = [{"compression": "nope"}]

Optional features are checked where the backend's capability flags
(``supports_append``, ``supports_structured``, ...) say they exist; a dtype
the backend refuses through ``dtype_problem`` must be refused by
``check_dtype`` with :class:`persist_hooks.BackendError`.  Backends whose data
are not one file per entry override :meth:`BackendTests.corrupt`.

Requires pytest (imported here); numpy is the only other dependency.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import operator
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest

from .backends.base import Backend, checksum, dtype_from_json, modified_marker
from .backends.proxy import ArrayProxy
from .errors import BackendError, FormatError, ReadOnlyError

__all__ = [
    "INDEX_CASES",
    "OPTIONAL_DTYPES",
    "REQUIRED_DTYPES",
    "BackendTests",
    "CountingLock",
    "assert_identical",
    "index_cases",
    "run_plain_loader",
    "sample_array",
]

REQUIRED_DTYPES: tuple[str, ...] = (
    "?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
    "f2", "f4", "f8", "c8", "c16",
    "S1", "S7", "U1", "U7",
    ">i2", ">i8", ">u4", ">f4", ">f8", ">c16", ">U3",
)  # fmt: skip
"""Dtypes every backend must store bit-exactly (numeric, bool, complex, fixed-width bytes/str, big-endian)."""

OPTIONAL_DTYPES: tuple[Any, ...] = (
    "g",
    "G",
    "<M8[ns]",
    "<M8[D]",
    ">M8[s]",
    "<m8[s]",
    "<m8[us]",
    "V5",
    [("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")],
    [("x", [("y", ">i2"), ("z", "U2")]), ("t", "<M8[ms]")],
)
"""Dtypes checked where the backend supports them (``dtype_problem(dtype) is None``)."""

_ALPHABET = np.array(list("aZ09 _é€\u4e2d𝄞\x00"), dtype="U1")


def sample_array(dtype: Any, shape: tuple[int, ...], seed: int = 0) -> np.ndarray[Any, Any]:
    """A deterministic array of ``dtype`` and ``shape`` full of awkward values (NaN payloads, NaT, nulls).

    Floats, ints, datetimes, bytes and voids take random bit patterns; bools are
    0/1; strings random code points of several widths (ASCII to astral).

    Example:
        >>> sample_array(">i2", (2,), seed=1).dtype
        dtype('>i2')
    """
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if dtype.fields is not None:
        out = np.zeros(shape, dtype)
        for k, name in enumerate(dtype.names or ()):
            sub = dtype.fields[name][0]
            base, subshape = (sub.base, sub.shape) if sub.subdtype is not None else (sub, ())
            out[name] = sample_array(base, (*shape, *subshape), seed + 101 * (k + 1))
        return out
    n = math.prod(shape)
    if dtype.kind == "b":
        return rng.integers(0, 2, n).astype(dtype).reshape(shape)
    if dtype.kind == "U":
        width = dtype.itemsize // 4
        chars = rng.choice(_ALPHABET, size=(n, width))
        flat = np.array(["".join(row).rstrip("\x00") for row in chars], dtype=dtype)
        return flat.reshape(shape)
    raw = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    out_raw: np.ndarray[Any, Any] = raw.view(dtype).reshape(shape)
    return out_raw


def assert_identical(actual: Any, expected: np.ndarray[Any, Any]) -> None:
    """Assert same shape, same dtype (byte order included) and the same bits in every field.

    Structured arrays are compared field by field (padding bytes are free).

    Example:
        >>> a = np.array([np.nan, -0.0])
        >>> assert_identical(a.copy(), a)
        >>> assert_identical(np.array([np.nan, 0.0]), a)
        Traceback (most recent call last):
        ...
        AssertionError: bits differ for dtype float64 at 1 of 2 elements
    """
    got = np.asarray(actual)
    if got.shape != expected.shape:
        raise AssertionError(f"shape {got.shape} != {expected.shape}")
    if got.dtype != expected.dtype:
        raise AssertionError(f"dtype {got.dtype!r} != {expected.dtype!r}")
    if expected.dtype.fields is not None:
        for name in expected.dtype.names or ():
            assert_identical(got[name], expected[name])
        return
    if expected.size == 0:
        return
    a = np.ascontiguousarray(got).reshape(-1).view(np.uint8).reshape(got.size, -1)
    b = np.ascontiguousarray(expected).reshape(-1).view(np.uint8).reshape(expected.size, -1)
    bad = np.flatnonzero((a != b).any(axis=1))
    if bad.size:
        raise AssertionError(
            f"bits differ for dtype {expected.dtype} at {bad.size} of {expected.size} elements"
        )


class CountingLock:
    """A writer-lock factory for tests: counts acquisitions and whether it is held.

    Example:
        >>> lock = CountingLock()
        >>> with lock():
        ...     lock.held
        True
        >>> lock.count, lock.held
        (1, False)
    """

    def __init__(self) -> None:
        self.count = 0
        self.held = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.count += 1
        self.held = True
        try:
            yield
        finally:
            self.held = False


def index_cases(shape: tuple[int, int] = (6, 5)) -> list[Any]:
    """Indices covering numpy's indexing on a 2-d array of ``shape`` (rows >= 6, columns >= 5).

    Example:
        >>> len(index_cases()) > 20
        True
    """
    rows, cols = shape
    mask_rows = np.arange(rows) % 2 == 0
    mask_2d = (np.arange(rows * cols).reshape(shape) % 3) == 0
    return [
        0,
        -1,
        (2, 3),
        (-1, -cols),
        slice(1, 4),
        slice(None, None, -1),
        slice(rows - 1, 0, -2),
        slice(10 * rows, None),
        (slice(None), 2),
        (slice(1, None, 2), slice(None, None, -3)),
        (Ellipsis, 1),
        (1, Ellipsis),
        Ellipsis,
        (),
        (None, 1),
        (slice(None), None, slice(1, 3)),
        [0, 2, 2, rows - 1],
        [-1, 0],
        ([0, 1], [cols - 1, 3]),
        (slice(None), [3, 0]),
        (np.array([[0], [rows - 1]]), np.array([[1, 2]])),
        ([1, 2], slice(None), None),
        mask_rows,
        (mask_rows, 1),
        (slice(None), np.arange(cols) > 2),
        mask_2d,
        (True,),
        (False, 0),
        np.array([], dtype=np.intp),
        (2, [1, 1, 0]),
    ]


INDEX_CASES = index_cases()
"""The indices :class:`BackendTests` checks on a (6, 5) array."""


def run_plain_loader(root: Path, source: str, *, module: str = "plain_item") -> dict[str, Any]:
    """Run a backend's plain loader in a fresh interpreter where persist_hooks cannot be imported.

    Writes ``root/<module>.py`` (the loader source) and runs ``python -I -S``
    with ``sys.path`` rebuilt from this process' entries minus those holding
    persist_hooks, plus a ``sys.meta_path`` blocker for ``persist_hooks``.  The
    child saves each of ``_arrays`` with ``numpy.save`` (``numpy.asarray`` of
    it) and reports what it saw.  Returns ``{"arrays": {key: ndarray},
    "types": {key: type name}, "names": [names the module left],
    "persist_hooks_imported": bool}``.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> out = run_plain_loader(d, "_arrays = {'a': __import__('numpy').arange(2)}")
        >>> out["names"], out["arrays"]["a"].tolist(), out["persist_hooks_imported"]
        (['_arrays'], [0, 1], False)
    """
    root = Path(root)
    item = root / f"{module}.py"
    item.write_text(source + "\n", encoding="utf8")
    out_dir = root.parent / f"{root.name}_plain_out"
    out_dir.mkdir(exist_ok=True)
    import numpy

    numpy_home = str(Path(numpy.__file__).resolve().parent.parent)
    paths = [
        p for p in sys.path if p and Path(p).is_dir() and not (Path(p) / "persist_hooks").exists()
    ]
    if numpy_home not in paths:
        paths.append(numpy_home)  # the meta-path blocker still hides persist_hooks
    child = textwrap.dedent(
        """
        import json, runpy, sys
        class _Block:
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name == "persist_hooks" or name.startswith("persist_hooks."):
                    raise ModuleNotFoundError("persist_hooks is blocked in this test", name=name)
                return None
        sys.meta_path.insert(0, _Block)
        sys.path[:0] = PATHS
        ns = runpy.run_path(ITEM, run_name=MODULE)
        import numpy
        arrays = ns["_arrays"]
        types = {}
        for key, value in arrays.items():
            types[key] = type(value).__module__ + "." + type(value).__qualname__
            numpy.save(OUT + "/" + str(list(arrays).index(key)) + ".npy", numpy.asarray(value))
        print(json.dumps({
            "keys": list(arrays),
            "types": types,
            "names": sorted(k for k in ns if not k.startswith("__")),
            "persist_hooks_imported": any(m.split(".")[0] == "persist_hooks" for m in sys.modules),
        }))
        """
    )
    child = (
        child.replace("PATHS", repr(paths))
        .replace("ITEM", repr(str(item)))
        .replace("MODULE", repr(module))
        .replace("OUT", repr(str(out_dir)))
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", child],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(out_dir),
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"plain loader failed in a fresh interpreter:\n{proc.stderr}\n--- source:\n{source}"
        )
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["arrays"] = {
        key: np.load(out_dir / f"{i}.npy", allow_pickle=False)
        for i, key in enumerate(report.pop("keys"))
    }
    return report


class BackendTests:
    """The storage-backend conformance suite; subclass it and set :attr:`backend_cls`.

    Example:
        >>> from persist_hooks.backends.npy import NpyBackend
        >>> class TestNpy(BackendTests):
        ...     backend_cls = NpyBackend
        >>> TestNpy.backend_cls.name
        'npy'
    """

    backend_cls: ClassVar[type[Backend]]
    """The backend class under test."""
    backend_options: ClassVar[dict[str, Any]] = {}
    """Options to construct it with (exercise non-defaults here)."""
    invalid_options: ClassVar[list[dict[str, Any]]] = []
    """Option dicts whose (known) keys have invalid values: each must raise BackendError naming the key."""
    registered: ClassVar[bool] = True
    """Whether the backend is expected to be installed (``plugins.backend_class(name)`` finds it)."""

    # ------------------------------------------------------------------ fixtures and hooks

    @pytest.fixture
    def backend(self) -> Backend:
        """The backend instance under test."""
        return self.backend_cls(**self.backend_options)

    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        """An empty DataSet directory."""
        d = tmp_path / "ds"
        d.mkdir()
        return d

    def corrupt(
        self,
        root: Path,
        entry: Mapping[str, Any],
        how: Literal["truncate-data", "truncate-header", "garbage"],
    ) -> str:
        """Damage the stored data of ``entry``; return a string the FormatError must contain.

        The default handles one file per entry; override for directory stores.
        """
        path = root / entry["path"]
        size = path.stat().st_size
        if how == "truncate-data":
            with open(path, "r+b") as fh:
                fh.truncate(size - 1)
        elif how == "truncate-header":
            with open(path, "r+b") as fh:
                fh.truncate(min(size - 1, 10))
        else:
            path.write_bytes(sample_array("u1", (max(size, 256),), seed=7).tobytes())
        return str(entry["path"])

    def _write_one(
        self, backend: Backend, root: Path, arr: np.ndarray[Any, Any], stem: str = "x_data/g1"
    ) -> dict[str, Any]:
        entries = backend.write(root, stem, {"array_0": arr})
        assert list(entries) == ["array_0"]
        return entries["array_0"]

    def _require(self, flag: str) -> None:
        if not getattr(self.backend_cls, flag):
            pytest.skip(f"{self.backend_cls.__name__}.{flag} is False")

    # ------------------------------------------------------------------ class and options

    def test_class_attributes(self) -> None:
        cls = self.backend_cls
        assert isinstance(cls.name, str) and cls.name.isidentifier()
        assert isinstance(cls.distribution, str) and cls.distribution
        for flag in (
            "supports_append",
            "supports_partial_writes",
            "supports_memmap",
            "supports_attrs",
            "supports_structured",
            "supports_datetime",
            "supports_void",
            "supports_longdouble",
        ):
            assert isinstance(getattr(cls, flag), bool), flag

    def test_registered_as_plugin(self) -> None:
        if not self.registered:
            pytest.skip("backend not expected to be installed")
        from . import plugins

        assert self.backend_cls.name in plugins.backends()
        assert plugins.backend_class(self.backend_cls.name) is self.backend_cls

    def test_options_are_json_and_rebuild(self, backend: Backend) -> None:
        options = backend.options
        assert json.loads(json.dumps(options)) == options
        assert set(options) == set(self.backend_cls.option_defaults)
        again = self.backend_cls(**options)
        assert again == backend and again.options == options
        assert repr(backend).startswith(type(backend).__name__ + "(")

    def test_unknown_option_is_named(self) -> None:
        with pytest.raises(BackendError, match="no_such_option") as info:
            self.backend_cls(no_such_option=1)
        for valid in self.backend_cls.option_defaults:
            assert valid in str(info.value)

    def test_invalid_option_values(self) -> None:
        if not self.invalid_options:
            pytest.skip("no invalid option values declared")
        for bad in self.invalid_options:
            with pytest.raises(BackendError) as info:
                self.backend_cls(**bad)
            assert any(key in str(info.value) for key in bad), (bad, str(info.value))

    # ------------------------------------------------------------------ dtypes

    @pytest.mark.parametrize(
        "dtype", [object, [("a", "i4"), ("o", object)]], ids=["object", "struct-object"]
    )
    def test_object_dtype_refused(self, backend: Backend, root: Path, dtype: Any) -> None:
        dt = np.dtype(dtype)
        with pytest.raises(BackendError, match="object") as info:
            backend.check_dtype(dt)
        assert backend.name in str(info.value)
        with pytest.raises(BackendError):
            backend.write(root, "x_data/g1", {"ok": np.arange(3), "bad": np.empty(2, dt)})
        assert list(root.rglob("*")) == []

    @pytest.mark.parametrize("dtype", REQUIRED_DTYPES)
    def test_roundtrip_required_dtype(self, backend: Backend, root: Path, dtype: str) -> None:
        assert backend.dtype_problem(np.dtype(dtype)) is None, f"{backend.name} must store {dtype}"
        self._check_roundtrip(backend, root, sample_array(dtype, (7, 3), seed=len(dtype)))

    @pytest.mark.parametrize(
        "dtype", OPTIONAL_DTYPES, ids=[str(np.dtype(d)) for d in OPTIONAL_DTYPES]
    )
    def test_roundtrip_optional_dtype(self, backend: Backend, root: Path, dtype: Any) -> None:
        dt = np.dtype(dtype)
        if backend.dtype_problem(dt) is not None:
            with pytest.raises(BackendError):
                backend.check_dtype(dt)
            pytest.skip(f"{backend.name} does not store {dt}: {backend.dtype_problem(dt)}")
        backend.check_dtype(dt)
        self._check_roundtrip(backend, root, sample_array(dt, (4, 3), seed=11))

    @pytest.mark.parametrize("dtype", ["<f8", ">i4", "U3", "?"])
    def test_dask_arrays_are_written_with_their_data(
        self, backend: Backend, root: Path, dtype: str
    ) -> None:
        """A dask array's placeholder (see :mod:`persist_hooks.backends.lazy`) is stored as
        the dask array's data, whether the backend writes it lazily or gets it computed."""
        da = pytest.importorskip("dask.array")
        from . import Archive

        data = sample_array(dtype, (50, 3), seed=5)
        archive = Archive(array_threshold=10)
        archive.insert(x=da.from_array(data, chunks=(20, 3)))
        (placeholder,) = archive.data.values()
        assert placeholder.strides == (0, 0)  # no data: the backend must get it from dask
        entry = backend.write(root, "x_data/g1", archive.data)["array_0"]
        assert entry["shape"] == [50, 3] and dtype_from_json(entry["dtype"]) == data.dtype
        assert_identical(np.asarray(backend.open(root, entry)), data)

    def _check_roundtrip(self, backend: Backend, root: Path, arr: np.ndarray[Any, Any]) -> None:
        original = arr.copy()
        entry = self._write_one(backend, root, arr)
        assert_identical(arr, original)  # the input is untouched
        assert json.loads(json.dumps(entry)) == entry
        assert entry["shape"] == list(arr.shape)
        assert dtype_from_json(entry["dtype"]) == arr.dtype
        for rel in backend.paths([entry]):
            assert (root / rel).exists(), rel
        assert_identical(backend.open(root, entry), original)
        assert_identical(backend.open(root, entry, trusted=False), original)
        assert_identical(np.asarray(backend.open(root, entry, mode="a")), original)

    @pytest.mark.parametrize(
        "shape", [(), (0,), (0, 3), (3, 0), (1,), (5, 4, 3), (2, 1, 1, 2)], ids=str
    )
    @pytest.mark.parametrize("dtype", ["<f8", ">i4", "U3"])
    def test_roundtrip_shapes(
        self, backend: Backend, root: Path, shape: tuple[int, ...], dtype: str
    ) -> None:
        self._check_roundtrip(backend, root, sample_array(dtype, shape, seed=3))

    @pytest.mark.parametrize(
        "view",
        [
            lambda a: a[::2],
            lambda a: a[:, ::-1],
            lambda a: a[::-3, 1::2],
            lambda a: a.T,
            lambda a: np.asfortranarray(a),
            lambda a: np.asfortranarray(a.reshape(4, 5, 3)),
            lambda a: a.astype(">f8")[1:, ::2],
            lambda a: np.broadcast_to(a[0], (3, *a[0].shape)),
            lambda a: a[:, 0],
        ],
        ids=[
            "rows-step",
            "reversed",
            "mixed",
            "transpose",
            "fortran",
            "fortran-3d",
            "big-endian",
            "broadcast",
            "column",
        ],
    )
    def test_roundtrip_layouts(self, backend: Backend, root: Path, view: Any) -> None:
        base = sample_array("<f8", (20, 3), seed=5)
        arr = view(base)
        expected = np.array(arr, order="C")
        entry = self._write_one(backend, root, arr)
        assert_identical(backend.open(root, entry), expected)
        assert_identical(backend.open(root, entry, mode="a")[...], expected)

    def test_many_arrays(self, backend: Backend, root: Path) -> None:
        arrays = {
            f"array_{i}": sample_array(dt, (i + 1, 2), seed=i)
            for i, dt in enumerate(["f8", "i2", "S4", "?"])
        }
        entries = backend.write(root, "x_data/g4", arrays)
        assert list(entries) == list(arrays)
        for key, arr in arrays.items():
            assert_identical(backend.open(root, entries[key]), arr)

    def test_write_durable(self, backend: Backend, root: Path) -> None:
        arr = sample_array("f4", (10, 2), seed=2)
        entry = backend.write(root, "x_data/g1", {"a": arr}, durable=True)["a"]
        assert_identical(backend.open(root, entry), arr)

    @pytest.mark.parametrize("arrays", ["none", "small", "large-small-large"])
    def test_on_entries_gets_every_entry_once(
        self, backend: Backend, root: Path, arrays: str
    ) -> None:
        """``on_entries`` (backends that declare ``supports_on_entries``) sees exactly the
        entries ``write`` returns, once, before it returns; large arrays are checksummed
        on a pool thread, which is where it may run."""
        if not backend.supports_on_entries:
            pytest.skip(f"{backend.name} does not take on_entries")
        big = sample_array("<f8", (600, 300), seed=3)  # over 1 MiB
        data = {
            "none": {},
            "small": {"a": np.arange(5)},
            "large-small-large": {"a": big, "b c": np.arange(3), "d": big[::-1]},
        }[arrays]
        seen: list[dict[str, Any]] = []
        entries = backend.write(root, "x_data/g1", data, on_entries=seen.append)  # type: ignore[call-arg]
        assert seen == [entries] and list(entries) == list(data)
        for key, arr in data.items():
            assert entries[key]["checksum"] == checksum(np.ascontiguousarray(arr))
            assert_identical(backend.open(root, entries[key]), arr)

    @pytest.mark.parametrize("size", [10, 200_000], ids=["small", "large"])
    def test_failing_on_entries_fails_the_write(
        self, backend: Backend, root: Path, size: int
    ) -> None:
        if not backend.supports_on_entries:
            pytest.skip(f"{backend.name} does not take on_entries")

        def on_entries(entries: dict[str, Any]) -> None:
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError, match="No space"):
            backend.write(
                root, "x_data/g1", {"a": np.arange(size, dtype="<f8")}, on_entries=on_entries
            )  # type: ignore[call-arg]
        assert list(root.rglob("*")) == []

    # ------------------------------------------------------------------ files

    def test_never_overwrites(self, backend: Backend, root: Path) -> None:
        first = sample_array("i8", (5,), seed=1)
        entry = self._write_one(backend, root, first)
        with pytest.raises(FileExistsError):
            backend.write(root, "x_data/g1", {"array_0": sample_array("i8", (5,), seed=2)})
        assert_identical(backend.open(root, entry), first)

    def test_failed_write_removes_what_it_wrote(self, backend: Backend, root: Path) -> None:
        arrays = {"k0": np.arange(4.0), "k1": np.arange(5)}
        entries = backend.write(root, "x_data/g1", arrays)
        backend.delete(root, [entries["k0"]])
        before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
        with pytest.raises(FileExistsError):
            backend.write(root, "x_data/g1", arrays)  # k0 succeeds again, k1 collides
        after = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
        assert after == before
        assert_identical(backend.open(root, entries["k1"]), arrays["k1"])

    def test_failed_write_removes_new_directories(self, backend: Backend, root: Path) -> None:
        class Exploding(dict[str, Any]):
            def items(self) -> Any:
                yield "a", np.arange(3)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            backend.write(root, "deep/er/g1", Exploding())
        assert list(root.rglob("*")) == []

    @pytest.mark.parametrize("layout", ["C", "F", "strided"])
    def test_checksum_recorded(self, backend: Backend, root: Path, layout: str) -> None:
        """Entries record the CRC-32 of the C-order bytes; the data read back has it too."""
        base = sample_array("<f8", (600, 300), seed=13)  # over 1 MiB: checksummed in a thread
        arr = {"C": base, "F": np.asfortranarray(base), "strided": base[::2, ::3]}[layout]
        entry = self._write_one(backend, root, arr)
        assert entry["checksum"] == checksum(np.ascontiguousarray(arr))
        assert checksum(np.asarray(backend.open(root, entry))) == entry["checksum"]

    def test_proxy_write_marks_modified(self, backend: Backend, root: Path) -> None:
        """A write through a proxy records (once, O(1)) that the checksum is stale."""
        if not (self.backend_cls.supports_partial_writes or self.backend_cls.supports_append):
            pytest.skip("no in-place writes")
        entry = self._write_one(backend, root, np.arange(12.0).reshape(4, 3))
        marker = modified_marker(root, entry)
        proxy = backend.open(root, entry, mode="a")
        assert not marker.exists()
        np.asarray(proxy)
        assert not marker.exists()  # reading changes nothing
        if self.backend_cls.supports_append:
            proxy.append(np.ones(3))
        else:
            proxy[0] = 5.0
        assert marker.exists()
        backend.delete(root, [entry])
        assert not marker.exists()

    def test_delete(self, backend: Backend, root: Path) -> None:
        entries = backend.write(root, "x_data/g1", {"a": np.arange(3), "b": np.ones((2, 2))})
        backend.delete(root, [entries["a"]])
        assert_identical(backend.open(root, entries["b"]), np.ones((2, 2)))
        with pytest.raises(FileNotFoundError):
            np.asarray(backend.open(root, entries["a"]))  # a lazy backend may notice on access
        backend.delete(root, [entries["a"], entries["b"]])  # missing ones are ignored
        backend.delete(root, entries.values())
        leftovers = [p for p in root.rglob("*") if p.is_file()]
        assert leftovers == []

    def test_paths(self, backend: Backend, root: Path) -> None:
        entries = backend.write(root, "x_data/g2", {"a": np.arange(3), "b": np.zeros(0)})
        paths = backend.paths(entries.values())
        assert paths and all(
            isinstance(p, str) and not p.startswith("/") and "\\" not in p for p in paths
        )
        assert {e["path"] for e in entries.values()} <= paths
        for rel in paths:
            assert (root / rel).exists()
        backend.delete(root, entries.values())
        assert not any((root / rel).exists() for rel in paths)

    def test_paths_outside_root_refused(self, backend: Backend, root: Path) -> None:
        entry = self._write_one(backend, root, np.arange(3))
        for bad in ("../outside.npy", "/etc/passwd"):
            hostile = dict(entry, path=bad)
            with pytest.raises(FormatError):
                backend.open(root, hostile)
            with pytest.raises(FormatError):
                backend.delete(root, [hostile])

    def test_describe(self, backend: Backend, root: Path) -> None:
        entry = self._write_one(backend, root, np.zeros((1000, 3)))
        text = backend.describe(entry)
        assert "\n" not in text
        assert "(1000, 3)" in text and entry["path"] in text and "float64" in text

    # ------------------------------------------------------------------ reading errors

    @pytest.mark.parametrize("mode", ["r", "a"])
    def test_open_missing_file(self, backend: Backend, root: Path, mode: Literal["r", "a"]) -> None:
        entry = self._write_one(backend, root, np.arange(3))
        backend.delete(root, [entry])
        with pytest.raises(FileNotFoundError):
            backend.open(root, entry, mode=mode)

    @pytest.mark.parametrize("change", ["trailing", "ndim", "dtype", "both"])
    def test_untrusted_rejects_mismatch(self, backend: Backend, root: Path, change: str) -> None:
        entry = self._write_one(backend, root, np.arange(12.0).reshape(3, 4))
        forged = dict(entry)
        if change in ("trailing", "both"):
            forged["shape"] = [4, 3]
        if change == "ndim":
            forged["shape"] = [12]
        if change in ("dtype", "both"):
            forged["dtype"] = "<i8"
        with pytest.raises(FormatError) as info:
            backend.open(root, forged, trusted=False)
        assert entry["path"] in str(info.value)
        assert_identical(backend.open(root, entry, trusted=False), np.arange(12.0).reshape(3, 4))

    def test_untrusted_accepts_grown_axis0(self, backend: Backend, root: Path) -> None:
        """Appends do not rewrite the item header: its axis-0 length may be stale."""
        arr = np.arange(12.0).reshape(3, 4)
        entry = self._write_one(backend, root, arr)
        if self.backend_cls.supports_append:
            backend.open(root, entry, mode="a").append(np.ones(4))
            arr = np.vstack([arr, np.ones(4)])
        else:
            entry = dict(entry, shape=[7, 4])
        assert_identical(backend.open(root, entry, trusted=False), arr)

    @pytest.mark.parametrize("how", ["truncate-data", "truncate-header", "garbage"])
    @pytest.mark.parametrize("mode", ["r", "a"])
    @pytest.mark.parametrize("trusted", [True, False])
    def test_damaged_file(
        self, backend: Backend, root: Path, how: Any, mode: Literal["r", "a"], trusted: bool
    ) -> None:
        entry = self._write_one(backend, root, sample_array("<f8", (64, 4), seed=9))
        name = self.corrupt(root, entry, how)
        with pytest.raises(FormatError) as info:
            opened = backend.open(root, entry, mode=mode, trusted=trusted)
            np.asarray(opened)  # a lazy backend may only notice on access
        assert name in str(info.value)

    # ------------------------------------------------------------------ plain Python

    def test_plain_loader_leaves_only_arrays(self, backend: Backend, root: Path) -> None:
        entries = backend.write(
            root, "x_data/g1", {"array_0": np.arange(3), "array_1": np.zeros((2, 0))}
        )
        source = backend.plain_loader(entries)
        compile(source, "<plain_loader>", "exec")
        namespace: dict[str, Any] = {"__file__": str(root / "x.py"), "__name__": "x"}
        exec(source, namespace)
        assert sorted(k for k in namespace if not k.startswith("__")) == ["_arrays"]
        assert sorted(namespace["_arrays"]) == ["array_0", "array_1"]
        assert_identical(np.asarray(namespace["_arrays"]["array_0"]), np.arange(3))

    def test_plain_loader_without_persist_hooks(self, backend: Backend, root: Path) -> None:
        candidates: list[Any] = [*REQUIRED_DTYPES, *OPTIONAL_DTYPES]
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        for i, dt in enumerate(candidates):
            if backend.dtype_problem(np.dtype(dt)) is None:
                arrays[f"array_{i}"] = sample_array(dt, (3, 2), seed=i)
        n = len(candidates)
        arrays[f"array_{n}"] = np.array(2.5)
        arrays[f"array_{n + 1}"] = np.zeros((0, 4), ">i4")
        arrays[f"array_{n + 2}"] = np.asfortranarray(sample_array("f8", (4, 3), seed=1))
        entries = backend.write(root, "x_data/g1", arrays)
        report = run_plain_loader(root, backend.plain_loader(entries))
        assert report["persist_hooks_imported"] is False
        assert report["names"] == ["_arrays"]
        assert list(report["arrays"]) == list(arrays)
        for key, arr in arrays.items():
            assert_identical(report["arrays"][key], arr)

    # ------------------------------------------------------------------ proxies

    @pytest.fixture
    def reference(self) -> np.ndarray[Any, Any]:
        """The (6, 5) array the proxy tests index."""
        return sample_array("<i8", (6, 5), seed=4) % 1000

    def _proxy(
        self, backend: Backend, root: Path, arr: np.ndarray[Any, Any], **kw: Any
    ) -> ArrayProxy:
        entry = self._write_one(backend, root, arr)
        proxy = backend.open(root, entry, mode="a", **kw)
        assert isinstance(proxy, ArrayProxy)
        return proxy

    def test_proxy_metadata(
        self, backend: Backend, root: Path, reference: np.ndarray[Any, Any]
    ) -> None:
        p = self._proxy(backend, root, reference)
        assert (p.shape, p.dtype, p.ndim, p.size, p.nbytes, len(p)) == (
            reference.shape, reference.dtype, reference.ndim, reference.size, reference.nbytes, len(reference),
        )  # fmt: skip
        assert not p.read_only
        assert str(reference.shape) in repr(p)

    @pytest.mark.parametrize("key", INDEX_CASES, ids=[f"i{n}" for n in range(len(INDEX_CASES))])
    def test_proxy_getitem(
        self, backend: Backend, root: Path, reference: np.ndarray[Any, Any], key: Any
    ) -> None:
        p = self._proxy(backend, root, reference)
        got, want = p[key], reference[key]
        assert type(got) is type(want) or (
            isinstance(got, np.ndarray) and isinstance(want, np.ndarray)
        )
        assert_identical(np.asarray(got), np.asarray(want))

    @pytest.mark.parametrize("key", INDEX_CASES, ids=[f"i{n}" for n in range(len(INDEX_CASES))])
    def test_proxy_setitem(
        self, backend: Backend, root: Path, reference: np.ndarray[Any, Any], key: Any
    ) -> None:
        self._require("supports_partial_writes")
        lock = CountingLock()
        p = self._proxy(backend, root, reference, writer_lock=lock)
        want = reference.copy()
        target = np.shape(want[key])
        value = -(np.arange(math.prod(target), dtype=want.dtype).reshape(target) + 1)
        want[key] = value
        p[key] = value
        assert lock.count == 1
        assert_identical(p[...], want)
        p[key] = 7  # broadcasting a scalar
        want[key] = 7
        assert_identical(p[...], want)

    def test_proxy_setitem_errors_like_numpy(
        self, backend: Backend, root: Path, reference: np.ndarray[Any, Any]
    ) -> None:
        self._require("supports_partial_writes")
        p = self._proxy(backend, root, reference)
        cases: list[tuple[Any, Any]] = [((0, slice(None)), np.zeros(4)), ((slice(None), -6), 1)]
        for key, value in cases:
            with pytest.raises((ValueError, IndexError)):
                reference.copy()[key] = value
            with pytest.raises((ValueError, IndexError)):
                p[key] = value
        with pytest.raises(IndexError):
            p[0, 0, 0]
        assert_identical(p[...], reference)

    def test_proxy_append(
        self, backend: Backend, root: Path, reference: np.ndarray[Any, Any]
    ) -> None:
        self._require("supports_append")
        lock = CountingLock()
        p = self._proxy(backend, root, reference, writer_lock=lock)
        one = np.arange(5)
        many = np.arange(15).reshape(3, 5) * 10
        p.append(one)
        p.append(many)
        p.append(many[:0])
        p.append([[1, 2, 3, 4, 5]])
        want = np.concatenate([reference, one[None], many, [[1, 2, 3, 4, 5]]])
        assert lock.count >= 3
        assert p.shape == want.shape and len(p) == len(want)
        assert_identical(p[...], want)
        with pytest.raises(ValueError):
            p.append(np.zeros((2, 4), "i8"))
        with pytest.raises(TypeError):
            p.append(np.zeros(5, "f8") + 0.5)  # same_kind casting refuses float -> int
        assert_identical(p[...], want)

    def test_proxy_append_seen_by_new_readers(self, backend: Backend, root: Path) -> None:
        self._require("supports_append")
        arr = np.arange(6.0).reshape(3, 2)
        entry = self._write_one(backend, root, arr)
        p = backend.open(root, entry, mode="a")
        p.append(np.array([[6.0, 7.0]]))
        grown = dict(entry, shape=[4, 2])
        want = np.arange(8.0).reshape(4, 2)
        assert_identical(backend.open(root, grown, trusted=False), want)
        other = copy.copy(p)
        assert other.shape == (4, 2)
        other.append(np.zeros((2, 2)))
        assert p.shape == (6, 2)  # another handle on the same data

    def test_proxy_1d_append_scalar_rows(self, backend: Backend, root: Path) -> None:
        self._require("supports_append")
        p = self._proxy(backend, root, np.arange(3, dtype=">f4"))
        for x in (3, 4.5):
            p.append(x)
        p.append(np.arange(5, 8, dtype="<f8"))
        assert_identical(p[...], np.array([0, 1, 2, 3, 4.5, 5, 6, 7], dtype=">f4"))

    def test_proxy_grows_on_assignment_past_end(self, backend: Backend, root: Path) -> None:
        self._require("supports_append")
        p = self._proxy(backend, root, np.ones((2, 3)))
        p[4] = 5.0
        p[5:7] = np.full((2, 3), 6.0)
        p[[8, 7]] = np.array([[8.0] * 3, [7.0] * 3])
        want = np.ones((9, 3))
        want[2:4] = 0
        want[4], want[5:7], want[7], want[8] = 5, 6, 7, 8
        assert_identical(p[...], want)
        with pytest.raises(ValueError):
            p[12] = np.zeros(4)  # bad value: no growth
        assert p.shape == (9, 3)
        p.resize(3)
        assert_identical(p[...], want[:3])
        p.resize(5)
        assert_identical(p[...], np.concatenate([want[:3], np.zeros((2, 3))]))

    def test_proxy_iter_and_array(self, backend: Backend, root: Path) -> None:
        big = sample_array("<f8", (70_000, 3), seed=8)  # 1.7 MB: more than one iteration block
        p = self._proxy(backend, root, big)
        rows = list(iter(p))
        assert len(rows) == len(big)
        assert_identical(np.stack(rows), big)
        assert_identical(np.asarray(p), big)
        assert_identical(np.asarray(p, dtype=">f8"), big.astype(">f8"))
        assert float(np.sum(p[:10])) == float(np.sum(big[:10]))
        with pytest.raises(ValueError):
            p.__array__(copy=False)

    def test_proxy_zero_d(self, backend: Backend, root: Path) -> None:
        p = self._proxy(backend, root, np.array(3.5))
        assert p.shape == () and p[()] == 3.5 and float(np.asarray(p)) == 3.5
        with pytest.raises(TypeError):
            len(p)
        with pytest.raises(TypeError):
            p.append(1.0)
        if self.backend_cls.supports_partial_writes:
            p[()] = 4.0
            assert p[...] == 4.0

    def test_proxy_read_only(
        self, backend: Backend, root: Path, reference: np.ndarray[Any, Any]
    ) -> None:
        entry = self._write_one(backend, root, reference)
        p = backend.open(root, entry, mode="a")
        ro = pickle.loads(pickle.dumps(p))
        assert ro.read_only and isinstance(ro, ArrayProxy)
        assert_identical(ro[...], reference)
        attempts: list[Callable[[], object]] = [
            lambda: ro.__setitem__(0, 1),
            lambda: ro.append(reference[0]),
            lambda: ro.resize(2),
            lambda: operator.setitem(ro.attrs, "a", 1),
        ]
        for attempt in attempts:
            with pytest.raises(ReadOnlyError, match="mode='a'"):
                attempt()
        assert_identical(p[...], reference)
        plain = backend.open(root, entry, mode="r")
        with pytest.raises(ValueError):
            plain[0] = 1

    def test_proxy_copy_policy(
        self, backend: Backend, root: Path, reference: np.ndarray[Any, Any]
    ) -> None:
        p = self._proxy(backend, root, reference)
        shallow = copy.copy(p)
        assert isinstance(shallow, ArrayProxy) and shallow is not p and not shallow.read_only
        deep: Any = copy.deepcopy(p)  # the policy: an in-memory ndarray
        assert type(deep) is np.ndarray
        assert_identical(deep, reference)
        if self.backend_cls.supports_partial_writes:
            shallow[0, 0] = 12345
            assert p[0, 0] == 12345 and deep[0, 0] == reference[0, 0]

    def test_proxy_attrs(self, backend: Backend, root: Path) -> None:
        self._require("supports_attrs")
        entry = self._write_one(backend, root, np.arange(3))
        lock = CountingLock()
        p = backend.open(root, entry, mode="a", writer_lock=lock)
        assert dict(p.attrs) == {}
        p.attrs["units"] = "m"
        p.attrs.update(scale=2.5, tags=["a", "b"])
        del p.attrs["scale"]
        assert lock.count == 4
        again = backend.open(root, entry, mode="a")
        assert dict(again.attrs) == {"units": "m", "tags": ["a", "b"]}
        with pytest.raises(KeyError):
            again.attrs["scale"]
        backend.delete(root, [entry])
        assert [p for p in root.rglob("*") if p.is_file()] == []

    def test_proxy_durable_writes(self, backend: Backend, root: Path) -> None:
        entry = self._write_one(backend, root, np.zeros((2, 2)))
        p = backend.open(root, entry, mode="a", durable=True)
        if self.backend_cls.supports_partial_writes:
            p[0] = 1.0
        if self.backend_cls.supports_append:
            p.append([2.0, 2.0])
        got = np.asarray(p)
        assert got[0].tolist() == (
            [1.0, 1.0] if self.backend_cls.supports_partial_writes else [0.0, 0.0]
        )

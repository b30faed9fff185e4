"""The objects the persist 3.2.1 fixtures hold, and a strict comparison.

Imported both by the generator (running under persist 3.2.1) and by the tests, so the
fixtures and the expectations cannot drift apart.  Only numpy and the standard library.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DATASET = "p321data"
"""A DataSet written by persist 3.2.1 with ``data_format="npy"`` (the default)."""

NPZ_DATASET = "p321npz"
"""A DataSet written by persist 3.2.1 with ``data_format="npz"``."""

ARCHIVE_PACKAGE = "p321arch"
"""A persist 3.2.1 ``Archive`` saved as a package (``save(package=True)``), arrays in npy."""

ARCHIVE_MODULE = "p321mod"
"""A persist 3.2.1 ``Archive`` saved as a module (``save(package=False)``)."""

ARCHIVE_SOURCE = "p321_archive_source.txt"
"""``str(Archive)`` of :func:`archive_objects`; its ``Archive.data`` is in :data:`ARCHIVE_DATA`."""

ARCHIVE_DATA = "p321_archive_data.npz"

ARRAY_THRESHOLD = 10
"""persist's ``array_threshold``: arrays with more elements go to ``<name>_data/``."""


def dataset_items() -> dict[str, Any]:
    """Items assigned with ``ds.<name> = obj``, in this order."""
    return {
        "small": np.arange(5.0),  # below the threshold: inline (numpy.frombuffer)
        "big": np.arange(20.0).reshape(4, 5) * 0.5,  # above: big_data/array_0.npy
        "mixed": {
            "a": [1, 2.5, "s", None, True],
            "t": (1, (2, 3), ()),
            "arr": np.arange(12, dtype=np.int32),  # above: mixed_data/array_0.npy
            "small_arr": np.array([1.5, -2.0], dtype=np.float32),
        },
        "text": "plain ASCII and ünïcødé ✓",
        "numbers": [0, -7, 2.5, 1e-300, -1.7976931348623157e308, float("inf"), 3 + 4j],
        "nested": [{"k": (1, "v")}, [[], {}], ("x",)],
    }


def dataset_info() -> dict[str, Any]:
    """Metadata assigned with ``ds[<name>] = info`` after the items, in this order."""
    return {
        "mixed": {"units": "m", "n": 3},
        "big": "a 4x5 array",
        "metaonly": "a key with metadata and no item",
    }


def inserted() -> list[tuple[Any, Any]]:
    """``ds._insert(obj, info=info)`` calls after the metadata: items ``x_0``, ``x_1``."""
    return [
        (np.ones(15) * 1.2, (15, 1.2)),
        ([1, 2, 3], (3, 2.5)),
    ]


def dataset_keys() -> list[str]:
    """The keys of :data:`DATASET` in the order persist 3.2.1 adds them to ``_info_dict``."""
    keys = list(dataset_items())
    keys += [k for k in dataset_info() if k not in keys]
    keys += [f"x_{i}" for i in range(len(inserted()))]
    return keys


def dataset_objects() -> dict[str, Any]:
    """Every item of :data:`DATASET` (keys with an item file) and its object."""
    objects = dataset_items()
    for i, (obj, _) in enumerate(inserted()):
        objects[f"x_{i}"] = obj
    return objects


def dataset_metadata() -> dict[str, Any]:
    """``_info_dict`` of :data:`DATASET`: every key, ``None`` where no metadata was set."""
    info: dict[str, Any] = dict.fromkeys(dataset_keys())
    info.update(dataset_info())
    for i, (_, meta) in enumerate(inserted()):
        info[f"x_{i}"] = meta
    return info


def npz_items() -> dict[str, Any]:
    """Items of :data:`NPZ_DATASET` (``data_format="npz"``)."""
    return {
        "cube": np.arange(24, dtype=np.int16).reshape(2, 3, 4),
        "pair": (np.linspace(0.0, 1.0, 11), "label"),
    }


def archive_objects() -> dict[str, Any]:
    """Objects of the persist 3.2.1 ``Archive`` saved as :data:`ARCHIVE_PACKAGE`."""
    return {
        "x": [1, 2, {"b": 3.5}],
        "y": np.linspace(0.0, 1.0, 20),
        "t": (1, "a"),
    }


def module_objects() -> dict[str, Any]:
    """Objects of the persist 3.2.1 ``Archive`` saved as :data:`ARCHIVE_MODULE`."""
    return {"z": (1, "two"), "w": {"k": [1.5, None]}}


def assert_same(got: Any, want: Any, path: str = "obj") -> None:
    """Assert ``got`` equals ``want`` with the same types; arrays bit-exact (dtype, shape, bytes).

    ``numpy.memmap`` and lazy array proxies compare as arrays.

    Example:
        >>> assert_same({"a": [1, (2.0,)]}, {"a": [1, (2.0,)]})
    """
    if isinstance(want, np.ndarray):
        arr = np.asarray(got)
        assert isinstance(arr, np.ndarray), f"{path}: {type(got).__name__} is not an array"
        assert arr.dtype == want.dtype, f"{path}: dtype {arr.dtype} != {want.dtype}"
        assert arr.shape == want.shape, f"{path}: shape {arr.shape} != {want.shape}"
        assert np.ascontiguousarray(arr).tobytes() == np.ascontiguousarray(want).tobytes(), (
            f"{path}: array bytes differ"
        )
        return
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{path}[{key!r}]")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), f"{path}: {got!r} is not nan"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


LATER = "later"
"""Item persist 3.2.1 writes into a DataSet that persist_hooks converted."""


def later_item() -> tuple[Any, Any]:
    """``(object, metadata)`` of :data:`LATER`."""
    return [1, np.arange(15, dtype=np.int64)], "written by persist 3.2.1 after conversion"

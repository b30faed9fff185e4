"""persist_hooks.safe: the accepted language, the refusals and their messages, the corpus.

* every archive in ``tests/hostile/`` is refused with :class:`UnsafeArchiveError`
  naming the file, the line and the construct (its ``# expect:`` regex), both by
  :func:`safe.execute` and — unless marked ``# runtime-only`` — by :func:`safe.check`;
  and none of them has any effect (no file created, nothing imported);
* the clean archive of the corpus loads, and each accepted construct of the
  language (docs/format.md) is exercised on its own;
* untrusted npy data: pickled object arrays and headers claiming huge shapes are
  refused before allocation.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import persist_hooks as ph
from persist_hooks import safe
from persist_hooks.errors import ArchiveError, FormatError, UnsafeArchiveError

HOSTILE = Path(__file__).resolve().parent / "hostile"
CORPUS = sorted(p for p in HOSTILE.glob("*.archive") if p.name != "clean.archive")
CANARY = Path("/tmp/persist_hooks_pwned")


def _expect(path: Path) -> tuple[str, bool]:
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first.startswith("# expect: ")
    return first[len("# expect: ") :], "# runtime-only" in text


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 50


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_hostile_archive_is_refused(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expect, runtime = _expect(path)
    modules_before = set(sys.modules)
    CANARY.unlink(missing_ok=True)
    ns: dict[str, Any] = {}
    with pytest.raises(UnsafeArchiveError) as info:
        safe.execute(text, ns, filename=f"mydata/{path.name}")
    message = str(info.value)
    assert re.search(rf"^mydata/{re.escape(path.name)} line \d+: ", message), message
    assert re.search(expect, message), message
    assert "is not allowed" in message
    assert not CANARY.exists()
    assert not {"os", "subprocess", "shutil", "pickle", "io"} & (set(sys.modules) - modules_before)
    if runtime:
        return
    with pytest.raises(UnsafeArchiveError) as info:
        safe.check(text, filename=path.name)
    assert re.search(expect, str(info.value)), str(info.value)


def test_clean_archive_of_the_corpus_loads() -> None:
    text = (HOSTILE / "clean.archive").read_text(encoding="utf-8")
    safe.check(text)
    ns: dict[str, Any] = {}
    safe.execute(text, ns)
    plain: dict[str, Any] = {}
    exec(text, plain)
    assert repr(ns["x"]) == repr(plain["x"])
    assert ns["y"]["me"] is ns["y"]
    assert "_f0" not in ns and "Fraction" not in ns


def test_nothing_is_imported_before_the_whole_source_is_validated() -> None:
    sys.modules.pop("zoneinfo", None)
    src = "from zoneinfo import ZoneInfo\nx = ZoneInfo('UTC')\ny = eval('1')\n"
    with pytest.raises(UnsafeArchiveError, match="line 3: name 'eval'"):
        safe.execute(src, {})
    assert "zoneinfo" not in sys.modules


# -- the accepted language, construct by construct ------------------------------------


def _both(src: str, **kw: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    safe.execute(src, ns, **kw)
    plain: dict[str, Any] = {"__name__": "_persist_hooks_safe_test"}
    try:
        exec(src, plain)  # the single-item tail may put the item into sys.modules
    finally:
        sys.modules.pop("_persist_hooks_safe_test", None)
    public = sorted(k for k in plain if not k.startswith("_"))
    assert sorted(k for k in ns if not k.startswith("_")) == public
    assert repr([plain[k] for k in public]) == repr([ns[k] for k in public])
    return ns


@pytest.mark.parametrize(
    "src",
    [
        "x = [1, -2, 2.5, -0.0, 1j, 'a', b'b', None, True, False, ...]\n",
        "x = (1,)\ny = {1, 2}\nz = {'a': 1, **{'b': 2}}\nw = [*[1, 2], *(3,)]\n",
        "x = float('nan')\ny = -float('inf')\nz = complex(float('inf'), -1.5)\n",
        "x = 0x" + "f" * 1000 + "\ny = -0x10\n",
        "x = range(1, 10, 2)\ny = slice(1, None, 2)\nz = bytearray(b'ab')\nw = frozenset({1})\n",
        "x = type(None)\ny = type(...)\nz = type(NotImplemented)\nw = [Ellipsis, NotImplemented, type, object]\n",
        "x = []\nx.extend([1])\nx.append(x)\ny = {}\ny.update({'y': y})\nz = set()\nz.add(1)\nz.update([2])\n",
        "x = list((1, 2))\ny = tuple(x)\nz = dict([(1, 2)])\nw = set(x)\nv = str(1)\nu = int('5')\nt = bool(1)\ns = bytes(b'x')\n",
        "from datetime import timezone, timedelta\nx = timezone.utc\ny = timezone(timedelta(hours=1), 'X')\n",
        "from types import SimpleNamespace\nx = SimpleNamespace()\nx.__dict__.update({'a': 1})\ny = SimpleNamespace(**{'b': 2})\n",
        "from collections import OrderedDict as OD\nx = OD()\nx.update({'a': x})\ndel OD\n",
        "def _f0(n, d):\n    from fractions import Fraction\n    return Fraction(n, d)\nx = [_f0(1, 3), _f0(2, 3)]\ndel _f0\n",
        "def _f0(self, items):\n    self.extend(items)\nx = []\n_f0(x, [1, x])\ndel _f0\n",
        "def _f0(self):\n    pass\nx = [1]\n_f0(x)\n",
        "_info_dict = {}\n_info_dict['x'] = None\n_info_dict['y'] = {'units': 'm'}\n",
        '"""a docstring"""\nx = 1\n',
        "x = 1\nimport sys as _sys\n_sys.modules[__name__] = x\n",
        'x = 1\nimport sys as _sys\nif globals().get("__spec__") is not None:\n    _sys.modules[__name__] = x\n',
        "from numpy import array, frombuffer, empty, fromiter, asfortranarray, dtype\n"
        "a = array([[1, 2], [3, 4]], dtype='int64')\n"
        "b = frombuffer(b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00', dtype='<f8').reshape((2,)).copy()\n"
        "c = empty((2,), dtype=object)\nc.reshape(-1)[:] = fromiter([1, 'a'], dtype=object, count=2)\n"
        "d = asfortranarray(a)\ne = array(5, dtype='int8')[()]\nf = dtype([('a', '<i4')])\n",
    ],
)
def test_accepted_constructs_match_plain_exec(src: str) -> None:
    safe.check(src)
    _both(src)


def test_instances_through_new_setstate_setattr_and_items() -> None:
    src = (
        "from archive_helpers import Plain, WithState, FrozenPoint, AttrDict\n"
        "a = Plain.__new__(Plain)\na.__dict__.update({'x': 1})\na.y = [a]\n"
        "b = object.__new__(WithState)\nb.__setstate__({'pair': (1, 2)})\n"
        "c = FrozenPoint.__new__(FrozenPoint)\nobject.__setattr__(c, 'x', 1)\nobject.__setattr__(c, 'y', 2)\n"
        "d = AttrDict.__new__(AttrDict)\nd['k'] = d\nd.__dict__.update({'tag': 't'})\n"
    )
    names = ["archive_helpers.Plain", "archive_helpers.WithState", "archive_helpers.FrozenPoint",
             "archive_helpers.AttrDict"]  # fmt: skip
    with pytest.raises(UnsafeArchiveError, match=r"import of 'archive_helpers\.Plain'"):
        safe.execute(src, {})
    ns: dict[str, Any] = {}
    safe.execute(src, ns, safe_callables=names)
    assert ns["a"].y[0] is ns["a"] and ns["a"].x == 1
    assert (ns["c"].x, ns["c"].y) == (1, 2)
    assert ns["d"]["k"] is ns["d"] and ns["d"].tag == "t"


def test_calls_are_checked_by_identity_not_by_name() -> None:
    # rebinding an allowed name to a value and calling it is refused; aliasing an
    # allowed object under another name keeps it callable
    with pytest.raises(UnsafeArchiveError, match="line 3: call of 'Fraction'"):
        safe.execute("from fractions import Fraction\nFraction = 1\nx = Fraction(1)\n", {})
    ns: dict[str, Any] = {}
    safe.execute("from fractions import Fraction as float\nx = float(1, 3)\n", ns)
    assert str(ns["x"]) == "1/3"
    with pytest.raises(UnsafeArchiveError, match="line 2: call of 'f'"):
        safe.execute("def _f0(f):\n    return f(1)\nx = _f0(ph)\n".replace("ph", "1"), {})


def test_denied_names_stay_denied_even_if_declared() -> None:
    for name in ("builtins.getattr", "builtins.eval", "importlib.import_module", "builtins.open"):
        assert name not in safe.allow_list([name])
    with pytest.raises(UnsafeArchiveError, match="name 'getattr'"):
        safe.execute("x = getattr(1, 'real')\n", {}, safe_callables=["builtins.getattr"])


def test_user_safe_callables_and_unicode_normalisation() -> None:
    ns: dict[str, Any] = {}
    safe.execute("from archive_helpers import module_function\nx = module_function(2)\n", ns,
                 safe_callables=["archive_helpers.module_function"])
    src = "from archive_helpers import module_function\nx = \uff4dodule_function(2)\n"  # fullwidth m
    ns2: dict[str, Any] = {}
    safe.execute(src, ns2, safe_callables=["archive_helpers.module_function"])
    assert ns2["x"] == ns["x"]


def test_message_names_file_line_and_construct() -> None:
    src = "x = 1\ny = [2]\nfrom os import system\n"
    with pytest.raises(UnsafeArchiveError) as info:
        safe.execute(src, {}, filename="mydata/x.py")
    assert str(info.value) == (
        "mydata/x.py line 3: import of 'os.system' is not allowed "
        "(not in the safe allow-list; pass safe_callables=[...] to allow it)"
    )


def test_padded_source_keeps_file_line_numbers() -> None:
    from persist_hooks._format import padded

    with pytest.raises(UnsafeArchiveError, match=r"^f\.py line 12: "):
        safe.execute(padded("x = 1\ny = open('z')\n", 11), {}, filename="f.py")


def test_runtime_failures_of_allowed_calls_are_format_errors() -> None:
    with pytest.raises(FormatError, match=r"line 2: evaluating .*Fraction\(1, 0\).* ZeroDivisionError"):
        safe.execute("from fractions import Fraction\nx = Fraction(1, 0)\n", {})
    with pytest.raises(FormatError, match=r"line 1: .*KeyError"):
        safe.execute("x = _arrays['nope']\n", {"_arrays": {}})
    with pytest.raises(UnsafeArchiveError, match=r"no array table"):
        safe.execute("x = _arrays['a']\n", {})


def test_array_table_is_read_only_by_string_key() -> None:
    ns: dict[str, Any] = {"_arrays": {"array_0": np.arange(3)}}
    safe.execute("x = [_arrays['array_0']]\n", ns)
    assert ns["x"][0] is ns["_arrays"]["array_0"]
    for bad in ("x = _arrays[0]\n", "_arrays = {}\n", "x = _arrays.get('array_0')\n", "del _arrays\n"):
        with pytest.raises(UnsafeArchiveError):
            safe.execute(bad, dict(ns))


def test_limits_never_raise_recursion_or_memory_errors() -> None:
    for src in ("x = " + "-" * 100_000 + "1\n", "x = " + "[" * 100_000 + "\n", "x = " + "(" * 250 + ")" * 250 + "\n",
                "x = " + "not " * 10_000 + "1\n"):  # fmt: skip
        with pytest.raises(UnsafeArchiveError, match=r"line \d+"):
            safe.execute(src, {})
    with pytest.raises(UnsafeArchiveError, match="characters is over"):
        safe.check("x" * (safe.MAX_SOURCE_CHARS + 1))


def test_non_str_source_is_refused() -> None:
    with pytest.raises(UnsafeArchiveError):
        safe.execute(b"x = 1", {})  # type: ignore[arg-type]


def test_restore_safe_flag() -> None:
    assert ph.restore("x = [1]\n", safe=True) == {"x": [1]}
    a = ph.Archive()
    a.insert(x=np.arange(200.0))
    assert ph.restore(str(a), safe=True)["x"].sum() == np.arange(200.0).sum()
    with pytest.raises(UnsafeArchiveError):
        ph.restore("import os\n", safe=True)
    assert ph.restore("import os\nx = 1\n")["x"] == 1  # not safe: plain exec, as before


def test_every_refusal_is_an_archive_error() -> None:
    assert issubclass(UnsafeArchiveError, ArchiveError)
    assert issubclass(FormatError, ArchiveError)


def test_module_docstring_lists_the_language() -> None:
    doc = safe.__doc__ or ""
    for token in ("from mod import name", "def _fN", "_arrays['key']", "import sys as _sys"):
        assert token in doc
    ast.parse(Path(safe.__file__).read_text())


# -- untrusted array data ----------------------------------------------------------------


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _dataset_with_array(tmp_path: Path) -> tuple[Path, Path]:
    ds = ph.DataSet("arr", "w", path=tmp_path, array_threshold=2)
    ds.x = np.arange(10.0)
    ds.close()
    root = tmp_path / "arr"
    (npy,) = (root / "x_data").glob("*.npy")
    return root, npy


def test_untrusted_pickled_object_array_is_refused(tmp_path: Path) -> None:
    import pickle

    _, npy = _dataset_with_array(tmp_path)
    payload = pickle.dumps(np.array([CanaryOnUnpickle()], dtype=object))  # would run code
    npy.write_bytes(_npy_header("|O", (10,)) + payload)
    with pytest.raises(ArchiveError, match=r"pickled|dtype"):
        _ = ph.DataSet("arr", path=tmp_path, trusted=False).x
    assert not CANARY.exists()


def test_untrusted_huge_shape_is_refused_before_allocation(tmp_path: Path) -> None:
    root, npy = _dataset_with_array(tmp_path)
    npy.write_bytes(_npy_header("<f8", (10**12, 10**6)) + b"\x00" * 80)
    with pytest.raises(ArchiveError, match="shape"):
        _ = ph.DataSet("arr", path=tmp_path, trusted=False).x
    # the header agreeing with the item header does not help: the file is too short
    item = root / "x.py"
    item.write_text(item.read_text().replace('"shape": [10]', '"shape": [1000000000000, 1000000]'))
    with pytest.raises(ArchiveError):
        _ = ph.DataSet("arr", path=tmp_path, trusted=False).x


class CanaryOnUnpickle:
    """Touches the canary file when unpickled (never, if the loader is safe)."""

    def __reduce__(self) -> Any:
        import os

        return (os.system, (f"touch {CANARY}",))


@pytest.mark.parametrize("scoped", [True, False])
def test_nan_payloads_load_safely_bit_exact(scoped: bool) -> None:
    """A NaN with a payload is written as ``__import__('struct').unpack('<d', b'...')[0]``:
    the safe evaluator accepts exactly that shape (see the hostile corpus for the others)."""
    import struct

    odd = struct.unpack("<d", bytes.fromhex("010000000000f87f"))[0]
    archive = ph.Archive(scoped=scoped)
    archive.insert(x=odd, y=[odd, 1.0], z=(-odd,), w={"k": odd})
    got = ph.restore(str(archive), safe=True)
    bits = [struct.pack("<d", v).hex() for v in (got["x"], got["y"][0], got["z"][0], got["w"]["k"])]
    assert bits == ["010000000000f87f", "010000000000f87f", "010000000000f8ff", "010000000000f87f"]

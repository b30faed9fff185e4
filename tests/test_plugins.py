"""The plugin host (persist_hooks.plugins, persist_hooks.hookspecs) and representer dispatch.

A real third-party distribution is built and pip-installed into a temporary
directory and used from a subprocess; run-time plugins are registered with
``persist_hooks.plugins.register`` and the host is reset around every test.
"""

from __future__ import annotations

import collections
import fractions
import importlib.metadata
import json
import textwrap
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
from archive_helpers import (
    FORMAT_IDS,
    FORMATS,
    PYTHON,
    Celsius,
    Plain,
    archive_of,
    roundtrip,
    run_python,
)

import persist_hooks as ph
from persist_hooks import Rep, hookimpl, plugins

fmt = pytest.mark.parametrize("scoped", FORMATS, ids=FORMAT_IDS)


@pytest.fixture(autouse=True)
def fresh_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts and ends with a freshly built plugin host."""
    monkeypatch.delenv(plugins.DISABLE_AUTOLOAD_ENV, raising=False)
    plugins.reset()
    yield
    plugins.reset()


def plugin(name: str = "", **hooks: Any) -> Any:
    """A plugin object with the given hook implementations."""
    ns = types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})
    ns.__name__ = name or "test-plugin"
    return ns


def _fraction_as_text(f: fractions.Fraction) -> Rep:
    return Rep("Fraction(text)", {"text": str(f)}, [("fractions", "Fraction")])


# -- the host -------------------------------------------------------------------------


def test_plugin_manager_project_and_builtins_registered_first() -> None:
    pm = plugins.plugin_manager()
    assert pm.project_name == "persist_hooks"
    names = [pm.get_name(p) for p in pm.get_plugins()]
    for dotted in plugins.BUILTIN_PLUGINS:
        assert dotted in names
    impls = [i.plugin_name for i in pm.hook.persist_hooks_representers.get_hookimpls()]
    assert impls[: 3] == list(plugins.BUILTIN_PLUGINS[:3])
    assert plugins.plugin_manager() is pm  # built once


def test_no_plugin_manager_at_import_time() -> None:
    code = textwrap.dedent(
        """
        import sys
        import persist_hooks
        assert "pluggy" not in sys.modules, "import persist_hooks must stay cheap"
        assert "numpy" not in sys.modules
        import persist_hooks.plugins as p
        assert p._host is None
        p.plugin_manager()
        assert p._host is not None
        print("ok")
        """
    )
    assert run_python(code).stdout.strip() == "ok"


def test_a_plugin_cannot_replace_a_core_backend() -> None:
    from persist_hooks.backends.npy import NpyBackend

    class Impostor(NpyBackend):
        """Named "npy" by inheritance."""

    plugins.register(plugin("impostor", persist_hooks_backends=lambda: [Impostor]))
    with pytest.warns(RuntimeWarning, match="'npy' is a backend of the core"):
        assert plugins.backends() == sorted(plugins.backends())
    assert plugins.backend_class("npy") is NpyBackend


def test_reading_an_npy_item_loads_no_plugin(tmp_path: Path) -> None:
    """The core's backends resolve without the plugin host: a fresh interpreter reading an
    npy item (through DataSet and through the import hook) never scans entry points."""
    ds = ph.DataSet("mydata", "w", path=tmp_path, backend="npy")
    ds.x = np.arange(1000.0)
    code = textwrap.dedent(
        f"""
        import sys
        import persist_hooks.plugins as p
        from persist_hooks import DataSet
        assert float(DataSet("mydata", "r", path={str(tmp_path)!r}).x[999]) == 999.0
        sys.path.insert(0, {str(tmp_path)!r})
        import mydata.x
        assert float(mydata.x[1]) == 1.0
        assert p._host is None, "the plugin host was built"
        assert "importlib.metadata" not in sys.modules
        print("ok")
        """
    )
    assert run_python(code).stdout.strip() == "ok"


def test_representers_maps_types_to_plugin_names() -> None:
    table = plugins.representers()
    assert table[fractions.Fraction] == "persist_hooks.representers.stdlib"
    assert table[collections.Counter] == "persist_hooks.representers.stdlib"
    assert table[list] == "persist_hooks.representers.builtins"
    assert table[np.ndarray] == "persist_hooks.representers.numpy"
    assert table["zoneinfo.ZoneInfo"] == "persist_hooks.representers.stdlib"
    assert all(isinstance(v, str) for v in table.values())


def test_top_level_representers_and_backends_functions() -> None:
    """Regression (fixed bug): The subpackages persist_hooks.representers and persist_hooks.backends shadow
    the public functions ph.representers()/ph.backends() as soon as they are imported
    (TypeError: 'module' object is not callable).
    """
    archive_of(True, x=fractions.Fraction(1, 2))  # the host imports the built-in plugins
    assert ph.representers()[fractions.Fraction] == "persist_hooks.representers.stdlib"
    assert "npy" in ph.backends()


def test_top_level_representers_twice_in_fresh_interpreter() -> None:
    """Regression (fixed bug): ph.representers() works once, then the imported subpackage
    persist_hooks.representers replaces it (see
    test_top_level_representers_and_backends_functions).
    """
    code = textwrap.dedent(
        """
        import persist_hooks as ph
        from fractions import Fraction
        print(ph.representers()[Fraction])
        print(ph.representers()[Fraction])
        """
    )
    lines = run_python(code).stdout.splitlines()
    assert lines == ["persist_hooks.representers.stdlib"] * 2


def test_representer_for_and_chain_follow_the_mro() -> None:
    class MyCounter(collections.Counter):  # type: ignore[type-arg]
        pass

    assert plugins.representer_for(collections.Counter) is not None
    chain = plugins.representer_chain(MyCounter)
    assert len(chain) >= 2  # Counter's (declines subclasses), then dict's, then object's
    assert plugins.representer_for(bool) is plugins.representer_for(bool)


# -- user plugins override built-ins ---------------------------------------------------


@fmt
def test_user_plugin_overrides_builtin_then_unregisters(scoped: bool) -> None:
    plugins.register(plugin(persist_hooks_representers=lambda: {fractions.Fraction: _fraction_as_text}), name="frac-text")
    assert plugins.representers()[fractions.Fraction] == "frac-text"
    src = str(archive_of(scoped, f=fractions.Fraction(1, 3)))
    assert "'1/3'" in src
    out = roundtrip(scoped, f=fractions.Fraction(1, 3), g=[fractions.Fraction(-2, 7)])
    assert out["f"] == fractions.Fraction(1, 3)
    plugins.unregister("frac-text")
    assert plugins.representers()[fractions.Fraction] == "persist_hooks.representers.stdlib"
    assert "'1/3'" not in str(archive_of(scoped, f=fractions.Fraction(1, 3)))


def test_last_registered_user_plugin_wins() -> None:
    plugins.register(plugin(persist_hooks_representers=lambda: {Celsius: lambda c: Rep("'first'")}), name="first")
    plugins.register(plugin(persist_hooks_representers=lambda: {Celsius: lambda c: Rep("'second'")}), name="second")
    assert plugins.representers()[Celsius] == "second"
    assert ph.restore(str(archive_of(True, c=Celsius(1))))["c"] == "second"
    plugins.unregister("second")
    assert ph.restore(str(archive_of(True, c=Celsius(1))))["c"] == "first"


@fmt
def test_user_plugin_can_take_over_a_native_container(scoped: bool) -> None:
    calls: list[int] = []

    def rep_list(obj: list[Any]) -> Rep:
        calls.append(len(obj))
        return Rep("list(items)", {"items": tuple(obj)}, new="[]", fill="self.extend(items)")

    plugins.register(plugin(persist_hooks_representers=lambda: {list: rep_list}), name="lists")
    lst: list[Any] = [1, [2]]
    lst.append(lst)
    src = str(archive_of(scoped, v=lst))
    assert calls and "list(" in src
    out = ph.restore(src)["v"]
    assert out[2] is out and out[1] == [2]


def test_exact_type_beats_base_class_and_base_class_covers_subclasses() -> None:
    class Base:
        pass

    class Sub(Base):
        pass

    class SubSub(Sub):
        pass

    plugins.register(
        plugin(persist_hooks_representers=lambda: {Base: lambda o: Rep("'base'"), Sub: lambda o: Rep("'sub'")}),
        name="mro",
    )
    out = ph.restore(str(archive_of(True, a=Base(), b=Sub(), c=SubSub())))
    assert out == {"a": "base", "b": "sub", "c": "sub"}


def test_declining_representer_falls_back_along_the_mro() -> None:
    def only_positive(c: Celsius) -> Rep | None:
        return Rep("'positive'") if c.degrees > 0 else None

    plugins.register(plugin(persist_hooks_representers=lambda: {Celsius: only_positive}), name="decline")
    out = ph.restore(str(archive_of(True, p=Celsius(5), n=Celsius(-5))))
    assert out["p"] == "positive"
    assert out["n"] == Celsius(-5)  # rebuilt by __reduce_ex__


def test_string_key_registered_later_overrides_builtin_type_key() -> None:
    """Regression (fixed bug): A later plugin's lazy 'module.QualName' key does not override an earlier
    plugin's type key for the same type (_Host._lookup tries the type key first).
    """
    plugins.register(plugin(persist_hooks_representers=lambda: {"fractions.Fraction": _fraction_as_text}), name="lazy")
    assert "'1/3'" in str(archive_of(True, f=fractions.Fraction(1, 3)))


def test_string_key_resolves_lazily() -> None:
    plugins.register(
        plugin(persist_hooks_representers=lambda: {"archive_helpers.Celsius": lambda c: Rep("'lazy'")}),
        name="lazy-celsius",
    )
    assert ph.restore(str(archive_of(True, c=Celsius(3))))["c"] == "lazy"


def test_safe_callables_union() -> None:
    plugins.register(plugin(persist_hooks_safe_callables=lambda: ["mypkg.Thing"]), name="safe")
    names = plugins.safe_callables()
    assert "mypkg.Thing" in names and "fractions.Fraction" in names and "numpy.array" in names


def test_misspelt_hook_is_rejected_and_does_not_poison_the_host() -> None:
    bad = plugin(persist_hooks_representer=lambda: {})  # missing "s"
    with pytest.raises(pluggy.PluginValidationError):
        plugins.register(bad, name="misspelt")
    assert str(archive_of(True, x=1)) == "x = 1\n"


def test_register_after_a_rejected_plugin_still_works() -> None:
    """Regression (fixed bug): plugins.register() leaves a plugin that failed check_pending() registered,
    so every later register() raises PluginValidationError too.
    """
    with pytest.raises(pluggy.PluginValidationError):
        plugins.register(plugin(persist_hooks_representer=lambda: {}), name="misspelt")
    plugins.register(plugin(persist_hooks_representers=lambda: {Celsius: lambda c: Rep("'ok'")}), name="good")
    assert ph.restore(str(archive_of(True, c=Celsius(1))))["c"] == "ok"


# -- dispatch is cached per type --------------------------------------------------------


@fmt
def test_dispatch_resolved_once_per_type(scoped: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from persist_hooks.archive import graph

    counts: collections.Counter[type] = collections.Counter()
    real_chain = plugins.representer_chain

    def counting_chain(cls: type) -> list[Any]:
        counts[cls] += 1
        return real_chain(cls)

    monkeypatch.setattr(graph.plugins, "representer_chain", counting_chain)
    rep_calls: list[int] = []

    def rep(c: Celsius) -> Rep:
        rep_calls.append(1)
        return Rep("Celsius(d)", {"d": c.degrees}, [("archive_helpers", "Celsius")])

    plugins.register(plugin(persist_hooks_representers=lambda: {Celsius: rep}), name="counting")
    a = ph.Archive(scoped=scoped)
    a.insert(c=[Celsius(i) for i in range(500)], f=[fractions.Fraction(i, 7) for i in range(500)])
    a.insert(more=[Celsius(-i) for i in range(1, 300)], p=[Plain(i=i) for i in range(300)])
    assert counts[Celsius] == 1
    assert counts[fractions.Fraction] == 1
    assert counts[Plain] == 1
    assert len(rep_calls) == 799  # the representer runs once per object, nothing else per object
    out = ph.restore(str(a))
    assert out["more"][0] == Celsius(-1)


def test_cost_does_not_grow_with_the_number_of_plugins() -> None:
    """Registering many plugins does not add work per archived object."""
    hook_calls: collections.Counter[str] = collections.Counter()
    dummy_types = [type(f"Dummy{i}", (), {}) for i in range(60)]

    def make_hook(i: int) -> Any:
        def hook() -> dict[Any, Any]:
            hook_calls[f"p{i}"] += 1
            return {dummy_types[i]: lambda o: Rep("None")}

        return hook

    for i in range(60):
        plugins.register(plugin(persist_hooks_representers=make_hook(i)), name=f"p{i}")
    for _ in range(3):
        a = ph.Archive()
        a.insert(v=[Celsius(i) for i in range(200)], f=[fractions.Fraction(1, i) for i in range(1, 200)])
        str(a)
    assert set(hook_calls.values()) == {1}  # each plugin's table was read once, not per object


# -- entry points (in process, faked) ---------------------------------------------------


def _fake_entry_points(*eps: importlib.metadata.EntryPoint) -> Any:
    def entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
        assert group == "persist_hooks"
        return list(eps)

    return entry_points


def test_broken_entry_point_warns_and_host_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [
        importlib.metadata.EntryPoint("broken", "no_such_module_for_persist_hooks_tests", "persist_hooks"),
        importlib.metadata.EntryPoint("celsius", "archive_helpers:CelsiusPlugin", "persist_hooks"),
    ]
    monkeypatch.setattr(plugins, "entry_points", _fake_entry_points(*eps))
    with pytest.warns(RuntimeWarning, match="broken") as record:
        plugins.plugin_manager()
    assert any("no_such_module_for_persist_hooks_tests" in str(w.message) for w in record)
    assert plugins.representers()[Celsius] == "celsius"
    src = str(archive_of(False, c=Celsius(2.5)))
    assert "Celsius(2.5)" in src
    assert ph.restore(src)["c"] == Celsius(2.5)


def test_autoload_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [importlib.metadata.EntryPoint("celsius", "archive_helpers:CelsiusPlugin", "persist_hooks")]
    monkeypatch.setattr(plugins, "entry_points", _fake_entry_points(*eps))
    monkeypatch.setenv(plugins.DISABLE_AUTOLOAD_ENV, "1")
    assert Celsius not in plugins.representers()


def test_duplicate_entry_point_names_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [
        importlib.metadata.EntryPoint("celsius", "archive_helpers:CelsiusPlugin", "persist_hooks"),
        importlib.metadata.EntryPoint("celsius", "no_such_module_for_persist_hooks_tests", "persist_hooks"),
    ]
    monkeypatch.setattr(plugins, "entry_points", _fake_entry_points(*eps))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugins.plugin_manager()
    assert plugins.representers()[Celsius] == "celsius"


def test_entry_point_with_misspelt_hook_does_not_break_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (fixed bug): An entry-point plugin with a misspelt hook loads without error, then
    pm.check_pending() in _Host.__init__ raises PluginValidationError: one bad plugin breaks
    the host for every user.
    """
    eps = [importlib.metadata.EntryPoint("misspelt", "archive_helpers:MisspeltPlugin", "persist_hooks")]
    monkeypatch.setattr(plugins, "entry_points", _fake_entry_points(*eps))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert str(archive_of(True, x=1)) == "x = 1\n"


# -- a real third-party distribution, installed with pip, used in a subprocess ----------

_PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "ph-thermo-testplugin"
version = "0.1.0"
description = "persist_hooks test plugin"

[project.entry-points.persist_hooks]
thermo = "thermo.persist_plugin"
thermo-broken = "thermo.broken_plugin"

[tool.hatch.build.targets.wheel]
packages = ["thermo"]
"""

_THERMO_INIT = '''
"""A third-party package with a type persist_hooks does not know."""


class Kelvin:
    def __init__(self, value):
        self.value = float(value)
        self.history = []

    @classmethod
    def from_text(cls, text):
        obj = cls(float(text.rstrip("K")))
        obj.via_plugin = True
        return obj

    def __eq__(self, other):
        return type(other) is Kelvin and other.value == self.value

    def __reduce__(self):
        raise TypeError("Kelvin must be archived through its plugin")
'''

_THERMO_PLUGIN = '''
"""The persist_hooks plugin of the thermo package."""
import persist_hooks

from thermo import Kelvin


def represent_kelvin(k):
    return persist_hooks.Rep(
        "Kelvin.from_text(text)", {"text": f"{k.value!r}K"}, [("thermo", "Kelvin")]
    )


@persist_hooks.hookimpl
def persist_hooks_representers():
    return {Kelvin: represent_kelvin}


@persist_hooks.hookimpl
def persist_hooks_safe_callables():
    return ["thermo.Kelvin.from_text"]
'''

_THERMO_BROKEN = '''
raise ImportError("this plugin module is broken on purpose")
'''

_USE_PLUGIN = r"""
import json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import persist_hooks as ph
    from persist_hooks import plugins
    from thermo import Kelvin
    shared = Kelvin(300)
    result = {"sources": [], "warnings": []}
    for scoped in (True, False):
        a = ph.Archive(scoped=scoped)
        a.insert(k=shared, ks=[shared, Kelvin(-1.5)])
        src = str(a)
        out = ph.restore(src)
        assert out["ks"][0] is out["k"], src
        assert out["k"] == Kelvin(300) and out["ks"][1] == Kelvin(-1.5), src
        assert out["k"].via_plugin is True, src
        result["sources"].append(src)
    result["table"] = plugins.representers().get(Kelvin)
    result["safe"] = "thermo.Kelvin.from_text" in plugins.safe_callables()
    result["plugin_names"] = sorted(
        n for n in (plugins.plugin_manager().get_name(p) for p in plugins.plugin_manager().get_plugins())
        if n and n.startswith("thermo")
    )
result["warnings"] = [str(w.message) for w in caught]
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def thermo_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build and pip-install the ``ph-thermo-testplugin`` distribution into a target dir."""
    root = tmp_path_factory.mktemp("thermo")
    src = root / "src"
    (src / "thermo").mkdir(parents=True)
    (src / "pyproject.toml").write_text(_PYPROJECT)
    (src / "thermo" / "__init__.py").write_text(_THERMO_INIT)
    (src / "thermo" / "persist_plugin.py").write_text(_THERMO_PLUGIN)
    (src / "thermo" / "broken_plugin.py").write_text(_THERMO_BROKEN)
    site = root / "site"
    import subprocess

    proc = subprocess.run(
        [PYTHON, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(site.glob("ph_thermo_testplugin-*.dist-info/entry_points.txt"))
    return site


def test_third_party_plugin_distribution(thermo_site: Path) -> None:
    proc = run_python(_USE_PLUGIN, env={"PYTHONPATH": str(thermo_site)})
    result = json.loads(proc.stdout)
    for src in result["sources"]:
        assert "Kelvin.from_text" in src and "300.0K" in src
    assert result["table"] == "thermo"
    assert result["safe"] is True
    assert result["plugin_names"] == ["thermo"]
    broken = [w for w in result["warnings"] if "thermo-broken" in w]
    assert broken, result["warnings"]
    assert "ph-thermo-testplugin" in broken[0] or "ph_thermo_testplugin" in broken[0]
    assert "broken on purpose" in broken[0]


def test_third_party_plugin_not_used_when_autoload_disabled(thermo_site: Path) -> None:
    code = textwrap.dedent(
        """
        import persist_hooks as ph
        from thermo import Kelvin
        try:
            ph.Archive().insert(k=Kelvin(1))
        except ph.UnrepresentableError as exc:
            print("unrepresentable:", exc)
        """
    )
    out = run_python(code, env={"PYTHONPATH": str(thermo_site), plugins.DISABLE_AUTOLOAD_ENV: "1"}).stdout
    assert out.startswith("unrepresentable:") and "Kelvin" in out

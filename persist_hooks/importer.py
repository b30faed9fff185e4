"""The import hook: a ``sys.meta_path`` finder that imports DataSet directories lazily.

A directory on ``sys.path`` (or inside a package) that holds the marker file
``_this_dir_is_a_DataSet`` imports as a *DataSet module* once the hook is installed.
Installing the distribution installs it at interpreter start-up (``persist_hooks_hook.pth``
runs :mod:`persist_hooks._startup`; ``PERSIST_HOOKS_NO_HOOK=1`` opts out), and
:func:`install` / :func:`uninstall` give explicit control.

* ``import mydata`` runs ``mydata/__init__.py`` and gives a module with ``_info_dict`` whose
  items are attributes loaded on first access (PEP 562 ``__getattr__``); ``dir(mydata)``
  lists them. The first access binds the item in the module's ``__dict__`` and in
  ``sys.modules["mydata.<item>"]``, as importing a submodule would.
* ``import mydata.x`` and ``from mydata import x`` give the stored object itself. This
  rests on CPython behaviour: whatever sits in ``sys.modules[name]`` after the loader's
  ``exec_module`` is what ``import`` returns (and what is bound on the parent). The item
  files' plain-Python footer ``sys.modules[__name__] = x`` relies on the same behaviour.
* No bytecode is read or written for DataSet files (no ``__pycache__`` appears), so a rewrite
  within the same second can never be served stale.
* ``importlib.reload(mydata)`` re-runs ``__init__.py`` on the existing module and forgets
  loaded items (their attributes and ``sys.modules`` entries): new items appear, removed
  ones disappear and rewritten ones load afresh on next access.

Everything else is left to the normal import system, untouched, at next to no cost. The
finder sits immediately in front of importlib's ``PathFinder`` (behind the finders others
put in front of it, such as pytest's assertion rewriter or setuptools' distutils shim) and
does not search on its own: it asks ``PathFinder`` (so ``sys.path_hooks``,
``sys.path_importer_cache`` and ``FileFinder``'s directory caches, which
``importlib.invalidate_caches()`` clears, apply as usual) and looks at the answer:

* a regular package in a directory holding the marker is a DataSet (one ``stat``, paid
  for packages only), so precedence is Python's own: a module or regular package in an
  earlier ``sys.path`` entry wins over a DataSet in a later one, a namespace portion
  does not;
* anything else found is returned as ``PathFinder`` found it, which spares ``PathFinder``
  repeating the search;
* when nothing but namespace portions, or nothing at all, is found, the finder probes
  ``<dir>/<name>/_this_dir_is_a_DataSet`` in each searched directory, so a DataSet created
  a moment ago is found without ``importlib.invalidate_caches()`` even if ``FileFinder``'s
  cached listing of its directory predates it; otherwise it returns ``None`` and the rest
  of ``sys.meta_path`` has its turn (``PathFinder`` searches once more, in vain, then the
  finders behind it, such as those of editable installs).

If ``PathFinder`` is not the finder's successor on ``sys.meta_path`` (replaced, removed,
or another finder inserted in between), the finder finds DataSets all the same but returns
``None`` for everything else, leaving it to the finders behind it.

Known limits: an item whose value is ``None`` imports once with ``import mydata.x``;
a second ``import`` statement raises ``ModuleNotFoundError`` because CPython reads ``None``
in ``sys.modules`` as "import blocked" (attribute access ``mydata.x`` always works).
DataSets inside zip files are not recognised (packages in zip files are left to
``zipimport``).

Example:
    >>> from persist_hooks import importer
    >>> with importer.install():           # a no-op when the hook is already active
    ...     import mydata                   # doctest: +SKIP
    ...     sorted(mydata._info_dict)       # doctest: +SKIP
    ['b', 'x']
"""

# Imported by persist_hooks._startup at every interpreter start-up: import only modules
# that are loaded before site runs (sys, os, _thread, the frozen importlib), and
# nothing from ``typing`` at run time.

import _frozen_importlib_external
import os
import sys
from _thread import RLock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from importlib.abc import Loader as _LoaderBase
    from importlib.machinery import ModuleSpec
    from types import ModuleType, TracebackType
else:
    _LoaderBase = object

__all__ = [
    "MARKER",
    "DataSetFinder",
    "DataSetLoader",
    "HookHandle",
    "ItemLoader",
    "ShadowedHookWarning",
    "install",
    "is_installed",
    "shadowing_finders",
    "uninstall",
]

#: Name of the file that marks a directory as a DataSet (the same as ``_reader.MARKER``;
#: repeated here so that start-up never imports the reader).
MARKER = "_this_dir_is_a_DataSet"

_ModuleType = type(sys)
_SEP = os.sep
# Names of the modules DataSetLoader has executed (only ever grows; a pre-check that
# keeps the finder's work for submodules of other packages to one set lookup).
_dataset_names: set[str] = set()
_PathFinder = _frozen_importlib_external.PathFinder
_S_IFMT = 0o170000  # stat.S_IFMT and stat.S_IFREG, inlined (no call per stat)
_S_IFREG = 0o100000

# Finders that may sit in front of ours without ever claiming a DataSet name:
# (module, qualified name) of the finder object, or of its class for instances.
_HARMLESS_FINDERS = frozenset(
    {
        ("_frozen_importlib", "BuiltinImporter"),
        ("_frozen_importlib", "FrozenImporter"),
        ("_pytest.assertion.rewrite", "AssertionRewritingHook"),
        ("_distutils_hack", "DistutilsMetaFinder"),
    }
)

# Module attributes the import system owns; reloading a DataSet module keeps them and drops
# everything else before re-running __init__.py.
_IMPORT_ATTRS = frozenset(
    {
        "__name__",
        "__doc__",
        "__package__",
        "__loader__",
        "__spec__",
        "__path__",
        "__file__",
        "__cached__",
        "__builtins__",
    }
)


class ShadowedHookWarning(UserWarning):
    """A finder in front of persist_hooks' finder on ``sys.meta_path`` may claim DataSets.

    Emitted by :func:`install` (not at start-up); :func:`shadowing_finders` performs the
    same check on demand.

    Example:
        >>> import warnings
        >>> issubclass(ShadowedHookWarning, UserWarning)
        True
    """


def _is_item_name(name: str) -> bool:
    return name.isidentifier() and not name.startswith("_")


def _probe(tail: str, entries: "Iterable[object]") -> str | None:
    """The first ``<entry>/<tail>`` holding :data:`MARKER`, made absolute, or ``None``."""
    for entry in entries:
        if not isinstance(entry, str):
            continue
        try:
            directory = entry if entry else os.getcwd()
            st = os.stat(directory + _SEP + tail + _SEP + MARKER)
        except (OSError, ValueError):
            continue
        if st.st_mode & _S_IFMT == _S_IFREG:
            return os.path.join(os.path.abspath(directory), tail)
    return None


class DataSetFinder:
    """``sys.meta_path`` finder for DataSet directories and their items.

    ``find_spec`` returns a DataSet spec for

    * ``name`` when importlib's ``PathFinder`` finds ``name`` as a regular package whose
      directory holds :data:`MARKER` (``sys.path`` for top-level names, the parent's
      ``__path__`` otherwise), or finds nothing but namespace portions and a directory
      ``name`` holding the marker is in one of the searched directories;
    * ``pkg.item`` when ``pkg`` is a DataSet module and ``item.py`` exists in it
      (a DataSet directory inside a DataSet is found as in any package).

    For anything else it returns ``PathFinder``'s own answer when it sits immediately in
    front of ``PathFinder`` on ``sys.meta_path`` (where :func:`install` puts it), so
    that ``PathFinder`` does not search a second time; a finder anywhere else (not
    installed, or ``PathFinder`` replaced or moved) returns ``None``, leaving the name to
    the rest of ``sys.meta_path``.

    Example:
        >>> finder = DataSetFinder()          # not on sys.meta_path
        >>> finder.find_spec("json", None) is None
        True
        >>> finder.invalidate_caches()
    """

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__}>"

    def invalidate_caches(self) -> None:
        """Clear the caches the finder's answers depend on (``importlib.invalidate_caches``).

        The finder keeps no cache of its own; it searches through ``PathFinder``, whose
        caches ``importlib.invalidate_caches()`` clears by itself when ``PathFinder`` is on
        ``sys.meta_path``. Otherwise this clears them.

        Example:
            >>> DataSetFinder().invalidate_caches()
        """
        if _PathFinder not in sys.meta_path:
            _PathFinder.invalidate_caches()

    def find_spec(
        self,
        fullname: str,
        path: "Sequence[str] | None",
        target: "ModuleType | None" = None,
    ) -> "ModuleSpec | None":
        """Return a spec for a DataSet or a DataSet item; see :class:`DataSetFinder`.

        Example:
            >>> DataSetFinder().find_spec("os", None) is None   # not installed
            True
            >>> import sys
            >>> with install():
            ...     finder = next(f for f in sys.meta_path if isinstance(f, DataSetFinder))
            ...     finder.find_spec("os", None).origin == os.__file__   # PathFinder's spec
            True
        """
        parent, _, tail = fullname.rpartition(".")
        if parent:
            if parent in _dataset_names:  # cheap pre-check; the module itself decides
                parent_module = sys.modules.get(parent)
                if isinstance(parent_module, _ModuleType):
                    loader = getattr(parent_module.__dict__.get("__spec__"), "loader", None)
                    if isinstance(loader, DataSetLoader):
                        spec = loader.item_spec(fullname, tail)
                        if spec is not None:
                            return spec  # else: perhaps a DataSet inside the DataSet
            if path is None:
                return None
        spec = _PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            locations = spec.submodule_search_locations
            if locations and spec.has_location:  # a package in a directory
                root = locations[0]
                try:
                    is_dataset = os.stat(root + _SEP + MARKER).st_mode & _S_IFMT == _S_IFREG
                except (OSError, ValueError):
                    is_dataset = False
                if is_dataset:
                    return self._dataset_spec(fullname, root)
        else:
            # Nothing, or only namespace portions, found: perhaps a DataSet that
            # FileFinder's cached listing of its directory does not show yet.
            found = _probe(tail, sys.path if path is None else path)
            if found is not None:
                return self._dataset_spec(fullname, found)
        meta_path = sys.meta_path
        try:
            successor = meta_path[meta_path.index(self) + 1]
        except (ValueError, IndexError):
            return None
        return spec if successor is _PathFinder else None

    def _dataset_spec(self, fullname: str, root: str) -> "ModuleSpec":
        from importlib.machinery import ModuleSpec

        loader = DataSetLoader(fullname, root, trusted=self.trusted_for(root))
        spec = ModuleSpec(
            fullname, loader, origin=os.path.join(root, "__init__.py"), is_package=True
        )
        spec.submodule_search_locations = [root]
        spec.has_location = True
        return spec

    def trusted_for(self, root: str) -> bool:
        """Whether the DataSet at ``root`` is loaded with ``trusted=True``.

        Every DataSet is trusted for now; this is the single place where a later
        policy (a DataSet marked untrusted) decides. An untrusted DataSet is read with
        ``trusted=False`` (the safe evaluator, no arbitrary code).

        Example:
            >>> DataSetFinder().trusted_for("/data/mydata")
            True
        """
        return True


class DataSetLoader(_LoaderBase):
    """Loader of a DataSet module; also the module's state (root, trust, item locks).

    ``exec_module`` builds everything: it runs ``__init__.py`` through ``_reader.exec_init``
    (no bytecode) into a fresh namespace holding the module's import attributes, adds the
    hook-aware ``__getattr__`` / ``__dir__``, then replaces the module's contents with it
    and forgets loaded items (attributes and ``sys.modules["<name>.<item>"]``).
    ``importlib.reload`` calls only ``exec_module`` on the existing module, so a reload
    reflects the directory as it is now; if ``__init__.py`` fails, the module is left as
    it was.

    Items load through :meth:`load_item`, one lock per item: the object is read with
    ``_reader.read_item`` and published (module ``__dict__`` and ``sys.modules``) only when
    fully built, so threads racing on first access all get the same object.

    Set ``PERSIST_HOOKS_EAGER=1`` to load every item at import (for debugging).

    Example:
        >>> import importlib.util
        >>> loader = DataSetLoader("mydata", "/data/mydata", trusted=False)
        >>> spec = importlib.util.spec_from_loader("mydata", loader, is_package=True)
        >>> module = importlib.util.module_from_spec(spec)
        >>> loader.exec_module(module)       # doctest: +SKIP
    """

    def __init__(self, fullname: str, root: str, *, trusted: bool = True) -> None:
        self.name = fullname
        self.root = root
        self.trusted = trusted
        self._lock = RLock()
        self._item_locks: dict[str, RLock] = {}
        self._module: ModuleType | None = None

    def __repr__(self) -> str:
        return f"<DataSetLoader {self.name!r} from {self.root!r} trusted={self.trusted}>"

    def create_module(self, spec: "ModuleSpec") -> "ModuleType | None":
        """Use the default module creation (all state is built in :meth:`exec_module`).

        Example:
            >>> import importlib.util
            >>> loader = DataSetLoader("d", "/tmp/d")
            >>> loader.create_module(importlib.util.spec_from_loader("d", loader)) is None
            True
        """
        return None

    def exec_module(self, module: "ModuleType") -> None:
        """Run ``__init__.py`` into ``module`` and make its items lazy attributes.

        Example:
            >>> loader.exec_module(module)      # doctest: +SKIP
        """
        from pathlib import Path

        from persist_hooks import _reader

        namespace = module.__dict__
        _dataset_names.add(module.__name__)
        with self._lock:
            self._module = module
            fresh = {key: value for key, value in namespace.items() if key in _IMPORT_ATTRS}
            _reader.exec_init(Path(self.root), fresh, trusted=self.trusted)
            fresh["__getattr__"] = self._module_getattr
            fresh["__dir__"] = self._module_dir
            # Swap in the new contents; a concurrent reader sees old or new values, and
            # a removed item falls through to the new __getattr__.
            namespace.update(fresh)
            for key in list(namespace):  # list() copies atomically
                if key not in fresh:
                    namespace.pop(key, None)
            prefix = module.__name__ + "."
            for key in list(sys.modules):
                if key.startswith(prefix):
                    sys.modules.pop(key, None)
        if os.environ.get("PERSIST_HOOKS_EAGER") == "1":
            for item in _reader.item_names(Path(self.root)):
                self.load_item(item)

    def item_spec(self, fullname: str, item: str) -> "ModuleSpec | None":
        """The spec importing item ``item`` (``fullname`` is ``<dataset>.<item>``), or ``None``.

        ``None`` when there is no item file ``<item>.py`` (metadata-only keys, other
        files): the rest of the import system then decides, as in plain Python.

        Example:
            >>> loader.item_spec("mydata.x", "x")      # doctest: +SKIP
            ModuleSpec(name='mydata.x', loader=<persist_hooks.importer.ItemLoader ...>, ...)
        """
        if not _is_item_name(item):
            return None
        origin = os.path.join(self.root, item + ".py")
        if not os.path.isfile(origin):
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, ItemLoader(self, item), origin=origin)

    def load_item(self, item: str) -> object:
        """Return item ``item``, reading it on first access and publishing it when built.

        Raises ``FileNotFoundError`` if the item has no file, and whatever
        ``_reader.read_item`` raises for a broken one (nothing is published then).

        Example:
            >>> loader.load_item("x")      # doctest: +SKIP
            [1, 2, 3]
        """
        module = self._module
        if module is None:
            raise RuntimeError(f"DataSet module {self.name!r} has not been executed")
        namespace = module.__dict__
        with self._lock:
            lock = self._item_locks.get(item)
            if lock is None:
                lock = self._item_locks[item] = RLock()
        with lock:
            try:
                return namespace[item]
            except KeyError:
                pass
            from pathlib import Path

            from persist_hooks import _reader

            value = _reader.read_item(Path(self.root), item, trusted=self.trusted)
            # Publish only the finished object: first sys.modules (so a concurrent
            # ``import`` finds it), then the attribute that ``__getattr__`` checks; and
            # only while this loader's __getattr__ is the module's (a reload meanwhile
            # made it stale; a failed reload leaves the previous loader in charge).
            if getattr(namespace.get("__getattr__"), "__self__", None) is self:
                sys.modules[f"{module.__name__}.{item}"] = value
                namespace[item] = value
            return value

    def _module_getattr(self, attr: str) -> object:
        if _is_item_name(attr) and os.path.isfile(os.path.join(self.root, attr + ".py")):
            try:
                return self.load_item(attr)
            except FileNotFoundError:
                pass  # removed between the check and the read
        module_name = self.name if self._module is None else self._module.__name__
        info = None if self._module is None else self._module.__dict__.get("_info_dict")
        if isinstance(info, dict) and attr in info:
            raise AttributeError(
                f"key {attr!r} of DataSet {module_name!r} has only metadata "
                f"(see {module_name}._info_dict[{attr!r}])",
                name=attr,
                obj=self._module,
            )
        raise AttributeError(
            f"module {module_name!r} has no attribute {attr!r}", name=attr, obj=self._module
        )

    def _module_dir(self) -> list[str]:
        from pathlib import Path

        from persist_hooks import _reader

        names = set() if self._module is None else set(self._module.__dict__)
        names.update(_reader.item_names(Path(self.root)))
        return sorted(names)


class ItemLoader(_LoaderBase):
    """Loader of ``<dataset>.<item>``: leaves the stored object in ``sys.modules``.

    The import system returns (and binds on the parent) whatever ``sys.modules`` holds after
    ``exec_module``, so ``import mydata.x`` yields the object, not a module.

    Example:
        >>> import mydata.x                 # doctest: +SKIP
        >>> type(mydata.x)                  # doctest: +SKIP
        <class 'list'>
    """

    def __init__(self, dataset: DataSetLoader, item: str) -> None:
        self.dataset = dataset
        self.item = item

    def __repr__(self) -> str:
        return f"<ItemLoader {self.item!r} of {self.dataset.name!r}>"

    def create_module(self, spec: "ModuleSpec") -> "ModuleType | None":
        """Use a default placeholder module; it is replaced in :meth:`exec_module`.

        Example:
            >>> import importlib.util
            >>> loader = ItemLoader(DataSetLoader("d", "/tmp/d"), "x")
            >>> loader.create_module(importlib.util.spec_from_loader("d.x", loader)) is None
            True
        """
        return None

    def exec_module(self, module: "ModuleType") -> None:
        """Load the item and put the object itself in ``sys.modules[module.__name__]``.

        Example:
            >>> import mydata.x                 # doctest: +SKIP
        """
        try:
            value = self.dataset.load_item(self.item)
        except FileNotFoundError as exc:
            raise ModuleNotFoundError(
                f"item {self.item!r} of DataSet {self.dataset.name!r} is gone: {exc}",
                name=module.__name__,
            ) from exc
        sys.modules[module.__name__] = value  # type: ignore[assignment]  # any object


def _finder_key(finder: object) -> tuple[str, str]:
    owner = finder if isinstance(finder, type) else type(finder)
    return (str(getattr(owner, "__module__", "")), str(getattr(owner, "__qualname__", "")))


class _HookState:
    """The hook's global state: the one finder object and the lock guarding installs."""

    def __init__(self) -> None:
        self.lock = RLock()
        self.finder = DataSetFinder()

    def index(self) -> int | None:
        for i, finder in enumerate(sys.meta_path):
            if finder is self.finder:
                return i
        return None


_STATE = _HookState()


def _insertion_index() -> int:
    """Where :func:`install` puts the finder: in front of ``PathFinder``, behind pytest."""
    meta_path = sys.meta_path
    index = len(meta_path)
    for i, other in enumerate(meta_path):
        if other is _PathFinder:
            index = i
            break
    for i, other in enumerate(meta_path):
        if _finder_key(other) == ("_pytest.assertion.rewrite", "AssertionRewritingHook"):
            index = max(index, i + 1)
    return index


class HookHandle:
    """What :func:`install` returns; a context manager that undoes its own installation.

    ``installed`` tells whether the :func:`install` call that made the handle put the
    finder on ``sys.meta_path`` (``False`` when it was already there); leaving the
    ``with`` block, or :meth:`uninstall`, removes the finder only in that case.

    Example:
        >>> with install() as handle:
        ...     is_installed()
        True
    """

    def __init__(self, installed: bool) -> None:
        self.installed = installed

    def __repr__(self) -> str:
        return f"HookHandle(installed={self.installed})"

    def uninstall(self) -> None:
        """Remove the finder if this handle's :func:`install` call added it.

        Example:
            >>> install().uninstall()
        """
        if self.installed:
            self.installed = False
            uninstall()

    def __enter__(self) -> "HookHandle":
        return self

    def __exit__(
        self,
        exc_type: "type[BaseException] | None",
        exc: "BaseException | None",
        tb: "TracebackType | None",
    ) -> None:
        self.uninstall()


def is_installed() -> bool:
    """Whether persist_hooks' finder is on ``sys.meta_path``.

    Example:
        >>> with install():
        ...     is_installed()
        True
    """
    with _STATE.lock:
        return _STATE.index() is not None


def install(*, warn: bool = True) -> HookHandle:
    """Put the DataSet finder on ``sys.meta_path``; a no-op if it is already there.

    The finder goes just in front of importlib's ``PathFinder`` (appended if there is
    none) and always behind pytest's assertion rewriter. Installation is detected by
    identity, so calling this twice adds nothing. With ``warn`` (the default), every
    call (also one that finds the finder installed already) checks the finders in front
    of ours and names those that may claim DataSet names in a
    :class:`ShadowedHookWarning` (see :func:`shadowing_finders`); start-up installs with
    ``warn=False``.

    Example:
        >>> with install() as handle:       # uninstalls on exit only if it installed
        ...     import importlib            # DataSets import here
    """
    with _STATE.lock:
        if _STATE.index() is None:
            sys.meta_path.insert(_insertion_index(), _STATE.finder)
            handle = HookHandle(installed=True)
        else:
            handle = HookHandle(installed=False)
    if warn:
        shadows = shadowing_finders()
        if shadows:
            import warnings

            warnings.warn(
                "persist_hooks: these finders in front of the DataSet finder on "
                f"sys.meta_path may shadow DataSet imports: {shadows!r}",
                ShadowedHookWarning,
                stacklevel=2,
            )
    return handle


def uninstall() -> None:
    """Remove the DataSet finder from ``sys.meta_path``; a no-op if it is not there.

    DataSet modules already imported keep working (their items still load lazily).

    Example:
        >>> handle = install()
        >>> uninstall()
        >>> is_installed()
        False
    """
    with _STATE.lock:
        finder = _STATE.finder
        sys.meta_path[:] = [other for other in sys.meta_path if other is not finder]
        finder.invalidate_caches()


def shadowing_finders(name: str | None = None) -> list[object]:
    """Finders in front of ours on ``sys.meta_path`` that may shadow DataSet imports.

    Without ``name``: every finder in front of ours that is not known to leave DataSets
    alone (the built-in and frozen importers, pytest's assertion rewriter and setuptools'
    distutils shim are known). With ``name``: the finders in front of ours that return a
    spec for ``name`` (asked with ``find_spec(name, None)``). When ours is not installed,
    the finders in front of where :func:`install` would put it count.

    Example:
        >>> shadowing_finders("mydata")
        []
    """
    with _STATE.lock:
        end = _STATE.index()
        front = sys.meta_path[: _insertion_index() if end is None else end]
    if name is None:
        return [f for f in front if _finder_key(f) not in _HARMLESS_FINDERS]
    found: list[object] = []
    for finder in front:
        find: Callable[..., object] | None = getattr(finder, "find_spec", None)
        if find is not None and find(name, None) is not None:
            found.append(finder)
    return found

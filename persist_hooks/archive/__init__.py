"""The Archive: named objects in, importable Python source (plus an array table) out.

``insert`` walks each new object graph once (shared objects and cycles
included) and orders the statements that build it; ``str`` formats them.
Arrays above ``array_threshold`` elements leave the source: the source reads
them from the array table ``_arrays`` and :attr:`Archive.data` holds them.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DuplicateError
from ..names import check_name
from .emit import BUILD, ROOT, Emitter, order
from .graph import Node, Walker
from .restore import ARRAYS_NAME, restore, run_code
from .templates import shadows_builtin

__all__ = ["ARRAYS_NAME", "Archive", "assignment_source", "restore", "run_code"]

_DEL_PER_LINE = 16
_TARGET_HEAD = re.compile(r"[A-Za-z_]\w*")


class Archive:
    """Collects named objects and writes them as Python source that rebuilds them.

    ``scoped=True`` writes each representation in its own function scope (no
    name is ever rewritten); ``scoped=False`` writes the flat, most readable
    form.  ``array_threshold``: arrays with more elements than this go to
    :attr:`data` instead of the source (``None``: all arrays stay in the
    source).  ``single_item_mode``: the archive holds one item and the source,
    imported as a module, replaces itself in ``sys.modules`` by that item.

    Example:
        >>> a = Archive(scoped=False)
        >>> shared = {"k": 1}
        >>> a.insert(x=[shared, shared], y=shared)
        ['x', 'y']
        >>> print(a, end="")
        y = {'k': 1}
        x = [y, y]
        >>> d = restore(str(a))
        >>> d["x"][0] is d["y"]
        True
    """

    def __init__(
        self,
        scoped: bool = True,
        array_threshold: int | None = None,
        single_item_mode: bool = False,
    ) -> None:
        if array_threshold is not None and (not isinstance(array_threshold, int) or array_threshold < 0):
            raise ValueError(f"array_threshold must be None or an int >= 0, not {array_threshold!r}")
        self.scoped = bool(scoped)
        self.array_threshold = array_threshold
        self.single_item_mode = bool(single_item_mode)
        self._walker = Walker(array_threshold)
        self._roots: dict[str, str | Node] = {}
        self._targets: dict[str, str | Node] = {}
        self._stmts: list[Any] = []
        self._source: str | None = None

    # -- building --------------------------------------------------------------------

    @property
    def data(self) -> dict[str, np.ndarray[Any, Any]]:
        """The externalised arrays, by the keys the source uses with ``_arrays[...]``.

        Example:
            >>> a = Archive(array_threshold=2)
            >>> a.insert(x=np.arange(5))
            ['x']
            >>> list(a.data)
            ['array_0']
        """
        return self._walker.arrays

    @property
    def names(self) -> list[str]:
        """The inserted names, in insertion order.

        Example:
            >>> a = Archive(); _ = a.insert(b=1, a=2); a.names
            ['b', 'a']
        """
        return list(self._roots)

    def insert(self, **objs: Any) -> list[str]:
        """Add objects under the given names; return the names.

        Raises ``ValueError`` for invalid names, :class:`DuplicateError` for a
        name already inserted and :class:`UnrepresentableError` (naming the
        type and the path in the graph) for objects that cannot be rebuilt.
        A failed insert leaves the archive as it was.

        Example:
            >>> a = Archive()
            >>> a.insert(a=1, b=[1, 2])
            ['a', 'b']
        """
        for name in objs:
            check_name(name)
            if name in self._roots:
                raise DuplicateError(
                    f"name {name!r} is already in the archive; insert under another name "
                    "(an archive binds each name once)"
                )
        if self.single_item_mode and len(self._roots) + len(objs) > 1:
            raise ValueError(
                "a single_item_mode archive holds exactly one item; create one archive per item"
            )
        self._insert(objs, self._roots)
        return list(objs)

    def _insert(self, objs: Mapping[str, Any], table: dict[str, str | Node]) -> None:
        walker = self._walker
        stmts = self._stmts
        mark = len(stmts)
        enabled = gc.isenabled()
        gc.disable()  # the walk (and indexing earlier inserts) allocates many containers;
        try:  # collections would rescan them all
            walker.begin()
            try:
                parts = [(name, walker.root(name, obj)) for name, obj in objs.items()]
                for name, part in parts:
                    if part.__class__ is Node:
                        order([part], stmts)
                    stmts.append((ROOT, name, part))
            except BaseException:
                del stmts[mark:]
                walker.rollback()
                raise
        finally:
            if enabled:
                gc.enable()
        walker.commit()
        table.update(parts)
        self._source = None

    # -- source ----------------------------------------------------------------------

    def __str__(self) -> str:
        if self._source is None:
            enabled = gc.isenabled()
            gc.disable()
            try:
                self._source = self._format()
            finally:
                if enabled:
                    gc.enable()
        return self._source

    def __repr__(self) -> str:
        return f"<Archive {self.names!r} scoped={self.scoped} arrays={len(self.data)}>"

    def _format(self) -> str:
        roots = self._roots
        free = self._walker.free_names
        deferred = {n for n in roots if n in free or shadows_builtin(n)}
        # an assignment target's leading name (``date`` in ``date = ...``) is reserved too
        reserved = set(roots) | {_TARGET_HEAD.match(t).group() for t in self._targets if _TARGET_HEAD.match(t)}  # type: ignore[union-attr]
        emitter = Emitter(self.scoped, reserved)
        for node in self._walker.memo.values():
            node.name = None
            node.text = node.base_text
            node.noinline = False
        stmts = [(BUILD, node) for node in self._walker.prelude] + self._stmts
        for entry in stmts:
            if entry is not None and entry[0] == ROOT:
                name, part = entry[1], entry[2]
                if part.__class__ is Node and part.name is None and name in roots:
                    part.name = emitter.temp() if name in deferred else name
        emitter.prepare(stmts)
        late: list[str] = []
        for entry in stmts:
            if entry is None:
                continue
            if entry[0] != ROOT:
                emitter.statement(entry)
                continue
            name, part = entry[1], entry[2]
            if part.__class__ is Node and part.name == name:
                continue
            line = f"{name} = {emitter.ref(part)}"
            (late if name in deferred else emitter.lines).append(line)
        lines = emitter.import_block() + emitter.function_defs + emitter.lines + late
        trash = [*emitter.temps, *(f[0] for f in emitter.functions.values())]
        trash += [bound for bound in emitter.bound_names]
        for i in range(0, len(trash), _DEL_PER_LINE):
            lines.append("del " + ", ".join(trash[i : i + _DEL_PER_LINE]))
        if self.single_item_mode and roots:
            (name,) = roots
            lines.append("import sys as _sys")
            lines.append('if globals().get("__spec__") is not None:  # imported: the module is the item')
            lines.append(f"    _sys.modules[__name__] = {name}")
        return "\n".join(lines) + "\n" if lines else ""

    # -- saving ----------------------------------------------------------------------

    def save(
        self,
        dirname: str | os.PathLike[str],
        name: str | None = None,
        package: bool = True,
        backend: str | None = None,
    ) -> Path:
        """Write the archive as an importable module or package; return its path.

        ``package=True`` writes ``dirname/name/__init__.py`` (arrays beside it
        in ``dirname/name/_data``); ``package=False`` writes ``dirname/name.py``
        (arrays in ``dirname/name_data``).  Arrays are written by ``backend``
        (default: configuration, then npy) and loaded by plain-Python code in
        the module, so it imports without persist_hooks.

        Example:
            >>> import tempfile, sys
            >>> a = Archive(); _ = a.insert(x=[1, 2])
            >>> d = tempfile.mkdtemp()
            >>> _ = a.save(d, "doc_saved_mod")
            >>> sys.path.insert(0, d); import doc_saved_mod; sys.path.remove(d)
            >>> doc_saved_mod.x
            [1, 2]
        """
        from .save import save_archive

        return save_archive(self, dirname, name, package=package, backend=backend)

    def save_data(
        self, dirname: str | os.PathLike[str], stem: str = "_data", backend: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Write :attr:`data` through a storage backend; return the manifest (key -> entry).

        ``dirname`` is the directory relative to which the manifest's paths are
        given, ``stem`` the relative file prefix.

        Example:
            >>> import tempfile
            >>> a = Archive(array_threshold=2); _ = a.insert(x=np.arange(5))
            >>> manifest = a.save_data(tempfile.mkdtemp())
            >>> manifest["array_0"]["shape"]
            [5]
        """
        from .save import save_data

        return save_data(self.data, dirname, stem, backend=backend)[1]


def assignment_source(target: str, obj: object, *, scoped: bool = False) -> str:
    """Source assigning ``obj`` to the expression ``target`` (e.g. ``"_info_dict['x']"``).

    The source makes its own imports and deletes its temporaries.

    Example:
        >>> print(assignment_source("d['x']", [1, 2]), end="")
        d['x'] = [1, 2]
    """
    archive = Archive(scoped=scoped)
    archive._insert({target: obj}, archive._targets)
    return str(archive)

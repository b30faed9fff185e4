"""Turn walked nodes into Python source: dependency order, cycle closing, scoped or flat text.

Ordering is one iterative depth-first pass.  An object is built after its
children.  When a child turns out to be in progress (a reference cycle), the
cycle is closed at that child if it can be built in two phases (lists, dicts,
sets, instances): its ``new`` statement goes into the slot reserved when the
walk entered it and its ``fill`` statement is emitted when it completes.  A
child that cannot be split (a tuple, say) is built right away, re-entrantly,
from the children that now exist — the way pickle handles recursive tuples.
Only a cycle through objects none of which can be split is refused.

Formatting is a second pass over the ordered statements (never over the
graph): an object referenced once is written inline where it is used; others
get a temporary ``_g<N>``.  In the scoped format a representer's expression
becomes the body of a function (one per distinct template) called with the
arguments; in the flat format its argument names are replaced on the parsed
template by the arguments' expressions and its imports are hoisted.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnbuildableCycleError
from .graph import CHUNK, K_DICT, K_FROZENSET, K_LIST, K_REP, K_SET, K_TUPLE, Node
from .templates import SELF, Template, shadows_builtin

__all__ = ["BUILD", "ROOT", "Emitter", "order"]

_NEW, _BUILD, _FILL, ROOT = range(4)
MAX_INLINE_DEPTH = 50
"""Objects nested deeper than this inside one expression get a temporary instead."""
BUILD = _BUILD
_IN, _DONE = 1, 2


def order(roots: list[Node], stmts: list[Any]) -> None:
    """Append ``(op, node)`` statements building ``roots`` (and what they need) to ``stmts``.

    The depth-first pass below closes cycles where it meets them; where its
    local decisions paint it into a corner (a tuple rebuilt re-entrantly that
    needs another tuple already being rebuilt), :func:`_order_by_events`
    orders the same nodes again by a global schedule.  Raises
    :class:`UnbuildableCycleError` naming the cycle when it runs only through
    objects that cannot be built in two phases.
    """
    for root in roots:
        if root.state == _DONE:
            continue
        mark = len(stmts)
        try:
            _order_depth_first(root, stmts)
        except UnbuildableCycleError as exc:
            touched = [entry[1] for entry in stmts[mark:] if entry is not None]
            del stmts[mark:]
            _order_by_events(root, touched, stmts, exc)


def _order_by_events(
    root: Node, touched: list[Node], stmts: list[Any], error: UnbuildableCycleError
) -> None:
    """Order what ``root`` needs as a schedule of events, splitting where needed.

    Each node not built yet becomes events: ``new`` and ``fill`` for one that
    can be built in two phases, ``build`` for one that cannot.  Every step of
    a representation (``new``, ``fill``, ``build``) needs its arguments
    *complete* (it may copy their contents, as ``__dict__.update(state)``
    does; through tuples and frozensets, their elements too); a display and
    its ``fill`` need their parts only to *exist*.  A
    depth-first walk over these requirements gives the order; a ``new``
    directly followed by its ``fill`` is one ``build``.  A cycle among events
    is a truly unbuildable graph: ``error`` is raised.
    """
    for node in touched:  # undo what the depth-first pass decided
        _reset(node)
    nodes: list[Node] = []
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if node.state == _DONE or id(node) in seen:
            continue
        seen.add(id(node))
        _reset(node)
        nodes.append(node)
        todo.extend(reversed(node.deps))

    def exists(node: Node) -> list[tuple[int, Node]]:
        if node.state == _DONE:
            return []
        return [(_NEW if node.splittable else _BUILD, node)]

    def complete(node: Node, out: list[tuple[int, Node]], seen_deep: set[int]) -> None:
        if node.state == _DONE or id(node) in seen_deep:
            return
        seen_deep.add(id(node))
        if node.splittable:
            out.append((_FILL, node))
            return
        out.append((_BUILD, node))
        if node.kind in (K_TUPLE, K_FROZENSET):
            for dep in node.deps:
                complete(dep, out, seen_deep)

    def needs(op: int, node: Node) -> list[tuple[int, Node]]:
        out: list[tuple[int, Node]] = [(_NEW, node)] if op == _FILL else []
        if op == _FILL:
            deps = node.deps[node.n_new :]
        elif op == _NEW:
            deps = node.deps[: node.n_new]
        else:
            deps = node.deps
        if node.kind == K_REP:
            seen_deep: set[int] = set()
            for dep in deps:
                complete(dep, out, seen_deep)
        else:
            for dep in deps:
                out += exists(dep)
        return out

    events: list[tuple[int, Node]] = []
    state: dict[tuple[int, int], int] = {}  # (op, id): 1 in progress, 2 done
    for node in nodes:
        goal = (_FILL if node.splittable else _BUILD, node)
        if state.get((goal[0], id(node))) == 2:
            continue
        stack: list[tuple[tuple[int, Node], list[tuple[int, Node]], int]] = [
            (goal, needs(*goal), 0)
        ]
        state[(goal[0], id(node))] = 1
        while stack:
            event, required, i = stack[-1]
            if i < len(required):
                stack[-1] = (event, required, i + 1)
                child = required[i]
                key = (child[0], id(child[1]))
                mark = state.get(key)
                if mark == 2:
                    continue
                if mark == 1:
                    raise error  # a cycle among events: no order exists
                state[key] = 1
                stack.append((child, needs(*child), 0))
                continue
            stack.pop()
            state[(event[0], id(event[1]))] = 2
            events.append(event)
    for i, (op, node) in enumerate(events):
        if op == _NEW:
            nxt = events[i + 1] if i + 1 < len(events) else None
            if nxt is not None and nxt[0] == _FILL and nxt[1] is node:
                stmts.append((_BUILD, node))
                continue
            node.split = True
            stmts.append((_NEW, node))
        elif op == _FILL and node.split:
            stmts.append((_FILL, node))
        elif op == _BUILD:
            stmts.append((_BUILD, node))
        node.state = _DONE if op != _NEW else node.state


def _reset(node: Node) -> None:
    """Forget every ordering decision about ``node`` (it is ordered again from scratch)."""
    node.state, node.split, node.slot, node.reent, node.wait = 0, False, -1, False, None
    node.waiters = []


def _order_depth_first(root: Node, stmts: list[Any]) -> None:
    """The depth-first pass of :func:`order` for one root (see the module docstring)."""
    root.state = _IN
    stack: list[list[Any]] = [[root, 0, False]]
    while stack:
        frame = stack[-1]
        node: Node = frame[0]
        i: int = frame[1]
        deps = node.deps
        if i == node.n_new and node.splittable and node.slot < 0 and not frame[2]:
            node.slot = len(stmts)
            stmts.append(None)
        if i < len(deps):
            frame[1] = i + 1
            child = deps[i]
            state = child.state
            if state == _DONE or child.split:
                continue
            if state == 0:
                for grand in child.deps:
                    if grand.state != _DONE and not grand.split:
                        break
                else:
                    # everything it needs exists already: no cycle can pass through
                    # it, so it is built at once (no frame, no slot for `new`)
                    stmts.append((_BUILD, child))
                    child.state = _DONE
                    continue
                child.state = _IN
                stack.append([child, 0, False])
                continue
            # the child is in progress: a reference cycle
            if child.splittable and child.slot >= 0:
                child.split = True
                stmts[child.slot] = (_NEW, child)
                continue
            if not child.reent:
                child.reent = True
                stack.append([child, 0, True])
                continue
            # The child is already being rebuilt further down the stack.  This node
            # must exist before the child, so it is split and completed after it.
            # Its ancestors up to the rebuild are built before the child too: a
            # display only refers to its elements, but a representation may copy
            # an argument's contents, so those are split and wait as well.
            chain: list[Node] = []
            for depth, above in enumerate(reversed(stack)):
                held = above[0]
                if held is child and above[2]:
                    break
                if depth and held.kind != K_REP:
                    continue
                if above[2] or not held.splittable or held.slot < 0:
                    raise _cycle_error(child, stack)
                chain.append(held)
            rebuilt_at = _rebuild_index(stack, child)
            for waiting in chain:
                if not waiting.split:
                    waiting.split = True
                    stmts[waiting.slot] = (_NEW, waiting)
                # it may already wait for another rebuild: keep the one that completes
                # last (the deeper on the stack), so both exist when it is completed
                if waiting.wait is None or _rebuild_index(stack, waiting.wait) > rebuilt_at:
                    waiting.wait = child
            continue
        stack.pop()
        if frame[2]:
            stmts.append((_BUILD, node))
            node.state = _DONE
            _release(node, stmts)
        elif node.state != _DONE:
            waits = node.wait
            node.state = _DONE
            if waits is not None and waits.state != _DONE:
                waits.waiters.append(node)  # its fill follows the node it needs
            else:
                stmts.append((_FILL if node.split else _BUILD, node))
                _release(node, stmts)


def _rebuild_index(stack: list[list[Any]], node: Node) -> int:
    """Position of ``node``'s re-entrant rebuild on the stack (-1: not being rebuilt)."""
    for i in range(len(stack) - 1, -1, -1):
        frame = stack[i]
        if frame[0] is node and frame[2]:
            return i
    return -1


def _release(node: Node, stmts: list[Any]) -> None:
    """Emit the fills that were waiting for ``node`` to be built."""
    while node.waiters:
        waiting = node.waiters.pop(0)
        stmts.append((_FILL, waiting))
        _release(waiting, stmts)


def _cycle_error(child: Node, stack: list[list[Any]]) -> UnbuildableCycleError:
    chain = [frame[0] for frame in stack]
    start = next((k for k, n in enumerate(chain) if n is child), 0)
    cycle = [*chain[start:], child]
    names = " -> ".join(type(n.obj).__qualname__ for n in cycle)
    path = child.path()
    return UnbuildableCycleError(
        f"cannot archive the reference cycle {names} at {path}: none of its objects can be "
        "created before its contents (give one of these types a representer with "
        "`new`/`fill`, see persist_hooks.hookspecs)",
        path=path,
        type_name=type(child.obj).__qualname__,
    )


class Emitter:
    """Formats ordered statements as source, in the scoped or flat format."""

    def __init__(self, scoped: bool, root_names: set[str]) -> None:
        self.scoped = scoped
        self.root_names = root_names
        self.lines: list[str] = []
        self.temps: list[str] = []
        self.functions: dict[tuple[Any, ...], tuple[str, list[str]]] = {}
        self.function_defs: list[str] = []
        self.import_alias: dict[tuple[str, str], str] = {}
        self.import_lines: dict[str, list[tuple[str, str]]] = {}
        self.bound_names: dict[str, None] = {}  # ordered: the final `del` line is deterministic
        self._n_temp = 0

    # -- names -----------------------------------------------------------------------

    def temp(self) -> str:
        name = f"_g{self._n_temp}"
        self._n_temp += 1
        self.temps.append(name)
        return name

    def alias(self, module: str, name: str, bound: str) -> str:
        """The module-level name bound to ``from module import name`` (flat format)."""
        key = (module, name)
        found = self.import_alias.get(key)
        if found is not None:
            return found
        want = bound
        if want in self.root_names or want in self.bound_names or shadows_builtin(want):
            base = f"{module.replace('.', '_')}_{name}"
            want = base
            n = 1
            while want in self.root_names or want in self.bound_names:
                n += 1
                want = f"{base}_{n}"
        self.bound_names[want] = None
        self.import_alias[key] = want
        self.import_lines.setdefault(module, []).append((name, want))
        return want

    # -- references ------------------------------------------------------------------

    @staticmethod
    def ref(part: Any) -> str:
        if part.__class__ is str:
            return part
        if part.__class__ is list:
            return _inline_text(part)
        return part.name if part.name is not None else part.text  # type: ignore[no-any-return]

    @staticmethod
    def ref_atomic(part: Any) -> str:
        """Like :meth:`ref`, parenthesised where it replaces a name in an expression."""
        if part.__class__ is str:
            return f"({part})" if part[:1] == "-" else part
        if part.name is not None:
            return part.name  # type: ignore[no-any-return]
        text: str = part.text
        return text if part.atomic else f"({text})"

    # -- statements ------------------------------------------------------------------

    def prepare(self, stmts: list[Any]) -> None:
        """Mark children that a representation uses other than exactly once (no inlining)."""
        for entry in stmts:
            if entry is None or entry[0] == ROOT:
                continue
            node = entry[1]
            if node.kind != K_REP:
                continue
            uses: dict[str, int] = {}
            if node.split:
                _count(uses, node.new_tmpl or node.tmpl)
                _count(uses, node.fill_tmpl)
            else:
                _count(uses, node.tmpl)
                if node.new_tmpl is None:
                    _count(uses, node.fill_tmpl)
            names = list(node.tmpl.arg_uses)
            for name, part in zip(names, node.parts, strict=True):
                if part.__class__ is Node and uses.get(name, 0) != 1:
                    part.noinline = True

    def statement(self, entry: Any) -> None:
        op, node = entry
        if node.pre is not None and op != _NEW:
            for early in node.pre:  # inline containers a later insert shares: named first
                self._build(early)
        if op == _BUILD:
            self._build(node)
        elif op == _NEW:
            self._new(node)
        else:
            self._fill(node)

    def _inline_ok(self, node: Node) -> bool:
        return node.refs == 1 and node.name is None and not node.split and not node.noinline

    def _target(self, node: Node) -> str:
        if node.name is None:
            node.name = self.temp()
        return node.name

    def _build(self, node: Node) -> None:
        # how deeply inline texts nest inside this one (the parser allows ~200 levels)
        depth = 0
        for part in node.deps:
            if part.name is None and part.depth > depth:
                depth = part.depth
        if node.framed:  # inline containers count as the inlined nodes they stand for
            depth = _framed_depth(node.parts) if depth else 1
        # a display of literals only counts as nothing, like the text written in place
        node.depth = depth + 1 if node.deps or node.kind == K_REP else 0
        kind = node.kind
        if kind == K_REP:
            self._build_rep(node)
            return
        if node.text is not None:
            text = node.text
        elif len(node.parts) <= CHUNK or (kind == K_DICT and len(node.parts) <= 2 * CHUNK):
            refs = _refs(node.parts)
            text = _display(kind, refs)
        else:
            self._build_chunked(node)
            return
        if self._inline_ok(node) and node.depth <= MAX_INLINE_DEPTH:
            node.text = text
            node.atomic = True
            return
        self.lines.append(f"{self._target(node)} = {text}")

    def _build_chunked(self, node: Node) -> None:
        name = self._target(node)
        kind = node.kind
        step = 2 * CHUNK if kind == K_DICT else CHUNK
        refs = _refs(node.parts)
        chunks = [refs[i : i + step] for i in range(0, len(refs), step)]
        base = {K_TUPLE: K_LIST, K_FROZENSET: K_SET}.get(kind, kind)
        self.lines.append(f"{name} = {_display(base, chunks[0])}")
        method = "extend" if base == K_LIST else "update"
        for chunk in chunks[1:]:
            self.lines.append(f"{name}.{method}({_display(base, chunk)})")
        if kind == K_TUPLE:
            self.lines.append(f"{name} = tuple({name})")
        elif kind == K_FROZENSET:
            self.lines.append(f"{name} = frozenset({name})")

    def _new(self, node: Node) -> None:
        name = self._target(node)
        kind = node.kind
        if kind == K_LIST:
            self.lines.append(f"{name} = []")
        elif kind == K_DICT:
            self.lines.append(f"{name} = {{}}")
        elif kind == K_SET:
            self.lines.append(f"{name} = set()")
        else:
            tmpl = node.new_tmpl or node.tmpl
            assert tmpl is not None
            self.lines.append(f"{name} = {self._expr(node, tmpl)}")

    def _fill(self, node: Node) -> None:
        name = node.name
        assert name is not None
        kind = node.kind
        if kind == K_REP:
            assert node.fill_tmpl is not None
            self._fill_stmt(node, name)
            return
        refs = _refs(node.parts)
        if kind == K_LIST:
            for i in range(0, len(refs), CHUNK):
                self.lines.append(f"{name}.extend({_display(K_LIST, refs[i:i + CHUNK])})")
        elif kind == K_DICT:
            for i in range(0, len(refs), 2 * CHUNK):
                self.lines.append(f"{name}.update({_display(K_DICT, refs[i:i + 2 * CHUNK])})")
        else:
            for i in range(0, len(refs), CHUNK):
                self.lines.append(f"{name}.update({_display(K_LIST, refs[i:i + CHUNK])})")

    def _build_rep(self, node: Node) -> None:
        tmpl = node.tmpl
        assert tmpl is not None
        expr = self._expr(node, tmpl)
        if node.fill_tmpl is not None and node.new_tmpl is None:
            name = self._target(node)  # always built in two phases
            self.lines.append(f"{name} = {expr}")
            self._fill_stmt(node, name)
            return
        if self._inline_ok(node) and node.depth <= MAX_INLINE_DEPTH:
            verbatim = not self.scoped or expr == tmpl.source
            atomic = tmpl.atomic if verbatim else True  # scoped: a call of the template's function
            node.text = expr if atomic else f"({expr})"
            node.atomic = True
            return
        self.lines.append(f"{self._target(node)} = {expr}")

    # -- representation templates ----------------------------------------------------

    def _expr(self, node: Node, tmpl: Template) -> str:
        if not tmpl.names:
            return tmpl.source
        args = node.tmpl.arg_uses if node.tmpl is not None else {}
        if self.scoped and not any(n in args for n in tmpl.names) and self._bind_verbatim(node, tmpl):
            return tmpl.source  # only imports, each bound under its own name: nothing to rewrite
        if self.scoped:
            params = [n for n in tmpl.names if n in args]
            fname = self._function(node, tmpl, params, "eval")
            values = dict(zip(args, node.parts, strict=True))
            return f"{fname}({', '.join(self.ref(values[p]) for p in params)})"
        return tmpl.substitute(self._flat_mapping(node, tmpl))

    def _bind_verbatim(self, node: Node, tmpl: Template) -> bool:
        """Bind the template's imports at module level under their own names, if none collides."""
        wanted = [i for i in node.imports if i[2] in tmpl.names]
        for module, name, bound in wanted:
            have = self.import_alias.get((module, name))
            if have is not None:
                if have != bound:
                    return False
                continue
            if bound in self.root_names or bound in self.bound_names or shadows_builtin(bound):
                return False
        for module, name, bound in wanted:
            self.alias(module, name, bound)
        return True

    def _fill_stmt(self, node: Node, name: str) -> None:
        tmpl = node.fill_tmpl
        assert tmpl is not None and node.tmpl is not None
        args = node.tmpl.arg_uses
        if self.scoped:
            params = [n for n in tmpl.names if n in args]
            fname = self._function(node, tmpl, [SELF, *params], "exec")
            values = dict(zip(args, node.parts, strict=True))
            call = ", ".join([name, *(self.ref(values[p]) for p in params)])
            self.lines.append(f"{fname}({call})")
            return
        mapping = self._flat_mapping(node, tmpl)
        mapping[SELF] = name
        self.lines.extend(tmpl.substitute(mapping).splitlines())

    def _flat_mapping(self, node: Node, tmpl: Template) -> dict[str, str]:
        mapping: dict[str, str] = {}
        assert node.tmpl is not None
        for arg, part in zip(node.tmpl.arg_uses, node.parts, strict=True):
            mapping[arg] = self.ref_atomic(part)
        for module, name, bound in node.imports:
            if bound in tmpl.names:
                mapping[bound] = self.alias(module, name, bound)
        return mapping

    def _function(self, node: Node, tmpl: Template, params: list[str], mode: str) -> str:
        imports = tuple(i for i in node.imports if i[2] in tmpl.names)
        key = (mode, tmpl.source, tuple(params), imports)
        found = self.functions.get(key)
        if found is not None:
            return found[0]
        fname = f"_f{len(self.functions)}"
        body: list[str] = [f"def {fname}({', '.join(params)}):"]
        for module, name, bound in imports:
            body.append(f"    from {module} import {name}" + (f" as {bound}" if bound != name else ""))
        if mode == "eval":
            body.append(f"    return {tmpl.source}")
        else:
            body.extend(f"    {line}" for line in tmpl.source.splitlines())
        self.functions[key] = (fname, body)
        self.function_defs.extend(body)
        return fname

    def import_block(self) -> list[str]:
        out: list[str] = []
        for module, names in self.import_lines.items():
            parts = [name if name == bound else f"{name} as {bound}" for name, bound in names]
            out.append(f"from {module} import {', '.join(parts)}")
        return out


def _inline_text(pieces: list[Any]) -> str:
    """The text of an inline container: its text pieces joined with its nodes' references."""
    return "".join([p if p.__class__ is str else (p.name if p.name is not None else p.text) for p in pieces])


def _framed_depth(parts: list[Any]) -> int:
    """How deeply inline texts nest in ``parts``, an inline container counting as one level.

    (What it would count as an inlined node of its own.)
    """
    depth = 0
    for p in parts:
        if p.__class__ is list:
            inner = 0
            for q in p:
                if q.__class__ is not str and q.name is None and q.depth > inner:
                    inner = q.depth
            if inner + 1 > depth:
                depth = inner + 1
        elif p.__class__ is not str and p.name is None and p.depth > depth:
            depth = p.depth
    return depth


def _refs(parts: list[Any]) -> list[str]:
    """:meth:`Emitter.ref` of each part: the formatter's hot loop."""
    out: list[str] = []
    append = out.append
    for p in parts:
        cls = p.__class__
        if cls is str:
            append(p)
        elif cls is list:
            if len(p) == 3:  # an inline container holding one node
                n = p[1]
                append(p[0] + (n.name if n.name is not None else n.text) + p[2])
            else:
                append(_inline_text(p))
        else:
            append(p.name if p.name is not None else p.text)
    return out


def _count(uses: dict[str, int], tmpl: Template | None) -> None:
    if tmpl is None:
        return
    for name, n in tmpl.arg_uses.items():
        if n:
            uses[name] = uses.get(name, 0) + n


def _display(kind: int, refs: list[str]) -> str:
    if kind == K_LIST:
        return "[" + ", ".join(refs) + "]"
    if kind == K_TUPLE:
        return "(" + refs[0] + ",)" if len(refs) == 1 else "(" + ", ".join(refs) + ")"
    if kind == K_DICT:
        it = iter(refs)
        return "{" + ", ".join([f"{k}: {v}" for k, v in zip(it, it, strict=True)]) + "}"
    if kind == K_SET:
        return "{" + ", ".join(refs) + "}" if refs else "set()"
    return "frozenset({" + ", ".join(refs) + "})" if refs else "frozenset()"

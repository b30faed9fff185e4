"""A module-level memoised function (pickled by reference in the tests)."""

from __future__ import annotations

from persist_hooks.memoize import memoize


@memoize(path="unused_memo_cache", funcname="cube")
def cube(x: int) -> int:
    """``x`` cubed (never called by the tests: decoration writes nothing)."""
    return x**3

"""persist_hooks plugin for ph_interval: found through the entry point in pyproject.toml."""

from __future__ import annotations

from persist_hooks import Rep, hookimpl
from ph_interval import Interval


def represent_interval(iv: Interval) -> Rep | None:
    """Rebuild an Interval by calling its constructor; ``closed`` only when not the default."""
    if type(iv) is not Interval:
        return None  # a subclass we do not know: let __reduce_ex__ handle it
    if iv.closed == "both":
        return Rep("Interval(lo, hi)", {"lo": iv.lo, "hi": iv.hi}, [("ph_interval", "Interval")])
    return Rep(
        "Interval(lo, hi, closed=closed)",
        {"lo": iv.lo, "hi": iv.hi, "closed": iv.closed},
        [("ph_interval", "Interval")],
    )


@hookimpl
def persist_hooks_representers() -> dict[type, object]:
    """The types this plugin represents, with their representers."""
    return {Interval: represent_interval}


@hookimpl
def persist_hooks_safe_callables() -> list[str]:
    """The callables the representers above emit: safe loading may call them."""
    return ["ph_interval.Interval"]

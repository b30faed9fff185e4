"""A small value type for the example plugin: a closed, open or half-open interval."""

from __future__ import annotations

__all__ = ["Interval"]

_CLOSED = ("both", "left", "right", "neither")


class Interval:
    """The interval between ``lo`` and ``hi``; ``closed`` says which ends belong to it."""

    __slots__ = ("closed", "hi", "lo")

    def __init__(self, lo: float, hi: float, closed: str = "both") -> None:
        if closed not in _CLOSED:
            raise ValueError(f"closed must be one of {_CLOSED}, not {closed!r}")
        if hi < lo:
            raise ValueError(f"empty interval: hi={hi!r} < lo={lo!r}")
        self.lo = lo
        self.hi = hi
        self.closed = closed

    def __contains__(self, x: float) -> bool:
        above = self.lo <= x if self.closed in ("both", "left") else self.lo < x
        below = x <= self.hi if self.closed in ("both", "right") else x < self.hi
        return above and below

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interval):
            return NotImplemented
        return (self.lo, self.hi, self.closed) == (other.lo, other.hi, other.closed)

    def __hash__(self) -> int:
        return hash((Interval, self.lo, self.hi, self.closed))

    def __repr__(self) -> str:
        return f"Interval({self.lo!r}, {self.hi!r}, closed={self.closed!r})"

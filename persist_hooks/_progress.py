"""Progress reporting for long writes and conversions: a tqdm bar on a terminal, else silence.

:func:`progress` is a context manager that yields ``advance(n)``.  A bar is shown
only when all of these hold, checked when the first second has passed (so quick
operations never import tqdm nor draw anything):

* the environment variable ``PERSIST_HOOKS_PROGRESS`` is not ``"0"``;
* the stream (``sys.stderr`` by default) is a terminal (non-interactive runs,
  CI logs and pipes stay clean);
* ``tqdm`` is importable (it is an optional dependency, never imported by
  ``import persist_hooks``).

The bar starts at the first ``advance`` made at least ``delay`` seconds (1 s) after
the operation began; before that, advances are only counted.

Example:
    >>> with progress(3, "converting") as advance:
    ...     for _ in range(3):
    ...         advance(1)
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TextIO

__all__ = [
    "DELAY",
    "ENV_VAR",
    "Advance",
    "Progress",
    "bar_allowed",
    "progress",
    "report_written",
    "reporting_writes",
]

ENV_VAR = "PERSIST_HOOKS_PROGRESS"
"""Set to ``"0"`` to disable progress bars everywhere."""

DELAY = 1.0
"""Seconds an operation must run before a bar may appear."""

logger = logging.getLogger("persist_hooks.progress")


class Advance(Protocol):
    """The callable :func:`progress` yields: ``advance(n=1)`` records ``n`` more units done."""

    def __call__(self, n: int = 1) -> None: ...


def bar_allowed(stream: Any = None, environ: Any = None) -> bool:
    """Whether a bar may be drawn on ``stream`` (default ``sys.stderr``): not disabled, a TTY.

    Whether tqdm is importable is checked later, only when a bar is due.

    Example:
        >>> import io
        >>> bar_allowed(io.StringIO())
        False
        >>> bar_allowed(io.StringIO(), {"PERSIST_HOOKS_PROGRESS": "0"})
        False
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR, "").strip() == "0":
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # closed or detached stream
        return False


class Progress:
    """Counts work done and, when allowed and slow enough, mirrors it in a tqdm bar.

    ``total`` may be ``None`` (unknown).  ``clock`` (default
    :func:`time.monotonic`) exists for tests.  Thread-safe.  Use it through
    :func:`progress`, or call :meth:`advance` and :meth:`close` yourself.

    Example:
        >>> import io
        >>> p = Progress(10, "writing x", stream=io.StringIO())
        >>> p.advance(4); p.advance(6); p.done, p.bar
        (10, None)
        >>> p.close()
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        *,
        unit: str = "it",
        unit_scale: bool = False,
        stream: TextIO | None = None,
        delay: float = DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.unit_scale = unit_scale
        self.done = 0
        self.bar: Any = None
        self._stream = sys.stderr if stream is None else stream
        self._delay = delay
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._closed = False
        # decided now (cheap); tqdm's availability only when a bar is due
        self._possible = bar_allowed(self._stream)

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units of work done (and update or start the bar).

        Example:
            >>> import io
            >>> p = Progress(None, stream=io.StringIO()); p.advance(); p.done
            1
        """
        with self._lock:
            self.done += n
            if self._closed:
                return
            if self.bar is not None:
                self.bar.update(n)
            elif self._possible and self._clock() - self._start >= self._delay:
                self._start_bar()

    def _start_bar(self) -> None:
        self._possible = False  # one attempt only
        try:
            tqdm_module = importlib.import_module("tqdm")
        except ImportError:
            logger.debug("no progress bar: tqdm is not installed")
            return
        try:
            self.bar = tqdm_module.tqdm(
                total=self.total,
                initial=self.done,
                desc=self.desc or None,
                unit=self.unit,
                unit_scale=self.unit_scale,
                file=self._stream,
                leave=False,
                dynamic_ncols=True,
            )
        except Exception as exc:  # a progress bar must never break the operation
            logger.debug("no progress bar: tqdm failed: %s", exc)
            self.bar = None

    def close(self) -> None:
        """Remove the bar (if one was drawn); further advances are only counted.

        Example:
            >>> import io
            >>> p = Progress(1, stream=io.StringIO()); p.close(); p.close()
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            bar, self.bar = self.bar, None
        if bar is not None:
            try:
                bar.close()
            except Exception as exc:
                logger.debug("closing the progress bar failed: %s", exc)


@contextmanager
def progress(
    total: int | None,
    desc: str = "",
    *,
    unit: str = "it",
    unit_scale: bool = False,
    stream: TextIO | None = None,
    delay: float = DELAY,
) -> Iterator[Advance]:
    """Report progress of an operation of ``total`` units; yields ``advance(n=1)``.

    Silent unless stderr (or ``stream``) is a terminal, ``tqdm`` is importable,
    ``PERSIST_HOOKS_PROGRESS`` is not ``"0"`` and the operation has run for
    ``delay`` seconds.  Use ``unit="B", unit_scale=True`` for bytes.

    Example:
        >>> with progress(2, "converting", unit="item") as advance:
        ...     advance(1)
        ...     advance(1)
    """
    reporter = Progress(total, desc, unit=unit, unit_scale=unit_scale, stream=stream, delay=delay)
    try:
        yield reporter.advance
    finally:
        reporter.close()


_writing: ContextVar[Advance | None] = ContextVar("persist_hooks_writing", default=None)


@contextmanager
def reporting_writes(total_bytes: int, desc: str) -> Iterator[None]:
    """Report the bytes written in this block (by :func:`report_written`) as one operation.

    A DataSet wraps each item write in it; storage backends call
    :func:`report_written` as they write, so a write that takes longer than
    :data:`DELAY` shows a bar in bytes (on a terminal, see :func:`progress`).

    Example:
        >>> with reporting_writes(8, "writing x"):
        ...     report_written(4); report_written(4)
    """
    if not bar_allowed():  # no bar can show: nothing to count (most writes; ~40 us saved)
        yield
        return
    with progress(total_bytes, desc, unit="B", unit_scale=True, delay=DELAY) as advance:
        token = _writing.set(advance)
        try:
            yield
        finally:
            _writing.reset(token)


def report_written(nbytes: int) -> None:
    """Count ``nbytes`` more bytes written by the write in progress (a no-op outside one).

    Example:
        >>> report_written(100)  # no write in progress: nothing happens
    """
    advance = _writing.get()
    if advance is not None:
        advance(nbytes)

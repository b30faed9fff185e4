"""Reliability suite: a ``reliability_report`` fixture whose lines appear in the terminal summary."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_LINES: list[str] = []


@pytest.fixture
def reliability_report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Call it with a line (counts, timings); lines are printed after the run, even without -s."""

    def report(line: str) -> None:
        _LINES.append(f"{request.node.nodeid}: {line}")

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LINES:
        terminalreporter.section("reliability counts")
        for line in _LINES:
            terminalreporter.write_line(line)

"""Fixtures for the fault suite: ``moto_server`` and ``local_stack`` of :mod:`support.stack`
(one moto server per session, a fresh stack per test), and

- ``fault_stack`` (function): the ``local_stack`` with the suite's three-variant pipeline
  config stored;
- ``record_report``: scenario reports (:class:`InvariantReport`) added with it are printed in
  pytest's terminal summary.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from prism_cli.local.stack import LocalStack
from support.pipeline import THREE_VARIANTS
from support.stack import local_stack, moto_server

from .invariants import InvariantReport

__all__ = ["fault_stack", "local_stack", "moto_server", "record_report"]

_reports: list[tuple[str, InvariantReport]] = []


@pytest.fixture
def fault_stack(local_stack: LocalStack) -> LocalStack:
    local_stack.put_pipeline_config(THREE_VARIANTS)
    return local_stack


@pytest.fixture
def record_report(request: pytest.FixtureRequest) -> Callable[[InvariantReport], None]:
    def record(report: InvariantReport) -> None:
        _reports.append((request.node.name, report))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _reports:
        return
    terminalreporter.section("fault scenarios")
    for name, report in _reports:
        terminalreporter.write_line(f"{name}: {report.summary()}")

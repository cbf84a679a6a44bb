"""Fixtures for the fault suite: one moto server per session, a fresh stack per test.

- ``fault_moto`` (session): a moto server on a free loopback port (with Prism's DynamoDB
  patches, :mod:`prism_cli.moto_dynamodb`), the SDKs pointed at it.
- ``fault_stack`` (function): moto reset, every resource of ``template.yaml`` created, the
  functions' environment set and their warm state forgotten, and the suite's three-variant
  pipeline config stored.

Scenario reports (:class:`InvariantReport`) added with
``record_report`` are printed in pytest's terminal summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_cli.lambda_emulator import forget_warm_state
from prism_cli.local_stack import (
    DUMMY_CREDENTIALS,
    LocalStack,
    MotoServer,
    reset_moto,
    start_moto_server,
    unsafe_environment_names,
)
from prism_cli.template import DEFAULT_REGION

from .harness import THREE_VARIANTS
from .invariants import InvariantReport

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

_reports: list[tuple[str, InvariantReport]] = []


@pytest.fixture(scope="session")
def fault_moto() -> Iterator[MotoServer]:
    with start_moto_server() as server, pytest.MonkeyPatch.context() as patch:
        for name in unsafe_environment_names():
            patch.delenv(name)
        patch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        for name, value in DUMMY_CREDENTIALS.items():
            patch.setenv(name, value)
        patch.setenv("AWS_DEFAULT_REGION", DEFAULT_REGION)
        patch.setenv("AWS_REGION", DEFAULT_REGION)
        yield server


@pytest.fixture
def fault_stack(fault_moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    reset_moto(fault_moto.endpoint)
    stack = LocalStack(TEMPLATE_PATH, endpoint=fault_moto.endpoint, set_environment=False).start()
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    forget_warm_state()
    stack.put_pipeline_config(THREE_VARIANTS)
    yield stack
    stack.close()
    forget_warm_state()  # no SSM client or settings bound to this test's endpoints


@pytest.fixture
def record_report(request: pytest.FixtureRequest) -> object:
    def record(report: InvariantReport) -> None:
        _reports.append((request.node.name, report))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _reports:
        return
    terminalreporter.section("fault scenarios")
    for name, report in _reports:
        terminalreporter.write_line(f"{name}: {report.summary()}")

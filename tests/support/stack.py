"""The local stack's fixtures, for the integration and fault suites (each conftest imports
them, so each suite has its own session server):

- ``moto_server`` (session): a moto server on a free loopback port (with Prism's DynamoDB
  patches, :mod:`prism_cli.local.moto_dynamodb`), the SDKs pointed at it for the whole
  session (``AWS_ENDPOINT_URL``, dummy credentials, region).
- ``local_stack`` (function): moto reset, every resource of ``template.yaml`` created, every
  function's environment variables set and their warm state (cached config, settings,
  clients) forgotten, before and after the test, so handlers start cold. Returns a started
  :class:`prism_cli.local.stack.LocalStack`.
- ``template_path`` (session): the repository's ``template.yaml``.

Import handler modules inside tests (or after ``local_stack``), not at module level: the
settings they read come from the environment this fixture sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_cli.aws_env import endpoint_environment, unsafe_environment_names
from prism_cli.local.lambda_emulator import forget_warm_state
from prism_cli.local.stack import LocalStack, MotoServer, reset_moto
from prism_cli.local.template import DEFAULT_REGION

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="session")
def template_path() -> Path:
    return TEMPLATE_PATH


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server, pytest.MonkeyPatch.context() as patch:
        for name in unsafe_environment_names():
            patch.delenv(name)
        for name, value in endpoint_environment(server.endpoint, DEFAULT_REGION).items():
            patch.setenv(name, value)
        yield server


@pytest.fixture
def local_stack(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    reset_moto(moto_server.endpoint)
    stack = LocalStack(TEMPLATE_PATH, endpoint=moto_server.endpoint, set_environment=False)
    stack.start()
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    forget_warm_state()  # no config or settings cached from an earlier test
    yield stack
    stack.close()
    forget_warm_state()  # no SSM client or settings bound to this test's endpoints

"""Fixtures for tests against the local stack: one moto server per session.

- ``moto_endpoint`` (session): starts moto on a free loopback port and points the SDKs at it
  (``AWS_ENDPOINT_URL``, dummy credentials, region) for the whole session.
- ``local_stack`` (function): resets moto, creates every resource of ``template.yaml`` and
  sets every function's environment variables, so handlers can be imported and called
  afterwards; cached settings and parameters are forgotten (the functions start cold).
  Returns a started :class:`prism_cli.local_stack.LocalStack`.
- ``template_path``: the repository's ``template.yaml``.

Import handler modules inside tests (or after ``local_stack``), not at module level: the
settings they read come from the environment this fixture sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_cli.lambda_emulator import forget_warm_state
from prism_cli.local_stack import (
    DUMMY_CREDENTIALS,
    LocalStack,
    reset_moto,
    start_moto_server,
    unsafe_environment_names,
)
from prism_cli.template import DEFAULT_REGION

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="session")
def template_path() -> Path:
    return TEMPLATE_PATH


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with start_moto_server() as server, pytest.MonkeyPatch.context() as patch:
        for name in unsafe_environment_names():
            patch.delenv(name)
        patch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        for name, value in DUMMY_CREDENTIALS.items():
            patch.setenv(name, value)
        patch.setenv("AWS_DEFAULT_REGION", DEFAULT_REGION)
        patch.setenv("AWS_REGION", DEFAULT_REGION)
        yield server.endpoint


@pytest.fixture
def local_stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    reset_moto(moto_endpoint)
    stack = LocalStack(TEMPLATE_PATH, endpoint=moto_endpoint, set_environment=False).start()
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    forget_warm_state()  # no config or settings cached from an earlier test
    yield stack
    stack.close()

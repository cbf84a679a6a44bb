"""The functions' clients: opened once per event loop, closed when that loop shuts down,
with the SDK settings that keep a request's CPU low."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace, TracebackType
from typing import Any

import aioboto3
import botocore.loaders
import pytest

import prism
from prism.aws import clients
from prism.aws.clients import (
    RETRY_CONFIG,
    UNUSED_S3_ENDPOINT_PARAMETERS,
    Clients,
    cache_s3_endpoints,
    loop_clients,
)


@dataclass
class RecordingSession:
    """Stands in for aioboto3's session: records which clients are opened and closed."""

    opened: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def client(self, service_name: str, **kwargs: Any) -> _ClientContext:
        return _ClientContext(self, service_name)


@dataclass
class _ClientContext:
    session: RecordingSession
    name: str

    async def __aenter__(self) -> SimpleNamespace:
        self.session.opened.append(self.name)
        # What cache_s3_endpoints edits on an S3 client.
        resolver = SimpleNamespace(_param_definitions={"Bucket": None, "Key": None})
        return SimpleNamespace(name=self.name, _ruleset_resolver=resolver)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.session.closed.append(self.name)


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> RecordingSession:
    recording = RecordingSession()
    monkeypatch.setattr(clients, "_session", recording)
    return recording


def test_a_warm_container_reuses_its_clients(session: RecordingSession) -> None:
    # Lambda (through Powertools) runs every invocation of a container in one loop.
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(loop_clients())
        second = loop.run_until_complete(loop_clients())
        assert first is second
        assert sorted(session.opened) == ["dynamodb", "events", "s3", "sqs"]
        assert session.closed == []
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert sorted(session.closed) == ["dynamodb", "events", "s3", "sqs"]


def test_each_loop_of_its_own_gets_clients_of_its_own_closed_with_it(
    session: RecordingSession,
) -> None:
    seen: list[Clients] = []

    async def invocation() -> None:
        seen.append(await loop_clients())
        seen.append(await loop_clients())  # the same invocation asks again

    asyncio.run(invocation())
    asyncio.run(invocation())
    assert seen[0] is seen[1] and seen[2] is seen[3]
    assert seen[0] is not seen[2]  # never a client of a closed loop
    assert len(session.opened) == len(session.closed) == 8


def test_concurrent_first_uses_open_one_set(session: RecordingSession) -> None:
    async def invocation() -> list[Clients]:
        return list(await asyncio.gather(*(loop_clients() for _ in range(5))))

    results = asyncio.run(invocation())
    assert all(result is results[0] for result in results)
    assert len(session.opened) == 4


def _references(rules: Any) -> Iterator[str]:
    """Every parameter a rule tree reads: ``{"ref": name}``, and ``{name}`` or
    ``{name#attribute}`` inside a template string."""
    if isinstance(rules, dict):
        if "ref" in rules:
            yield rules["ref"]
        for value in rules.values():
            yield from _references(value)
    elif isinstance(rules, list):
        for value in rules:
            yield from _references(value)
    elif isinstance(rules, str):
        for template in rules.split("{")[1:]:
            yield template.split("}")[0].split("#")[0]


def test_s3s_endpoint_rules_never_read_the_parameters_left_out() -> None:
    # If this fails, botocore's S3 rules now read Key, Prefix or CopySource: leaving them
    # out could change an endpoint, so cache_s3_endpoints must go.
    ruleset = botocore.loaders.create_loader().load_service_model("s3", "endpoint-rule-set-1")
    assert set(ruleset["parameters"]) >= UNUSED_S3_ENDPOINT_PARAMETERS
    assert "Bucket" in set(_references(ruleset["rules"]))  # the scan finds what is read
    assert not UNUSED_S3_ENDPOINT_PARAMETERS & set(_references(ruleset["rules"]))


def test_an_s3_client_resolves_one_endpoint_for_every_key_of_a_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    async def endpoints() -> tuple[set[str], set[str], int]:
        session = aioboto3.Session(region_name="eu-west-1")
        async with session.client("s3", config=RETRY_CONFIG) as s3:
            before = await _endpoint_parameters(s3)
            cache_s3_endpoints(s3)
            after = await _endpoint_parameters(s3)
            resolver = s3._ruleset_resolver
            model = s3.meta.service_model.operation_model("PutObject")
            urls = {
                (await resolver.construct_endpoint(model, {"Bucket": "b", "Key": f"k{i}"}, {})).url
                for i in range(3)
            }
            return before, after, len(urls)

    before, after, distinct_urls = asyncio.run(endpoints())
    assert {"Bucket", "Key"} <= before
    assert "Bucket" in after and not UNUSED_S3_ENDPOINT_PARAMETERS & after
    assert distinct_urls == 1


async def _endpoint_parameters(s3: Any) -> set[str]:
    model = s3.meta.service_model.operation_model("PutObject")
    params = await s3._ruleset_resolver._get_provider_params(
        model, {"Bucket": "b", "Key": "photo.jpg"}, {}
    )
    return set(params)


def test_requests_carry_prisms_own_user_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.13")
    agent = clients.user_agent()
    assert agent.startswith(f"prism/{prism.__version__} aiobotocore/")
    assert agent.endswith(" exec-env/AWS_Lambda_python3.13")
    assert RETRY_CONFIG.user_agent and RETRY_CONFIG.user_agent.startswith("prism/")
    assert RETRY_CONFIG.parameter_validation is False

"""The functions' clients: opened once per event loop, closed when that loop shuts down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pytest

from prism.aws import clients
from prism.aws.clients import Clients, loop_clients


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

    async def __aenter__(self) -> str:
        self.session.opened.append(self.name)
        return f"{self.name} client"

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

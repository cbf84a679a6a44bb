"""Faults at the adapter layer: the aioboto3 clients the functions use, wrapped.

``prism.aws.clients.open_clients`` opens its clients from the module's ``_session``;
:func:`patched_session` swaps that for a :class:`InterceptingSession` whose clients pass
every API call through a chain of interceptors. The real call still goes to moto.

- :class:`AdapterFaults` makes a seeded fraction of calls fail, either **before** the call
  (nothing happened) or **after** it (it took effect, the caller sees an error). The
  errors are what botocore raises once its own retries are spent: a ``ClientError``
  (throttling, 5xx) or a connection error.
- :class:`KillAfterOutputWrite` fails a worker right after it wrote an output object and
  before it recorded the outcome; :func:`dying_handler` makes such an invocation fail as a
  whole, as a crashed Lambda would.
- :class:`FailOnce` fails the first call that matches a predicate.
"""

from __future__ import annotations

import random
import threading
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

import prism.aws.clients
from prism_cli.local.lambda_emulator import Handler


@dataclass
class Call:
    """One API call of a wrapped client; ``proceed()`` makes the real call."""

    service: str
    operation: str  # the client method, e.g. "put_object"
    api_name: str  # the API operation, e.g. "PutObject"
    kwargs: dict[str, Any]
    proceed: Callable[[], Awaitable[Any]]


Interceptor = Callable[[Call], Awaitable[Any]]


class InterceptedClient:
    """An aioboto3 client whose API methods go through ``interceptors`` (first is outermost)."""

    def __init__(self, client: Any, service: str, interceptors: Sequence[Interceptor]) -> None:
        self._client = client
        self._service = service
        self._interceptors = list(interceptors)
        self._operations: dict[str, str] = dict(client.meta.method_to_api_mapping)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._operations:
            return attribute

        async def call(**kwargs: Any) -> Any:
            async def innermost() -> Any:
                return await attribute(**kwargs)

            proceed: Callable[[], Awaitable[Any]] = innermost
            for interceptor in reversed(self._interceptors):
                proceed = _bind(
                    interceptor, self._service, name, self._operations[name], kwargs, proceed
                )
            return await proceed()

        return call


def _bind(
    interceptor: Interceptor,
    service: str,
    operation: str,
    api_name: str,
    kwargs: dict[str, Any],
    proceed: Callable[[], Awaitable[Any]],
) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return await interceptor(Call(service, operation, api_name, kwargs, proceed))

    return run


class InterceptingSession:
    """Stands in for ``prism.aws.clients._session``."""

    def __init__(self, session: Any, interceptors: Sequence[Interceptor]) -> None:
        self._session = session
        self._interceptors = interceptors

    @asynccontextmanager
    async def client(self, service_name: str, **kwargs: Any) -> AsyncIterator[InterceptedClient]:
        async with self._session.client(service_name, **kwargs) as client:
            yield InterceptedClient(client, service_name, self._interceptors)


@contextmanager
def patched_session(*interceptors: Interceptor) -> Iterator[None]:
    """The functions' clients go through ``interceptors`` inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        session = prism.aws.clients._session
        patch.setattr(prism.aws.clients, "_session", InterceptingSession(session, interceptors))
        yield


def release(result: Any) -> None:
    """Close a streamed body the caller will never read (an 'after' fault on a GET)."""
    body = result.get("Body") if isinstance(result, dict) else None
    close = getattr(body, "close", None)
    if callable(close):
        close()


# --- random faults -----------------------------------------------------------------------------
class Timing(StrEnum):
    BEFORE = "before"  # the call never reached the service
    AFTER = "after"  # the call took effect; its response was lost


_THROTTLING = {
    "s3": [("SlowDown", 503)],
    "dynamodb": [("ProvisionedThroughputExceededException", 400), ("ThrottlingException", 400)],
    "sqs": [("ThrottlingException", 400)],
    "events": [("ThrottlingException", 400)],
}
_SERVER_ERRORS = {
    "s3": [("InternalError", 500), ("ServiceUnavailable", 503)],
    "dynamodb": [("InternalServerError", 500)],
    "sqs": [("InternalError", 500)],
    "events": [("InternalException", 500)],
}


def client_error(service: str, api_name: str, rng: random.Random) -> Exception:
    """An error botocore raises after its retries, chosen by ``rng``."""
    kind = rng.randrange(3)
    if kind == 2:
        url = f"https://{service}.us-east-1.amazonaws.com/"
        if rng.random() < 0.5:
            return EndpointConnectionError(endpoint_url=url)
        return ConnectionClosedError(endpoint_url=url)
    code, status = rng.choice((_THROTTLING if kind == 0 else _SERVER_ERRORS)[service])
    response: Any = {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 4},
    }
    return ClientError(response, api_name)


@dataclass(frozen=True)
class InjectedAdapterFault:
    service: str
    operation: str
    index: int
    timing: Timing
    error: str


@dataclass
class AdapterFaults:
    """Fail ``rate`` of the calls, before or after they take effect.

    The n-th call of each (service, operation) is decided by
    ``Random(f"{seed}|{service}|{operation}|{n}")``."""

    rate: float
    seed: int
    timings: tuple[Timing, ...] = (Timing.BEFORE, Timing.AFTER)
    services: frozenset[str] = frozenset({"s3", "sqs", "dynamodb", "events"})
    injected: list[InjectedAdapterFault] = field(default_factory=list)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(
        self, service: str, operation: str, api_name: str
    ) -> tuple[Timing, Exception] | None:
        with self._lock:
            index = self.calls[(service, operation)]
            self.calls[(service, operation)] += 1
            if service not in self.services:
                return None
            rng = random.Random(f"{self.seed}|{service}|{operation}|{index}")
            if rng.random() >= self.rate:
                return None
            timing = rng.choice(self.timings)
            error = client_error(service, api_name, rng)
            self.injected.append(
                InjectedAdapterFault(service, operation, index, timing, type(error).__name__)
            )
        return timing, error

    async def __call__(self, call: Call) -> Any:
        decision = self.decide(call.service, call.operation, call.api_name)
        if decision is None:
            return await call.proceed()
        timing, error = decision
        if timing is Timing.BEFORE:
            raise error
        release(await call.proceed())
        raise error

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(fault.timing.value for fault in self.injected)


# --- a worker killed between its S3 write and its DynamoDB write ------------------------------
class WorkerKilled(Exception):
    """The worker died right after writing an output object."""


def every_other_output(key: str) -> bool:
    """A stable half of the output keys."""
    return zlib.crc32(key.encode()) % 2 == 0


@dataclass
class KillAfterOutputWrite:
    """Fail once per selected output key, right after ``put_object`` of it succeeded."""

    output_bucket: str
    select: Callable[[str], bool] = every_other_output
    killed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _died: threading.local = field(default_factory=threading.local)

    async def __call__(self, call: Call) -> Any:
        result = await call.proceed()
        if call.service != "s3" or call.operation != "put_object":
            return result
        key = str(call.kwargs.get("Key"))
        if call.kwargs.get("Bucket") != self.output_bucket or not self.select(key):
            return result
        with self._lock:
            if key in self.killed:
                return result
            self.killed.append(key)
        self._died.value = True  # the invocation runs in this thread (asyncio.run)
        raise WorkerKilled(key)

    def died_in_this_thread(self) -> bool:
        died = bool(getattr(self._died, "value", False))
        self._died.value = False
        return died


def dying_handler(handler: Handler, kills: KillAfterOutputWrite) -> Handler:
    """``handler``, except that an invocation in which a worker was killed fails as a whole
    (no batch response: every message of the batch comes back, as after a crash).

    Only for batches delivered for the first time, so a message is never failed by other
    messages' kills more than once and cannot reach the DLQ by collateral damage alone."""

    def handle(event: dict[str, Any], context: Any) -> Any:
        kills.died_in_this_thread()  # forget an earlier invocation's kill in this thread
        response = handler(event, context)
        first_delivery = all(
            record.get("attributes", {}).get("ApproximateReceiveCount") == "1"
            for record in event.get("Records", [])
        )
        if kills.died_in_this_thread() and first_delivery:
            raise WorkerKilled("the worker process died during this invocation")
        return response

    return handle


@dataclass
class FailOnce:
    """Fail the first call for which ``matches(call)`` holds, before or after it took effect."""

    matches: Callable[[Call], bool]
    error: Exception
    timing: Timing = Timing.BEFORE
    failed: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, call: Call) -> Any:
        if not self.matches(call):
            return await call.proceed()
        with self._lock:
            first = not self.failed
            if first:
                self.failed.append(call)
        if not first:
            return await call.proceed()
        if self.timing is Timing.AFTER:
            release(await call.proceed())
        raise self.error

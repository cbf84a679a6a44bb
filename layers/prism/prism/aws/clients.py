"""aioboto3 clients with the project's retry policy, and SDK settings that keep a request cheap.

An aiohttp session is bound to the event loop that created it, so the functions' clients
are kept per event loop (``loop_clients``). In Lambda, Powertools runs every invocation of
a container in one loop, so a container opens its clients and connection pools once;
where every invocation runs a loop of its own (tests, the local stack), they are closed
when that loop shuts down, and the next loop opens its own (never the "Event loop is
closed" trap of a module-level client). Endpoints come from the standard
``AWS_ENDPOINT_URL*`` variables, never from code.
"""

from __future__ import annotations

import asyncio
import os
import platform
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3
import aiobotocore
import botocore
from aiobotocore.config import AioConfig

import prism
from prism.aws.tls_session import SharedTlsSession


def user_agent() -> str:
    """The User-Agent of Prism's requests, as CloudTrail and S3's access logs show it:
    Prism's version, the SDK's, Python's and (in Lambda) the runtime's."""
    parts = [
        f"prism/{prism.__version__}",
        f"aiobotocore/{aiobotocore.__version__}",
        f"botocore/{botocore.__version__}",
        f"python/{platform.python_version()}",
    ]
    if runtime := os.environ.get("AWS_EXECUTION_ENV"):
        parts.append(f"exec-env/{runtime}")
    return " ".join(parts)


# botocore's "standard" mode retries throttling, timeouts, lost connections and 5xx with
# exponential backoff and jitter (up to 20 s between attempts). Five retries (six attempts)
# ride out a throttling burst of several seconds; what still fails is raised, so SQS
# redelivers the message later (docs/correctness.md). The timeouts bound a hung call: six
# attempts of at most 3 + 10 s stay within the 90 s a worker has before its time reserve.
RETRY_CONFIG = AioConfig(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=50,
    # The services validate every request themselves; botocore's check in Python first
    # cost about 6 % of the worker's CPU per request.
    parameter_validation=False,
    # A User-Agent of our own is built once; botocore's own is built from 16 parts, each
    # sanitised character by character, twice per request (15 % of the SDK's CPU).
    user_agent=user_agent(),
    # One SSL context for all the clients, not one each (15 ms of CPU apiece).
    http_session_cls=SharedTlsSession,
)
# botocore caches the endpoint it resolves for each set of endpoint-rule parameters. S3's
# rules declare Key, Prefix and CopySource without using them, so every new object key
# missed the cache and ran the whole rule tree again, the largest single cost of a worker
# request (boto/botocore#3528). botocore itself leaves them out since boto/botocore#3692;
# aioboto3 pins a botocore from before it, so Prism's S3 clients do the same.
UNUSED_S3_ENDPOINT_PARAMETERS = frozenset({"Key", "Prefix", "CopySource"})

_session = aioboto3.Session()


@dataclass(frozen=True)
class Clients:
    s3: Any
    sqs: Any
    dynamodb: Any
    events: Any


@asynccontextmanager
async def open_clients() -> AsyncIterator[Clients]:
    async with AsyncExitStack() as stack:
        yield await _enter_clients(stack)


async def _enter_clients(stack: AsyncExitStack) -> Clients:
    s3, sqs, dynamodb, events = [
        await stack.enter_async_context(_session.client(name, config=RETRY_CONFIG))
        for name in ("s3", "sqs", "dynamodb", "events")
    ]
    cache_s3_endpoints(s3)
    return Clients(s3=s3, sqs=sqs, dynamodb=dynamodb, events=events)


def cache_s3_endpoints(s3: Any) -> None:
    """Resolve ``s3``'s endpoint without the parameters its rules never read."""
    resolver = s3._ruleset_resolver
    resolver._param_definitions = {
        name: definition
        for name, definition in resolver._param_definitions.items()
        if name not in UNUSED_S3_ENDPOINT_PARAMETERS
    }


# Per event loop: the clients, and the suspended generator that holds them open. asyncio
# closes a loop's live async generators when it shuts the loop down (``asyncio.run`` does),
# which closes the clients.
_by_loop: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[asyncio.Future[Clients], AsyncGenerator[Clients, None]]
] = weakref.WeakKeyDictionary()


async def loop_clients() -> Clients:
    """The running loop's clients, opened on first use and kept until the loop shuts down."""
    loop = asyncio.get_running_loop()
    held = _by_loop.get(loop)
    if held is None:
        holder = _hold_clients()
        opened: asyncio.Future[Clients] = asyncio.ensure_future(anext(holder))
        held = _by_loop[loop] = (opened, holder)
        try:
            await opened
        except BaseException:
            del _by_loop[loop]  # the next call tries again
            raise
    return await asyncio.shield(held[0])


async def _hold_clients() -> AsyncGenerator[Clients, None]:
    stack = AsyncExitStack()
    try:
        yield await _enter_clients(stack)
    finally:
        await stack.aclose()

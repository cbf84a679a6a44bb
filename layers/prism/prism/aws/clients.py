"""aioboto3 clients with the project's retry policy.

Clients are opened per invocation (``async with``): an aiohttp session is bound to the
event loop that created it, and outside Lambda every invocation runs in a new loop.
Endpoints come from the standard ``AWS_ENDPOINT_URL*`` variables, never from code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

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
)

_session = aioboto3.Session()


@dataclass(frozen=True)
class Clients:
    s3: Any
    sqs: Any
    dynamodb: Any


@asynccontextmanager
async def open_clients() -> AsyncIterator[Clients]:
    async with AsyncExitStack() as stack:
        s3, sqs, dynamodb = [
            await stack.enter_async_context(_session.client(name, config=RETRY_CONFIG))
            for name in ("s3", "sqs", "dynamodb")
        ]
        yield Clients(s3=s3, sqs=sqs, dynamodb=dynamodb)

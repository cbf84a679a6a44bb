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

# botocore's "standard" mode retries throttling, timeouts and 5xx with exponential backoff
# and jitter. What still fails after that is raised, so SQS redelivers the message later.
RETRY_CONFIG = AioConfig(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
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

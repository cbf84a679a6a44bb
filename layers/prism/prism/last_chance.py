"""Bookkeeping on a message's last allowed delivery.

When a message has failed ``maxReceiveCount`` times, SQS moves it to the dead-letter queue,
and the only thing that still lets its job end is recording it as ``retries_exhausted``
now. botocore has already retried every call of that recording; each step is idempotent,
so it is tried a few more times here rather than leave a job running for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

LAST_CHANCE_ATTEMPTS = 6


async def persistently(step: Callable[[], Awaitable[T]]) -> T:
    """``step()``, tried up to LAST_CHANCE_ATTEMPTS times (0.05 s, 0.1 s, ... apart)."""
    for attempt in range(LAST_CHANCE_ATTEMPTS - 1):
        try:
            return await step()
        except Exception:
            await asyncio.sleep(0.05 * 2**attempt)
    return await step()


async def once(step: Callable[[], Awaitable[T]]) -> T:
    """``step()``, tried once: for the same bookkeeping outside a last delivery."""
    return await step()

"""A memory budget shared by the sources a worker decodes at once.

Each source reserves what its decode and renders may take (``imaging.decode_footprint``)
before it is decoded, and gives it back when its variants are rendered, so a worker can
decode the next source while the current one encodes without passing its memory. A source
larger than the whole budget waits until it can run alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class MemoryBudget:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = capacity
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def reserve(self, amount: int) -> AsyncIterator[None]:
        amount = min(max(amount, 0), self.capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self._free >= amount)
            self._free -= amount
        try:
            yield
        finally:
            async with self._changed:
                self._free += amount
                self._changed.notify_all()

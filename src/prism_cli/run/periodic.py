"""What a local run does every so often while it goes on (release finished sources, move
the stack's events out of its queue), until it is told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


async def every(
    seconds: float, stop: asyncio.Event, action: Callable[[], Awaitable[object]], what: str
) -> None:
    """Run ``action`` every ``seconds`` until ``stop`` is set (then return once a run under
    way has ended). A failing run is logged as "``what`` failed" and the next one still
    comes: what these actions do only saves memory, and the run's end does it all anyway."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        if stop.is_set():
            return
        try:
            await action()
        except Exception:
            logger.exception("%s failed", what)

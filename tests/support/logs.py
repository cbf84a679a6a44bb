"""What Prism's Powertools logger writes during a test, parsed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prism.observability import logger

LogLines = Callable[[], dict[str, list[dict[str, Any]]]]


@contextmanager
def logged_lines() -> Iterator[LogLines]:
    """While it lasts, the logger writes to a buffer; the callable gives the lines written
    so far, grouped by message."""
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]

    def lines() -> dict[str, list[dict[str, Any]]]:
        by_message: dict[str, list[dict[str, Any]]] = {}
        for line in stream.getvalue().splitlines():
            if line:
                parsed = json.loads(line)
                by_message.setdefault(parsed["message"], []).append(parsed)
        return by_message

    try:
        yield lines
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]

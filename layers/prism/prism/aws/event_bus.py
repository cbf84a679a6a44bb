"""Publishing Prism's events to EventBridge (the ``EventPublisher`` port)."""

from __future__ import annotations

import json
from typing import Any

from prism.errors import TransientError

EVENT_SOURCE = "prism"


class EventBus:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events = events
        self._bus_name = bus_name

    async def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        """One event (``source: prism``); an entry EventBridge refuses is raised, so the
        message is retried and the run stays unannounced until it is published."""
        response = await self._events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, sort_keys=True),
                    "EventBusName": self._bus_name,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = (response.get("Entries") or [{}])[0]
            raise TransientError(
                f"EventBridge refused the {detail_type!r} event: "
                f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}"
            )

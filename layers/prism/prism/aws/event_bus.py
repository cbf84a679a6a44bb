"""Publishing Prism's events to EventBridge (the ``EventPublisher`` port)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from prism.errors import TransientError
from prism.ports import Event

EVENT_SOURCE = "prism"
# What one PutEvents call takes: at most 10 entries, of at most 256 KB together.
ENTRIES_PER_CALL = 10
BYTES_PER_CALL = 256 * 1024


class EventBus:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events = events
        self._bus_name = bus_name

    async def publish(self, events: Sequence[Event]) -> list[BaseException | None]:
        """The events (``source: prism``), in as few PutEvents calls as EventBridge takes.
        An entry EventBridge refuses, or a call that fails after botocore's retries, is
        that event's error: its message is retried, and its run stays unannounced."""
        errors: list[BaseException | None] = []
        entries = [self._entry(event) for event in events]
        for chunk in _calls(entries):
            try:
                response = await self._events.put_events(Entries=chunk)
            except Exception as exc:  # the call failed as a whole: so did its entries
                errors.extend([exc] * len(chunk))
                continue
            results = response.get("Entries") or []
            if len(results) != len(chunk):
                # Not the answer EventBridge documents (one result per entry, in order):
                # none is taken as published, so at worst an event goes out twice.
                unanswered = TransientError(
                    f"PutEvents answered {len(results)} of {len(chunk)} entries"
                )
                errors.extend([unanswered] * len(chunk))
                continue
            errors.extend(
                _refused(entry, result) if result.get("ErrorCode") else None
                for entry, result in zip(chunk, results, strict=True)
            )
        return errors

    def _entry(self, event: Event) -> dict[str, str]:
        return {
            "Source": EVENT_SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail, sort_keys=True),
            "EventBusName": self._bus_name,
        }


def entry_size(entry: dict[str, str]) -> int:
    """An entry's size as EventBridge counts it (its Source, DetailType and Detail)."""
    return sum(len(entry[field].encode()) for field in ("Source", "DetailType", "Detail"))


def _calls(entries: list[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    """``entries`` in order, cut into what one call takes."""
    chunk: list[dict[str, str]] = []
    size = 0
    for entry in entries:
        if chunk and (len(chunk) == ENTRIES_PER_CALL or size + entry_size(entry) > BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += entry_size(entry)
    if chunk:
        yield chunk


def _refused(entry: dict[str, str], result: dict[str, Any]) -> TransientError:
    return TransientError(
        f"EventBridge refused the {entry['DetailType']!r} event: "
        f"{result.get('ErrorCode')}: {result.get('ErrorMessage')}"
    )

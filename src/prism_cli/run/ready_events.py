"""The events a local run's stack published ("Source Processed", "Source Deleted", "Job
Completed"): the template's rule routes them to its events queue, from which they are moved
to a file while the run goes on (moto would keep every message in memory until the end),
and written to ``OUT/events.jsonl``, oldest first, at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prism_cli.local.stack import LocalStack

EVENTS_QUEUE = "EventsQueue"
EVENTS_NAME = "events.jsonl"
SPOOL_SECONDS = 1.0  # how often a run moves its events out of the queue


class EventSpool:
    """The stack's events queue, emptied into ``out/events.jsonl.part`` by ``move``; ``collect``
    moves the rest and writes ``out/events.jsonl``. Nothing to do if the template routes no
    events to a queue."""

    def __init__(self, stack: LocalStack, out: Path) -> None:
        self._stack = stack
        self._out = out
        self._part = out / f"{EVENTS_NAME}.part"
        self._routed = EVENTS_QUEUE in stack.template.queues

    def move(self) -> int:
        """Move the events in the queue now to the spool file; how many were moved."""
        if not self._routed:
            return 0
        sqs, url = self._stack.clients.sqs, self._stack.queue_url(EVENTS_QUEUE)
        moved = 0
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            lines = [json.dumps(json.loads(m["Body"]), sort_keys=True) + "\n" for m in batch]
            with self._part.open("a", encoding="utf-8") as file:
                file.write("".join(lines))
            # Deleted once written: an event is in the queue or in the file, never in neither.
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
            moved += len(batch)
        return moved

    def collect(self) -> list[dict[str, Any]]:
        """Every event the stack published, oldest first, also written to ``events.jsonl``."""
        if not self._routed:
            return []
        self.move()
        spooled: list[tuple[dict[str, Any], str]] = []  # each event, and its line as moved
        if self._part.exists():
            with self._part.open(encoding="utf-8") as file:
                spooled = [(json.loads(line), line) for line in file if line.strip()]
        spooled.sort(key=lambda pair: str(pair[0].get("time", "")))
        with (self._out / EVENTS_NAME).open("w", encoding="utf-8") as file:
            file.writelines(line for _, line in spooled)
        self._part.unlink(missing_ok=True)
        return [event for event, _ in spooled]


def event_line(event: dict[str, Any]) -> str:
    """One event as ``prism run --events`` prints it: its type, then its detail as JSON."""
    return f"{event.get('detail-type')}: {json.dumps(event.get('detail'), sort_keys=True)}"

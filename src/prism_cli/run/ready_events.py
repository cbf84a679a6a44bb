"""The events a local run's stack published ("Source Processed", "Source Deleted", "Job
Completed"): the template's rule routes them to its events queue, read here at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prism_cli.local.stack import LocalStack

EVENTS_QUEUE = "EventsQueue"
EVENTS_NAME = "events.jsonl"


def collect_events(stack: LocalStack, out: Path) -> list[dict[str, Any]]:
    """Every event in the stack's events queue (none if the template routes none there),
    removed from it and written to ``out/events.jsonl``, one JSON object per line."""
    if EVENTS_QUEUE not in stack.template.queues:
        return []
    sqs, url = stack.clients.sqs, stack.queue_url(EVENTS_QUEUE)
    events: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        events.extend(json.loads(message["Body"]) for message in batch)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    events.sort(key=lambda event: str(event.get("time", "")))
    with (out / EVENTS_NAME).open("w", encoding="utf-8") as file:
        for event in events:
            file.write(json.dumps(event, sort_keys=True) + "\n")
    return events


def event_line(event: dict[str, Any]) -> str:
    """One event as ``prism run --events`` prints it: its type, then its detail as JSON."""
    return f"{event.get('detail-type')}: {json.dumps(event.get('detail'), sort_keys=True)}"

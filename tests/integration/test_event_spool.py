"""A local run moves its stack's events out of the events queue as they come (moto would
hold every message until the end) and writes them, oldest first, at the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prism_cli.local.stack import LocalStack
from prism_cli.run.ready_events import EVENTS_NAME, EventSpool

pytestmark = pytest.mark.integration


def publish(stack: LocalStack, times: list[str]) -> None:
    url = stack.queue_url("EventsQueue")
    for time in times:
        body = {"detail-type": "Source Processed", "time": time, "detail": {"key": time}}
        stack.clients.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def in_queue(stack: LocalStack) -> int:
    attributes = stack.clients.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url("EventsQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_events_leave_the_queue_as_they_come_and_end_sorted(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    spool = EventSpool(local_stack, tmp_path)
    publish(local_stack, [f"2026-12-02T10:00:{second:02d}Z" for second in range(25, 0, -1)])

    assert spool.move() == 25
    assert in_queue(local_stack) == 0
    assert not (tmp_path / EVENTS_NAME).exists()  # only the spool, until the end

    publish(local_stack, ["2026-12-02T09:59:59Z", "2026-12-02T10:00:30Z"])
    events = spool.collect()

    times = [event["time"] for event in events]
    assert len(times) == 27 and times == sorted(times)
    lines = (tmp_path / EVENTS_NAME).read_text().splitlines()
    assert [json.loads(line)["time"] for line in lines] == times
    assert list(tmp_path.iterdir()) == [tmp_path / EVENTS_NAME]
    assert in_queue(local_stack) == 0

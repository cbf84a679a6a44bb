"""A worker batch's sources are announced together once the batch is done: their "Source
Processed" events in one PutEvents call, before their job's "Job Completed"; a source whose
event EventBridge refuses has only its own messages retried, and is announced by them. The
event bus sends as many events a call as EventBridge takes.

The worker is invoked directly with the fan-out's messages (all of them in one batch), its
clients' calls seen through the fault suite's interceptors; every call still goes to moto.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from faults.adapter_faults import Call, patched_session
from prism.aws.clients import open_clients
from prism.aws.event_bus import EventBus
from prism.messages import JOB_METADATA_KEY
from prism.ports import Event
from prism_cli.local.lambda_emulator import (
    FakeLambdaContext,
    load_function_handler,
    sqs_event,
    warm_container,
)
from prism_cli.local.stack import LocalStack
from support.images import image_bytes
from support.pipeline import create_job, drain, prism_events, run_functions, with_jobs

pytestmark = pytest.mark.integration

VARIANTS = """
variants:
  - {name: thumb, transforms: [{op: thumbnail, width: 32, height: 32}], format: webp}
  - {name: web, transforms: [{op: thumbnail, width: 80, height: 80}], format: jpeg}
  - {name: small, transforms: [{op: thumbnail, width: 16, height: 16}], format: png}
"""
SOURCES = ("uploads/a.png", "uploads/b.png", "uploads/c.png")
REFUSED = "uploads/b.png"


def fanned_out(stack: LocalStack) -> list[Any]:
    """A sealed job of three sources, fanned out: its nine variant messages."""
    stack.put_pipeline_config(VARIANTS)
    create_job(stack, "batch-1")
    for index, key in enumerate(SOURCES):
        stack.clients.s3.put_object(
            Bucket=stack.bucket_name("InputBucket"),
            Key=key,
            Body=image_bytes((60 + index, 40), "PNG", "teal"),
            Metadata={JOB_METADATA_KEY: "batch-1"},
        )
    with_jobs(stack, lambda jobs: jobs.seal("batch-1", len(SOURCES)))
    run_functions(stack, "FanoutFunction")
    messages = drain(stack, "VariantsQueue")
    assert len(messages) == 3 * len(SOURCES)
    return messages


def invoke_worker(stack: LocalStack, messages: list[Any]) -> dict[str, Any]:
    worker = stack.template.function("WorkerFunction")
    handler = load_function_handler(worker)
    event = sqs_event(messages, stack.template.queue("VariantsQueue").arn, "us-east-1")
    with warm_container(worker.handler_path.parent):
        response: dict[str, Any] = handler(event, FakeLambdaContext.for_function(worker))
    return response


def source_key(message: Any) -> str:
    return str(json.loads(message["Body"])["source"]["key"])


class PutEventsSeen:
    """Records each PutEvents call's entries (detail type, source key); with ``refuse``,
    EventBridge refuses REFUSED's event that many times (it is not sent on)."""

    def __init__(self, refuse: int = 0) -> None:
        self.calls: list[list[tuple[str, str | None]]] = []
        self._refuse = refuse

    async def __call__(self, call: Call) -> Any:
        if call.api_name != "PutEvents":
            return await call.proceed()
        entries = call.kwargs["Entries"]
        seen = [(e["DetailType"], json.loads(e["Detail"]).get("key")) for e in entries]
        self.calls.append(seen)
        refused = [i for i, (_, key) in enumerate(seen) if key == REFUSED]
        if not refused or self._refuse == 0:
            return await call.proceed()
        self._refuse -= 1
        call.kwargs["Entries"] = [e for i, e in enumerate(entries) if i not in refused]
        response = await call.proceed() if call.kwargs["Entries"] else {"Entries": []}
        sent = iter(response["Entries"])
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "refused in the test"}
            if i in refused
            else next(sent)
            for i in range(len(entries))
        ]
        return {"FailedEntryCount": len(refused), "Entries": results}


def test_a_batchs_sources_are_announced_in_one_call_then_their_job(
    local_stack: LocalStack,
) -> None:
    messages = fanned_out(local_stack)
    seen = PutEventsSeen()
    with patched_session(seen):
        response = invoke_worker(local_stack, messages)

    assert response == {"batchItemFailures": []}
    # One call for the three sources, then the job's own (claimed, so published alone).
    assert [sorted(call) for call in seen.calls] == [
        [("Source Processed", key) for key in SOURCES],
        [("Job Completed", None)],
    ]
    events = prism_events(local_stack)
    processed = [e["detail"]["key"] for e in events if e["detail-type"] == "Source Processed"]
    assert sorted(processed) == list(SOURCES)
    assert [e["detail-type"] for e in events].count("Job Completed") == 1


def test_a_refused_event_retries_only_its_sources_messages(local_stack: LocalStack) -> None:
    messages = fanned_out(local_stack)
    with patched_session(PutEventsSeen(refuse=1)):
        response = invoke_worker(local_stack, messages)

    refused = {m["MessageId"] for m in messages if source_key(m) == REFUSED}
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == refused
    first = prism_events(local_stack)
    announced = {e["detail"]["key"] for e in first if e["detail-type"] == "Source Processed"}
    assert announced == set(SOURCES) - {REFUSED}
    # Its job waits for it: a "Job Completed" before the last "Source Processed" would lie.
    assert "Job Completed" not in {e["detail-type"] for e in first}

    # SQS hands the refused source's messages out again.
    seen = PutEventsSeen()
    with patched_session(seen):
        again = invoke_worker(local_stack, [m for m in messages if m["MessageId"] in refused])

    assert again == {"batchItemFailures": []}
    assert seen.calls == [[("Source Processed", REFUSED)], [("Job Completed", None)]]
    second = prism_events(local_stack)
    assert sorted((e["detail-type"], e["detail"].get("key")) for e in second) == [
        ("Job Completed", None),
        ("Source Processed", REFUSED),
    ]


def test_on_a_last_delivery_a_refused_event_is_tried_again_at_once(
    local_stack: LocalStack,
) -> None:
    messages = fanned_out(local_stack)
    for message in messages:  # SQS's last delivery before the dead-letter queue
        message["Attributes"]["ApproximateReceiveCount"] = "5"
    seen = PutEventsSeen(refuse=1)
    with patched_session(seen):
        response = invoke_worker(local_stack, messages)

    assert response == {"batchItemFailures": []}
    assert [sorted(call) for call in seen.calls] == [
        [("Source Processed", key) for key in SOURCES],  # REFUSED's refused
        [("Source Processed", REFUSED)],  # tried again at once
        [("Job Completed", None)],
    ]
    events = prism_events(local_stack)
    processed = [e["detail"]["key"] for e in events if e["detail-type"] == "Source Processed"]
    assert sorted(processed) == list(SOURCES)


def publish(stack: LocalStack, events: list[Event]) -> list[BaseException | None]:
    async def run() -> list[BaseException | None]:
        async with open_clients() as clients:
            bus = EventBus(clients.events, stack.environment["PRISM_EVENT_BUS"])
            return await bus.publish(events)

    return asyncio.run(run())


def test_the_bus_publishes_ten_events_a_call_within_its_size_limit(
    local_stack: LocalStack,
) -> None:
    small = [Event("Source Processed", {"key": f"uploads/{i}.png"}) for i in range(12)]
    # Three events of 100 KB: EventBridge takes 256 KB a call, so two calls.
    large = [Event("Source Processed", {"key": f"big/{i}", "pad": "x" * 100_000}) for i in range(3)]
    seen = PutEventsSeen()
    with patched_session(seen):
        errors = publish(local_stack, small + large)

    assert errors == [None] * 15
    assert [len(call) for call in seen.calls] == [10, 4, 1]
    delivered = {e["detail"]["key"] for e in prism_events(local_stack)}
    assert delivered == {e.detail["key"] for e in small + large}


def test_an_answer_without_a_result_per_entry_publishes_none(local_stack: LocalStack) -> None:
    async def answer_short(call: Call) -> Any:
        if call.api_name != "PutEvents":
            return await call.proceed()
        return {"FailedEntryCount": 0, "Entries": []}  # nothing sent on to moto

    events = [Event("Source Processed", {"key": f"uploads/{i}.png"}) for i in range(2)]
    with patched_session(answer_short):
        errors = publish(local_stack, events)

    assert all(isinstance(error, Exception) for error in errors) and len(errors) == 2
    assert "answered 0 of 2 entries" in str(errors[0])

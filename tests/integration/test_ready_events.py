""" "Ready" events and responsive manifests on the local stack: one "Source Processed" per
source run and one "Job Completed" per job, even under redelivery, routed by the
template's EventBridge rule to the events queue; and each source's manifest in the output
bucket and on its record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prism.messages import JOB_METADATA_KEY
from prism_cli.local.stack import LocalStack
from support.images import image_bytes
from support.pipeline import (
    create_job,
    drain,
    manifest_keys,
    output_json,
    prism_events,
    run_functions,
    with_jobs,
    with_processing,
)

pytestmark = pytest.mark.integration

VARIANTS = """
public_url: https://img.example.com
variants:
  - {name: thumb, transforms: [{op: thumbnail, width: 32, height: 32}], format: webp}
  - {name: web, transforms: [{op: thumbnail, width: 80, height: 80}], format: webp}
  - {name: fallback, transforms: [{op: thumbnail, width: 80, height: 80}], format: jpeg}
"""


def put(stack: LocalStack, key: str, data: bytes, job: str | None = None) -> None:
    stack.clients.s3.put_object(
        Bucket=stack.bucket_name("InputBucket"),
        Key=key,
        Body=data,
        Metadata={JOB_METADATA_KEY: job} if job else {},
    )


def of_type(events: list[dict[str, Any]], detail_type: str) -> list[dict[str, Any]]:
    return [event for event in events if event["detail-type"] == detail_type]


def test_each_source_and_the_job_are_announced_once(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(VARIANTS)
    create_job(local_stack, "batch-1")
    put(local_stack, "uploads/a.png", image_bytes((200, 100), "PNG", "red"), "batch-1")
    put(local_stack, "uploads/b.jpg", b"\xff\xd8\xff\xe0 not a jpeg at all", "batch-1")
    with_jobs(local_stack, lambda jobs: jobs.seal("batch-1", 2))
    run_functions(local_stack, failures_expected=True)

    events = prism_events(local_stack)
    assert {event["source"] for event in events} == {"prism"}
    processed = {e["detail"]["key"]: e["detail"] for e in of_type(events, "Source Processed")}
    assert len(of_type(events, "Source Processed")) == 2 and set(processed) == {
        "uploads/a.png",
        "uploads/b.jpg",
    }
    good = processed["uploads/a.png"]
    assert good["status"] == "complete" and good["job_id"] == "batch-1"
    assert good["original"] == {"width": 200, "height": 100, "format": "png"}
    assert good["manifest_key"] == "a_manifest.json"
    by_name = {v["name"]: v for v in good["variants"]}
    assert by_name["thumb"] | {"bytes": 0} == {
        "name": "thumb",
        "status": "done",
        "key": "a_thumb.webp",
        "format": "webp",
        "width": 32,
        "height": 16,
        "bytes": 0,
    }
    assert by_name["thumb"]["bytes"] > 0
    assert (by_name["web"]["width"], by_name["fallback"]["format"]) == (80, "jpeg")

    bad = processed["uploads/b.jpg"]
    assert bad["status"] == "complete_with_failures" and bad["manifest_key"] is None
    assert {v["status"] for v in bad["variants"]} == {"failed"}
    assert all(v["reason"] for v in bad["variants"])

    (completed,) = of_type(events, "Job Completed")
    assert completed["detail"]["job_id"] == "batch-1"
    assert completed["detail"]["status"] == "complete_with_failures"
    assert completed["detail"]["sources"] == {
        "expected": 2,
        "finished": 2,
        "failed": 1,
        "skipped": 0,
    }
    assert completed["detail"]["variants"]["done"] == 3


def test_a_redelivered_task_announces_nothing_again(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(VARIANTS)
    put(local_stack, "uploads/a.png", image_bytes((60, 40), "PNG", "blue"))
    run_functions(local_stack, "FanoutFunction")
    tasks = drain(local_stack, "VariantsQueue")
    url = local_stack.queue_url("VariantsQueue")
    for _ in range(2):  # every task, delivered twice
        for task in tasks:
            local_stack.clients.sqs.send_message(QueueUrl=url, MessageBody=task["Body"])
        run_functions(local_stack, "WorkerFunction")
    assert len(of_type(prism_events(local_stack), "Source Processed")) == 1


def test_the_manifest_lets_a_page_render_without_probing(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(VARIANTS)
    put(local_stack, "uploads/trips/a.png", image_bytes((200, 100), "PNG", "#204080"))
    run_functions(local_stack)
    assert manifest_keys(local_stack) == {"trips/a_manifest.json"}
    manifest = output_json(local_stack, "trips/a_manifest.json")
    assert manifest["source"] | {"bucket": None} == {
        "bucket": None,
        "key": "uploads/trips/a.png",
        "bytes": manifest["source"]["bytes"],
        "width": 200,
        "height": 100,
        "format": "png",
    }
    assert manifest["status"] == "complete"
    base = "https://img.example.com/"
    assert manifest["srcset"] == {
        "jpeg": f"{base}trips/a_fallback.jpg 80w",
        "webp": f"{base}trips/a_web.webp 80w, {base}trips/a_thumb.webp 32w",
    }
    assert [(v["name"], v["url"]) for v in manifest["variants"]] == [
        ("fallback", f"{base}trips/a_fallback.jpg"),
        ("thumb", f"{base}trips/a_thumb.webp"),
        ("web", f"{base}trips/a_web.webp"),
    ]
    placeholder = manifest["placeholder"]
    assert placeholder["dominant_colour"] == "#204080"  # a flat image: exactly its colour
    assert isinstance(placeholder["blurhash"], str) and len(placeholder["blurhash"]) >= 6

    head = local_stack.clients.s3.head_object(
        Bucket=local_stack.bucket_name("OutputBucket"), Key="trips/a_manifest.json"
    )
    assert head["ContentType"] == "application/json" and head["CacheControl"] == "no-cache"
    # The source's record carries the same facts, and the announcement's mark.
    source = with_processing(
        local_stack,
        lambda t: t.get_source(local_stack.bucket_name("InputBucket"), "uploads/trips/a.png"),
    )
    assert source is not None and source.original is not None
    assert (source.original.width, source.original.blurhash) == (200, placeholder["blurhash"])
    assert source.manifest_key == "trips/a_manifest.json" and source.announced_at
    assert json.dumps(manifest)  # plain JSON all through


def test_manifests_can_be_switched_off(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config("manifest: false\n" + VARIANTS)
    put(local_stack, "uploads/a.png", image_bytes((60, 40), "PNG", "blue"))
    run_functions(local_stack)
    assert manifest_keys(local_stack) == set()
    (event,) = of_type(prism_events(local_stack), "Source Processed")
    assert event["detail"]["manifest_key"] is None

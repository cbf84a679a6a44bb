"""Deletes propagate: a source deleted from the input bucket takes its variants and its
manifest out of the output bucket, its records stay marked ``deleted`` for a while, and no
render in flight leaves an orphan behind (each race forced with a deliberate interleaving)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from integration.test_ordering import HeldWrite, invoke_worker_in_thread
from prism.aws.processing_table import ProcessingTable
from prism.records import SourceFacts, SourceRecord, VariantRecord
from prism_cli.local.stack import LocalStack
from support.images import image_bytes
from support.pipeline import (
    drain,
    manifest_keys,
    output_keys,
    prism_events,
    run_functions,
    with_processing,
)

pytestmark = pytest.mark.integration

TWO_VARIANTS = """
variants:
  - {name: small, transforms: [{op: thumbnail, width: 16, height: 16}], format: jpeg}
  - {name: web, transforms: [{op: thumbnail, width: 40, height: 40}], format: webp}
"""
KEY = "uploads/posts/cat.png"
OUTPUTS = {"posts/cat_small.jpg", "posts/cat_web.webp"}
MANIFEST = "posts/cat_manifest.json"


def put(stack: LocalStack, key: str = KEY, colour: str = "red") -> None:
    stack.clients.s3.put_object(
        Bucket=stack.bucket_name("InputBucket"), Key=key, Body=image_bytes((60, 40), "PNG", colour)
    )


def delete(stack: LocalStack, key: str = KEY, version_id: str | None = None) -> None:
    bucket = stack.bucket_name("InputBucket")
    if version_id:
        stack.clients.s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
    else:
        stack.clients.s3.delete_object(Bucket=bucket, Key=key)


def source_state(
    stack: LocalStack, key: str = KEY
) -> tuple[SourceRecord | None, dict[str, VariantRecord]]:
    return with_processing(stack, lambda t: t.source_state(stack.bucket_name("InputBucket"), key))


def partition_items(stack: LocalStack, key: str = KEY) -> list[dict[str, Any]]:
    bucket = stack.bucket_name("InputBucket")
    response = stack.clients.dynamodb.query(
        TableName=stack.environment["PRISM_TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SOURCE#{bucket}/{key}"}},
    )
    return list(response["Items"])


def rendered(stack: LocalStack) -> None:
    stack.put_pipeline_config(TWO_VARIANTS)
    put(stack)
    run_functions(stack)
    assert output_keys(stack) == OUTPUTS and manifest_keys(stack) == {MANIFEST}


def test_a_deleted_source_leaves_nothing_in_the_output_bucket(local_stack: LocalStack) -> None:
    rendered(local_stack)
    put(local_stack, "uploads/posts/dog.png", "blue")  # another source: it stays
    run_functions(local_stack)
    prism_events(local_stack)
    started = time.time()

    delete(local_stack)
    run_functions(local_stack)

    # Right to erasure: nothing of the source is left among the outputs.
    assert output_keys(local_stack) == {"posts/dog_small.jpg", "posts/dog_web.webp"}
    assert manifest_keys(local_stack) == {"posts/dog_manifest.json"}
    source, variants = source_state(local_stack)
    assert source is not None and source.status == "deleted" and source.deleted_at
    # The records stay for the audit trail, marked deleted, with the deletion's TTL.
    assert set(variants) == {"small", "web"}
    assert all(v.deleted_at == source.deleted_at and v.status == "done" for v in variants.values())
    items = partition_items(local_stack)
    thirty_days = 30 * 86_400
    for item in items:
        expires = int(item["expires_at"]["N"])
        assert started + thirty_days - 60 < expires < time.time() + thirty_days + 60, item["sk"]
    assert {item["sk"]["S"].split("#")[0] for item in items} == {"SOURCE", "VARIANT", "RUN"}

    (event,) = prism_events(local_stack)
    assert event["detail-type"] == "Source Deleted" and event["source"] == "prism"
    assert event["detail"]["key"] == KEY
    assert event["detail"]["removed_keys"] == sorted({*OUTPUTS, MANIFEST})


def test_a_redelivered_delete_removes_nothing_twice_and_announces_once(
    local_stack: LocalStack,
) -> None:
    rendered(local_stack)
    prism_events(local_stack)
    delete(local_stack)
    (notification,) = drain(local_stack, "UploadsQueue")
    for _ in range(2):  # the same notification, delivered twice
        local_stack.clients.sqs.send_message(
            QueueUrl=local_stack.queue_url("UploadsQueue"), MessageBody=notification["Body"]
        )
        run_functions(local_stack, "FanoutFunction")
    assert output_keys(local_stack) == set() and manifest_keys(local_stack) == set()
    assert [e["detail-type"] for e in prism_events(local_stack)] == ["Source Deleted"]


def test_uploading_the_key_again_after_a_delete_renders_it_again(local_stack: LocalStack) -> None:
    rendered(local_stack)
    delete(local_stack)
    run_functions(local_stack)
    assert output_keys(local_stack) == set()
    put(local_stack, colour="green")
    run_functions(local_stack)
    assert output_keys(local_stack) == OUTPUTS and manifest_keys(local_stack) == {MANIFEST}
    source, variants = source_state(local_stack)
    assert source is not None and source.status == "complete" and source.deleted_at is None
    assert all(v.deleted_at is None for v in variants.values())


def test_deleting_an_old_version_keeps_the_current_uploads_outputs(
    local_stack: LocalStack,
) -> None:
    rendered(local_stack)
    first = local_stack.clients.s3.list_object_versions(
        Bucket=local_stack.bucket_name("InputBucket"), Prefix=KEY
    )["Versions"][0]["VersionId"]
    put(local_stack, colour="blue")
    run_functions(local_stack)
    delete(local_stack, version_id=first)  # an old version, not the current upload
    run_functions(local_stack)
    assert output_keys(local_stack) == OUTPUTS
    source, _ = source_state(local_stack)
    assert source is not None and source.status == "complete"


def test_a_render_held_before_its_write_leaves_no_orphan(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    put(local_stack)
    run_functions(local_stack, "FanoutFunction")
    held = HeldWrite(local_stack.bucket_name("OutputBucket"))
    held.install(monkeypatch)
    worker = invoke_worker_in_thread(local_stack, drain(local_stack, "VariantsQueue"))
    held.holder = worker
    worker.start()
    assert held.reached.wait(30)  # rendered; it writes next

    delete(local_stack)
    run_functions(local_stack, "FanoutFunction")  # the deletion, while the render waits
    held.release.set()
    worker.join(60)
    assert not worker.is_alive()

    assert output_keys(local_stack) == set() and manifest_keys(local_stack) == set()
    source, _ = source_state(local_stack)
    assert source is not None and source.status == "deleted"


def test_a_render_that_wrote_before_the_delete_but_records_after_removes_its_output(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    put(local_stack)
    run_functions(local_stack, "FanoutFunction")
    wrote, release = threading.Event(), threading.Event()
    original = ProcessingTable.record_variants

    async def held_record(
        table: ProcessingTable,
        records: Sequence[VariantRecord],
        seen: SourceRecord,
        facts: SourceFacts | None = None,
    ) -> SourceRecord | None:
        wrote.set()  # every output is written; the outcome is not recorded yet
        await asyncio.to_thread(release.wait, 60)
        return await original(table, records, seen, facts)

    monkeypatch.setattr(ProcessingTable, "record_variants", held_record)
    worker = invoke_worker_in_thread(local_stack, drain(local_stack, "VariantsQueue"))
    worker.start()
    assert wrote.wait(30)
    assert output_keys(local_stack) == OUTPUTS

    delete(local_stack)
    run_functions(local_stack, "FanoutFunction")
    release.set()
    worker.join(60)
    assert not worker.is_alive()
    assert output_keys(local_stack) == set() and manifest_keys(local_stack) == set()


# The dying attempt's handler raises (every record failed), in its thread.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_task_redelivered_after_the_delete_removes_what_its_dead_attempt_wrote(
    local_stack: LocalStack,
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    put(local_stack)
    run_functions(local_stack, "FanoutFunction")
    tasks = drain(local_stack, "VariantsQueue")

    # An attempt that read its source before the delete, writes after it, and dies before
    # recording anything (as a Lambda that times out there).
    async def died(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the invocation died here")

    with pytest.MonkeyPatch.context() as patch:
        held = HeldWrite(local_stack.bucket_name("OutputBucket"))
        held.install(patch)
        patch.setattr(ProcessingTable, "record_variants", died)
        patch.setattr(ProcessingTable, "mark_loaded", died)
        worker = invoke_worker_in_thread(local_stack, tasks)
        held.holder = worker
        worker.start()
        assert held.reached.wait(30)
        delete(local_stack)
        run_functions(local_stack, "FanoutFunction")
        held.release.set()
        worker.join(60)
    # The held variant's output is an orphan for now (the other one was written before the
    # delete, which removed it).
    orphans = output_keys(local_stack)
    assert orphans and orphans <= OUTPUTS

    # Its messages come back after their visibility timeout: nothing is rendered, and what
    # the dead attempt wrote is taken back.
    again = invoke_worker_in_thread(local_stack, tasks)
    again.start()
    again.join(60)
    assert output_keys(local_stack) == set() and manifest_keys(local_stack) == set()

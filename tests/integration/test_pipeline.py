"""The whole event flow on the moto server: S3 put -> notification -> uploads queue ->
fan-out handler -> variants queue -> worker handler -> output bucket + processing table."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

import prism.worker
from prism.aws.processing_table import ProcessingTable
from prism.aws.schema import from_item, source_key, source_pk
from prism.batch import BatchResults
from prism.imaging import Source, decode_source, render_variant
from prism.outcomes import Outcomes
from prism.records import SourceRecord, VariantRecord
from prism.settings import current_settings
from prism.wiring import render_batch
from prism_cli.local.lambda_emulator import (
    default_backoff,
    emulators_for,
    run_until_idle,
    sqs_event,
)
from prism_cli.local.stack import LocalStack
from support.images import image_bytes, pixel, pixels
from support.pipeline import NO_BACKOFF, drain, output_image, prism_events, run_functions

pytestmark = pytest.mark.integration

TWO_VARIANTS = """
variants:
  - name: thumbnail
    transforms: [{op: thumbnail, width: 50, height: 50}]
    format: jpeg
    quality: 80
  - {name: web, transforms: [{op: thumbnail, width: 120, height: 120}], format: webp}
"""


def upload(stack: LocalStack, key: str, data: bytes) -> str:
    bucket = stack.bucket_name("InputBucket")
    stack.clients.s3.put_object(Bucket=bucket, Key=key, Body=data)
    return bucket


def run_pipeline(stack: LocalStack, workers: int = 2, *, failures_expected: bool = False) -> None:
    run_functions(
        stack,
        workers=workers,
        # Failures are retried at once: the test is about where they end, not the wait.
        retry_backoff=NO_BACKOFF if failures_expected else default_backoff,
        timeout=90,
        failures_expected=failures_expected,
    )


def source_record(stack: LocalStack, bucket: str, key: str) -> SourceRecord:
    item = stack.clients.dynamodb.get_item(
        TableName=stack.environment["PRISM_TABLE_NAME"],
        Key=source_key(bucket, key),
        ConsistentRead=True,
    )["Item"]
    return from_item(SourceRecord, item)


def variant_records(stack: LocalStack, bucket: str, key: str) -> dict[str, VariantRecord]:
    items = stack.clients.dynamodb.query(
        TableName=stack.environment["PRISM_TABLE_NAME"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
        ExpressionAttributeValues={":pk": {"S": source_pk(bucket, key)}, ":v": {"S": "VARIANT#"}},
        ConsistentRead=True,
    )["Items"]
    records = [from_item(VariantRecord, item) for item in items]
    return {record.variant: record for record in records}


def test_an_upload_becomes_every_variant_and_a_complete_record(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    bucket = upload(local_stack, "uploads/test.jpg", image_bytes((200, 100)))

    run_pipeline(local_stack)

    thumbnail = output_image(local_stack, "test_thumbnail.jpg")
    web = output_image(local_stack, "test_web.webp")
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (50, 25))
    assert (web.format, web.size) == ("WEBP", (120, 60))
    source = source_record(local_stack, bucket, "uploads/test.jpg")
    assert (source.status, source.expected, source.done, source.failed) == ("complete", 2, 2, 0)
    assert source.finished_at is not None
    variants = variant_records(local_stack, bucket, "uploads/test.jpg")
    assert variants["web"].status == "done"
    assert (variants["web"].width, variants["web"].height, variants["web"].format) == (
        120,
        60,
        "WEBP",
    )
    assert variants["web"].bytes and variants["web"].bytes > 0
    assert variants["thumbnail"].output_key == "test_thumbnail.jpg"


def test_default_config_renders_the_built_in_variants(local_stack: LocalStack) -> None:
    bucket = upload(local_stack, "uploads/photos/beach day.png", image_bytes((2000, 1000), "PNG"))

    run_pipeline(local_stack)

    assert output_image(local_stack, "photos/beach day_thumbnail.jpg").size == (256, 128)
    assert output_image(local_stack, "photos/beach day_web.webp").size == (1280, 640)
    assert output_image(local_stack, "photos/beach day_large.jpg").size == (1920, 960)
    assert source_record(local_stack, bucket, "uploads/photos/beach day.png").done == 3


def test_awkward_keys_are_decoded_once(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    key = "uploads/Été 2024/a+b (1)%20ü.jpg"
    bucket = upload(local_stack, key, image_bytes((64, 64)))

    run_pipeline(local_stack)

    assert output_image(local_stack, "Été 2024/a+b (1)%20ü_thumbnail.jpg").size == (50, 50)
    assert source_record(local_stack, bucket, key).status == "complete"


def test_corrupt_and_non_image_uploads_are_recorded_not_retried(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    good = image_bytes((100, 100))
    bucket = upload(local_stack, "uploads/good.jpg", good)
    upload(local_stack, "uploads/broken.jpg", good[: len(good) // 2])
    upload(local_stack, "uploads/notes.jpg", b"this is not an image at all")

    run_pipeline(local_stack)

    assert source_record(local_stack, bucket, "uploads/good.jpg").status == "complete"
    broken = source_record(local_stack, bucket, "uploads/broken.jpg")
    assert (broken.status, broken.failed, broken.done) == ("complete_with_failures", 2, 0)
    assert {
        r.reason for r in variant_records(local_stack, bucket, "uploads/broken.jpg").values()
    } == {"truncated"}
    notes = source_record(local_stack, bucket, "uploads/notes.jpg")
    assert (notes.status, notes.skipped) == ("skipped", 2)
    reasons = {r.reason for r in variant_records(local_stack, bucket, "uploads/notes.jpg").values()}
    assert reasons == {"unsupported_format"}
    # Permanent failures are acknowledged: nothing waits for a retry or sits in a DLQ.
    sqs = local_stack.clients.sqs
    for queue in ("VariantsQueue", "VariantsDeadLetterQueue"):
        attributes = sqs.get_queue_attributes(
            QueueUrl=local_stack.queue_url(queue), AttributeNames=["All"]
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


@pytest.fixture
def decodes(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Three variants in the stack's pipeline; the size of every source the worker decodes."""
    local_stack.put_pipeline_config(
        TWO_VARIANTS + "  - {name: square, transforms: [{op: resize, width: 30, height: 30}]}\n"
    )
    decodes: list[int] = []

    def counting_decode(data: bytes, **kwargs: Any) -> Source:
        decodes.append(len(data))
        return decode_source(data, **kwargs)

    monkeypatch.setattr(prism.worker, "decode_source", counting_decode)
    return decodes


def test_a_source_is_decoded_once_for_all_its_variants(
    local_stack: LocalStack, decodes: list[int]
) -> None:
    bucket = upload(local_stack, "uploads/once.jpg", image_bytes((400, 300)))

    # One worker instance: all three messages arrive in one batch, as SendMessageBatch sent them.
    run_pipeline(local_stack, workers=1)

    assert source_record(local_stack, bucket, "uploads/once.jpg").done == 3
    assert len(decodes) == 1


@pytest.mark.parametrize("first_batch", ["first task", "other tasks"])
def test_a_run_split_across_two_batches_is_counted_once_and_decoded_once_if_it_can_be(
    local_stack: LocalStack, decodes: list[int], first_batch: str
) -> None:
    bucket = upload(local_stack, "uploads/split.jpg", image_bytes((400, 300)))
    run_functions(local_stack, "FanoutFunction")
    bodies = [message["Body"] for message in drain(local_stack, "VariantsQueue")]
    tasks = [json.loads(body) for body in bodies]
    assert [task["others"] is not None for task in tasks] == [True, False, False]
    head, tail = bodies[:1], bodies[1:]
    batches = [head, tail] if first_batch == "first task" else [tail, head]
    sqs, url = local_stack.clients.sqs, local_stack.queue_url("VariantsQueue")
    for batch in batches:  # two batches, one after the other, as on two containers
        for body in batch:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        run_pipeline(local_stack, workers=1)

    source = source_record(local_stack, bucket, "uploads/split.jpg")
    assert (source.expected, source.done, source.failed, source.status) == (3, 3, 0, "complete")
    assert {
        r.status for r in variant_records(local_stack, bucket, "uploads/split.jpg").values()
    } == {"done"}
    # The first task's batch renders the others ahead; the other tasks, come first, render
    # their own, and the first task's decode is then for its variant alone.
    assert len(decodes) == (1 if first_batch == "first task" else 2)


@pytest.mark.parametrize("winner", ["first task", "other tasks"])
def test_two_batches_rendering_a_run_at_once_count_and_announce_it_once(
    local_stack: LocalStack,
    decodes: list[int],
    monkeypatch: pytest.MonkeyPatch,
    winner: str,
) -> None:
    """The first task's batch renders the others ahead while their own batch renders them
    too: the winner's batch (``winner``) records the run, the other's records are
    duplicates, and the run is announced once even when both batches announce together."""
    bucket = upload(local_stack, "uploads/both.jpg", image_bytes((400, 300)))
    run_functions(local_stack, "FanoutFunction")
    messages = drain(local_stack, "VariantsQueue")
    head, tail = messages[:1], messages[1:]
    tail_variants = {json.loads(message["Body"])["variant"]["name"] for message in tail}
    # Both batches' renders of one of the other variants wait for each other.
    contested = sorted(tail_variants)[0]
    renders = threading.Barrier(2, timeout=30)

    def render(source: Any, variant: Any, *args: Any) -> Any:
        if variant.name == contested:
            renders.wait()
        return render_variant(source, variant, *args)

    monkeypatch.setattr(prism.worker, "render_variant", render)
    # ``winner``'s batch writes its outcomes first; then both announce at the same moment.
    first_written, both_done = asyncio.Event(), asyncio.Event()
    arrived: list[None] = []
    record_variants, announce_held = ProcessingTable.record_variants, Outcomes.announce_held

    async def in_turn(table: ProcessingTable, records: Any, *args: Any) -> Any:
        from_head = not {record.variant for record in records} <= tail_variants
        if from_head != (winner == "first task"):
            await first_written.wait()
        try:
            return await record_variants(table, records, *args)
        finally:
            first_written.set()

    async def together(outcomes: Outcomes) -> Any:
        arrived.append(None)
        if len(arrived) == 2:
            both_done.set()
        await both_done.wait()
        return await announce_held(outcomes)

    monkeypatch.setattr(ProcessingTable, "record_variants", in_turn)
    monkeypatch.setattr(Outcomes, "announce_held", together)
    queue_arn = local_stack.template.queue("VariantsQueue").arn

    async def both_batches() -> list[BatchResults]:
        settings = current_settings()
        return list(
            await asyncio.gather(
                *(
                    render_batch(
                        [SQSRecord(r) for r in sqs_event(batch, queue_arn, "us-east-1")["Records"]],
                        settings,
                    )
                    for batch in (head, tail)
                )
            )
        )

    results = asyncio.run(both_batches())
    assert all(error is None for batch in results for error in batch.values())
    source = source_record(local_stack, bucket, "uploads/both.jpg")
    assert (source.expected, source.done, source.failed, source.status) == (3, 3, 0, "complete")
    records = variant_records(local_stack, bucket, "uploads/both.jpg")
    assert {record.status for record in records.values()} == {"done"}
    assert len(decodes) == 2
    processed = [
        event["detail"]["run_id"]
        for event in prism_events(local_stack)
        if event["detail-type"] == "Source Processed"
    ]
    assert processed == [source.run_id]


def test_redelivered_messages_count_once(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    bucket = upload(local_stack, "uploads/dup.jpg", image_bytes((80, 80)))
    sqs = local_stack.clients.sqs
    variants_url = local_stack.queue_url("VariantsQueue")

    # Run only the fan-out, then duplicate every variant message before the workers start.
    fanout_only = [
        e
        for e in emulators_for(local_stack.template, sqs, batching_window=0)
        if e.function.logical_id == "FanoutFunction"
    ]
    run_until_idle(fanout_only, sqs, timeout=60, poll_seconds=0.2)
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=variants_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            break
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=variants_url, ReceiptHandle=message["ReceiptHandle"])
    assert len(bodies) == 2
    for body in bodies * 3:
        sqs.send_message(QueueUrl=variants_url, MessageBody=body)

    run_pipeline(local_stack, workers=3)

    source = source_record(local_stack, bucket, "uploads/dup.jpg")
    assert (source.expected, source.done, source.failed, source.status) == (2, 2, 0, "complete")


def test_transient_failures_are_retried_then_dead_lettered(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    bucket = upload(local_stack, "uploads/orphan.jpg", image_bytes((80, 80)))
    # Without its output bucket every write fails: not the input's fault, so never "failed".
    s3 = local_stack.clients.s3
    s3.delete_bucket(Bucket=local_stack.bucket_name("OutputBucket"))

    # A batch whose every record fails makes Powertools fail the whole invocation.
    run_pipeline(local_stack, failures_expected=True)

    sqs = local_stack.clients.sqs
    dead = sqs.receive_message(
        QueueUrl=local_stack.queue_url("VariantsDeadLetterQueue"), MaxNumberOfMessages=10
    ).get("Messages", [])
    assert sorted(json.loads(m["Body"])["variant"]["name"] for m in dead) == ["thumbnail", "web"]
    # Their last delivery recorded them failed, so the source (and its job) still ends.
    source = source_record(local_stack, bucket, "uploads/orphan.jpg")
    assert (source.status, source.done, source.failed) == ("complete_with_failures", 0, 2)
    variants = variant_records(local_stack, bucket, "uploads/orphan.jpg").values()
    assert {v.reason for v in variants} == {"retries_exhausted"}
    assert all("NoSuchBucket" in (v.error or "") for v in variants)


def test_text_and_logo_watermarks_reach_the_output(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(
        """
        variants:
          - name: text
            format: png
            watermark: {text: PRISM, position: top-left, opacity: 1, color: red, scale: 0.2}
          - name: logo
            format: png
            watermark: {image: assets/logo.png, position: bottom-right, opacity: 1, scale: 0.25}
        """
    )
    logo = image_bytes((40, 40), "PNG", "blue")
    bucket = upload(local_stack, "assets/logo.png", logo)  # outside uploads/
    upload(local_stack, "uploads/plain.png", image_bytes((200, 200), "PNG", "white"))

    run_pipeline(local_stack)

    assert source_record(local_stack, bucket, "uploads/plain.png").done == 2
    text = output_image(local_stack, "plain_text.png").convert("RGB")
    red_pixels = sum(1 for r, g, b in pixels(text.crop((0, 0, 100, 60))) if r > 200 and g < 80)
    assert red_pixels > 20
    stamped = output_image(local_stack, "plain_logo.png").convert("RGB")
    assert pixel(stamped, (190, 190))[2] > 200 and pixel(stamped, (190, 190))[0] < 60
    assert pixel(stamped, (10, 10)) == (255, 255, 255)


def test_an_overwritten_source_is_never_rendered_stale(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    bucket = upload(local_stack, "uploads/swap.png", image_bytes((90, 90), "PNG", "red"))
    fanout_only = [
        e
        for e in emulators_for(local_stack.template, local_stack.clients.sqs, batching_window=0)
        if e.function.logical_id == "FanoutFunction"
    ]
    run_until_idle(fanout_only, local_stack.clients.sqs, timeout=60, poll_seconds=0.2)

    # Overwritten before any worker ran: however the two runs' tasks interleave (the first
    # run may still render and write, then find itself superseded and remove its outputs
    # while the second writes), what stays is the new bytes, recorded under the new run.
    upload(local_stack, "uploads/swap.png", image_bytes((90, 90), "PNG", "blue"))
    run_pipeline(local_stack)

    assert pixel(output_image(local_stack, "swap_web.webp").convert("RGB"), (45, 45))[2] > 200
    source = source_record(local_stack, bucket, "uploads/swap.png")
    assert (source.status, source.done, source.expected) == ("complete", 2, 2)

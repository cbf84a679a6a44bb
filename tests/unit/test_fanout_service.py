"""The fan-out's decisions, on in-memory ports: what is registered, sent, or recorded."""

from __future__ import annotations

import pytest
from service_helpers import INPUT, OUTPUT, Ports, jpeg, sqs_record

from prism.config import parse_config
from prism.errors import Reason, TransientError
from prism.records import SourceStatus, VariantStatus

KEY = "uploads/trips/cat.jpg"


async def test_a_current_upload_is_registered_and_sends_a_task_per_variant() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg())
    assert sorted(task.variant.name for task in tasks) == ["large", "thumbnail", "web"]
    assert {task.output_key for task in tasks} == {
        "trips/cat_large.jpg",
        "trips/cat_thumbnail.jpg",
        "trips/cat_web.webp",
    }
    assert {task.run_order for task in tasks} == {1}
    source = ports.table.sources[(INPUT, KEY)]
    assert (source.status, source.expected, source.job_id) == ("processing", 3, "job-1")
    counters = ports.table.counters["job-1"]
    assert (counters.sources_registered, counters.variants_expected) == (1, 3)


async def test_a_redelivered_notification_counts_once() -> None:
    ports = Ports()
    ports.job()
    record = ports.upload(KEY, jpeg())
    fan_out = ports.fan_out()
    await fan_out.process([record])
    await fan_out.process([record])
    # Sent again (the first attempt may have died before sending); counted once.
    assert len(ports.queue.sent) == 6
    assert ports.table.counters["job-1"].sources_registered == 1
    assert ports.table.sources[(INPUT, KEY)].generation == 1


async def test_an_upload_gone_before_its_fan_out_ends_as_source_missing() -> None:
    ports = Ports()
    ports.job()
    record = ports.upload(KEY, jpeg())
    del ports.objects.current[(INPUT, KEY)]
    await ports.fan_out().process([record])
    assert ports.queue.sent == []
    (past,) = ports.table.past_runs.values()
    assert (past.status, past.reason) == (SourceStatus.COMPLETE_WITH_FAILURES, "source_missing")
    assert ports.table.jobs["job-1"].status == "complete_with_failures"


async def test_an_upload_overwritten_before_its_fan_out_is_skipped_as_superseded() -> None:
    ports = Ports()
    ports.job()
    first = ports.upload(KEY, jpeg((64, 64)))
    ports.upload(KEY, jpeg((32, 32)), sequencer="0B")
    await ports.fan_out().process([first])
    assert ports.queue.sent == []
    (past,) = ports.table.past_runs.values()
    assert (past.status, past.reason) == (SourceStatus.SKIPPED, "superseded")
    assert (INPUT, KEY) not in ports.table.sources


async def test_an_event_older_than_the_registered_run_is_not_registered() -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    newer = ports.upload(KEY, jpeg(), sequencer="0B")
    await ports.fan_out().process([newer])
    # The same bytes' older event arrives late, while its version is still current.
    older = sqs_record(newer.json_body)
    body = older.json_body
    body["Records"][0]["s3"]["object"]["sequencer"] = "0A"
    older = sqs_record(body)
    await ports.fan_out().process([older])
    assert ports.table.sources[(INPUT, KEY)].sequencer is not None
    assert ports.table.sources[(INPUT, KEY)].generation == 1
    assert [past.reason for past in ports.table.past_runs.values()] == ["superseded"]


async def test_a_cancelled_job_registers_its_uploads_as_skipped_and_sends_nothing() -> None:
    ports = Ports()
    ports.job()
    await ports.table.request_cancel("job-1")
    record = ports.upload(KEY, jpeg())
    await ports.fan_out().process([record])
    assert ports.queue.sent == []
    (past,) = ports.table.past_runs.values()
    assert (past.status, past.skipped, past.reason) == (SourceStatus.SKIPPED, 3, "cancelled")
    assert ports.table.jobs["job-1"].status == "cancelled"


async def test_two_sources_mapping_to_one_output_key_never_share_it() -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    await ports.fanned_out("uploads/cat.jpg", jpeg())
    tasks = await ports.fanned_out("uploads/cat.png", jpeg())
    assert tasks == []  # every output key of cat.png belongs to cat.jpg
    records = [r for (_, key, _), r in ports.table.variants.items() if key == "uploads/cat.png"]
    assert {r.reason for r in records} == {Reason.OUTPUT_CONFLICT}
    assert all(f"s3://{INPUT}/uploads/cat.jpg" in (r.error or "") for r in records)
    assert ports.table.sources[(INPUT, "uploads/cat.png")].status == "complete_with_failures"


async def test_an_output_key_over_s3s_limit_fails_once_at_fan_out() -> None:
    ports = Ports()
    ports.job()
    long_key = "uploads/" + "d/" * 520 + "cat.jpg"
    tasks = await ports.fanned_out(long_key, jpeg())
    assert tasks == []
    reasons = {record.reason for record in ports.table.variants.values()}
    assert reasons == {Reason.OUTPUT_KEY_TOO_LONG}
    assert ports.table.jobs["job-1"].status == "complete_with_failures"


async def test_missing_only_backfill_sends_only_variants_without_an_output() -> None:
    ports = Ports()
    ports.job("backfill-1")
    ports.objects.put(INPUT, KEY, jpeg())
    ports.objects.put(OUTPUT, "trips/cat_web.webp", b"already there")
    request = {
        "kind": "prism.backfill",
        "job_id": "backfill-1",
        "source": {"bucket": INPUT, "key": KEY},
        "missing_only": True,
    }
    await ports.fan_out().process([sqs_record(request)])
    assert sorted(task.variant.name for task in ports.queue.sent) == ["large", "thumbnail"]
    assert ports.table.sources[(INPUT, KEY)].job_id == "backfill-1"


async def test_an_upload_without_a_job_joins_the_days_job() -> None:
    ports = Ports()
    tasks = await ports.fanned_out(KEY, jpeg(), job_id=None)
    assert {task.job_id for task in tasks} == {"uploads-2026-12-01"}
    assert ports.table.jobs["uploads-2026-12-01"].kind == "uploads"


async def test_s3_test_events_are_acknowledged_without_work() -> None:
    ports = Ports()
    results = await ports.fan_out().process([sqs_record({"Event": "s3:TestEvent"})])
    assert list(results.values()) == [None]
    assert ports.queue.sent == [] and ports.table.sources == {}


def _failing_send() -> None:
    raise TransientError("SQS is throttling")


async def test_a_transient_failure_is_reported_for_retry_and_records_nothing_final() -> None:
    ports = Ports()
    ports.job()
    ports.queue.before_send = _failing_send
    results = await ports.fan_out().process([ports.upload(KEY, jpeg())])
    assert isinstance(next(iter(results.values())), TransientError)
    assert ports.table.variants == {}
    assert ports.table.jobs["job-1"].status == "running"


async def test_the_last_delivery_records_every_unsent_variant_as_retries_exhausted() -> None:
    ports = Ports()
    ports.job()
    ports.queue.before_send = _failing_send
    record = ports.upload(KEY, jpeg())
    last = sqs_record(record.json_body, receive_count=ports.settings.uploads_max_receive_count)
    results = await ports.fan_out().process([last])
    assert isinstance(next(iter(results.values())), TransientError)  # on to the DLQ
    records = list(ports.table.variants.values())
    assert len(records) == 3
    assert {(r.status, r.reason) for r in records} == {
        (VariantStatus.FAILED, Reason.RETRIES_EXHAUSTED)
    }
    assert ports.table.jobs["job-1"].status == "complete_with_failures"


@pytest.mark.parametrize("layout", ["{dir}/{name}_{variant}.{ext}"])
async def test_the_collision_free_layout_keeps_both_sources(layout: str) -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    config = parse_config(f'version: 1\noutput_key: "{layout}"\n' + _THUMBNAIL_ONLY, "test")
    for key in ("uploads/cat.jpg", "uploads/cat.png"):
        await ports.fan_out(config).process([ports.upload(key, jpeg())])
    assert sorted(task.output_key for task in ports.queue.sent) == [
        "cat.jpg_thumbnail.jpg",
        "cat.png_thumbnail.jpg",
    ]


_THUMBNAIL_ONLY = """
variants:
  - name: thumbnail
    transforms: [{op: thumbnail, width: 64, height: 64}]
    format: JPEG
"""

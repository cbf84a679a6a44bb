"""The worker's decisions, on in-memory ports: what is fetched, rendered, written, recorded."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from PIL import Image
from service_helpers import INPUT, OUTPUT, Ports, jpeg, sqs_record

import prism.worker
from prism.errors import Reason, TransientError
from prism.imaging import PROBE_BYTES, decode_source, render_variant
from prism.messages import VariantTask
from prism.records import SourceFacts, SourceRecord, VariantRecord, VariantStatus
from prism.worker import sort_tasks

KEY = "uploads/trips/cat.jpg"


def deliveries(tasks: list[VariantTask], receive_count: int = 1) -> list[SQSRecord]:
    return [sqs_record(task.model_dump_json(), receive_count) for task in tasks]


def statuses(ports: Ports) -> dict[str, tuple[str, str | None]]:
    return {name: (r.status, r.reason) for (_, _, name), r in ports.table.variants.items()}


async def test_a_source_is_fetched_once_and_every_variant_written_and_counted() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg((2000, 1500)))
    ports.objects.reads.clear()
    results = await ports.worker().process(deliveries(tasks))
    assert list(results.values()) == [None, None, None]
    # Known to be smaller than the header probe: one read of it all, for 3 variants.
    assert ports.objects.reads == [(INPUT, KEY, None)]
    thumbnail = ports.objects.current[(OUTPUT, "trips/cat_thumbnail.jpg")]
    assert Image.open(io.BytesIO(thumbnail.data)).size == (256, 192)
    assert thumbnail.content_type == "image/jpeg"
    assert set(statuses(ports).values()) == {(VariantStatus.DONE, None)}
    assert ports.table.sources[(INPUT, KEY)].status == "complete"
    counters = ports.table.counters["job-1"]
    assert (counters.sources_loaded, counters.variants_done, counters.sources_finished) == (1, 3, 1)
    assert ports.table.batched_writes == 1  # the three outcomes in one write
    assert ports.table.jobs["job-1"].status == "complete"


async def test_a_redelivered_task_is_acknowledged_without_rendering_again() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg())
    await ports.worker().process(deliveries(tasks))
    ports.objects.reads.clear()
    results = await ports.worker().process(deliveries(tasks[:1]))
    assert list(results.values()) == [None]
    assert ports.objects.reads == []
    assert ports.table.counters["job-1"].variants_done == 3


async def test_tasks_of_a_superseded_run_render_nothing() -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    old = await ports.fanned_out(KEY, jpeg())
    await ports.fanned_out(KEY, jpeg((50, 50)), sequencer="0B")
    ports.objects.reads.clear()
    results = await ports.worker().process(deliveries(old))
    assert list(results.values()) == [None, None, None]
    assert ports.objects.reads == []
    assert not any(bucket == OUTPUT for bucket, _ in ports.objects.current)


async def test_a_cancelled_jobs_tasks_are_skipped_without_fetching_the_source() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg())
    await ports.table.request_cancel("job-1")
    ports.objects.reads.clear()
    await ports.worker().process(deliveries(tasks))
    assert ports.objects.reads == []
    assert set(statuses(ports).values()) == {(VariantStatus.SKIPPED, Reason.CANCELLED)}
    assert ports.table.jobs["job-1"].status == "cancelled"


async def test_a_corrupt_source_fails_every_variant_once_and_is_not_retried() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg()[:300])
    results = await ports.worker().process(deliveries(tasks))
    assert list(results.values()) == [None, None, None]  # acknowledged: no retry
    assert {status for status, _ in statuses(ports).values()} == {VariantStatus.FAILED}
    assert {reason for _, reason in statuses(ports).values()} <= {
        Reason.TRUNCATED,
        Reason.CORRUPT,
    }
    assert ports.table.jobs["job-1"].status == "complete_with_failures"


async def test_a_source_over_the_byte_limit_fails_without_being_read() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg())
    small_limit = tasks[0].limits.model_copy(update={"max_source_bytes": 100})
    tasks = [task.model_copy(update={"limits": small_limit}) for task in tasks]
    ports.objects.reads.clear()
    await ports.worker().process(deliveries(tasks))
    assert ports.objects.reads == []
    assert {reason for _, reason in statuses(ports).values()} == {Reason.TOO_LARGE}


async def test_a_pixel_bomb_is_refused_from_its_header_before_the_download() -> None:
    ports = Ports()
    ports.job()
    buffer = io.BytesIO()
    Image.frombytes("L", (400, 300), os.urandom(400 * 300)).save(buffer, "PNG")  # ~120 KB
    data = buffer.getvalue()
    assert len(data) > PROBE_BYTES
    tasks = await ports.fanned_out(KEY.replace(".jpg", ".png"), data)
    few_pixels = tasks[0].limits.model_copy(update={"max_source_pixels": 100_000})
    tasks = [task.model_copy(update={"limits": few_pixels}) for task in tasks]
    ports.objects.reads.clear()
    await ports.worker().process(deliveries(tasks))
    assert [first_bytes for _, _, first_bytes in ports.objects.reads] == [PROBE_BYTES]
    assert {reason for _, reason in statuses(ports).values()} == {Reason.TOO_LARGE}


async def test_an_output_of_a_later_run_is_never_replaced() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg())
    ports.objects.put(OUTPUT, "trips/cat_web.webp", b"newer", {"prism-run-order": "9"})
    await ports.worker().process(deliveries(tasks))
    assert ports.objects.current[(OUTPUT, "trips/cat_web.webp")].data == b"newer"
    assert statuses(ports)["web"] == (VariantStatus.SKIPPED, Reason.SUPERSEDED)


async def test_with_too_little_time_left_nothing_starts_and_everything_is_retried() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg())
    ports.objects.reads.clear()
    results = await ports.worker(remaining_ms=lambda: 1000).process(deliveries(tasks))
    assert all(isinstance(error, TransientError) for error in results.values())
    assert ports.objects.reads == [] and ports.table.variants == {}


async def test_a_transient_fault_is_retried_and_recorded_only_on_the_last_delivery() -> None:
    ports = Ports()
    ports.job()
    tasks = await ports.fanned_out(KEY, jpeg())
    ports.objects.read_faults = [TransientError("S3 is slow")] * 2
    results = await ports.worker().process(deliveries(tasks))
    assert all(isinstance(error, TransientError) for error in results.values())
    assert ports.table.variants == {}
    last = ports.settings.variants_max_receive_count
    results = await ports.worker().process(deliveries(tasks, receive_count=last))
    assert all(isinstance(error, TransientError) for error in results.values())  # to the DLQ
    assert set(statuses(ports).values()) == {(VariantStatus.FAILED, Reason.RETRIES_EXHAUSTED)}
    # Recorded, so the source and its job end instead of waiting for ever.
    assert ports.table.sources[(INPUT, KEY)].status == "complete_with_failures"
    assert ports.table.jobs["job-1"].status == "complete_with_failures"
    # Redriven later, they succeed: each record becomes its real outcome, counted once
    # (not first outcomes of the run, so they are recorded one by one).
    await ports.worker().process(deliveries(tasks))
    assert set(statuses(ports).values()) == {(VariantStatus.DONE, None)}
    counters = ports.table.counters["job-1"]
    assert (counters.variants_done, counters.variants_failed) == (3, 0)
    assert ports.table.jobs["job-1"].status == "complete"


async def test_a_run_superseded_while_rendering_removes_its_own_output() -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    tasks = await ports.fanned_out(KEY, jpeg())
    worker = ports.worker()
    original = ports.table.record_variants

    async def superseded_first(
        records: Sequence[VariantRecord], seen: SourceRecord, facts: SourceFacts | None = None
    ) -> SourceRecord | None:
        # Re-uploaded after the render, before its outcome is recorded.
        await ports.fanned_out(KEY, jpeg((40, 40)), sequencer="0B")
        return await original(records, seen)

    ports.table.record_variants = superseded_first  # type: ignore[method-assign,assignment]
    results = await worker.process(deliveries(tasks))
    assert list(results.values()) == [None, None, None]
    assert not any(bucket == OUTPUT for bucket, _ in ports.objects.current)
    assert ports.table.variants == {}  # the old run's outcomes count nothing


def test_sort_tasks_drops_duplicates_and_renders_each_variant_once() -> None:
    ports_tasks = _tasks()
    thumbnail, web = ports_tasks
    source = SourceRecord(INPUT, KEY, "job-1", thumbnail.run_id, "processing", expected=2)
    recorded = {
        "thumbnail": VariantRecord(INPUT, KEY, "thumbnail", thumbnail.run_id, "done"),
    }
    sorted_tasks = sort_tasks([thumbnail, web, web], source, recorded)
    assert sorted_tasks.current
    assert sorted_tasks.duplicates == [thumbnail]
    assert sorted_tasks.todo == [web]
    exhausted = {"thumbnail": replace(recorded["thumbnail"], reason=Reason.RETRIES_EXHAUSTED)}
    assert sort_tasks([thumbnail], source, exhausted).todo == [thumbnail]
    moved_on = replace(source, run_id="another run")
    assert not sort_tasks([thumbnail], moved_on, recorded).current
    assert not sort_tasks([thumbnail], None, {}).current


def _tasks() -> list[VariantTask]:
    from prism.config import default_config
    from prism.fanout import plan_tasks
    from prism.messages import SourceRef
    from prism.uploads import Upload

    upload = Upload(source=SourceRef(bucket=INPUT, key=KEY), occurrence="t")
    tasks = {
        task.variant.name: task
        for task in plan_tasks(upload, default_config(), Ports().settings, "job-1", 0)
    }
    return [tasks["thumbnail"], tasks["web"]]


async def test_the_next_source_is_decoded_while_the_current_one_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    first = await ports.fanned_out("uploads/a.jpg", jpeg())
    second = await ports.fanned_out("uploads/b.jpg", jpeg((600, 400)))
    second_data = ports.objects.current[(INPUT, "uploads/b.jpg")].data
    second_decoding = threading.Event()
    events: list[str] = []
    real_decode, real_render = decode_source, render_variant

    def decode(data: bytes, **kwargs: Any) -> Any:
        if data == second_data:
            events.append("second decoded")
            second_decoding.set()
        return real_decode(data, **kwargs)

    def render(source: Any, variant: Any, *args: Any) -> Any:
        if source.info.width == 640 and variant.name == "large":
            # The first source's largest render waits (on one pool thread) for the second
            # source's decode, which only comes this early if sources overlap.
            second_decoding.wait(timeout=5)
            events.append("first rendered")
        return real_render(source, variant, *args)

    monkeypatch.setattr(prism.worker, "decode_source", decode)
    monkeypatch.setattr(prism.worker, "render_variant", render)
    results = await ports.worker().process(deliveries(first + second))
    assert all(error is None for error in results.values())
    assert events == ["second decoded", "first rendered"]
    assert ports.table.jobs["job-1"].status == "complete"


async def test_a_batch_starts_with_its_largest_uploads() -> None:
    ports = Ports()
    ports.job()
    sizes = {
        "uploads/small.jpg": (64, 48),
        "uploads/large.jpg": (1600, 1200),
        "uploads/mid.jpg": (640, 480),
    }
    tasks = [
        task
        for key, size in sizes.items()
        for task in await ports.fanned_out(key, noisy_jpeg(size))
    ]
    ports.objects.reads.clear()

    await ports.worker().process(deliveries(tasks))

    order = [key for _, key, _ in ports.objects.reads]
    assert order == ["uploads/large.jpg", "uploads/mid.jpg", "uploads/small.jpg"]
    assert {status for status, _ in statuses(ports).values()} == {VariantStatus.DONE}


def noisy_jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()

"""A run split across batches is fetched and decoded once: the batch that gets the run's
first task renders the variants whose tasks went to another batch, and those tasks then
find their variants recorded. Every variant is still counted exactly once, whichever
batch comes first, when both render at the same time, and when a render ahead fails."""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from PIL import Image
from service_helpers import INPUT, OUTPUT, Ports, count_decodes, jpeg, sqs_record

import prism.worker
from prism.config import default_config
from prism.errors import TransientError
from prism.imaging import render_variant
from prism.messages import SQS_BATCH_LIMIT, VariantTask, with_others
from prism.records import VariantStatus

KEY = "uploads/trips/cat.jpg"


def deliveries(tasks: list[VariantTask]) -> list[SQSRecord]:
    return [sqs_record(task.model_dump_json()) for task in tasks]


def by_name(tasks: list[VariantTask]) -> dict[str, VariantTask]:
    return {task.variant.name: task for task in tasks}


async def photo_run() -> tuple[Ports, dict[str, VariantTask]]:
    """Ports with one job, and the tasks of one 2400x1800 photo fanned out into it."""
    ports = Ports()
    ports.job()
    return ports, by_name(await ports.fanned_out(KEY, jpeg((2400, 1800))))


def assert_counted_once(ports: Ports, key: str = KEY, job_id: str = "job-1") -> None:
    """Every variant of ``key`` done, with its output, and the job's counts exact."""
    names = [variant.name for variant in default_config().variants]
    for name in names:
        record = ports.table.variants[(INPUT, key, name)]
        assert record.status == VariantStatus.DONE, (name, record)
        assert record.output_key and (OUTPUT, record.output_key) in ports.objects.current
    source = ports.table.sources[(INPUT, key)]
    assert (source.status, source.done, source.failed, source.skipped) == ("complete", 3, 0, 0)
    counters = ports.table.counters[job_id]
    assert counters.variants_done == 3 * counters.sources_finished
    assert (counters.variants_failed, counters.variants_skipped) == (0, 0)


def test_the_first_task_of_a_run_carries_the_others_and_no_other_task_does() -> None:
    ports = Ports()
    tasks = asyncio.run(ports.fanned_out(KEY, jpeg((2400, 1800))))
    first, *rest = tasks
    assert first.variant.name == "large"  # the largest picture needed goes first
    assert [o.variant.name for o in first.others or ()] == ["web", "thumbnail"]
    assert [o.output_key for o in first.others or ()] == [t.output_key for t in rest]
    assert all(task.others is None for task in rest)
    made = [task.model_dump() for task in first.other_tasks()]
    assert made == [task.model_copy(update={"ahead": True}).model_dump() for task in rest]


def test_a_run_of_one_says_so_and_a_run_larger_than_a_batch_carries_nothing() -> None:
    ports = Ports()
    task = asyncio.run(ports.fanned_out(KEY, jpeg()))[0]
    assert with_others([task])[0].others == ()
    many = [task.model_copy(update={"others": None})] * (SQS_BATCH_LIMIT + 1)
    assert all(t.others is None for t in with_others(many))


async def test_a_rejected_variant_is_not_named_by_the_first_task() -> None:
    ports = Ports()
    ports.job()
    # Another source owns the thumbnail's output key: the fan-out rejects that variant.
    ports.table.claims[(OUTPUT, "trips/cat_thumbnail.jpg")] = f"{INPUT}/uploads/other.jpg"
    tasks = by_name(await ports.fanned_out(KEY, jpeg((2400, 1800))))
    assert sorted(tasks) == ["large", "web"]
    assert [o.variant.name for o in tasks["large"].others or ()] == ["web"]
    await ports.worker().process(deliveries([tasks["large"]]))
    thumbnail = ports.table.variants[(INPUT, KEY, "thumbnail")]
    assert thumbnail.status == VariantStatus.FAILED  # as the fan-out recorded it
    assert (OUTPUT, "trips/cat_thumbnail.jpg") not in ports.objects.current


async def test_the_batch_with_the_first_task_renders_the_rest_and_their_tasks_find_it_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decodes = count_decodes(monkeypatch)
    ports, tasks = await photo_run()
    ports.objects.reads.clear()

    first = await ports.worker().process(deliveries([tasks["large"]]))
    assert list(first.values()) == [None]
    assert_counted_once(ports)
    assert ports.table.jobs["job-1"].status == "complete"
    thumbnail = ports.table.variants[(INPUT, KEY, "thumbnail")]
    assert (thumbnail.width, thumbnail.height) == (256, 192)
    output = ports.objects.current[(OUTPUT, "trips/cat_thumbnail.jpg")]
    assert Image.open(io.BytesIO(output.data)).size == (256, 192)

    rest = await ports.worker().process(deliveries([tasks["web"], tasks["thumbnail"]]))
    assert list(rest.values()) == [None, None]
    assert len(decodes) == 1
    assert [r for r in ports.objects.reads if r[2] is None] == [(INPUT, KEY, None)]
    assert_counted_once(ports)


async def test_a_first_task_delivered_twice_in_one_batch_renders_the_others_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decodes = count_decodes(monkeypatch)
    ports, tasks = await photo_run()
    results = await ports.worker().process(deliveries([tasks["large"], tasks["large"]]))
    assert list(results.values()) == [None, None]
    assert len(decodes) == 1
    assert ports.table.batched_writes == 1  # the three outcomes in one write
    assert_counted_once(ports)


async def test_tasks_that_come_before_the_first_render_themselves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decodes = count_decodes(monkeypatch)
    ports, tasks = await photo_run()
    await ports.worker().process(deliveries([tasks["web"], tasks["thumbnail"]]))
    assert ports.table.sources[(INPUT, KEY)].done == 2
    await ports.worker().process(deliveries([tasks["large"]]))
    assert len(decodes) == 2  # the thumbnail's decode was too small for the large variant
    assert_counted_once(ports)


async def test_both_batches_rendering_the_same_variants_at_once_count_them_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports, tasks = await photo_run()
    # Each batch's web render waits for the other's: both render it, from two decodes.
    web_renders = threading.Barrier(2, timeout=10)

    def render(source: Any, variant: Any, *args: Any) -> Any:
        if variant.name == "web":
            web_renders.wait()
        return render_variant(source, variant, *args)

    monkeypatch.setattr(prism.worker, "render_variant", render)
    head, tail = await asyncio.gather(
        ports.worker().process(deliveries([tasks["large"]])),
        ports.worker().process(deliveries([tasks["web"], tasks["thumbnail"]])),
    )
    assert [*head.values(), *tail.values()] == [None, None, None]
    assert_counted_once(ports)
    assert ports.table.jobs["job-1"].status == "complete"
    assert ports.events.seen() == [("Source Processed", KEY), ("Job Completed", "job-1")]


@pytest.mark.parametrize("winner", ["first task's batch", "other batch"])
async def test_when_both_batches_render_a_variant_the_run_is_announced_once_and_the_job_last(
    monkeypatch: pytest.MonkeyPatch, winner: str
) -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    tasks = by_name(await ports.fanned_out(KEY, jpeg((2400, 1800))))
    whole = await ports.fanned_out("uploads/other.jpg", jpeg())
    web_renders = threading.Barrier(2, timeout=10)

    def render(source: Any, variant: Any, *args: Any) -> Any:
        if variant.name == "web" and source.upright_size == (2400, 1800):  # not other.jpg's
            web_renders.wait()
        return render_variant(source, variant, *args)

    monkeypatch.setattr(prism.worker, "render_variant", render)
    head_worker, tail_worker = ports.worker(), ports.worker()
    # Both batches render the web variant; ``winner``'s batch records the photo's first.
    recorded = asyncio.Event()
    later = tail_worker if winner == "first task's batch" else head_worker
    for worker in (head_worker, tail_worker):
        outcomes = worker._outcomes
        record_many = outcomes.record_many

        async def in_turn(
            *args: Any, _record: Any = record_many, _later: bool = worker is later
        ) -> Any:
            if args[1].source.key != KEY:
                return await _record(*args)
            if _later:
                await recorded.wait()
            try:
                return await _record(*args)
            finally:
                recorded.set()

        outcomes.record_many = in_turn  # type: ignore[method-assign,assignment]
    # The first task's batch announces its sources only once the other batch is done.
    tail_done = asyncio.Event()
    announce_held = head_worker._outcomes.announce_held

    async def after_tail() -> Any:
        await tail_done.wait()
        return await announce_held()

    head_worker._outcomes.announce_held = after_tail  # type: ignore[method-assign]

    async def tail_batch() -> Any:
        try:
            return await tail_worker.process(deliveries([tasks["web"], tasks["thumbnail"]]))
        finally:
            tail_done.set()

    head, tail = await asyncio.gather(
        head_worker.process(deliveries([tasks["large"], *whole])), tail_batch()
    )
    assert all(result is None for result in [*head.values(), *tail.values()])
    assert_counted_once(ports)
    seen = ports.events.seen()
    assert sorted(seen[:2]) == [
        ("Source Processed", "uploads/other.jpg"),
        ("Source Processed", KEY),
    ]
    assert seen[2:] == [("Job Completed", "job-1")]


async def test_a_transient_failure_ahead_is_left_to_the_variants_own_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports, tasks = await photo_run()
    faults = [TransientError("throttled")]

    def render(source: Any, variant: Any, *args: Any) -> Any:
        if variant.name == "web" and faults:
            raise faults.pop()
        return render_variant(source, variant, *args)

    monkeypatch.setattr(prism.worker, "render_variant", render)
    head = await ports.worker().process(deliveries([tasks["large"]]))
    assert list(head.values()) == [None]  # the first task's own variant is done
    assert (INPUT, KEY, "web") not in ports.table.variants
    assert ports.table.sources[(INPUT, KEY)].done == 2
    rest = await ports.worker().process(deliveries([tasks["web"], tasks["thumbnail"]]))
    assert list(rest.values()) == [None, None]
    assert_counted_once(ports)


async def test_a_truncated_source_is_recorded_failed_once_for_every_variant() -> None:
    ports = Ports()
    ports.job()
    tasks = by_name(await ports.fanned_out(KEY, jpeg((800, 600))[:400]))
    head = await ports.worker().process(deliveries([tasks["large"]]))
    assert list(head.values()) == [None]  # permanent: recorded, not retried
    rest = await ports.worker().process(deliveries([tasks["web"], tasks["thumbnail"]]))
    assert list(rest.values()) == [None, None]
    reasons = {
        name: (record.status, record.reason)
        for (_, _, name), record in ports.table.variants.items()
    }
    assert reasons == dict.fromkeys(["large", "web", "thumbnail"], ("failed", "truncated"))
    counters = ports.table.counters["job-1"]
    assert (counters.variants_failed, counters.variants_done) == (3, 0)


async def test_a_batch_renders_at_most_a_full_batch_of_variants_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decodes = count_decodes(monkeypatch)
    ports = Ports()
    keys = [f"uploads/{name}.jpg" for name in "abcdef"]
    ports.job(expected_sources=len(keys))
    runs = {key: by_name(await ports.fanned_out(key, jpeg((800, 600)))) for key in keys}
    # Six first tasks, each naming two variants that are not in the batch: ten of the
    # twelve are rendered ahead.
    await ports.worker().process(deliveries([run["large"] for run in runs.values()]))
    done = sum(1 for record in ports.table.variants.values() if record.status == VariantStatus.DONE)
    assert done == len(keys) + SQS_BATCH_LIMIT
    rest = [task for run in runs.values() for task in (run["web"], run["thumbnail"])]
    results = await ports.worker().process(deliveries(rest))
    assert all(result is None for result in results.values())
    # The source whose variants were left kept its decode for them (prism.recent_decodes).
    assert len(decodes) == len(keys)
    for key in keys:
        assert_counted_once(ports, key)
    assert ports.table.jobs["job-1"].status == "complete"


async def test_a_batch_renders_ahead_first_and_the_tails_of_other_batches_runs_last() -> None:
    ports = Ports()
    ports.job(expected_sources=3)
    head = by_name(await ports.fanned_out("uploads/head.jpg", jpeg((800, 600))))
    whole = await ports.fanned_out("uploads/whole.jpg", jpeg((1600, 1200)))
    tail = by_name(await ports.fanned_out("uploads/tail.jpg", jpeg((2400, 1800))))
    ports.objects.reads.clear()
    batch = [tail["web"], tail["thumbnail"], *whole, head["large"]]
    results = await ports.worker().process(deliveries(batch))
    assert all(result is None for result in results.values())
    order = [key for _, key, _ in ports.objects.reads]
    assert order == ["uploads/head.jpg", "uploads/whole.jpg", "uploads/tail.jpg"]


async def test_the_other_tasks_leave_the_announcement_to_the_batch_that_rendered_them() -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    tasks = by_name(await ports.fanned_out(KEY, jpeg((2400, 1800))))
    whole = await ports.fanned_out("uploads/other.jpg", jpeg())
    # The first task's batch has recorded both of its sources and waits to announce them.
    head_worker = ports.worker()
    outcomes = head_worker._outcomes
    announce_held = outcomes.announce_held
    recorded, release = asyncio.Event(), asyncio.Event()

    async def held() -> Any:
        recorded.set()
        await release.wait()
        return await announce_held()

    outcomes.announce_held = held  # type: ignore[method-assign]
    head = asyncio.create_task(head_worker.process(deliveries([tasks["large"], *whole])))
    await recorded.wait()
    assert ports.table.sources[(INPUT, KEY)].status == "complete"

    tail = await ports.worker().process(deliveries([tasks["web"], tasks["thumbnail"]]))
    assert list(tail.values()) == [None, None]
    # Not announced from here (it would be twice), and the job not ended before the other
    # batch has announced its sources.
    assert ports.table.sources[(INPUT, KEY)].announced_at is None
    assert ports.table.jobs["job-1"].status == "running"

    release.set()
    assert all(result is None for result in (await head).values())
    assert ports.table.sources[(INPUT, KEY)].announced_at is not None
    assert ports.table.jobs["job-1"].status == "complete"
    assert_counted_once(ports)
    records = ports.table.variants
    assert [records[(INPUT, KEY, name)].rendered_ahead for name in ("large", "web")] == [
        None,
        True,
    ]

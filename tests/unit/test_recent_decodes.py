"""A source whose variant tasks are split over two batches of a warm container is fetched
and decoded once, when the first decode is large enough for the rest."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from service_helpers import INPUT, OUTPUT, Ports, count_decodes, jpeg, sqs_record

from prism.messages import VariantTask

KEY = "uploads/trips/cat.jpg"


def deliveries(tasks: list[VariantTask]) -> list[SQSRecord]:
    return [sqs_record(task.model_dump_json()) for task in tasks]


def by_name(tasks: list[VariantTask]) -> dict[str, VariantTask]:
    return {task.variant.name: task for task in tasks}


async def test_the_next_batch_renders_from_the_kept_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    decodes = count_decodes(monkeypatch)
    ports = Ports()
    ports.job()
    tasks = by_name(await ports.fanned_out(KEY, jpeg((2400, 1800))))
    first = await ports.worker().process(deliveries([tasks["large"], tasks["web"]]))
    second = await ports.worker().process(deliveries([tasks["thumbnail"]]))
    assert all(r is None for r in [*first.values(), *second.values()])
    assert len(decodes) == 1
    assert [r for r in ports.objects.reads if r[2] is None] == [(INPUT, KEY, None)]  # fetched once
    assert ports.table.sources[(INPUT, KEY)].status == "complete"
    thumbnail = ports.table.variants[(INPUT, KEY, "thumbnail")]
    assert (thumbnail.width, thumbnail.height) == (256, 192)
    assert thumbnail.output_key and (OUTPUT, thumbnail.output_key) in ports.objects.current


async def test_a_decode_too_small_for_the_rest_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    decodes = count_decodes(monkeypatch)
    ports = Ports()
    ports.job()
    tasks = by_name(await ports.fanned_out(KEY, jpeg((2400, 1800))))
    await ports.worker().process(deliveries([tasks["thumbnail"]]))
    await ports.worker().process(deliveries([tasks["large"], tasks["web"]]))
    assert len(decodes) == 2
    large = ports.table.variants[(INPUT, KEY, "large")]
    assert (large.width, large.height) == (1920, 1440)


async def test_a_finished_source_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    decodes = count_decodes(monkeypatch)
    ports = Ports()
    ports.job(expected_sources=None)
    tasks = await ports.fanned_out(KEY, jpeg((800, 600)))
    await ports.worker().process(deliveries(tasks))
    # Its run is done: a redelivery of a task finds it recorded; a new run decodes again.
    again = await ports.fanned_out(KEY, jpeg((801, 600)), sequencer="0B")
    await ports.worker().process(deliveries(again[:1]))
    assert len(decodes) == 2

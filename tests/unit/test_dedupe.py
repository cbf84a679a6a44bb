"""Dedupe (``dedupe: true``): an upload whose bytes were rendered before with the same
variant spec gets its variants by copy, not by a render; anything that differs renders."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from service_helpers import INPUT, OUTPUT, Ports, jpeg, sqs_record

import prism.worker
from prism.config import parse_config
from prism.dedupe import content_digest, spec_digest
from prism.imaging import decode_source
from prism.messages import SourceRef, VariantTask

CONFIG = """
dedupe: true
variants:
  - {name: small, transforms: [{op: thumbnail, width: 32, height: 32}], format: jpeg}
  - {name: web, transforms: [{op: thumbnail, width: 64, height: 64}], format: webp}
"""


def deliveries(tasks: list[VariantTask]) -> list[SQSRecord]:
    return [sqs_record(task.model_dump_json()) for task in tasks]


async def render(ports: Ports, key: str, data: bytes, config: str = CONFIG) -> list[VariantTask]:
    before = len(ports.queue.sent)
    fan_out = ports.fan_out(parse_config(config))
    assert all(e is None for e in (await fan_out.process([ports.upload(key, data)])).values())
    tasks = ports.queue.sent[before:]
    results = await ports.worker().process(deliveries(tasks))
    assert all(error is None for error in results.values()), results
    return tasks


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = decode_source

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prism.worker, "decode_source", counting)
    return calls


async def test_identical_bytes_are_copied_not_rendered(decodes: list[int]) -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    photo = jpeg((300, 200))
    await render(ports, "uploads/a.jpg", photo)
    await render(ports, "uploads/copy-of-a.jpg", photo)
    assert len(decodes) == 1  # the copy was never decoded
    for variant in ("small", "web"):
        original = ports.table.variants[(INPUT, "uploads/a.jpg", variant)]
        copy = ports.table.variants[(INPUT, "uploads/copy-of-a.jpg", variant)]
        assert copy.reused_from == f"{INPUT}/uploads/a.jpg" and original.reused_from is None
        assert (copy.width, copy.height, copy.bytes) == (
            original.width,
            original.height,
            original.bytes,
        )
        assert original.output_key and copy.output_key
        first = ports.objects.current[(OUTPUT, original.output_key)]
        second = ports.objects.current[(OUTPUT, copy.output_key)]
        assert first.data == second.data
        assert second.metadata["prism-variant"] == variant
    source = ports.table.sources[(INPUT, "uploads/copy-of-a.jpg")]
    assert source.status == "complete" and source.original is not None
    assert source.original.width == 300  # the facts travel with the render


async def test_other_bytes_or_another_spec_are_rendered(decodes: list[int]) -> None:
    ports = Ports()
    ports.job(expected_sources=3)
    await render(ports, "uploads/a.jpg", jpeg((300, 200)))
    await render(ports, "uploads/b.jpg", jpeg((301, 200)))  # other bytes
    await render(ports, "uploads/c.jpg", jpeg((300, 200)), CONFIG.replace("64", "65"))
    assert len(decodes) == 3
    copied = ports.table.variants[(INPUT, "uploads/c.jpg", "small")]
    assert copied.reused_from == f"{INPUT}/uploads/a.jpg"  # the spec of "small" is the same


async def test_a_changed_earlier_output_is_rendered_again(decodes: list[int]) -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    photo = jpeg((300, 200))
    await render(ports, "uploads/a.jpg", photo)
    ports.objects.put(OUTPUT, "a_small.jpg", b"replaced by someone")
    await render(ports, "uploads/b.jpg", photo)
    assert len(decodes) == 2  # "small" could not be copied, so the source was decoded
    small = ports.table.variants[(INPUT, "uploads/b.jpg", "small")]
    web = ports.table.variants[(INPUT, "uploads/b.jpg", "web")]
    assert small.reused_from is None and web.reused_from == f"{INPUT}/uploads/a.jpg"


async def test_dedupe_is_off_by_default() -> None:
    ports = Ports()
    ports.job(expected_sources=2)
    off = CONFIG.replace("dedupe: true\n", "")
    await render(ports, "uploads/a.jpg", jpeg(), off)
    await render(ports, "uploads/b.jpg", jpeg(), off)
    assert ports.table.renders == {}


def test_the_spec_ignores_names_and_headers_but_not_pixels() -> None:
    config = parse_config(CONFIG)
    small, web = config.variants
    base = VariantTask(
        run_id="r",
        job_id="j",
        source=SourceRef(bucket="b", key="k"),
        variant=small,
        output_key="o",
    )
    renamed = base.model_copy(
        update={"variant": small.model_copy(update={"name": "tiny", "cache_control": "no-store"})}
    )
    assert spec_digest(base) == spec_digest(renamed)
    assert spec_digest(base) != spec_digest(base.model_copy(update={"variant": web}))
    assert content_digest(b"x") != content_digest(b"y")

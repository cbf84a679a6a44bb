import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from service_helpers import SETTINGS

from prism.config import parse_config
from prism.fanout import plan_tasks
from prism.messages import BackfillRequest, SourceRef
from prism.uploads import uploads_in

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "fanout-upload.json").read_text())
    return event


def _records(event: dict[str, Any] | None = None) -> list[SQSRecord]:
    return list(SQSEvent(event or _event()).records)


def test_keys_are_decoded_exactly_once_and_test_events_ignored() -> None:
    upload_record, test_event_record = _records()
    (upload,) = uploads_in(upload_record)
    # '+' is a space and %28/%29 are parentheses; a literal '%' would survive as '%'.
    assert upload.source.key == "uploads/holiday photos/beach (2).jpg"
    assert upload.source.size == 4096
    assert upload_record.json_body["Records"][0]["s3"]["object"]["key"].count("+") == 2
    assert uploads_in(test_event_record) == []


def test_run_id_is_stable_for_the_same_notification() -> None:
    first = uploads_in(_records()[0])[0]
    again = uploads_in(_records()[0])[0]
    assert first.run_id == again.run_id
    assert first.job_id is None  # from the object's metadata, else the day's job
    assert first.event_time.startswith("2026-11-27")


def test_non_create_events_are_ignored() -> None:
    event = _event()
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    event["Records"][0]["body"] = json.dumps(body)
    assert uploads_in(_records(event)[0]) == []


def test_one_task_per_variant_with_resolved_watermark_and_keys() -> None:
    config = parse_config(
        """
        output_prefix: variants
        watermark: {text: Shop}
        variants:
          - {name: thumbnail, format: jpeg, watermark: false}
          - {name: web, format: webp}
        """
    )
    upload = uploads_in(_records()[0])[0]
    thumbnail, web = plan_tasks(upload, config, SETTINGS, "job-1", 7)
    assert thumbnail.output_key == "variants/holiday photos/beach (2)_thumbnail.jpg"
    assert web.output_key == "variants/holiday photos/beach (2)_web.webp"
    assert thumbnail.watermark is None
    assert web.watermark is not None and web.watermark.text == "Shop"
    assert {thumbnail.run_id, web.run_id} == {upload.run_id}
    assert {(task.job_id, task.shard) for task in (thumbnail, web)} == {("job-1", 7)}


def test_backfill_requests_name_their_job_and_variants() -> None:
    request = BackfillRequest(
        job_id="fill-1",
        source=SourceRef(bucket="in", key="uploads/a b.jpg", etag='"abc"', size=10),
        variants=["web"],
        missing_only=True,
    )
    event = _event()
    event["Records"][0]["body"] = request.model_dump_json()
    (upload,) = uploads_in(_records(event)[0])
    assert upload.job_id == "fill-1"
    assert upload.source.key == "uploads/a b.jpg"  # not URL-decoded: it never was encoded
    assert upload.variants == ("web",) and upload.missing_only
    config = parse_config("variants: [{name: thumbnail}, {name: web, format: webp}]")
    (task,) = plan_tasks(upload, config, SETTINGS, "fill-1", 0)
    assert task.variant.name == "web"
    assert upload.run_id != uploads_in(_records()[0])[0].run_id


def test_a_sources_tasks_go_out_largest_picture_first() -> None:
    """So that the tasks a worker batch leaves for the next one need no more of the
    picture than the first decode kept (prism.recent_decodes)."""
    from prism.config import parse_config
    from prism.fanout import selected_variants

    config = parse_config(
        """
variants:
  - {name: small, transforms: [{op: thumbnail, width: 64, height: 64}]}
  - {name: blurred, transforms: [{op: blur, sigma: 2}]}
  - {name: big, transforms: [{op: cover, width: 800, height: 600}]}
"""
    )
    assert [v.name for v in selected_variants(config, None)] == ["blurred", "big", "small"]
    assert [v.name for v in selected_variants(config, ["small", "big"])] == ["big", "small"]

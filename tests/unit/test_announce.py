"""The manifest and event payloads, the manifest key, deletions parsed from S3 events and
the ``public_url`` setting: pure functions, no AWS."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from prism.announce import manifest, source_detail, srcsets
from prism.config import ConfigError, parse_config
from prism.keys import manifest_key
from prism.records import SourceFacts, SourceRecord, VariantRecord
from prism.uploads import removals_in, uploads_in

SOURCE = SourceRecord(
    bucket="in",
    key="uploads/trips/cat.jpg",
    job_id="job-1",
    run_id="run-1",
    status="complete_with_failures",
    expected=4,
    done=3,
    failed=1,
    size=1234,
    original=SourceFacts(4032, 3024, "jpeg", "LEHV6nWB2yk8", "#6f7c85"),
    manifest_key="trips/cat_manifest.json",
    url_base="https://img.example.com/",
)


def done(name: str, width: int, fmt: str) -> VariantRecord:
    ext = {"WEBP": "webp", "JPEG": "jpg"}[fmt]
    return VariantRecord(
        bucket="in",
        key=SOURCE.key,
        variant=name,
        run_id="run-1",
        status="done",
        output_key=f"trips/cat_{name}.{ext}",
        format=fmt,
        width=width,
        height=width * 3 // 4,
        bytes=width * 10,
    )


VARIANTS = [
    done("thumb", 256, "WEBP"),
    done("web", 1280, "WEBP"),
    done("large", 1920, "JPEG"),
    VariantRecord(
        bucket="in",
        key=SOURCE.key,
        variant="avif",
        run_id="run-1",
        status="failed",
        reason="encode_failed",
        error="no AVIF encoder",
    ),
]


def test_srcsets_list_each_formats_done_variants_widest_first() -> None:
    assert srcsets(VARIANTS, "https://cdn/") == {
        "jpeg": "https://cdn/trips/cat_large.jpg 1920w",
        "webp": "https://cdn/trips/cat_web.webp 1280w, https://cdn/trips/cat_thumb.webp 256w",
    }
    assert srcsets(VARIANTS)["jpeg"] == "trips/cat_large.jpg 1920w"  # no base: bare keys


def test_the_manifest_has_what_a_page_needs_and_no_failed_variant() -> None:
    document = manifest(SOURCE, VARIANTS)
    assert document["source"] == {
        "bucket": "in",
        "key": "uploads/trips/cat.jpg",
        "bytes": 1234,
        "width": 4032,
        "height": 3024,
        "format": "jpeg",
    }
    assert document["placeholder"] == {"blurhash": "LEHV6nWB2yk8", "dominant_colour": "#6f7c85"}
    assert [v["name"] for v in document["variants"]] == ["large", "thumb", "web"]
    assert document["variants"][0]["url"] == "https://img.example.com/trips/cat_large.jpg"
    assert document["variants"][0]["format"] == "jpeg"
    json.dumps(document)  # plain JSON


def test_the_event_detail_names_every_variant_with_its_outcome() -> None:
    detail = source_detail(SOURCE, VARIANTS, SOURCE.manifest_key)
    by_name = {v["name"]: v for v in detail["variants"]}
    assert by_name["avif"] == {
        "name": "avif",
        "status": "failed",
        "reason": "encode_failed",
        "error": "no AVIF encoder",
    }
    assert by_name["web"]["bytes"] == 12800 and by_name["web"]["key"] == "trips/cat_web.webp"
    assert detail["status"] == "complete_with_failures" and detail["run_id"] == "run-1"
    assert detail["original"] == {"width": 4032, "height": 3024, "format": "jpeg"}


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("{dir}/{stem}_{variant}.{ext}", "out/trips/cat_manifest.json"),
        ("{dir}/{variant}/{name}.{ext}", "out/trips/manifest/cat.jpg.json"),
    ],
)
def test_the_manifest_key_follows_the_output_layout(layout: str, expected: str) -> None:
    key = manifest_key(
        "uploads/trips/cat.jpg", upload_prefix="uploads/", output_prefix="out", template=layout
    )
    assert key == expected


def test_public_url_is_validated_and_ends_with_a_slash() -> None:
    variants = "variants: [{name: t, transforms: [{op: thumbnail, width: 8, height: 8}]}]\n"
    config = parse_config("public_url: https://img.example.com\n" + variants)
    assert config.public_url == "https://img.example.com/"
    for bad in ("ftp://x", "https://a b", 'https://x"'):
        with pytest.raises(ConfigError, match="public_url"):
            parse_config(f"public_url: '{bad}'\n" + variants)


def _sqs(body: dict[str, object]) -> SQSRecord:
    return SQSRecord({"messageId": "m", "body": json.dumps(body), "attributes": {}})


def test_an_object_removed_event_is_a_removal_not_an_upload() -> None:
    record = _sqs(
        {
            "Records": [
                {
                    "eventName": "ObjectRemoved:DeleteMarkerCreated",
                    "eventTime": "2026-12-01T10:00:00.000Z",
                    "s3": {
                        "bucket": {"name": "in"},
                        "object": {"key": "uploads/a+b.jpg", "versionId": "v2", "sequencer": "0A"},
                    },
                }
            ]
        }
    )
    assert uploads_in(record) == []
    (removal,) = removals_in(record)
    assert (removal.source.key, removal.source.version_id) == ("uploads/a b.jpg", "v2")
    assert removal.sequencer and removal.sequencer.endswith("0A")
    assert removal.run_id == removals_in(record)[0].run_id  # a redelivery: the same deletion

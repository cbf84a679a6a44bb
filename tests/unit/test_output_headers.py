"""The HTTP headers and user metadata of outputs: validated in the config, inherited by
variants, carried by the variant tasks and written by the worker."""

from __future__ import annotations

import pytest
from service_helpers import OUTPUT, Ports, jpeg, sqs_record

from prism.aws.storage import RUN_METADATA_KEY, RUN_ORDER_METADATA_KEY
from prism.config import (
    DEFAULT_CACHE_CONTROL,
    MAX_HEADER_CHARS,
    MAX_USER_METADATA_BYTES,
    RESERVED_METADATA_PREFIX,
    ConfigError,
    PipelineConfig,
    Variant,
    parse_config,
)
from prism.messages import JOB_METADATA_KEY, VARIANT_METADATA_KEY, VariantTask
from prism.output_formats import FORMATS

HEADERS = """
cache_control: "public, max-age=3600"
content_disposition: inline
user_metadata: {owner: team-a, licence: cc-by-4.0}
variants:
  - name: thumb
  - name: download
    format: png
    cache_control: no-store
    content_disposition: 'attachment; filename="photo.png"'
    user_metadata: {kind: original}
"""


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as excinfo:
        parse_config(text)
    return str(excinfo.value)


def one_variant(**pipeline: str) -> str:
    lines = "".join(f"{name}: {value}\n" for name, value in pipeline.items())
    return lines + "variants: [{name: a}]\n"


# --- the config --------------------------------------------------------------------------------
def test_by_default_outputs_are_cacheable_for_a_year_without_disposition_or_metadata() -> None:
    assert DEFAULT_CACHE_CONTROL == "public, max-age=31536000, immutable"
    variant = parse_config("variants: [{name: a}]").variants[0]
    assert variant.cache_control == DEFAULT_CACHE_CONTROL
    assert variant.content_disposition is None
    assert variant.user_metadata == {}


def test_a_variant_inherits_the_pipelines_headers_unless_it_sets_its_own() -> None:
    thumb, download = parse_config(HEADERS).variants
    assert (thumb.cache_control, thumb.content_disposition) == ("public, max-age=3600", "inline")
    assert thumb.user_metadata == {"owner": "team-a", "licence": "cc-by-4.0"}
    assert download.cache_control == "no-store"
    assert download.content_disposition == 'attachment; filename="photo.png"'
    # A variant's metadata replaces the pipeline's (an empty mapping clears it).
    assert download.user_metadata == {"kind": "original"}
    cleared = parse_config("user_metadata: {a: b}\nvariants: [{name: a, user_metadata: {}}]")
    assert cleared.variants[0].user_metadata == {}


def test_a_parsed_config_dumped_and_parsed_again_keeps_its_headers() -> None:
    config = parse_config(HEADERS)
    again = PipelineConfig.model_validate(config.model_dump(mode="json"))
    assert again == config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            one_variant(cache_control='"max-age=60\\r\\nX-Evil: 1"'),
            "cache_control: Value error, only printable",
        ),
        (
            one_variant(cache_control='"max-age=60\\tx"'),
            "cache_control: Value error, only printable",
        ),
        (one_variant(content_disposition='"inline; filename=\\"café.jpg\\""'), "printable ASCII"),
        (
            one_variant(cache_control='" max-age=60"'),
            "cache_control: Value error, no leading or trailing",
        ),
        (one_variant(cache_control='""'), "cache_control: String should have at least 1"),
        (
            one_variant(content_disposition="a" * (MAX_HEADER_CHARS + 1)),
            f"content_disposition: String should have at most {MAX_HEADER_CHARS}",
        ),
        (
            'variants: [{name: a, cache_control: "x\\ny"}]',
            "variants.0.cache_control: Value error, only printable",
        ),
    ],
)
def test_a_header_value_must_be_printable_ascii_on_one_line(text: str, expected: str) -> None:
    assert expected in refused(text)


def test_1024_characters_of_a_header_are_accepted() -> None:
    config = parse_config(one_variant(cache_control="a" * MAX_HEADER_CHARS))
    assert len(config.variants[0].cache_control or "") == MAX_HEADER_CHARS


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("{Owner: a}", "user_metadata: Value error, key 'Owner': only lowercase"),
        ("{owner_name: a}", "key 'owner_name': only lowercase"),
        ("{prism-run: a}", "key 'prism-run': keys starting 'prism-' are Prism's"),
        ("{prism-anything: a}", "keys starting 'prism-' are Prism's"),
        ('{owner: "caf\\u00e9"}', "value of 'owner': only printable ASCII"),
        ('{owner: "a\\nb"}', "value of 'owner': only printable ASCII"),
        ("{owner: 7}", "user_metadata.owner: Input should be a valid string"),
    ],
)
def test_user_metadata_keys_and_values_are_what_s3_headers_carry(
    metadata: str, expected: str
) -> None:
    assert expected in refused(f"user_metadata: {metadata}\nvariants: [{{name: a}}]")
    in_variant = refused(f"variants: [{{name: a, user_metadata: {metadata}}}]")
    assert "variants.0.user_metadata" in in_variant


def test_user_metadata_is_bounded_leaving_room_for_prisms_own_keys() -> None:
    assert MAX_USER_METADATA_BYTES + 256 == 2048
    value = "v" * (MAX_USER_METADATA_BYTES - len("k"))
    assert parse_config(f"user_metadata: {{k: {value}}}\nvariants: [{{name: a}}]")
    message = refused(f"user_metadata: {{k: {value}v}}\nvariants: [{{name: a}}]")
    assert f"at most {MAX_USER_METADATA_BYTES:,} bytes of keys and values, not 1,793" in message


def test_prisms_own_metadata_keys_are_in_the_reserved_prefix_and_fit_its_share() -> None:
    keys = [RUN_METADATA_KEY, RUN_ORDER_METADATA_KEY, VARIANT_METADATA_KEY, JOB_METADATA_KEY]
    assert all(key.startswith(RESERVED_METADATA_PREFIX) for key in keys)
    # A 64-character variant name, a run id (a UUID) and a 20-digit run order.
    own = len(VARIANT_METADATA_KEY) + 64 + len(RUN_METADATA_KEY) + 36
    own += len(RUN_ORDER_METADATA_KEY) + 20
    assert own <= 2048 - MAX_USER_METADATA_BYTES


# --- the task ----------------------------------------------------------------------------------
def test_a_task_of_an_older_fan_out_without_the_headers_still_parses() -> None:
    old = {
        "run_id": "r",
        "job_id": "j",
        "source": {"bucket": "b", "key": "k"},
        "variant": {"name": "thumb", "format": "JPEG"},
        "output_key": "thumb.jpg",
    }
    task = VariantTask.model_validate(old)
    assert task.variant.cache_control is None and task.variant.user_metadata is None


def test_a_task_carries_its_variants_effective_headers() -> None:
    variant = parse_config(HEADERS).variants[1]
    task = VariantTask(
        run_id="r",
        job_id="j",
        source={"bucket": "b", "key": "k"},  # type: ignore[arg-type]
        variant=variant,
        output_key="k.png",
    )
    again = VariantTask.model_validate_json(task.model_dump_json()).variant
    assert (again.cache_control, again.content_disposition, again.user_metadata) == (
        "no-store",
        'attachment; filename="photo.png"',
        {"kind": "original"},
    )


# --- the worker --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("AVIF", "image/avif"),
    ],
)
def test_every_output_format_has_its_registered_content_type(name: str, content_type: str) -> None:
    assert Variant(name="v", format=name).content_type == content_type  # type: ignore[arg-type]


def test_the_content_type_table_covers_every_format() -> None:
    assert set(FORMATS) == {"JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF"}


async def test_the_worker_writes_each_variants_headers_and_metadata() -> None:
    ports = Ports()
    ports.job()
    config = parse_config(HEADERS)
    record = ports.upload("uploads/cat.jpg", jpeg())
    assert all(e is None for e in (await ports.fan_out(config).process([record])).values())
    tasks = ports.queue.sent
    results = await ports.worker().process([sqs_record(t.model_dump_json()) for t in tasks])
    assert all(error is None for error in results.values())

    thumb = ports.objects.current[(OUTPUT, "cat_thumb.jpg")]
    assert (thumb.content_type, thumb.cache_control, thumb.content_disposition) == (
        "image/jpeg",
        "public, max-age=3600",
        "inline",
    )
    assert thumb.metadata == {
        "owner": "team-a",
        "licence": "cc-by-4.0",
        "prism-variant": "thumb",
        "prism-run": tasks[0].run_id,
        "prism-run-order": str(tasks[0].run_order),
    }
    download = ports.objects.current[(OUTPUT, "cat_download.png")]
    assert (download.content_type, download.cache_control) == ("image/png", "no-store")
    assert download.content_disposition == 'attachment; filename="photo.png"'
    assert download.metadata["kind"] == "original" and "owner" not in download.metadata

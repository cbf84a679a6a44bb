"""A local run releases each source as soon as it is finished (prism_cli.run.retire): its
outputs are downloaded into ``--out`` and removed from the output bucket, its upload
(exactly that version) from the input bucket; a source that is not finished is left
alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from prism.aws.clients import open_clients
from prism.aws.processing_table import ProcessingTable
from prism.config import parse_config
from prism_cli.local.lambda_emulator import emulators_for, run_until_idle
from prism_cli.local.stack import LocalStack
from prism_cli.run.retire import Retirement, table_forgetter
from prism_cli.run.run_log import RunPlace
from support.images import image_bytes
from support.pipeline import NO_BACKOFF, drain, with_processing

pytestmark = pytest.mark.integration

CONFIG = """
variants:
  - {name: small, transforms: [{op: thumbnail, width: 40, height: 40}], format: jpeg}
  - {name: web, transforms: [{op: thumbnail, width: 80, height: 80}], format: webp}
"""


def versions(stack: LocalStack, bucket: str) -> list[str]:
    listing = stack.clients.s3.list_object_versions(Bucket=bucket)
    return [v["Key"] for v in listing.get("Versions", []) + listing.get("DeleteMarkers", [])]


def test_finished_sources_are_downloaded_and_removed_from_the_stack(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    stack = local_stack
    stack.put_pipeline_config(CONFIG)
    config = parse_config(CONFIG)
    input_bucket = stack.bucket_name("InputBucket")
    output_bucket = stack.bucket_name("OutputBucket")
    s3 = stack.clients.s3
    rendered = {"uploads/photos/a.jpg", "uploads/photos/b.png"}
    broken = "uploads/photos/broken.jpg"
    for key in sorted(rendered):
        fmt = "PNG" if key.endswith(".png") else "JPEG"
        s3.put_object(Bucket=input_bucket, Key=key, Body=image_bytes((120, 90), fmt))
    s3.put_object(Bucket=input_bucket, Key=broken, Body=b"\xff\xd8 not a jpeg")
    # Uploaded, but not one of the run's files: never touched.
    s3.put_object(Bucket=input_bucket, Key="uploads/other/c.jpg", Body=image_bytes((50, 50)))
    out = tmp_path / "out"
    place = RunPlace(input_bucket, output_bucket, out, config)
    emulators = emulators_for(
        stack.template,
        stack.clients.sqs,
        instances={"WorkerFunction": 2, "FanoutFunction": 1},
        batching_window=0,
        retry_backoff=NO_BACKOFF,
    )

    table_name = stack.environment["PRISM_TABLE_NAME"]

    async def run_and_release() -> Retirement:
        async with open_clients() as clients:
            table = ProcessingTable(clients.dynamodb, table_name)
            forget = table_forgetter(clients.dynamodb, table_name)
            retirement = Retirement(table, s3, place, [*rendered, broken], forget=forget)
            for emulator in emulators:
                fanout = emulator.function.logical_id == "FanoutFunction"
                emulator.on_deleted = (
                    retirement.uploads_settled if fanout else retirement.tasks_settled
                )
            await asyncio.to_thread(
                run_until_idle, emulators, stack.clients.sqs, timeout=90, poll_seconds=0.2
            )
            await retirement.release_due()
            return retirement

    retirement = asyncio.run(run_and_release())

    assert retirement.released == 3  # the two rendered sources and the broken one
    # Their records left the table for ``records``; the other upload's stayed.
    released = {*rendered, broken}
    assert {key for _, key in retirement.records.sources} == released
    assert all(len(retirement.records.variants_of((input_bucket, k))) == 2 for k in released)
    left = stack.clients.dynamodb.scan(TableName=table_name)["Items"]
    partitions = {item["pk"]["S"] for item in left}
    assert not any(pk.endswith(tuple(released)) for pk in partitions if pk.startswith("SOURCE#"))
    assert f"SOURCE#{input_bucket}/uploads/other/c.jpg" in partitions
    claims = [pk for pk in partitions if pk.startswith("OUTPUT#")]
    assert len(claims) == 4 * (len(config.variants) + 1)  # outputs and manifests: kept
    upload_prefix = stack.environment["PRISM_UPLOAD_PREFIX"]
    expected = {
        config.output_key_for(key, variant, upload_prefix)
        for key in rendered
        for variant in config.variants
    } | {config.manifest_key_for(key, upload_prefix) for key in rendered}
    assert {d.key for d in retirement.downloaded} == expected
    assert all(error is None for error in retirement.downloaded.values())
    for download in retirement.downloaded:
        assert download.destination.is_file() and download.destination.stat().st_size > 0
        assert download.destination.is_relative_to(out)
    # Only the outputs of the upload that is not the run's are left.
    assert sorted(versions(stack, output_bucket)) == [
        "other/c_manifest.json",
        "other/c_small.jpg",
        "other/c_web.webp",
    ]
    # Each released upload's version is gone, and no delete marker left in its place.
    assert versions(stack, input_bucket) == ["uploads/other/c.jpg"]
    # Releasing is no user's delete: no ObjectRemoved notification for the fan-out.
    removals = [m for m in drain(stack, "UploadsQueue") if "ObjectRemoved" in m["Body"]]
    assert removals == []


def test_a_source_still_under_way_is_not_released(local_stack: LocalStack, tmp_path: Path) -> None:
    stack = local_stack
    stack.put_pipeline_config(CONFIG)
    config = parse_config(CONFIG)
    input_bucket = stack.bucket_name("InputBucket")
    output_bucket = stack.bucket_name("OutputBucket")
    s3 = stack.clients.s3
    s3.put_object(Bucket=input_bucket, Key="uploads/a.jpg", Body=image_bytes((120, 90)))
    place = RunPlace(input_bucket, output_bucket, tmp_path / "out", config)
    # Only the fan-out runs: the source is registered, its variant tasks wait.
    emulators = emulators_for(
        stack.template,
        stack.clients.sqs,
        instances={"FanoutFunction": 1, "WorkerFunction": 1},
        batching_window=0,
    )
    fanout = [e for e in emulators if e.function.logical_id == "FanoutFunction"]

    async def run_and_release(table: ProcessingTable) -> Retirement:
        retirement = Retirement(table, s3, place, ["uploads/a.jpg"])
        fanout[0].on_deleted = retirement.uploads_settled
        await asyncio.to_thread(
            run_until_idle, fanout, stack.clients.sqs, timeout=60, poll_seconds=0.2
        )
        await retirement.release_due()
        return retirement

    retirement = with_processing(stack, run_and_release)

    assert retirement.released == 0 and not retirement.downloaded
    assert versions(stack, input_bucket) == ["uploads/a.jpg"]

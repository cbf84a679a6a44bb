"""Retention on the moto server: after a run, finished records and the ended job carry
``expires_at`` (DynamoDB's TTL attribute; moto ignores it), and what guards the outputs
(claims, source items) never does; a job's counters, one partition per shard, read
exactly over more than 100 shards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import pytest

from prism.aws import schema
from prism.aws.clients import open_clients
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable
from prism.jobs import JobCounters, JobProgress, JobStatus
from prism.messages import JOB_METADATA_KEY
from prism.records import SourceRecord, utc_now
from prism_cli.local.stack import LocalStack
from support.images import image_bytes
from support.pipeline import THREE_VARIANTS, create_job, job_progress, run_functions, with_jobs

pytestmark = pytest.mark.integration

DAY = 86_400
T = TypeVar("T")


def table_items(stack: LocalStack) -> Iterator[dict[str, Any]]:
    pages = stack.clients.dynamodb.get_paginator("scan")
    for page in pages.paginate(TableName=stack.environment["PRISM_TABLE_NAME"]):
        for item in page.get("Items", []):
            yield schema.from_attributes(dict(item))


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def test_finished_records_and_the_ended_job_expire_and_claims_and_sources_never(
    local_stack: LocalStack,
) -> None:
    retention = int(local_stack.environment.get("PRISM_RECORD_RETENTION_DAYS", "90"))
    assert retention == 90  # the template's default
    local_stack.put_pipeline_config(THREE_VARIANTS)
    create_job(local_stack, "kept")
    bucket = local_stack.bucket_name("InputBucket")
    for n in range(2):
        local_stack.clients.s3.put_object(
            Bucket=bucket,
            Key=f"uploads/kept/image-{n}.jpg",
            Body=image_bytes((60 + n, 40), "JPEG", (n * 90, 90, 160)),
            Metadata={JOB_METADATA_KEY: "kept"},
        )
    with_jobs(local_stack, lambda jobs: jobs.seal("kept", 2))

    run_functions(local_stack, "FanoutFunction", "WorkerFunction")

    items = list(table_items(local_stack))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        kind = item["sk"].split("#", 1)[0]
        by_kind.setdefault(kind, []).append(item)
    counts = {kind: len(found) for kind, found in by_kind.items()}
    assert counts.pop("SHARD") in (1, 2)  # the sources' shards
    assert counts == {"SOURCE": 2, "VARIANT": 6, "JOB": 1, "CLAIM": 8}  # 6 outputs, 2 manifests
    soon = time.time() + retention * DAY
    (job,) = by_kind["JOB"]
    assert job["status"] == JobStatus.COMPLETE
    for item in by_kind["VARIANT"] + [job]:
        assert item["expires_at"] == epoch(item["finished_at"]) + retention * DAY, item["sk"]
        assert abs(item["expires_at"] - soon) < 600
    for item in by_kind["SHARD"]:
        assert schema.parse_shard_pk(item["pk"])[0] == "kept"  # type: ignore[index]
        assert item["expires_at"] == job["expires_at"]
    # What guards the outputs stays: the claims, and each source item (its generation is
    # the run order the outputs carry), finished as it is.
    for item in by_kind["CLAIM"] + by_kind["SOURCE"]:
        assert "expires_at" not in item, item["pk"]
    assert {item["status"] for item in by_kind["SOURCE"]} == {"complete"}


def with_tables(
    stack: LocalStack,
    retention_days: int,
    action: Callable[[ProcessingTable, JobTable], Awaitable[T]],
) -> T:
    """What ``action`` returns for the stack's table adapters keeping ``retention_days``."""

    async def run() -> T:
        async with open_clients() as clients:
            name = stack.environment["PRISM_TABLE_NAME"]
            return await action(
                ProcessingTable(clients.dynamodb, name, retention_days=retention_days),
                JobTable(clients.dynamodb, name, retention_days=retention_days),
            )

    return asyncio.run(run())


def past_run(job_id: str, n: int, shard: int) -> SourceRecord:
    return SourceRecord(
        bucket="in",
        key=f"uploads/{n}.jpg",
        job_id=job_id,
        run_id=f"run-{n}",
        status="complete",
        expected=1,
        done=1,
        finished_at=utc_now(),
        shard=shard,
    )


def test_counters_over_150_shard_partitions_add_up_and_expire_with_the_job(
    local_stack: LocalStack,
) -> None:
    shards = 150  # two BatchGetItem requests
    create_job(local_stack, "wide", shards=shards)
    # Either side of the first request's last key, and the last shard.
    spread = (0, 1, 99, 100, 101, shards - 1)
    records = [past_run("wide", n, spread[n % len(spread)]) for n in range(30)]

    async def record_and_finish(log: ProcessingTable, jobs: JobTable) -> JobProgress | None:
        for record in records:
            assert await log.record_past_run(record)
        await jobs.seal("wide", len(records))
        return await jobs.finish_if_done("wide")

    progress = with_tables(local_stack, 30, record_and_finish)

    assert progress is not None and progress.job.status == JobStatus.COMPLETE
    assert progress.counters == JobCounters(
        sources_registered=30, sources_finished=30, variants_expected=30, variants_done=30
    )
    items = list(table_items(local_stack))
    (job,) = [item for item in items if item["sk"] == "JOB"]
    assert job["expires_at"] == epoch(job["finished_at"]) + 30 * DAY
    shard_items = [item for item in items if item["sk"] == "SHARD"]
    assert sorted(schema.parse_shard_pk(item["pk"]) for item in shard_items) == [  # type: ignore[type-var]
        ("wide", shard) for shard in spread
    ]
    assert {item["expires_at"] for item in shard_items} == {job["expires_at"]}
    runs = [item for item in items if item["sk"].startswith("RUN#")]
    assert len(runs) == 30
    for item in runs:
        assert item["expires_at"] == epoch(item["finished_at"]) + 30 * DAY


def test_a_job_that_has_not_ended_and_its_shards_do_not_expire(local_stack: LocalStack) -> None:
    create_job(local_stack, "open")

    async def record_and_ask(log: ProcessingTable, jobs: JobTable) -> JobProgress | None:
        assert await log.record_past_run(past_run("open", 1, 3))
        return await jobs.finish_if_done("open")

    assert with_tables(local_stack, 90, record_and_ask) is None  # not sealed: cannot end
    assert job_progress(local_stack, "open").counters.sources_finished == 1
    for item in table_items(local_stack):
        if item["sk"] in ("JOB", "SHARD"):
            assert "expires_at" not in item, item["pk"]

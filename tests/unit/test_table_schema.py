"""The processing table's keys and item shapes (``prism.aws.schema``): counter shards on
partitions of their own, and ``expires_at`` on finished items only."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from prism.aws import schema
from prism.jobs import JobCounters, JobRecord
from prism.records import SourceRecord, VariantRecord, expiry

DAY = 86_400
FINISHED = "2025-03-01T12:00:00.250+00:00"
FINISHED_EPOCH = int(datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp())

SOURCE = SourceRecord(
    bucket="in",
    key="uploads/cat.jpg",
    job_id="job-1",
    run_id="run-1",
    status="complete",
    expected=2,
    done=2,
    finished_at=FINISHED,
    shard=7,
)
VARIANT = VariantRecord(
    bucket="in",
    key="uploads/cat.jpg",
    variant="small",
    run_id="run-1",
    status="done",
    finished_at=FINISHED,
    job_id="job-1",
    shard=7,
)


def test_each_counter_shard_is_a_partition_of_its_own() -> None:
    keys = [schema.shard_key("job-1", shard) for shard in range(16)]
    assert keys[7] == {"pk": {"S": "JOB#job-1#SHARD#007"}, "sk": {"S": "SHARD"}}
    assert len({key["pk"]["S"] for key in keys}) == 16
    # The job item keeps its own partition, apart from every shard's.
    assert schema.job_key("job-1") == {"pk": {"S": "JOB#job-1"}, "sk": {"S": "JOB"}}
    assert schema.job_pk("job-1") not in {key["pk"]["S"] for key in keys}


@pytest.mark.parametrize("job_id", ["job-1", "uploads-2025-03-01", "odd#SHARD#001"])
def test_a_shard_partition_key_names_its_job_and_shard(job_id: str) -> None:
    assert schema.parse_shard_pk(schema.shard_pk(job_id, 42)) == (job_id, 42)
    assert schema.parse_shard_pk(schema.shard_pk(job_id, 1234)) == (job_id, 1234)


@pytest.mark.parametrize(
    "pk", ["JOB#job-1", "SOURCE#in/uploads/cat.jpg", "OUTPUT#out/cat.jpg", "JOB#j#SHARD#x"]
)
def test_other_partition_keys_are_no_shards(pk: str) -> None:
    assert schema.parse_shard_pk(pk) is None


def test_expiry_is_the_retention_after_the_finish() -> None:
    assert expiry(FINISHED, 90) == FINISHED_EPOCH + 90 * DAY
    assert expiry(FINISHED, 1) == FINISHED_EPOCH + DAY
    assert expiry("2025-03-01T12:00:00", 1) == FINISHED_EPOCH + DAY  # naive: UTC
    assert abs(expiry(None, 90) - (time.time() + 90 * DAY)) < 5  # type: ignore[operator]


def test_no_retention_means_no_expiry() -> None:
    assert expiry(FINISHED, 0) is None
    assert expiry(None, 0) is None


def test_items_carry_expires_at_only_when_given_one() -> None:
    expires_at = FINISHED_EPOCH + 90 * DAY
    for item in (
        schema.source_item(SOURCE, expires_at),
        schema.source_item(replace(SOURCE, archived=True), expires_at),
        schema.variant_item(VARIANT, expires_at),
    ):
        assert item[schema.EXPIRES_AT] == {"N": str(expires_at)}
    for item in (schema.source_item(SOURCE), schema.variant_item(VARIANT)):
        assert schema.EXPIRES_AT not in item
    assert schema.source_item(replace(SOURCE, archived=True))["sk"] == {"S": "RUN#run-1"}


def test_records_read_from_items_ignore_expires_at() -> None:
    expires = {schema.EXPIRES_AT: {"N": str(FINISHED_EPOCH + 90 * DAY)}}
    assert schema.from_item(SourceRecord, schema.source_item(SOURCE, 1)) == SOURCE
    assert schema.record_from_item(schema.variant_item(VARIANT, 1)) == VARIANT
    job = JobRecord("job-1", "complete", "submit", FINISHED, finished_at=FINISHED)
    assert schema.from_item(JobRecord, {**schema.job_item(job), **expires}) == job
    shard = {
        **schema.shard_key("job-1", 3),
        **schema.to_attributes({"variants_done": 4, "bytes_out": 10}),
        **expires,
    }
    assert schema.counters_from_item(shard) == JobCounters(variants_done=4, bytes_out=10)

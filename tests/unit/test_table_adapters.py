"""The table adapters' requests, against a recording stand-in for the DynamoDB client: how a
job's counters are read (a GetItem, then one BatchGetItem per 100 shards, unprocessed keys
asked again), and which writes carry ``expires_at`` (finished items) and which never do
(a source still processing, an output claim). What DynamoDB makes of the requests is
tested against the moto server (``tests/integration/test_retention.py``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import pytest

from prism.aws import schema, table_calls
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable
from prism.aws.table_calls import UnprocessedKeys
from prism.jobs import JobCounters, JobRecord
from prism.ports import Registration
from prism.records import SourceRecord, VariantRecord, utc_now

TABLE = "processing"
DAY = 86_400
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


class StubDynamoDB:
    """Answers reads from ``items``; records every call; every write succeeds (and changes
    nothing). ``partial_answers``: that many BatchGetItem answers leave half of their keys
    unprocessed, as DynamoDB does when throttled."""

    def __init__(self, *items: dict[str, Any], partial_answers: int = 0) -> None:
        self.items = {(item["pk"]["S"], item["sk"]["S"]): item for item in items}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.partial_answers = partial_answers

    def called(self, operation: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == operation]

    def _find(self, key: dict[str, Any]) -> dict[str, Any] | None:
        return self.items.get((key["pk"]["S"], key["sk"]["S"]))

    async def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get_item", kwargs))
        item = self._find(kwargs["Key"])
        return {"Item": item} if item else {}

    async def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("batch_get_item", kwargs))
        ((table, request),) = kwargs["RequestItems"].items()
        keys = request["Keys"]
        assert len(keys) <= 100 and request["ConsistentRead"] is True
        served, left = keys, []
        if self.partial_answers:
            self.partial_answers -= 1
            served, left = keys[: len(keys) // 2], keys[len(keys) // 2 :]
        found = [item for key in served if (item := self._find(key))]
        unprocessed = {table: {"Keys": left, "ConsistentRead": True}} if left else {}
        return {"Responses": {table: found}, "UnprocessedKeys": unprocessed}

    async def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("update_item", kwargs))
        return {}

    async def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("put_item", kwargs))
        return {}

    async def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("transact_write_items", kwargs))
        return {}


def job(shards: int = 16, **changes: Any) -> JobRecord:
    record = JobRecord("job-1", "running", "submit", utc_now(), shards=shards)
    return replace(record, **changes)


def shard(number: int, **counters: int) -> dict[str, Any]:
    return {**schema.shard_key("job-1", number), **schema.to_attributes(counters)}


def values(request: dict[str, Any]) -> dict[str, Any]:
    return schema.from_attributes(request.get("ExpressionAttributeValues", {}))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: 0)


# --- reading a job's counters -----------------------------------------------------------------
def test_progress_reads_the_job_then_its_shards_100_at_a_time() -> None:
    db = StubDynamoDB(
        schema.job_item(job(shards=250)),
        *(shard(n, variants_done=1, bytes_out=n) for n in (0, 99, 100, 249)),
    )
    progress = run(JobTable(db, TABLE).progress("job-1"))
    assert progress.counters == JobCounters(variants_done=4, bytes_out=448)
    assert [name for name, _ in db.calls] == ["get_item"] + ["batch_get_item"] * 3
    assert db.called("get_item")[0]["ConsistentRead"] is True
    asked = [len(call["RequestItems"][TABLE]["Keys"]) for call in db.called("batch_get_item")]
    assert sorted(asked) == [50, 100, 100]


def test_unprocessed_shards_are_asked_for_again() -> None:
    db = StubDynamoDB(
        schema.job_item(job()),
        *(shard(n, sources_finished=1) for n in range(16)),
        partial_answers=3,
    )
    progress = run(JobTable(db, TABLE).progress("job-1"))
    assert progress.counters.sources_finished == 16
    asked = [len(call["RequestItems"][TABLE]["Keys"]) for call in db.called("batch_get_item")]
    assert asked == [16, 8, 4, 2]


def test_shards_left_unprocessed_try_after_try_fail_the_read() -> None:
    db = StubDynamoDB(schema.job_item(job()), partial_answers=1000)
    with pytest.raises(UnprocessedKeys):
        run(JobTable(db, TABLE).progress("job-1"))
    assert len(db.called("batch_get_item")) == table_calls.BATCH_GET_ATTEMPTS


def test_a_job_that_is_not_sealed_is_neither_read_nor_finished() -> None:
    db = StubDynamoDB(schema.job_item(job()), shard(0, sources_finished=5))
    assert run(JobTable(db, TABLE, retention_days=90).finish_if_done("job-1")) is None
    assert [name for name, _ in db.calls] == ["get_item"]


def test_a_days_uploads_job_is_read_once_then_known_never_to_end() -> None:
    db = StubDynamoDB(schema.job_item(job(kind="uploads")), shard(0, sources_finished=5))
    jobs = JobTable(db, TABLE)
    assert run(jobs.get("job-1")) is not None  # the worker's read at the start of a batch
    assert run(jobs.finish_if_done("job-1")) is None
    assert run(jobs.finish_if_done("job-1")) is None
    assert [name for name, _ in db.calls] == ["get_item"]


# --- an ended job expires, with its shards ------------------------------------------------------
def finishing_job(*shards: dict[str, Any]) -> StubDynamoDB:
    sealed = job(sealed=True, expected_sources=2)
    return StubDynamoDB(schema.job_item(sealed), *shards)


def test_a_job_gets_expires_at_with_its_final_status_and_so_do_its_shards() -> None:
    db = finishing_job(shard(3, sources_finished=1), shard(11, sources_finished=1))
    run(JobTable(db, TABLE, retention_days=90).finish_if_done("job-1"))
    final, *stamps = db.called("update_item")
    assert final["Key"] == schema.job_key("job-1")
    assert "expires_at = :expires" in final["UpdateExpression"]
    finish = values(final)
    assert finish[":final"] == "complete"
    assert finish[":expires"] == epoch(finish[":now"]) + 90 * DAY
    # Every shard that exists (and only those), with the job's own value, never created.
    assert sorted(stamp["Key"]["pk"]["S"] for stamp in stamps) == [
        "JOB#job-1#SHARD#003",
        "JOB#job-1#SHARD#011",
    ]
    for stamp in stamps:
        assert stamp["UpdateExpression"] == "SET expires_at = :expires"
        assert stamp["ConditionExpression"] == "attribute_exists(pk)"
        assert values(stamp)[":expires"] == finish[":expires"]


def test_with_no_retention_an_ended_job_never_expires() -> None:
    db = finishing_job(shard(3, sources_finished=2))
    run(JobTable(db, TABLE, retention_days=0).finish_if_done("job-1"))
    (final,) = db.called("update_item")
    assert final["UpdateExpression"] == "SET #status = :final, finished_at = :now"
    assert ":expires" not in values(final)


def test_an_ended_jobs_shards_without_its_expiry_get_it_on_the_next_call() -> None:
    ended = job(status="complete", sealed=True, expected_sources=2)
    job_item = {**schema.job_item(ended), **schema.to_attributes({"expires_at": 1_900_000_000})}
    stamped = {
        **shard(3, sources_finished=1),
        **schema.to_attributes({"expires_at": 1_900_000_000}),
    }
    late = shard(9, sources_finished=1)  # created by a late outcome, or its stamp was lost
    db = StubDynamoDB(job_item, stamped, late)
    run(JobTable(db, TABLE, retention_days=30).finish_if_done("job-1"))
    (stamp,) = db.called("update_item")
    assert stamp["Key"] == schema.shard_key("job-1", 9)
    assert values(stamp)[":expires"] == 1_900_000_000  # the job's, not this reader's retention

    db = StubDynamoDB(job_item, stamped)
    run(JobTable(db, TABLE, retention_days=30).finish_if_done("job-1"))
    assert db.called("update_item") == []


# --- records expire once finished ----------------------------------------------------------------
def source(**changes: Any) -> SourceRecord:
    record = SourceRecord(
        bucket="in",
        key="uploads/cat.jpg",
        job_id="job-1",
        run_id="run-1",
        status="processing",
        expected=2,
        shard=3,
        registered_at=utc_now(),
    )
    return replace(record, **changes)


def variant(name: str, status: str = "done") -> VariantRecord:
    return VariantRecord(
        bucket="in",
        key="uploads/cat.jpg",
        variant=name,
        run_id="run-1",
        status=status,
        finished_at=utc_now(),
        job_id="job-1",
        shard=3,
    )


def transaction(db: StubDynamoDB) -> list[tuple[str, dict[str, Any]]]:
    (call,) = db.called("transact_write_items")
    return [next(iter(item.items())) for item in call["TransactItems"]]


def test_variant_outcomes_expire_from_their_finish() -> None:
    db = StubDynamoDB()
    outcomes = [variant("small"), variant("large", "failed")]
    now = run(ProcessingTable(db, TABLE, retention_days=90).record_variants(outcomes, source()))
    assert now is not None and now.status == "complete_with_failures"
    *puts, (_, source_update), (_, shard_update) = transaction(db)
    for (_, put), record in zip(puts, outcomes, strict=True):
        assert put["Item"]["expires_at"] == {"N": str(epoch(record.finished_at or "") + 90 * DAY)}
    # The source item keeps the key's generation (the run order of its outputs): never.
    assert "expires_at" not in source_update["UpdateExpression"]
    assert "expires_at" not in shard_update["UpdateExpression"]  # the job has not ended


def test_a_source_item_never_expires() -> None:
    db = StubDynamoDB(schema.source_item(source(done=2)))
    table = ProcessingTable(db, TABLE, retention_days=7)
    assert run(table.settle_source("in", "uploads/cat.jpg", "run-1")).finished
    run(table.record_variants([variant("small")], source(expected=3)))
    run(table.register_source(source(run_id="run-2"), JobCounters(sources_registered=1)))
    for call in db.called("transact_write_items"):
        for item in call["TransactItems"]:
            ((_, body),) = item.items()
            key = body.get("Item") or body["Key"]
            if key["sk"] == {"S": "SOURCE"}:
                assert "expires_at" not in body.get("Item", {})
                assert "expires_at" not in body.get("UpdateExpression", "")


def test_with_no_retention_nothing_gets_expires_at() -> None:
    db = StubDynamoDB(schema.source_item(source(done=2)))
    table = ProcessingTable(db, TABLE, retention_days=0)
    assert run(table.settle_source("in", "uploads/cat.jpg", "run-1")).finished
    run(table.record_variants([variant("small"), variant("large")], source()))
    run(table.record_past_run(source(run_id="run-0", status="skipped", finished_at=utc_now())))
    for call in db.called("transact_write_items"):
        for item in call["TransactItems"]:
            ((_, body),) = item.items()
            assert "expires_at" not in body.get("Item", {})
            assert "expires_at" not in body.get("UpdateExpression", "")


def test_a_superseded_run_expires_and_the_new_run_does_not() -> None:
    current = source(run_id="run-0", done=1, registered_at="2025-03-01T12:00:00.000+00:00")
    db = StubDynamoDB(schema.source_item(current))
    table = ProcessingTable(db, TABLE, retention_days=90)
    registration, _ = run(table.register_source(source(), JobCounters(sources_registered=1)))
    assert registration is Registration.REGISTERED
    (_, new), (_, archive), *_ = transaction(db)
    assert new["Item"]["sk"] == {"S": "SOURCE"} and "expires_at" not in new["Item"]
    assert archive["Item"]["sk"] == {"S": "RUN#run-0"}
    finished_at = schema.from_attributes(archive["Item"])["finished_at"]
    assert archive["Item"]["expires_at"] == {"N": str(epoch(finished_at) + 90 * DAY)}


def test_a_past_run_expires_from_its_finish() -> None:
    db = StubDynamoDB()
    past = source(run_id="run-0", status="skipped", finished_at="2025-03-01T12:00:00.000+00:00")
    assert run(ProcessingTable(db, TABLE, retention_days=90).record_past_run(past))
    (_, put), _ = transaction(db)
    assert put["Item"]["expires_at"] == {"N": str(epoch(past.finished_at or "") + 90 * DAY)}


def test_an_output_claim_never_expires() -> None:
    db = StubDynamoDB()
    table = ProcessingTable(db, TABLE, retention_days=90)
    assert run(table.claim_output("out", "cat_small.jpg", "in/uploads/cat.jpg")) == (
        "in/uploads/cat.jpg"
    )
    (put,) = db.called("put_item")
    assert put["Item"]["sk"] == {"S": "CLAIM"} and "expires_at" not in put["Item"]

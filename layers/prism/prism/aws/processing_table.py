"""The processing-log table: registering sources and recording outcomes exactly once.

Exactness under duplicate deliveries comes from one transaction per event: the variant
item is written only if this run has not written it yet, the source's counter is
incremented only if the source still belongs to this run, and the job's counter shard is
incremented in the same transaction. A redelivered message therefore finds its variant
item already there and counts nothing; a message from a superseded run (the object was
uploaded again) finds a different run on the source and counts nothing.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from prism.jobs import JobCounters, job_pk, shard_sk
from prism.records import (
    SOURCE_SK,
    SourceRecord,
    SourceStatus,
    VariantRecord,
    final_source_status,
    source_pk,
    to_attributes,
)

TRANSACTION_ATTEMPTS = 6
CONDITION_FAILED = "ConditionalCheckFailed"


class TransactionConflict(Exception):
    """Another transaction was writing the same item at the same moment."""


class RecordResult(Enum):
    COUNTED = "counted"
    DUPLICATE = "duplicate"  # this run already recorded this variant
    STALE = "stale"  # the source has been registered again by a newer run


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ProcessingTable:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

    async def register_source(self, record: SourceRecord, counters: JobCounters) -> bool:
        """Start a run for a source and add it to its job; False if this run exists already.

        A run still in progress for an earlier upload of the same key is superseded: what
        it has not finished is counted as skipped in its job, in the same transaction, so
        that job's counts still add up (its late outcomes are then stale and count nothing).
        """
        for _ in range(TRANSACTION_ATTEMPTS):
            current = await self.get_source(record.bucket, record.key)
            if current is not None and current.run_id == record.run_id:
                return False
            # One update per shard item: a transaction may touch an item only once.
            shard_counters = {(record.job_id, record.shard): counters}
            if current is not None and current.status == SourceStatus.PROCESSING:
                unfinished = current.expected - current.done - current.failed - current.skipped
                superseded = JobCounters(
                    sources_finished=1, sources_skipped=1, variants_skipped=max(unfinished, 0)
                )
                shard = (current.job_id, current.shard)
                shard_counters[shard] = shard_counters.get(shard, JobCounters()) + superseded
            items = [self._put_replacing(record, current)] + [
                self._shard_update(job_id, shard_number, shard_delta)
                for (job_id, shard_number), shard_delta in shard_counters.items()
            ]
            if not await self._transact(*items):
                return True
            # The source changed between reading and writing it: look again.
        raise TransactionConflict(f"could not register {record.bucket}/{record.key}")

    def _put_replacing(self, record: SourceRecord, current: SourceRecord | None) -> dict[str, Any]:
        """A put that succeeds only if the source item is still as ``current`` says."""
        if current is None:
            condition, values = "attribute_not_exists(pk)", {}
        else:
            condition = "run_id = :run AND done = :done AND failed = :failed AND skipped = :skipped"
            values = {
                ":run": current.run_id,
                ":done": current.done,
                ":failed": current.failed,
                ":skipped": current.skipped,
            }
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": record.to_item(),
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = to_attributes(values)
        return {"Put": put}

    async def record_variant(self, record: VariantRecord) -> RecordResult:
        counter = record.status  # "done" | "failed" | "skipped" are also the counter names
        run = to_attributes({":run": record.run_id})
        job_counters = JobCounters(
            variants_done=int(record.status == "done"),
            variants_failed=int(record.status == "failed"),
            variants_skipped=int(record.status == "skipped"),
            bytes_out=record.bytes or 0,
        )
        reasons = await self._transact(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": record.to_item(),
                    "ConditionExpression": "attribute_not_exists(pk) OR run_id <> :run",
                    "ExpressionAttributeValues": run,
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _source_key(record.bucket, record.key),
                    "UpdateExpression": "ADD #counter :one",
                    "ConditionExpression": "run_id = :run",
                    "ExpressionAttributeNames": {"#counter": counter},
                    "ExpressionAttributeValues": {**run, **to_attributes({":one": 1})},
                }
            },
            self._shard_update(record.job_id, record.shard, job_counters),
        )
        if not reasons:
            return RecordResult.COUNTED
        if reasons[0] == CONDITION_FAILED:
            return RecordResult.DUPLICATE
        return RecordResult.STALE

    async def mark_loaded(
        self, bucket: str, key: str, run_id: str, job_id: str, shard: int
    ) -> None:
        """Count the source as loaded (fetched and decoded) in its job, once per run."""
        await self._transact(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _source_key(bucket, key),
                    "UpdateExpression": "SET loaded_at = :now",
                    "ConditionExpression": "run_id = :run AND attribute_not_exists(loaded_at)",
                    "ExpressionAttributeValues": to_attributes({":now": utc_now(), ":run": run_id}),
                }
            },
            self._shard_update(job_id, shard, JobCounters(sources_loaded=1)),
        )

    async def complete_source_if_finished(
        self, bucket: str, key: str, run_id: str
    ) -> tuple[SourceRecord | None, bool]:
        """Set the final status once every variant is accounted for.

        Returns the source and whether this call finished it (then the job counted it too).
        Called after every outcome, duplicates included, so a worker that died between
        counting and completing is made good by the redelivery."""
        source = await self.get_source(bucket, key)
        if source is None or source.run_id != run_id or not source.finished:
            return source, False
        if source.status != SourceStatus.PROCESSING:
            return source, False
        status = final_source_status(source.done, source.failed, source.skipped)
        reasons = await self._transact(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _source_key(bucket, key),
                    "UpdateExpression": "SET #status = :final, finished_at = :now",
                    "ConditionExpression": "#status = :processing AND run_id = :run",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": to_attributes(
                        {
                            ":final": status.value,
                            ":now": utc_now(),
                            ":processing": SourceStatus.PROCESSING.value,
                            ":run": run_id,
                        }
                    ),
                }
            },
            self._shard_update(source.job_id, source.shard, finished_source_counters(status)),
        )
        return await self.get_source(bucket, key), not reasons

    async def get_source(self, bucket: str, key: str) -> SourceRecord | None:
        response = await self._db.get_item(
            TableName=self._table, Key=_source_key(bucket, key), ConsistentRead=True
        )
        item = response.get("Item")
        return SourceRecord.from_item(item) if item else None

    def _shard_update(self, job_id: str, shard: int, counters: JobCounters) -> dict[str, Any]:
        expression, names, values = counters.update_expression()
        return {
            "Update": {
                "TableName": self._table,
                "Key": to_attributes({"pk": job_pk(job_id), "sk": shard_sk(shard)}),
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    async def _transact(self, *items: dict[str, Any]) -> list[str]:
        """Run a transaction; [] when it committed, else each item's cancellation code.

        Items of one source finish together and update the same source and shard items,
        so their transactions conflict now and then; DynamoDB's advice is to retry them."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                await self._db.transact_write_items(TransactItems=list(items))
                return []
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                if CONDITION_FAILED in reasons:
                    return reasons
                if attempt == TRANSACTION_ATTEMPTS - 1 or not _is_conflict(exc, reasons):
                    raise
            await asyncio.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")


def finished_source_counters(status: SourceStatus) -> JobCounters:
    return JobCounters(
        sources_finished=1,
        sources_failed=int(status == SourceStatus.COMPLETE_WITH_FAILURES),
        sources_skipped=int(status == SourceStatus.SKIPPED),
    )


def _source_key(bucket: str, key: str) -> dict[str, Any]:
    return to_attributes({"pk": source_pk(bucket, key), "sk": SOURCE_SK})


def _cancellation_reasons(exc: ClientError) -> list[str]:
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    return [
        str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])
    ]


def _is_conflict(exc: ClientError, reasons: list[str]) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    return code == "TransactionConflictException" or "TransactionConflict" in reasons

"""Job items in the processing table (the ``Jobs`` port): create, seal, cancel, read
progress (the job item and its counter shards, each a partition of its own), finish, and
read a job's log through the ``by-job`` index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from botocore.exceptions import ClientError

from prism.aws import schema
from prism.aws.errors import CONDITION_FAILED, error_code
from prism.aws.schema import to_attributes
from prism.aws.table_calls import batch_get, update_if
from prism.jobs import (
    ACTIVE_STATUSES,
    JobCounters,
    JobKind,
    JobNotFound,
    JobProgress,
    JobRecord,
    JobStatus,
)
from prism.records import SourceRecord, VariantRecord, expiry, utc_now


class JobTable:
    """``retention_days``: how long an ended job (its item and shards) is kept before
    DynamoDB's TTL removes it; 0 keeps it."""

    def __init__(self, dynamodb: Any, table_name: str, *, retention_days: int = 0) -> None:
        self._db = dynamodb
        self._table = table_name
        self._retention_days = retention_days
        # Jobs read here whose kind is "uploads": ``seal`` refuses them, so they never end,
        # and a job's kind never changes. ``finish_if_done`` need not read them again.
        self._never_sealed: set[str] = set()
        # What every read of a job here has learnt that never changes: its shard count (set
        # when it is created), and that it is sealed (nothing unseals a job). With them, the
        # job item and its shards are read in one BatchGetItem instead of a GetItem first.
        self._shard_counts: dict[str, int] = {}
        self._sealed: set[str] = set()

    async def create(self, job: JobRecord) -> bool:
        """Create a job; False if a job with that id exists already."""
        try:
            await self._db.put_item(
                TableName=self._table,
                Item=schema.job_item(job),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise
        return True

    async def ensure_default(self, job_id: str, shards: int) -> None:
        """The day's uploads job, created by whichever fan-out needs it first."""
        await self.create(
            JobRecord(
                job_id=job_id,
                status=JobStatus.RUNNING.value,
                kind=JobKind.UPLOADS.value,
                created_at=utc_now(),
                shards=shards,
                description="uploads without a job, grouped by day",
            )
        )

    async def get(self, job_id: str) -> JobRecord | None:
        found = await self._job_item(job_id)
        return found[0] if found else None

    async def _job_item(self, job_id: str) -> tuple[JobRecord, dict[str, Any]] | None:
        """The job and its item, read alone (consistent GetItem)."""
        response = await self._db.get_item(
            TableName=self._table,
            Key=schema.job_key(job_id),
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = response.get("Item")
        if item is None:
            return None
        job = schema.from_item(JobRecord, item)
        self._learn(job_id, job)
        return job, item

    def _learn(self, job_id: str, job: JobRecord) -> None:
        if job.kind == JobKind.UPLOADS.value:
            self._never_sealed.add(job_id)
        self._shard_counts[job_id] = job.shards
        if job.sealed:
            self._sealed.add(job_id)

    async def _job_and_shards(
        self, job_id: str
    ) -> tuple[JobRecord, dict[str, Any], list[dict[str, Any]]] | None:
        """The job, its item and its shard items (None: no such job): one consistent
        BatchGetItem per 100 items once the job's shard count is known here, else a
        consistent GetItem of the job first."""
        count = self._shard_counts.get(job_id)
        if count is None:
            alone = await self._job_item(job_id)
            if alone is None:
                return None
            job, item = alone
            return job, item, await self._shard_items(job)
        job_key = schema.job_key(job_id)
        keys = [job_key, *(schema.shard_key(job_id, shard) for shard in range(count))]
        shard_items, found = [], None
        for item in await batch_get(self._db, self._table, keys):
            if item["pk"] == job_key["pk"] and item["sk"] == job_key["sk"]:
                found = item
            else:
                shard_items.append(item)
        if found is None:
            return None
        job = schema.from_item(JobRecord, found)
        self._learn(job_id, job)
        if job.shards != count:  # a job made again under the same id, with other shards
            shard_items = await self._shard_items(job)
        return job, found, shard_items

    async def require(self, job_id: str) -> JobRecord:
        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def progress(self, job_id: str) -> JobProgress:
        """The job with its counters summed over all shards (``_job_and_shards``)."""
        found = await self._job_and_shards(job_id)
        if found is None:
            raise JobNotFound(job_id)
        job, _, shard_items = found
        return JobProgress(job=job, counters=_summed(shard_items))

    async def _shard_items(self, job: JobRecord) -> list[dict[str, Any]]:
        """The job's shard items that exist (a shard no source hashed to has none)."""
        keys = [schema.shard_key(job.job_id, shard) for shard in range(job.shards)]
        return await batch_get(self._db, self._table, keys)

    async def seal(self, job_id: str, expected_sources: int) -> None:
        """Record how many sources the job has; from then on it can finish. A day's
        uploads job is never sealed (``ValueError``): it takes uploads until it expires."""
        try:
            await self._db.update_item(
                TableName=self._table,
                Key=schema.job_key(job_id),
                UpdateExpression="SET sealed = :true, expected_sources = :expected",
                ConditionExpression="attribute_exists(pk) AND kind <> :uploads",
                ExpressionAttributeValues=to_attributes(
                    {
                        ":true": True,
                        ":expected": expected_sources,
                        ":uploads": JobKind.UPLOADS.value,
                    }
                ),
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            await self.require(job_id)  # JobNotFound if that is why
            raise ValueError(f"job {job_id} takes uploads for a day; it is never sealed") from exc

    async def request_cancel(self, job_id: str) -> JobRecord:
        """Mark a running job ``cancelling``; fan-out and workers skip its remaining work."""
        try:
            await self._db.update_item(
                TableName=self._table,
                Key=schema.job_key(job_id),
                UpdateExpression="SET #status = :cancelling, cancel_requested_at = :now",
                ConditionExpression="#status = :running",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_attributes(
                    {
                        ":cancelling": JobStatus.CANCELLING.value,
                        ":running": JobStatus.RUNNING.value,
                        ":now": utc_now(),
                    }
                ),
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
        return await self.require(job_id)

    async def finish_if_done(self, job_id: str) -> JobProgress | None:
        """Set the job's final status once every expected source is accounted for (or
        correct it, when counts changed after it finished); the progress read.

        None when there is no such job (outcomes still count in the shards) or it is not
        sealed: it cannot end yet, and its shards are not read (the day's uploads job is
        never sealed, and every source it settles asks).

        An ended job's ``expires_at`` is set with its final status, and then on each of its
        shard items that lacks that value (so a shard a late outcome created, or one the
        writer of the final status died before reaching, gets it on the next call)."""
        if job_id in self._never_sealed:
            return None
        if job_id in self._sealed:
            found = await self._job_and_shards(job_id)
            if found is None:
                return None
            job, item, shard_items = found
        else:
            alone = await self._job_item(job_id)
            if alone is None:
                return None
            job, item = alone
            if not job.sealed:
                return None
            shard_items = await self._shard_items(job)
        progress = JobProgress(job=job, counters=_summed(shard_items))
        # A finished job is settled again when a redriven variant changed its outcome.
        if not progress.finished or job.status == progress.final_status():
            if job.status not in ACTIVE_STATUSES:
                ended = schema.from_attributes(item).get(schema.EXPIRES_AT)
                await self._expire_shards(shard_items, int(ended) if ended else None)
            return progress
        now = utc_now()
        expires_at = expiry(now, self._retention_days)
        values: dict[str, Any] = {
            ":final": progress.final_status().value,
            ":now": now,
            ":seen": job.status,
        }
        if expires_at is not None:
            values[":expires"] = expires_at
        try:
            await self._db.update_item(
                TableName=self._table,
                Key=schema.job_key(job_id),
                UpdateExpression="SET #status = :final, finished_at = :now"
                + (f", {schema.EXPIRES_AT} = :expires" if expires_at is not None else ""),
                ConditionExpression="#status = :seen",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_attributes(values),
            )
        except ClientError as exc:
            # Someone else finished it, or it was cancelled meanwhile: read again.
            if error_code(exc) != CONDITION_FAILED:
                raise
            return await self.finish_if_done(job_id)
        await self._expire_shards(shard_items, expires_at)
        return await self.progress(job_id)

    async def claim_job_announcement(self, job_id: str, at: str, stale_before: str) -> bool:
        """Claim the publishing of the job's "Job Completed" event: True for one caller,
        unless announced already; a claim older than ``stale_before`` is taken over."""
        return await update_if(
            self._db,
            self._table,
            schema.job_key(job_id),
            "SET announcing_at = :at",
            "attribute_exists(pk) AND attribute_not_exists(announced_at)"
            " AND (attribute_not_exists(announcing_at) OR announcing_at < :stale)",
            {":at": at, ":stale": stale_before},
        )

    async def mark_job_announced(self, job_id: str, at: str) -> bool:
        """Mark the job's "Job Completed" event published; False if it was already."""
        return await update_if(
            self._db,
            self._table,
            schema.job_key(job_id),
            "SET announced_at = :at",
            "attribute_exists(pk) AND attribute_not_exists(announced_at)",
            {":at": at},
        )

    async def _expire_shards(
        self, shard_items: list[dict[str, Any]], expires_at: int | None
    ) -> None:
        """Give the shard items the job's ``expires_at``, where they have another (or none)."""
        if expires_at is None:
            return
        stale = [
            item
            for item in shard_items
            if schema.from_attributes(item).get(schema.EXPIRES_AT) != expires_at
        ]
        await asyncio.gather(*(self._expire_shard(item, expires_at) for item in stale))

    async def _expire_shard(self, item: dict[str, Any], expires_at: int) -> None:
        try:
            await self._db.update_item(
                TableName=self._table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression=f"SET {schema.EXPIRES_AT} = :expires",
                # Never create a shard: one TTL deleted meanwhile stays deleted.
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_attributes({":expires": expires_at}),
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise

    async def records(self, job: JobRecord) -> AsyncIterator[SourceRecord | VariantRecord]:
        """Every source and variant item of the job, through the by-job index."""
        for shard in range(job.shards):
            async for record in self._shard_records(job.job_id, shard):
                yield record

    async def _shard_records(
        self, job_id: str, shard: int
    ) -> AsyncIterator[SourceRecord | VariantRecord]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": schema.JOB_INDEX,
            "KeyConditionExpression": "job_shard = :shard",
            "ExpressionAttributeValues": to_attributes(
                {":shard": schema.job_shard_key(job_id, shard)}
            ),
        }
        while True:
            response = await self._db.query(**kwargs)
            for item in response.get("Items", []):
                yield schema.record_from_item(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _summed(shard_items: Iterable[dict[str, Any]]) -> JobCounters:
    counters = JobCounters()
    for item in shard_items:
        counters = counters + schema.counters_from_item(item)
    return counters

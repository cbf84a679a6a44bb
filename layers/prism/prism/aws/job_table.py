"""Job items in the processing table (the ``Jobs`` port): create, seal, cancel, read
progress, finish, and read a job's log through the ``by-job`` index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from botocore.exceptions import ClientError

from prism.aws import schema
from prism.aws.errors import CONDITION_FAILED, error_code
from prism.aws.schema import to_attributes
from prism.jobs import JobCounters, JobKind, JobNotFound, JobProgress, JobRecord, JobStatus
from prism.records import SourceRecord, VariantRecord, utc_now


class JobTable:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

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
        response = await self._db.get_item(
            TableName=self._table,
            Key=schema.job_key(job_id),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return schema.from_item(JobRecord, item) if item else None

    async def require(self, job_id: str) -> JobRecord:
        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def progress(self, job_id: str) -> JobProgress:
        """The job with its counters summed over all shards (one query)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": to_attributes({":pk": schema.job_pk(job_id)}),
            "ConsistentRead": True,
        }
        while True:
            response = await self._db.query(**kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        job: JobRecord | None = None
        counters = JobCounters()
        for item in items:
            sort_key = item["sk"]["S"]
            if sort_key == schema.JOB_SK:
                job = schema.from_item(JobRecord, item)
            elif sort_key.startswith(schema.SHARD_SK_PREFIX):
                counters = counters + schema.counters_from_item(item)
        if job is None:
            raise JobNotFound(job_id)
        return JobProgress(job=job, counters=counters)

    async def seal(self, job_id: str, expected_sources: int) -> None:
        """Record how many sources the job has; from then on it can finish."""
        await self._db.update_item(
            TableName=self._table,
            Key=schema.job_key(job_id),
            UpdateExpression="SET sealed = :true, expected_sources = :expected",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_attributes({":true": True, ":expected": expected_sources}),
        )

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
        correct it, when counts changed after it finished).

        None when there is no such job (outcomes still count in the shards)."""
        try:
            progress = await self.progress(job_id)
        except JobNotFound:
            return None
        # A finished job is settled again when a redriven variant changed its outcome.
        if not progress.finished or progress.job.status == progress.final_status():
            return progress
        try:
            await self._db.update_item(
                TableName=self._table,
                Key=schema.job_key(job_id),
                UpdateExpression="SET #status = :final, finished_at = :now",
                ConditionExpression="#status = :seen",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_attributes(
                    {
                        ":final": progress.final_status().value,
                        ":now": utc_now(),
                        ":seen": progress.job.status,
                    }
                ),
            )
        except ClientError as exc:
            # Someone else finished it, or it was cancelled meanwhile: read again.
            if error_code(exc) != CONDITION_FAILED:
                raise
            return await self.finish_if_done(job_id)
        return await self.progress(job_id)

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

"""The processing-log table: registering sources and recording variant outcomes exactly once.

Exactness under duplicate deliveries comes from one transaction per outcome: the variant
item is written only if this run has not written it yet, and the source's counter is
incremented only if the source still belongs to this run. A redelivered message therefore
finds its variant item already there and counts nothing; a message from a superseded run
(the object was uploaded again) finds a different run on the source and counts nothing.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from prism.records import (
    SOURCE_SK,
    VARIANT_SK_PREFIX,
    SourceRecord,
    SourceStatus,
    VariantRecord,
    final_source_status,
    source_pk,
    to_attributes,
)

TRANSACTION_ATTEMPTS = 6


class TransactionConflict(Exception):
    """Another transaction was writing the same source item at the same moment."""


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

    async def register_source(self, record: SourceRecord) -> bool:
        """Start a run for a source; False when this run was registered already."""
        try:
            await self._db.put_item(
                TableName=self._table,
                Item=record.to_item(),
                ConditionExpression="attribute_not_exists(pk) OR run_id <> :run",
                ExpressionAttributeValues=to_attributes({":run": record.run_id}),
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def record_variant(self, record: VariantRecord) -> RecordResult:
        # Variants of one source finish together and all update the source's counters, so
        # their transactions conflict now and then; DynamoDB's advice is to retry them.
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                return await self._record_variant_once(record)
            except TransactionConflict:
                if attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    async def _record_variant_once(self, record: VariantRecord) -> RecordResult:
        counter = record.status  # "done" | "failed" | "skipped" are also the counter names
        run = to_attributes({":run": record.run_id})
        try:
            await self._db.transact_write_items(
                TransactItems=[
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
                ]
            )
        except ClientError as exc:
            code = _error_code(exc)
            if code == "TransactionConflictException":
                raise TransactionConflict(str(exc)) from exc
            if code != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if "TransactionConflict" in reasons:
                raise TransactionConflict(str(exc)) from exc
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return RecordResult.DUPLICATE
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                return RecordResult.STALE
            raise
        return RecordResult.COUNTED

    async def complete_source_if_finished(
        self, bucket: str, key: str, run_id: str
    ) -> SourceRecord | None:
        """Set the final status once every variant is accounted for; idempotent.

        Called after every recorded outcome (duplicates too, so a worker that died between
        counting and completing is made good by the redelivery)."""
        source = await self.get_source(bucket, key)
        if source is None or source.run_id != run_id or not source.finished:
            return source
        if source.status != SourceStatus.PROCESSING:
            return source
        status = final_source_status(source.done, source.failed, source.skipped)
        try:
            await self._db.update_item(
                TableName=self._table,
                Key=_source_key(bucket, key),
                UpdateExpression="SET #status = :final, finished_at = :now",
                ConditionExpression="#status = :processing AND run_id = :run",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_attributes(
                    {
                        ":final": status.value,
                        ":now": utc_now(),
                        ":processing": SourceStatus.PROCESSING.value,
                        ":run": run_id,
                    }
                ),
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
        return await self.get_source(bucket, key)

    async def get_source(self, bucket: str, key: str) -> SourceRecord | None:
        response = await self._db.get_item(
            TableName=self._table, Key=_source_key(bucket, key), ConsistentRead=True
        )
        item = response.get("Item")
        return SourceRecord.from_item(item) if item else None

    async def get_variants(self, bucket: str, key: str) -> list[VariantRecord]:
        variants: list[VariantRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": to_attributes(
                {":pk": source_pk(bucket, key), ":prefix": VARIANT_SK_PREFIX}
            ),
            "ConsistentRead": True,
        }
        while True:
            response = await self._db.query(**kwargs)
            variants.extend(VariantRecord.from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return variants
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _source_key(bucket: str, key: str) -> dict[str, Any]:
    return to_attributes({"pk": source_pk(bucket, key), "sk": SOURCE_SK})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

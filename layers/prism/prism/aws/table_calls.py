"""DynamoDB calls both table adapters make: reading items by key, reading one partition,
and a conditional update that says whether it applied."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from prism.aws import schema
from prism.aws.errors import CONDITION_FAILED, error_code
from prism.aws.schema import to_attributes

# Tries of one BatchGetItem while DynamoDB leaves keys unprocessed.
BATCH_GET_ATTEMPTS = 6


class UnprocessedKeys(Exception):
    """DynamoDB left some keys unread, try after try (sustained throttling)."""


async def batch_get(db: Any, table: str, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of ``keys`` that exist, strongly consistent: one BatchGetItem per 100 keys,
    at once; the keys DynamoDB leaves unprocessed (throttling, or 16 MB in one response)
    are asked for again, with backoff."""
    chunks = [
        list(keys[start : start + schema.BATCH_GET_KEYS])
        for start in range(0, len(keys), schema.BATCH_GET_KEYS)
    ]
    found = await asyncio.gather(*(_batch_get_chunk(db, table, chunk) for chunk in chunks))
    return [item for items in found for item in items]


async def _batch_get_chunk(db: Any, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for attempt in range(BATCH_GET_ATTEMPTS):
        if attempt:
            await asyncio.sleep(random.uniform(0, 0.05 * 2**attempt))
        response = await db.batch_get_item(
            RequestItems={table: {"Keys": keys, "ConsistentRead": True}}
        )
        items.extend(response.get("Responses", {}).get(table, []))
        keys = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if not keys:
            return items
    raise UnprocessedKeys(f"{len(keys)} keys of {table} unread after {BATCH_GET_ATTEMPTS} tries")


async def partition_items(db: Any, table: str, pk: str) -> list[dict[str, Any]]:
    """Every item of the partition ``pk``, strongly consistent, page after page."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": to_attributes({":pk": pk}),
        "ConsistentRead": True,
    }
    while True:
        response = await db.query(**request)
        items += response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def update_if(
    db: Any,
    table: str,
    key: dict[str, Any],
    update: str,
    condition: str,
    values: dict[str, Any],
) -> bool:
    """Apply ``update`` to the item at ``key`` if ``condition`` holds; whether it did."""
    try:
        await db.update_item(
            TableName=table,
            Key=key,
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=to_attributes(values),
        )
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        return False
    return True

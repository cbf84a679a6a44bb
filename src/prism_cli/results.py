"""Read a run's outcome back from the stack: processing records and dead-letter queues.

The item layout is :mod:`prism.records`' (a source item and one item per variant in the
source's partition); the table's key attribute names come from the template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import SQSRecord
from pydantic import ValidationError

from prism.messages import VariantTask
from prism.records import SOURCE_SK, VARIANT_SK_PREFIX, SourceRecord, VariantRecord, source_pk
from prism_cli.template import TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

_BATCH_GET_LIMIT = 100  # keys per BatchGetItem call


class RecordReader:
    """Source and variant records of objects in ``bucket``."""

    def __init__(self, dynamodb: DynamoDBClient, table: TableSpec, bucket: str) -> None:
        self._dynamodb = dynamodb
        self._table = table.name
        keys = table.key_names()
        self._hash, self._range = keys["HASH"], keys["RANGE"]
        self._bucket = bucket

    def sources(self, keys: Sequence[str]) -> dict[str, SourceRecord]:
        """The registered sources among object ``keys``, by key."""
        found: dict[str, SourceRecord] = {}
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [
                        {
                            self._hash: {"S": source_pk(self._bucket, key)},
                            self._range: {"S": SOURCE_SK},
                        }
                        for key in keys[start : start + _BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self._dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    record = SourceRecord.from_item(dict(item))
                    found[record.key] = record
                request = dict(response.get("UnprocessedKeys") or {})
        return found

    def variants(self, key: str) -> list[VariantRecord]:
        records: list[VariantRecord] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": self._hash, "#sk": self._range},
            "ExpressionAttributeValues": {
                ":pk": {"S": source_pk(self._bucket, key)},
                ":prefix": {"S": VARIANT_SK_PREFIX},
            },
            "ConsistentRead": True,
        }
        while True:
            response = self._dynamodb.query(**query)
            records.extend(VariantRecord.from_item(dict(item)) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return records
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


@dataclass
class DeadLetters:
    """What ended in dead-letter queues: uploads never fanned out, variants never rendered."""

    uploads: set[str] = field(default_factory=set)  # object keys
    variants: dict[str, set[str]] = field(default_factory=dict)  # object key -> variant names
    unrecognised: int = 0

    def add_body(self, body: str) -> None:
        try:
            task = VariantTask.model_validate_json(body)
        except ValidationError:
            pass
        else:
            self.variants.setdefault(task.source.key, set()).add(task.variant.name)
            return
        try:
            event = SQSRecord({"body": body}).decoded_nested_s3_event
            # S3 events carry keys URL-encoded ("a+b.jpg" for "a b.jpg"). Powertools'
            # ``object_key`` decodes only the first record's, so each is decoded here,
            # once, as the fan-out does.
            keys = [unquote_plus(record.s3.get_object.key) for record in event.records]
        except (ValueError, KeyError, TypeError):
            keys = []
        if keys:
            self.uploads.update(keys)
        else:
            self.unrecognised += 1


def read_dead_letters(sqs: SQSClient, queue_urls: Iterable[str]) -> DeadLetters:
    """Every message now in ``queue_urls`` (left in place, hidden for a minute)."""
    letters = DeadLetters()
    for url in queue_urls:
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                letters.add_body(message["Body"])
    return letters

"""Claims on output keys: each output key belongs to the one source that first claimed it.

Item ``pk = OUTPUT#<bucket>/<key>``, ``sk = CLAIM`` in the processing table, with the
owning source (``<bucket>/<key>``). A claim is a conditional put, so of two sources that
map to one output key (``cat.jpg`` and ``cat.png`` under ``{stem}``) exactly one wins, and
the other's variant is refused instead of silently overwriting. Re-uploads of the same
source keep their claim.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from prism.aws.errors import CONDITION_FAILED, error_code
from prism.records import from_attributes, to_attributes

CLAIM_SK = "CLAIM"


def claim_pk(bucket: str, key: str) -> str:
    return f"OUTPUT#{bucket}/{key}"


class OutputClaims:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

    async def claim(self, bucket: str, key: str, source_id: str) -> str:
        """Claim ``bucket/key`` for ``source_id``; the owner afterwards (``source_id`` when
        the claim is, or already was, this source's)."""
        item_key = {"pk": claim_pk(bucket, key), "sk": CLAIM_SK}
        try:
            await self._db.put_item(
                TableName=self._table,
                Item=to_attributes({**item_key, "source": source_id}),
                ConditionExpression="attribute_not_exists(pk) OR #source = :source",
                ExpressionAttributeNames={"#source": "source"},
                ExpressionAttributeValues=to_attributes({":source": source_id}),
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            response = await self._db.get_item(
                TableName=self._table, Key=to_attributes(item_key), ConsistentRead=True
            )
            return str(from_attributes(response["Item"])["source"])
        return source_id

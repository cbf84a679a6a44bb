"""The processing table's layout: every key, index and item shape, in one place.

One table holds six kinds of item:
- ``pk = SOURCE#<bucket>/<key>``, ``sk = SOURCE``: the source's current run, with its status
  and expected/done/failed/skipped counts;
- ``pk = SOURCE#<bucket>/<key>``, ``sk = VARIANT#<name>``: one per variant with its outcome;
- ``pk = SOURCE#<bucket>/<key>``, ``sk = RUN#<run id>``: a run that is no longer the
  source's current one, kept for its job's log;
- ``pk = JOB#<id>``, ``sk = JOB``: a job's status and kind;
- ``pk = JOB#<id>#SHARD#<nnn>``, ``sk = SHARD``: one of a job's counter shards. Each shard
  is a partition of its own, so concurrent workers neither write one item nor one
  partition (DynamoDB serves about 1,000 WCU a second per partition, and an outcome's
  transaction writes 2 WCU per item); a job's counters are read with one BatchGetItem
  per 100 shards. (Shards were once ``SHARD#<nnn>`` items of the job's partition; those
  are not read.)
- ``pk = OUTPUT#<bucket>/<key>``, ``sk = CLAIM``: the source that owns an output key;
- ``pk = CONTENT#<sha256>``, ``sk = SPEC#<sha256>``: a render that identical source bytes
  with the same variant spec may copy (``dedupe: true``), with the record's retention.

A query on one source partition returns a source with its variants. Source, variant and
run items carry ``job_shard = <job id>#<nnn>``, the partition key of the ``by-job`` index,
so a job's log is read shard by shard and its writes are spread too.

Finished items carry ``expires_at`` (epoch seconds, the table's TTL attribute): the
retention after they finished. A variant item (an outcome, final once recorded), a
``RUN#`` item, and a job item and its shards once the job has ended. What guards the
outputs in S3 never expires: an output claim (it keeps two sources from ever writing one
output key) and the source item (its ``generation`` is the run order the outputs carry;
see ``prism.aws.processing_table``); nor does a job still running.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from prism.jobs import JobCounters, JobRecord
from prism.records import RenderRef, SourceFacts, SourceRecord, VariantRecord, VariantStatus

SOURCE_SK = "SOURCE"
VARIANT_SK_PREFIX = "VARIANT#"
RUN_SK_PREFIX = "RUN#"
JOB_SK = "JOB"
SHARD_SK = "SHARD"
SHARD_PK_INFIX = "#SHARD#"
CLAIM_SK = "CLAIM"
CONTENT_PK_PREFIX = "CONTENT#"
SPEC_SK_PREFIX = "SPEC#"
JOB_INDEX = "by-job"
# The table's TTL attribute (TimeToLiveSpecification in template.yaml).
EXPIRES_AT = "expires_at"
# Keys one BatchGetItem may ask for.
BATCH_GET_KEYS = 100

# The source item's counter of the variants that ended in each status.
SOURCE_COUNTERS: dict[VariantStatus, str] = {
    VariantStatus.DONE: "done",
    VariantStatus.FAILED: "failed",
    VariantStatus.SKIPPED: "skipped",
}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_Record = TypeVar("_Record", SourceRecord, VariantRecord, JobRecord)


# --- keys --------------------------------------------------------------------------------
def source_pk(bucket: str, key: str) -> str:
    return f"SOURCE#{bucket}/{key}"


def render_key(content: str, spec: str) -> dict[str, Any]:
    """A reusable render (dedupe): the source content's SHA-256 and the spec's."""
    return to_attributes({"pk": f"{CONTENT_PK_PREFIX}{content}", "sk": f"{SPEC_SK_PREFIX}{spec}"})


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def claim_pk(bucket: str, key: str) -> str:
    return f"OUTPUT#{bucket}/{key}"


def run_sk(run_id: str) -> str:
    return f"{RUN_SK_PREFIX}{run_id}"


def variant_sk(name: str) -> str:
    return f"{VARIANT_SK_PREFIX}{name}"


def shard_pk(job_id: str, shard: int) -> str:
    return f"{job_pk(job_id)}{SHARD_PK_INFIX}{shard:03d}"


def parse_shard_pk(pk: str) -> tuple[str, int] | None:
    """The job id and shard number of a shard item's partition key; None for another key."""
    head, infix, number = pk.rpartition(SHARD_PK_INFIX)
    if not infix or not head.startswith("JOB#") or not number.isdigit():
        return None
    return head[len("JOB#") :], int(number)


def job_shard_key(job_id: str, shard: int) -> str:
    """Partition key of the ``by-job`` index: a job's items spread over its shards."""
    return f"{job_id}#{shard:03d}"


def source_key(bucket: str, key: str) -> dict[str, Any]:
    return to_attributes({"pk": source_pk(bucket, key), "sk": SOURCE_SK})


def run_key(record: SourceRecord) -> dict[str, Any]:
    return to_attributes({"pk": source_pk(record.bucket, record.key), "sk": run_sk(record.run_id)})


def job_key(job_id: str) -> dict[str, Any]:
    return to_attributes({"pk": job_pk(job_id), "sk": JOB_SK})


def shard_key(job_id: str, shard: int) -> dict[str, Any]:
    return to_attributes({"pk": shard_pk(job_id, shard), "sk": SHARD_SK})


def claim_key(bucket: str, key: str) -> dict[str, Any]:
    return to_attributes({"pk": claim_pk(bucket, key), "sk": CLAIM_SK})


# --- values ------------------------------------------------------------------------------
def to_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values to DynamoDB AttributeValues, leaving out ``None``s."""
    return {
        name: _serializer.serialize(value) for name, value in values.items() if value is not None
    }


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
    return {name: _plain_number(value) for name, value in plain.items()}


def _plain_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):  # a map attribute (a source's ``original``)
        return {name: _plain_number(inner) for name, inner in value.items()}
    return value


# --- items -------------------------------------------------------------------------------
def source_item(record: SourceRecord, expires_at: int | None = None) -> dict[str, Any]:
    """The source's current-run item, or its ``RUN#`` item when ``record.archived``."""
    sort_key = run_sk(record.run_id) if record.archived else SOURCE_SK
    return _item(
        source_pk(record.bucket, record.key),
        sort_key,
        record,
        record.job_id,
        record.shard,
        expires_at,
    )


def variant_item(record: VariantRecord, expires_at: int | None = None) -> dict[str, Any]:
    pk = source_pk(record.bucket, record.key)
    return _item(pk, variant_sk(record.variant), record, record.job_id, record.shard, expires_at)


def job_item(job: JobRecord) -> dict[str, Any]:
    return to_attributes({"pk": job_pk(job.job_id), "sk": JOB_SK, **asdict(job)})


def _item(
    pk: str,
    sk: str,
    record: SourceRecord | VariantRecord,
    job_id: str,
    shard: int,
    expires_at: int | None,
) -> dict[str, Any]:
    return to_attributes(
        {
            "pk": pk,
            "sk": sk,
            "job_shard": job_shard_key(job_id, shard),
            **asdict(record),
            EXPIRES_AT: expires_at,
        }
    )


def from_item(cls: type[_Record], item: dict[str, Any]) -> _Record:
    """A record from its item; attributes the record does not know (keys, ``expires_at``)
    are left out."""
    values = from_attributes(item)
    known = {f.name: values[f.name] for f in fields(cls) if f.name in values}
    if isinstance(known.get("original"), dict):
        known["original"] = SourceFacts(**known["original"])
    return cls(**known)


def render_from_item(item: dict[str, Any]) -> RenderRef:
    values = from_attributes(item)
    known = {f.name: values[f.name] for f in fields(RenderRef) if f.name in values}
    if isinstance(known.get("original"), dict):
        known["original"] = SourceFacts(**known["original"])
    return RenderRef(**known)


def record_from_item(item: dict[str, Any]) -> SourceRecord | VariantRecord:
    """A source (current or past run) or variant item of the ``by-job`` index."""
    sort_key = item["sk"]["S"]
    if sort_key == SOURCE_SK or sort_key.startswith(RUN_SK_PREFIX):
        return from_item(SourceRecord, item)
    return from_item(VariantRecord, item)


def counters_from_item(item: dict[str, Any]) -> JobCounters:
    values = from_attributes(item)
    return JobCounters(**{f.name: int(values.get(f.name, 0)) for f in fields(JobCounters)})


def add_expression(deltas: dict[str, int]) -> dict[str, Any]:
    """``UpdateExpression`` with its names and values, adding the non-zero ``deltas``."""
    changes = {name: delta for name, delta in deltas.items() if delta}
    return {
        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(changes))),
        "ExpressionAttributeNames": {f"#c{i}": name for i, name in enumerate(changes)},
        "ExpressionAttributeValues": to_attributes(
            {f":c{i}": delta for i, delta in enumerate(changes.values())}
        ),
    }


def counter_deltas(counters: JobCounters) -> dict[str, int]:
    return asdict(counters)

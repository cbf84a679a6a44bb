"""The processing log's records in DynamoDB, and their item layout.

One table, two kinds of item under the same partition key (the source):
- ``pk = SOURCE#<bucket>/<key>``, ``sk = SOURCE``: status and the expected/done/failed/
  skipped counts, updated atomically by the workers;
- ``pk = SOURCE#<bucket>/<key>``, ``sk = VARIANT#<name>``: one per variant with its
  outcome, output key, size and timing, or the reason it failed or was skipped.
A query on one partition returns a source with all of its variants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

SOURCE_SK = "SOURCE"
VARIANT_SK_PREFIX = "VARIANT#"
# A run that is no longer the source's current one, kept for its job's log: one that was
# superseded while it ran, or an upload that was gone or overwritten before its fan-out.
RUN_SK_PREFIX = "RUN#"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class SourceStatus(StrEnum):
    PROCESSING = "processing"
    COMPLETE = "complete"
    COMPLETE_WITH_FAILURES = "complete_with_failures"
    SKIPPED = "skipped"


class VariantStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


def job_shard_key(job_id: str, shard: int) -> str:
    """Partition key of the ``by-job`` index: a job's items spread over its shards."""
    return f"{job_id}#{shard:03d}"


def source_pk(bucket: str, key: str) -> str:
    return f"SOURCE#{bucket}/{key}"


def run_sk(run_id: str) -> str:
    return f"{RUN_SK_PREFIX}{run_id}"


def variant_sk(name: str) -> str:
    return f"{VARIANT_SK_PREFIX}{name}"


def final_source_status(done: int, failed: int, skipped: int) -> SourceStatus:
    if failed:
        return SourceStatus.COMPLETE_WITH_FAILURES
    if skipped and not done:
        return SourceStatus.SKIPPED
    return SourceStatus.COMPLETE


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
    return value


@dataclass(frozen=True)
class SourceRecord:
    bucket: str
    key: str
    job_id: str
    run_id: str
    status: str
    expected: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    etag: str | None = None
    size: int | None = None
    registered_at: str | None = None
    loaded_at: str | None = None
    finished_at: str | None = None
    # The job counter shard this source's outcomes are added to.
    shard: int = 0
    # Why no variant was attempted (a source-level outcome such as cancelled or source_missing).
    reason: str | None = None
    # Registrations of this key so far, this run's included: orders the runs of one key
    # (a run's outputs never replace those of a later run).
    generation: int = 0
    # S3's event sequencer of the upload, left-padded: orders the events of one key.
    sequencer: str | None = None
    # A past run kept for its job's log (item ``RUN#<run id>``), not the source's current run.
    archived: bool = False

    @property
    def finished(self) -> bool:
        return self.done + self.failed + self.skipped >= self.expected

    @property
    def unfinished(self) -> int:
        return max(self.expected - self.done - self.failed - self.skipped, 0)

    def to_item(self) -> dict[str, Any]:
        return to_attributes(
            {
                "pk": source_pk(self.bucket, self.key),
                "sk": run_sk(self.run_id) if self.archived else SOURCE_SK,
                "job_shard": job_shard_key(self.job_id, self.shard),
                **asdict(self),
            }
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SourceRecord:
        return cls(**_known_fields(cls, from_attributes(item)))


@dataclass(frozen=True)
class VariantRecord:
    bucket: str
    key: str
    variant: str
    run_id: str
    status: str
    output_key: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    duration_ms: int | None = None
    reason: str | None = None
    error: str | None = None
    finished_at: str | None = None
    job_id: str = ""
    shard: int = 0
    # What was removed from the output (e.g. exif, gps, xmp, icc) for privacy.
    stripped: list[str] | None = None
    frames: int | None = None

    def to_item(self) -> dict[str, Any]:
        return to_attributes(
            {
                "pk": source_pk(self.bucket, self.key),
                "sk": variant_sk(self.variant),
                "job_shard": job_shard_key(self.job_id, self.shard),
                **asdict(self),
            }
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> VariantRecord:
        return cls(**_known_fields(cls, from_attributes(item)))


def _known_fields(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {field.name for field in fields(cls)}
    return {name: value for name, value in values.items() if name in names}

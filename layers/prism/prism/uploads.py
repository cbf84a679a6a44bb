"""What an uploads-queue message asks the fan-out for: uploads from S3 notifications, or
backfill requests for objects that exist already."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from prism.keys import bare_etag
from prism.messages import BackfillRequest, SourceRef

_RUN_NAMESPACE = uuid.UUID("6f1c2a4e-8b1d-4f0a-9d43-2b7f0c6e5a10")
_SEQUENCER_WIDTH = 64


@dataclass(frozen=True)
class Upload:
    """An object to fan out: from an S3 notification, or a backfill request."""

    source: SourceRef
    # What makes this delivery unique (event time and sequencer, or the backfill job).
    occurrence: str
    job_id: str | None = None  # None: read from the object's metadata, else the day's job
    event_time: str = ""
    variants: tuple[str, ...] | None = None  # None: every variant of the config
    missing_only: bool = False
    # S3's event sequencer, left-padded so that later events of a key compare greater.
    sequencer: str | None = None

    @property
    def run_id(self) -> str:
        # The same notification delivered twice yields the same run (so it is registered
        # once); a new upload of the same key yields a new run.
        identity = "|".join(
            [
                self.source.id,
                self.source.etag or "",
                self.source.version_id or "",
                self.occurrence,
            ]
        )
        return str(uuid.uuid5(_RUN_NAMESPACE, identity))


@dataclass(frozen=True)
class Removal:
    """A source deleted from the input bucket (an ``ObjectRemoved`` notification)."""

    source: SourceRef
    occurrence: str
    sequencer: str | None = None

    @property
    def run_id(self) -> str:
        """The deletion's own run id: the same notification delivered twice is one deletion."""
        identity = "|".join(
            ["removed", self.source.id, self.source.version_id or "", self.occurrence]
        )
        return str(uuid.uuid5(_RUN_NAMESPACE, identity))


def uploads_in(record: SQSRecord) -> list[Upload]:
    """What an uploads-queue message asks for (nothing for S3's test event)."""
    body = record.json_body
    if not isinstance(body, dict):
        return []
    if body.get("kind") == "prism.backfill":
        request = BackfillRequest.model_validate(body)
        return [
            Upload(
                source=request.source,
                occurrence=f"backfill:{request.job_id}",
                job_id=request.job_id,
                variants=tuple(request.variants) if request.variants is not None else None,
                missing_only=request.missing_only,
            )
        ]
    if body.get("Event") == "s3:TestEvent" or "Records" not in body:
        return []
    uploads = []
    for s3_record in record.decoded_nested_s3_event.records:
        if not s3_record.event_name.startswith("ObjectCreated:"):
            continue
        obj = s3_record.s3.get_object
        source = SourceRef(
            bucket=s3_record.s3.bucket.name,
            # Keys arrive URL-encoded with '+' for spaces; decode exactly once, here.
            key=unquote_plus(obj.key),
            etag=bare_etag(obj.etag) or None,
            size=obj.get("size"),
            version_id=obj.version_id,
        )
        sequencer = obj.get("sequencer") or None
        occurrence = f"{s3_record.event_time}|{sequencer or ''}"
        uploads.append(
            Upload(
                source=source,
                occurrence=occurrence,
                event_time=s3_record.event_time,
                sequencer=comparable_sequencer(sequencer),
            )
        )
    return uploads


def removals_in(record: SQSRecord) -> list[Removal]:
    """The deletions an uploads-queue message announces (``ObjectRemoved:*``)."""
    body = record.json_body
    if not isinstance(body, dict) or "Records" not in body or body.get("kind"):
        return []
    removals = []
    for s3_record in record.decoded_nested_s3_event.records:
        if not s3_record.event_name.startswith("ObjectRemoved:"):
            continue
        obj = s3_record.s3.get_object
        sequencer = obj.get("sequencer") or None
        removals.append(
            Removal(
                source=SourceRef(
                    bucket=s3_record.s3.bucket.name,
                    key=unquote_plus(obj.key),
                    version_id=obj.version_id,
                ),
                occurrence=f"{s3_record.event_time}|{sequencer or ''}",
                sequencer=comparable_sequencer(sequencer),
            )
        )
    return removals


def comparable_sequencer(sequencer: str | None) -> str | None:
    """S3 sequencers differ in length; left-padded, later events of a key compare greater."""
    return sequencer.upper().rjust(_SEQUENCER_WIDTH, "0") if sequencer else None

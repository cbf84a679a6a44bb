"""The processing log's records: what happened to each source and variant.

A source's record holds its current run's status and the expected/done/failed/skipped
counts of its variants; a variant's record holds its outcome, output key, size and timing,
or the reason it failed or was skipped. How they are stored is ``prism.aws.schema``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from prism.errors import Reason


class SourceStatus(StrEnum):
    PROCESSING = "processing"
    COMPLETE = "complete"
    COMPLETE_WITH_FAILURES = "complete_with_failures"
    SKIPPED = "skipped"
    # The source object was deleted: its outputs are removed, its records kept for a while.
    DELETED = "deleted"


class VariantStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def expiry(finished_at: str | None, retention_days: int) -> int | None:
    """The TTL (``expires_at``) of a record finished at ``finished_at`` (ISO 8601; now if
    None): epoch seconds ``retention_days`` later, or None (kept) if ``retention_days`` is 0."""
    if retention_days <= 0:
        return None
    finished = datetime.fromisoformat(finished_at) if finished_at else datetime.now(UTC)
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)
    return int(finished.timestamp()) + retention_days * 86_400


def final_source_status(done: int, failed: int, skipped: int) -> SourceStatus:
    if failed:
        return SourceStatus.COMPLETE_WITH_FAILURES
    if skipped and not done:
        return SourceStatus.SKIPPED
    return SourceStatus.COMPLETE


def unrendered_status(reason: Reason | None) -> SourceStatus:
    """The status of an upload that ends without rendering: nothing left to render
    (``None``) completes it; overwritten or cancelled skips it; anything else fails it."""
    if reason is None:
        return SourceStatus.COMPLETE
    if reason in (Reason.SUPERSEDED, Reason.CANCELLED):
        return SourceStatus.SKIPPED
    return SourceStatus.COMPLETE_WITH_FAILURES


@dataclass(frozen=True)
class SourceFacts:
    """The upload as decoded: its upright size and format, and a placeholder to show while
    a variant loads (a BlurHash and the dominant colour, ``#rrggbb``)."""

    width: int
    height: int
    format: str
    blurhash: str | None = None
    dominant_colour: str | None = None


@dataclass(frozen=True)
class RenderRef:
    """A rendered output that identical bytes with the same variant spec can reuse
    (``dedupe: true``): copied, not rendered again, while the output is unchanged."""

    output_key: str
    etag: str
    content_type: str
    format: str
    width: int
    height: int
    bytes: int
    source: str  # the source it was rendered for (bucket/key)
    frames: int | None = None
    stripped: list[str] | None = None
    original: SourceFacts | None = None


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
    # When the source object was deleted: on the deletion record (status ``deleted``) and,
    # as an audit mark, on the runs before it.
    deleted_at: str | None = None
    # What the upload is (read by the worker when it decodes it), for the manifest.
    original: SourceFacts | None = None
    # Where the run's manifest goes in the output bucket (None: no manifest), and the URL
    # its links start with (the pipeline's ``public_url``); see prism.announce.
    manifest_key: str | None = None
    url_base: str | None = None
    # When the run's "Source Processed" event was published: once per run.
    announced_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.done + self.failed + self.skipped >= self.expected

    @property
    def unfinished(self) -> int:
        return max(self.expected - self.done - self.failed - self.skipped, 0)


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
    # When its source was deleted (the output is gone; the record is kept for the audit).
    deleted_at: str | None = None
    # Dedupe: the output this one was copied from instead of being rendered.
    reused_from: str | None = None
    # Recorded by the batch of its run's first task, not by its own task (``VariantTask.
    # ahead``): that batch, or its first task's redelivery, settles and announces the run.
    rendered_ahead: bool | None = None


@dataclass(frozen=True)
class SourceState:
    """A source's record and its variants' records (by name, any run), read together: all
    that is known of the source at one moment."""

    source: SourceRecord
    variants: Mapping[str, VariantRecord]

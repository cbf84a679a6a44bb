"""Jobs: groups of sources whose progress people watch and which they can cancel.

A job holds its status, kind, timestamps and, once the submitter knows it, the number of
sources it expects (``sealed``). Its counters are split over shards (DynamoDB serves about
1,000 write units a second per partition, and each shard is a partition of its own): every
outcome adds to the shard its source hashes to, in the same transaction that records the
outcome, so the sums are exact. How they are stored is ``prism.aws.schema``'s.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from enum import StrEnum

from prism.records import SourceRecord, SourceStatus, VariantStatus


class JobStatus(StrEnum):
    RUNNING = "running"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    COMPLETE = "complete"
    COMPLETE_WITH_FAILURES = "complete_with_failures"


ACTIVE_STATUSES = frozenset({JobStatus.RUNNING, JobStatus.CANCELLING})
CANCELLED_STATUSES = frozenset({JobStatus.CANCELLING, JobStatus.CANCELLED})


class JobKind(StrEnum):
    UPLOADS = "uploads"  # the default job of plain uploads, one per day
    SUBMIT = "submit"  # folders uploaded by `prism submit` / `prism run`
    BACKFILL = "backfill"  # existing objects enqueued by `prism backfill`


def shard_of(source_id: str, shards: int) -> int:
    """The counter shard a source's outcomes are added to (stable across processes)."""
    return zlib.crc32(source_id.encode("utf-8")) % shards


def default_job_id(event_time: str) -> str:
    """The job of a plain upload: one per UTC day of the upload."""
    return f"uploads-{event_time[:10] or 'unknown'}"


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    status: str
    kind: str
    created_at: str
    # How many counter shards (and by-job index partitions) the job's writes are spread over.
    shards: int = 16
    # Set once the submitter knows how many sources the job has; until then it cannot end.
    sealed: bool = False
    expected_sources: int | None = None
    finished_at: str | None = None
    cancel_requested_at: str | None = None
    description: str | None = None
    # When its "Job Completed" event was published (once; see prism.announce).
    announced_at: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.status in CANCELLED_STATUSES


@dataclass(frozen=True)
class JobCounters:
    """What one shard (or, summed, the whole job) has counted."""

    sources_registered: int = 0
    sources_loaded: int = 0  # fetched and decoded (counted once per source)
    sources_finished: int = 0
    sources_failed: int = 0  # finished with at least one failed variant
    sources_skipped: int = 0  # finished with every variant skipped
    variants_expected: int = 0
    variants_done: int = 0
    variants_failed: int = 0
    variants_skipped: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def __add__(self, other: JobCounters) -> JobCounters:
        return JobCounters(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def __sub__(self, other: JobCounters) -> JobCounters:
        return JobCounters(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    @property
    def variants_finished(self) -> int:
        return self.variants_done + self.variants_failed + self.variants_skipped


@dataclass(frozen=True)
class JobProgress:
    job: JobRecord
    counters: JobCounters = field(default_factory=JobCounters)

    @property
    def expected_sources(self) -> int | None:
        return self.job.expected_sources if self.job.sealed else None

    @property
    def finished(self) -> bool:
        """Every expected source is accounted for (only a sealed job can finish)."""
        expected = self.expected_sources
        return expected is not None and self.counters.sources_finished >= expected

    def final_status(self) -> JobStatus:
        if self.job.cancelled:
            return JobStatus.CANCELLED
        if self.counters.variants_failed or self.counters.sources_failed:
            return JobStatus.COMPLETE_WITH_FAILURES
        return JobStatus.COMPLETE


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job named {job_id!r}")
        self.job_id = job_id


# --- what an outcome adds to its job's counters --------------------------------------------
def source_counters(status: str) -> JobCounters:
    """What a source in ``status`` adds to its job's source counters."""
    if status == SourceStatus.PROCESSING:
        return JobCounters()
    return JobCounters(
        sources_finished=1,
        sources_failed=int(status == SourceStatus.COMPLETE_WITH_FAILURES),
        sources_skipped=int(status == SourceStatus.SKIPPED),
    )


def variant_counters(status: str, bytes_out: int = 0) -> JobCounters:
    return JobCounters(
        variants_done=int(status == VariantStatus.DONE),
        variants_failed=int(status == VariantStatus.FAILED),
        variants_skipped=int(status == VariantStatus.SKIPPED),
        bytes_out=bytes_out,
    )


def past_run_counters(record: SourceRecord) -> JobCounters:
    """What a run that never became (or is no longer) a source's current one adds."""
    return JobCounters(
        sources_registered=1,
        variants_expected=record.expected,
        variants_done=record.done,
        variants_failed=record.failed,
        variants_skipped=record.skipped,
    ) + source_counters(record.status)

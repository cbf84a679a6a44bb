"""Jobs: groups of sources whose progress people watch and which they can cancel.

Item layout in the processing table (next to the source and variant items):
- ``pk = JOB#<id>``, ``sk = JOB``: the job's status, kind, timestamps and, once the
  submitter knows it, the number of sources it expects (``sealed``);
- ``pk = JOB#<id>``, ``sk = SHARD#<nnn>``: counters, split over a few items so that hundreds
  of concurrent workers do not all write one item (DynamoDB serves about 1,000 writes a
  second per item). Every outcome adds to the shard its source hashes to, in the same
  transaction that records the outcome, so the sums are exact. Progress is one query
  that adds the shards up.

Every source and variant item carries ``job_shard = <job id>#<nnn>``, the partition key of
the ``by-job`` index, so a job's log is read shard by shard, and its writes are spread too.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from prism.records import from_attributes, to_attributes
from prism.records import job_shard_key as job_shard_key  # re-exported for callers

JOB_SK = "JOB"
SHARD_SK_PREFIX = "SHARD#"
JOB_INDEX = "by-job"


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


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def shard_of(source_id: str, shards: int) -> int:
    """The counter shard a source's outcomes are added to (stable across processes)."""
    return zlib.crc32(source_id.encode("utf-8")) % shards


def shard_sk(shard: int) -> str:
    return f"{SHARD_SK_PREFIX}{shard:03d}"


def default_job_id(event_time: str) -> str:
    """The job of a plain upload: one per UTC day of the upload."""
    return f"uploads-{event_time[:10] or 'unknown'}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


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

    def to_item(self) -> dict[str, Any]:
        return to_attributes({"pk": job_pk(self.job_id), "sk": JOB_SK, **asdict(self)})

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobRecord:
        values = from_attributes(item)
        names = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in names})

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

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobCounters:
        values = from_attributes(item)
        return cls(**{f.name: int(values.get(f.name, 0)) for f in fields(cls)})

    @property
    def variants_finished(self) -> int:
        return self.variants_done + self.variants_failed + self.variants_skipped

    def update_expression(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """``ADD`` expression, names and values for the non-zero counters."""
        deltas = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}
        names = {f"#c{i}": name for i, name in enumerate(deltas)}
        values = to_attributes({f":c{i}": value for i, value in enumerate(deltas.values())})
        expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(deltas)))
        return expression, names, values


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

    def stages(self) -> dict[str, tuple[int, int | None]]:
        """The seed's stages as (count, total); a total of None is not known yet.

        scanning: sources registered by the fan-out; loading: sources fetched and decoded;
        processing: variants finished (done, failed or skipped); saving: variants written;
        complete: sources with every variant accounted for."""
        c = self.counters
        variants = c.variants_expected or None
        return {
            "scanning": (c.sources_registered, self.expected_sources),
            "loading": (c.sources_loaded, self.expected_sources),
            "processing": (c.variants_finished, variants),
            "saving": (c.variants_done, variants),
            "complete": (c.sources_finished, self.expected_sources),
        }

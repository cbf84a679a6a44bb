"""What the fan-out and the worker need from the outside world, as Protocols.

The services (``prism.fanout``, ``prism.worker``, ``prism.outcomes``) are written against
these ports and never import ``prism.aws``; ``prism.wiring`` plugs the AWS adapters in, and
unit tests plug in-memory fakes in. Each port's contract (what is atomic, what a result
means) is the adapters' docstrings' in ``prism.aws``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from prism.jobs import JobCounters, JobProgress, JobRecord
from prism.messages import VariantTask
from prism.records import RenderRef, SourceFacts, SourceRecord, VariantRecord


@dataclass(frozen=True)
class ObjectHead:
    etag: str | None
    size: int
    version_id: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class Vet:
    """A check of an object's first ``first_bytes`` (all of it, if it is smaller), made
    before the rest is downloaded: ``check`` raises to refuse the object."""

    first_bytes: int
    check: Callable[[bytes], object]


@dataclass(frozen=True)
class Event:
    """One of Prism's events: its ``detail-type`` and its detail."""

    detail_type: str
    detail: dict[str, Any]


class WriteResult(Enum):
    WRITTEN = "written"
    NEWER_EXISTS = "newer_exists"  # a later run's output is there: this one is not written


class RecordResult(Enum):
    COUNTED = "counted"
    DUPLICATE = "duplicate"  # this run already recorded this variant
    STALE = "stale"  # the source has been registered again by a newer run


class Settlement(Enum):
    """What settling a source's run found."""

    PENDING = "pending"  # not every variant accounted for (or the source is on another run)
    SETTLED = "settled"  # this call's write gave the run its final status
    WAS_SETTLED = "was_settled"  # an earlier write did (this caller's, lost, or another's)

    @property
    def finished(self) -> bool:
        return self is not Settlement.PENDING


class Registration(Enum):
    REGISTERED = "registered"
    ALREADY = "already"  # this run was registered before (a redelivered message)
    OUTDATED = "outdated"  # a later upload of the key is registered already


class Objects(Protocol):
    """Sources, logos and outputs in S3."""

    async def read(
        self,
        bucket: str,
        key: str,
        *,
        etag: str | None = None,
        version_id: str | None = None,
        vet: Vet | None = None,
    ) -> bytes: ...

    async def head(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectHead | None: ...

    async def write_in_order(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str,
        run_id: str,
        order: int,
        metadata: dict[str, str],
        cache_control: str | None = None,
        content_disposition: str | None = None,
    ) -> tuple[WriteResult, str | None]: ...

    async def copy_in_order(
        self,
        bucket: str,
        source_key: str,
        source_etag: str,
        key: str,
        *,
        content_type: str,
        run_id: str,
        order: int,
        metadata: dict[str, str],
        cache_control: str | None = None,
        content_disposition: str | None = None,
    ) -> tuple[WriteResult, str | None] | None: ...

    async def remove_outputs_up_to(self, bucket: str, key: str, order: int) -> bool: ...

    async def delete_if_unchanged(self, bucket: str, key: str, etag: str | None) -> bool: ...


class EventPublisher(Protocol):
    """The event bus "Source Processed", "Source Deleted" and "Job Completed" go to."""

    async def publish(self, events: Sequence[Event]) -> list[BaseException | None]:
        """Publish ``events``; for each, None once published, else why it was not."""
        ...


class TaskQueue(Protocol):
    """The variants queue."""

    async def send(self, tasks: Sequence[VariantTask]) -> None: ...


class ProcessingLog(Protocol):
    """Sources, their runs and their variants' outcomes, each counted exactly once."""

    async def register_source(
        self, record: SourceRecord, counters: JobCounters, *, expires_at: int | None = None
    ) -> tuple[Registration, SourceRecord]: ...

    async def record_past_run(self, record: SourceRecord) -> bool: ...

    async def record_variant(self, record: VariantRecord) -> RecordResult: ...

    async def record_variants(
        self,
        records: Sequence[VariantRecord],
        seen: SourceRecord,
        original: SourceFacts | None = None,
    ) -> SourceRecord | None: ...

    async def mark_loaded(
        self,
        bucket: str,
        key: str,
        run_id: str,
        job_id: str,
        shard: int,
        original: SourceFacts | None = None,
    ) -> None: ...

    async def settle_source(self, bucket: str, key: str, run_id: str) -> Settlement: ...

    async def source_state(
        self, bucket: str, key: str
    ) -> tuple[SourceRecord | None, dict[str, VariantRecord]]: ...

    async def get_source(self, bucket: str, key: str) -> SourceRecord | None: ...

    async def claim_output(self, bucket: str, key: str, source_id: str) -> str: ...

    async def claim_owners(self, bucket: str, keys: Sequence[str]) -> dict[str, str]: ...

    async def find_renders(self, content: str, specs: Sequence[str]) -> dict[str, RenderRef]: ...

    async def remember_render(self, content: str, spec: str, render: RenderRef) -> None: ...

    async def get_past_run(self, bucket: str, key: str, run_id: str) -> SourceRecord | None: ...

    async def mark_announced(
        self, bucket: str, key: str, run_id: str, at: str, *, past: bool = False
    ) -> bool: ...

    async def mark_deleted(
        self, bucket: str, key: str, deleted_at: str, expires_at: int | None
    ) -> int: ...


class Jobs(Protocol):
    """Job items: created by submitters, sealed, cancelled, finished by the functions."""

    async def create(self, job: JobRecord) -> bool: ...

    async def ensure_default(self, job_id: str, shards: int) -> None: ...

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def require(self, job_id: str) -> JobRecord: ...

    async def progress(self, job_id: str) -> JobProgress: ...

    async def seal(self, job_id: str, expected_sources: int) -> None: ...

    async def request_cancel(self, job_id: str) -> JobRecord: ...

    async def finish_if_done(self, job_id: str) -> JobProgress | None: ...

    async def claim_job_announcement(self, job_id: str, at: str, stale_before: str) -> bool: ...

    async def mark_job_announced(self, job_id: str, at: str) -> bool: ...

    def records(self, job: JobRecord) -> AsyncIterator[SourceRecord | VariantRecord]: ...

"""In-memory stand-ins for the ports of ``prism.ports``, for unit tests of the services.

They keep the contracts the services rely on (each outcome counted once per run, stale
runs counting nothing, conditional output writes in run order), not DynamoDB's or S3's
every detail: the adapters themselves are tested against the moto server.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace

from prism.errors import PermanentError, Reason
from prism.jobs import (
    JobCounters,
    JobKind,
    JobNotFound,
    JobProgress,
    JobRecord,
    JobStatus,
    past_run_counters,
    source_counters,
    variant_counters,
)
from prism.messages import VariantTask
from prism.ports import ObjectHead, RecordResult, Registration, Settlement, Vet, WriteResult
from prism.records import (
    RenderRef,
    SourceFacts,
    SourceRecord,
    SourceStatus,
    VariantRecord,
    VariantStatus,
    final_source_status,
    utc_now,
)

RUN_ORDER = "prism-run-order"


@dataclass
class StoredObject:
    data: bytes
    version_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str = "binary/octet-stream"
    cache_control: str | None = None
    content_disposition: str | None = None

    @property
    def etag(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    def head(self) -> ObjectHead:
        return ObjectHead(self.etag, len(self.data), self.version_id, dict(self.metadata))


@dataclass
class FakeObjects:
    """A versioned object store. ``reads`` logs each read as (bucket, key, bytes handed
    over: None for all of them)."""

    current: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    versions: dict[tuple[str, str, str], StoredObject] = field(default_factory=dict)
    reads: list[tuple[str, str, int | None]] = field(default_factory=list)
    # Raised by the next reads instead of answering (a transient fault), while not empty.
    read_faults: list[Exception] = field(default_factory=list)

    def put(
        self, bucket: str, key: str, data: bytes, metadata: dict[str, str] | None = None
    ) -> str:
        version = f"v{len(self.versions) + 1}"
        stored = StoredObject(data, version, dict(metadata or {}))
        self.current[(bucket, key)] = stored
        self.versions[(bucket, key, version)] = stored
        return version

    async def read(
        self,
        bucket: str,
        key: str,
        *,
        etag: str | None = None,
        version_id: str | None = None,
        vet: Vet | None = None,
    ) -> bytes:
        self.reads.append((bucket, key, None))
        if self.read_faults:
            raise self.read_faults.pop(0)
        stored = (
            self.versions.get((bucket, key, version_id))
            if version_id
            else self.current.get((bucket, key))
        )
        if stored is None:
            raise PermanentError(Reason.SOURCE_MISSING, f"s3://{bucket}/{key} does not exist")
        if etag and not version_id and stored.etag != etag:
            raise PermanentError(Reason.SUPERSEDED, f"s3://{bucket}/{key} was overwritten")
        if vet is not None:
            try:
                vet.check(stored.data[: vet.first_bytes])
            except Exception:
                self.reads[-1] = (bucket, key, vet.first_bytes)  # the download stopped there
                raise
        return stored.data

    async def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectHead | None:
        stored = (
            self.versions.get((bucket, key, version_id))
            if version_id
            else self.current.get((bucket, key))
        )
        return stored.head() if stored else None

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
    ) -> tuple[WriteResult, str | None]:
        existing = self.current.get((bucket, key))
        if existing is not None and int(existing.metadata.get(RUN_ORDER, "-1")) > order:
            return WriteResult.NEWER_EXISTS, None
        tags = {**metadata, "prism-run": run_id, RUN_ORDER: str(order)}
        self.put(bucket, key, data, tags)
        stored = self.current[(bucket, key)]
        stored.content_type = content_type
        stored.cache_control = cache_control
        stored.content_disposition = content_disposition
        return WriteResult.WRITTEN, self.current[(bucket, key)].etag

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
    ) -> tuple[WriteResult, str | None] | None:
        source = self.current.get((bucket, source_key))
        if source is None or source.etag != source_etag:
            return None
        return await self.write_in_order(
            bucket,
            key,
            source.data,
            content_type=content_type,
            run_id=run_id,
            order=order,
            metadata=metadata,
            cache_control=cache_control,
            content_disposition=content_disposition,
        )

    async def remove_outputs_up_to(self, bucket: str, key: str, order: int) -> bool:
        existing = self.current.get((bucket, key))
        if existing is None or int(existing.metadata.get(RUN_ORDER, "-1")) > order:
            return False
        del self.current[(bucket, key)]
        return True

    async def delete_if_unchanged(self, bucket: str, key: str, etag: str | None) -> bool:
        existing = self.current.get((bucket, key))
        if existing is None or existing.etag != etag:
            return False
        del self.current[(bucket, key)]
        return True


@dataclass
class FakeQueue:
    sent: list[VariantTask] = field(default_factory=list)
    # Called before each send; raise from it to fail the send.
    before_send: Callable[[], None] = lambda: None

    async def send(self, tasks: Sequence[VariantTask]) -> None:
        self.before_send()
        self.sent.extend(tasks)


@dataclass
class FakeTable:
    """The processing table: both the ``ProcessingLog`` and the ``Jobs`` port."""

    sources: dict[tuple[str, str], SourceRecord] = field(default_factory=dict)
    past_runs: dict[tuple[str, str, str], SourceRecord] = field(default_factory=dict)
    variants: dict[tuple[str, str, str], VariantRecord] = field(default_factory=dict)
    claims: dict[tuple[str, str], str] = field(default_factory=dict)
    # Renders dedupe may copy: (content digest, spec digest) -> the render.
    renders: dict[tuple[str, str], RenderRef] = field(default_factory=dict)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    counters: dict[str, JobCounters] = field(default_factory=dict)
    # Announcements claimed, and when: (bucket, key, run id, past) or ("job", id, "", False).
    announcing: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    # record_variants calls (each one transaction in DynamoDB).
    batched_writes: int = 0

    def _count(self, job_id: str, delta: JobCounters) -> None:
        self.counters[job_id] = self.counters.get(job_id, JobCounters()) + delta

    # --- ProcessingLog ---------------------------------------------------------------------
    async def register_source(
        self, record: SourceRecord, counters: JobCounters, *, expires_at: int | None = None
    ) -> tuple[Registration, SourceRecord]:
        source_id = (record.bucket, record.key)
        current = self.sources.get(source_id)
        if current is not None and current.run_id == record.run_id:
            return Registration.ALREADY, current
        if (
            current is not None
            and record.sequencer
            and current.sequencer
            and record.sequencer < current.sequencer
        ):
            return Registration.OUTDATED, current
        new = replace(
            record,
            generation=(current.generation if current else 0) + 1,
            sequencer=record.sequencer or (current.sequencer if current else None),
        )
        exhausted = self.past_runs.pop((*source_id, record.run_id), None)
        if exhausted is not None:
            self._count(exhausted.job_id, JobCounters() - past_run_counters(exhausted))
        if current is not None:
            past = current
            if current.status == SourceStatus.PROCESSING:
                skipped = current.skipped + current.unfinished
                status = final_source_status(current.done, current.failed, skipped)
                past = replace(current, status=status.value, skipped=skipped)
                self._count(
                    current.job_id,
                    source_counters(past.status) + JobCounters(variants_skipped=current.unfinished),
                )
            self.past_runs[(*source_id, current.run_id)] = replace(past, archived=True)
        self.sources[source_id] = new
        self._count(new.job_id, counters)
        return Registration.REGISTERED, new

    async def record_past_run(self, record: SourceRecord) -> bool:
        run = (record.bucket, record.key, record.run_id)
        if run in self.past_runs:
            return False
        self.past_runs[run] = replace(record, archived=True)
        self._count(record.job_id, past_run_counters(record))
        return True

    async def record_variant(self, record: VariantRecord) -> RecordResult:
        source = self.sources.get((record.bucket, record.key))
        variant_id = (record.bucket, record.key, record.variant)
        existing = self.variants.get(variant_id)
        replacing = (
            existing is not None
            and existing.run_id == record.run_id
            and existing.reason == Reason.RETRIES_EXHAUSTED
            and record.reason != Reason.RETRIES_EXHAUSTED
        )
        if existing is not None and existing.run_id == record.run_id and not replacing:
            return RecordResult.DUPLICATE
        if source is None or source.run_id != record.run_id:
            return RecordResult.STALE
        counts = {"done": source.done, "failed": source.failed, "skipped": source.skipped}
        delta = variant_counters(record.status, record.bytes or 0)
        if replacing:
            counts["failed"] -= 1
            delta = delta - variant_counters(VariantStatus.FAILED)
        counts[record.status] += 1
        self.sources[(record.bucket, record.key)] = replace(
            source, done=counts["done"], failed=counts["failed"], skipped=counts["skipped"]
        )
        self.variants[variant_id] = record
        self._count(record.job_id, delta)
        return RecordResult.COUNTED

    async def record_variants(
        self,
        records: Sequence[VariantRecord],
        seen: SourceRecord,
        original: SourceFacts | None = None,
    ) -> SourceRecord | None:
        self.batched_writes += 1
        source = self.sources.get((seen.bucket, seen.key))
        if source != seen:  # anything changed since it was read: nothing is written
            return None
        if any(
            (existing := self.variants.get((r.bucket, r.key, r.variant))) is not None
            and existing.run_id == r.run_id
            for r in records
        ):
            return None
        await self.mark_loaded(
            seen.bucket, seen.key, seen.run_id, seen.job_id, seen.shard, original
        )
        for record in records:
            assert await self.record_variant(record) is RecordResult.COUNTED
        await self.settle_source(seen.bucket, seen.key, seen.run_id)
        return self.sources[(seen.bucket, seen.key)]

    async def mark_loaded(
        self,
        bucket: str,
        key: str,
        run_id: str,
        job_id: str,
        shard: int,
        original: SourceFacts | None = None,
    ) -> None:
        source = self.sources.get((bucket, key))
        if source is not None and source.run_id == run_id and source.loaded_at is None:
            self.sources[(bucket, key)] = replace(
                source, loaded_at=utc_now(), original=original or source.original
            )
            self._count(job_id, JobCounters(sources_loaded=1))

    async def settle_source(self, bucket: str, key: str, run_id: str) -> Settlement:
        source = self.sources.get((bucket, key))
        if source is None or source.run_id != run_id or not source.finished:
            return Settlement.PENDING
        status = final_source_status(source.done, source.failed, source.skipped).value
        if status == source.status:
            return Settlement.WAS_SETTLED
        self._count(source.job_id, source_counters(status) - source_counters(source.status))
        self.sources[(bucket, key)] = replace(source, status=status, finished_at=utc_now())
        return Settlement.SETTLED

    async def source_state(
        self, bucket: str, key: str
    ) -> tuple[SourceRecord | None, dict[str, VariantRecord]]:
        variants = {
            name: record
            for (b, k, name), record in self.variants.items()
            if (b, k) == (bucket, key)
        }
        return self.sources.get((bucket, key)), variants

    async def get_source(self, bucket: str, key: str) -> SourceRecord | None:
        return self.sources.get((bucket, key))

    async def claim_output(self, bucket: str, key: str, source_id: str) -> str:
        return self.claims.setdefault((bucket, key), source_id)

    async def claim_owners(self, bucket: str, keys: Sequence[str]) -> dict[str, str]:
        return {k: self.claims[(bucket, k)] for k in keys if (bucket, k) in self.claims}

    async def find_renders(self, content: str, specs: Sequence[str]) -> dict[str, RenderRef]:
        return {
            spec: self.renders[(content, spec)] for spec in specs if (content, spec) in self.renders
        }

    async def remember_render(self, content: str, spec: str, render: RenderRef) -> None:
        self.renders[(content, spec)] = render

    async def get_past_run(self, bucket: str, key: str, run_id: str) -> SourceRecord | None:
        return self.past_runs.get((bucket, key, run_id))

    async def mark_announced(
        self, bucket: str, key: str, run_id: str, at: str, *, past: bool = False
    ) -> bool:
        record = (
            self.past_runs.get((bucket, key, run_id)) if past else self.sources.get((bucket, key))
        )
        if record is None or record.run_id != run_id or record.announced_at:
            return False
        marked = replace(record, announced_at=at)
        if past:
            self.past_runs[(bucket, key, run_id)] = marked
        else:
            self.sources[(bucket, key)] = marked
        return True

    async def mark_deleted(
        self, bucket: str, key: str, deleted_at: str, expires_at: int | None
    ) -> int:
        marked = 0
        for variant_key, variant in list(self.variants.items()):
            if variant_key[:2] == (bucket, key) and not variant.deleted_at:
                self.variants[variant_key] = replace(variant, deleted_at=deleted_at)
                marked += 1
        for run_key, run in list(self.past_runs.items()):
            if run_key[:2] == (bucket, key) and not run.deleted_at:
                self.past_runs[run_key] = replace(run, deleted_at=deleted_at)
                marked += 1
        return marked

    # --- Jobs --------------------------------------------------------------------------------
    async def create(self, job: JobRecord) -> bool:
        if job.job_id in self.jobs:
            return False
        self.jobs[job.job_id] = job
        return True

    async def ensure_default(self, job_id: str, shards: int) -> None:
        await self.create(
            JobRecord(job_id, JobStatus.RUNNING.value, JobKind.UPLOADS.value, utc_now(), shards)
        )

    async def get(self, job_id: str) -> JobRecord | None:
        return self.jobs.get(job_id)

    async def require(self, job_id: str) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def progress(self, job_id: str) -> JobProgress:
        return JobProgress(await self.require(job_id), self.counters.get(job_id, JobCounters()))

    async def seal(self, job_id: str, expected_sources: int) -> None:
        job = await self.require(job_id)
        self.jobs[job_id] = replace(job, sealed=True, expected_sources=expected_sources)

    async def request_cancel(self, job_id: str) -> JobRecord:
        job = await self.require(job_id)
        if job.status == JobStatus.RUNNING:
            self.jobs[job_id] = replace(job, status=JobStatus.CANCELLING.value)
        return self.jobs[job_id]

    async def finish_if_done(self, job_id: str) -> JobProgress | None:
        # None for an unknown job, and for one not sealed (it cannot end yet), as JobTable.
        if job_id not in self.jobs or not self.jobs[job_id].sealed:
            return None
        progress = await self.progress(job_id)
        if progress.finished and progress.job.status != progress.final_status():
            self.jobs[job_id] = replace(progress.job, status=progress.final_status().value)
        return await self.progress(job_id)

    async def claim_job_announcement(self, job_id: str, at: str, stale_before: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.announced_at:
            return False
        claimed = self.announcing.get(("job", job_id, "", False))
        if claimed is not None and claimed >= stale_before:
            return False
        self.announcing[("job", job_id, "", False)] = at
        return True

    async def mark_job_announced(self, job_id: str, at: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.announced_at:
            return False
        self.jobs[job_id] = replace(job, announced_at=at)
        return True

    async def records(self, job: JobRecord) -> AsyncIterator[SourceRecord | VariantRecord]:
        everything: list[SourceRecord | VariantRecord] = [
            *self.sources.values(),
            *self.past_runs.values(),
            *self.variants.values(),
        ]
        for record in everything:
            if record.job_id == job.job_id:
                yield record

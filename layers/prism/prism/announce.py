"""Telling the world a source or job is finished: the source's responsive manifest in the
output bucket, and one EventBridge event per source run and per job.

A source run is announced by the function whose write settled it, and, if that function
died before it was done, by the redelivery of its messages (``Outcomes.settle_run``):
manifest, event, mark on the run's record, in that order, so a function that dies on the
way leaves it to the redelivery, and a run marked announced is not announced again.
Calls for one run within a function (the variants of one source settled at once) share
one announcement. The worker announces the runs its batch settled together, once the
batch is done (``sources_finished``: their events in one PutEvents call), and has the
messages of a run whose announcement failed retried. One function dying between
publishing and marking, or SQS handing one message to two functions at the same moment,
can publish a run twice, so the event's ``run_id`` (the same each time) is what a
consumer keys on.

A job is announced once: its "Job Completed" is claimed on the job item first, a
conditional write one caller wins (many workers may see the job end at once); a claim
older than ANNOUNCE_LEASE_SECONDS (its holder died) is taken over by the next caller.

A manifest is written with its run's order, like a variant's output, and the mark on the
source record is conditional on the run still being the source's current one: a
manifest written for a run that was superseded or deleted meanwhile is removed again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prism.jobs import JobProgress
from prism.observability import logger
from prism.ports import Event, EventPublisher, Jobs, Objects, ProcessingLog, WriteResult
from prism.records import (
    SourceRecord,
    SourceState,
    SourceStatus,
    VariantRecord,
    VariantStatus,
    utc_now,
)

SOURCE_PROCESSED = "Source Processed"
SOURCE_DELETED = "Source Deleted"
JOB_COMPLETED = "Job Completed"
MANIFEST_CONTENT_TYPE = "application/json"
# A manifest changes with every run of its source: caches must ask again.
MANIFEST_CACHE_CONTROL = "no-cache"
MANIFEST_VERSION = 1
# Longer than any function runs (the worker's timeout is 120 s): a claim this old was its
# holder's last act.
ANNOUNCE_LEASE_SECONDS = 300


def _stale_before() -> str:
    stale = datetime.now(UTC) - timedelta(seconds=ANNOUNCE_LEASE_SECONDS)
    return stale.isoformat(timespec="milliseconds")


def variant_summary(variant: VariantRecord) -> dict[str, Any]:
    """One variant as the event and the manifest describe it."""
    summary: dict[str, Any] = {"name": variant.variant, "status": variant.status}
    if variant.status == VariantStatus.DONE:
        summary |= {
            "key": variant.output_key,
            "format": (variant.format or "").lower() or None,
            "width": variant.width,
            "height": variant.height,
            "bytes": variant.bytes,
        }
        if variant.reused_from:
            summary["reused_from"] = variant.reused_from
    else:
        summary |= {"reason": variant.reason, "error": variant.error}
    return summary


def srcsets(variants: Sequence[VariantRecord], base_url: str = "") -> dict[str, str]:
    """A ready-made ``srcset`` per output format: each done variant's URL and width,
    widest first. URLs are ``base_url`` followed by the output key."""
    by_format: dict[str, list[VariantRecord]] = {}
    for variant in variants:
        if variant.status == VariantStatus.DONE and variant.output_key and variant.width:
            by_format.setdefault(str(variant.format).lower(), []).append(variant)
    return {
        fmt: ", ".join(
            f"{base_url}{v.output_key} {v.width}w"
            for v in sorted(group, key=lambda v: (-(v.width or 0), v.variant))
        )
        for fmt, group in sorted(by_format.items())
    }


def manifest(source: SourceRecord, variants: Sequence[VariantRecord]) -> dict[str, Any]:
    """The source's responsive manifest (docs/manifest.md describes every field)."""
    base_url = source.url_base or ""
    original = source.original
    done = [v for v in variants if v.status == VariantStatus.DONE]
    return {
        "version": MANIFEST_VERSION,
        "source": {
            "bucket": source.bucket,
            "key": source.key,
            "bytes": source.size,
            "width": original.width if original else None,
            "height": original.height if original else None,
            "format": original.format if original else None,
        },
        "run_id": source.run_id,
        "status": source.status,
        "placeholder": {
            "blurhash": original.blurhash if original else None,
            "dominant_colour": original.dominant_colour if original else None,
        },
        "variants": [
            {**variant_summary(v), "url": f"{base_url}{v.output_key}"}
            for v in sorted(done, key=lambda v: v.variant)
        ],
        "srcset": srcsets(done, base_url),
    }


def source_detail(
    source: SourceRecord, variants: Sequence[VariantRecord], manifest_key: str | None
) -> dict[str, Any]:
    """The detail of a "Source Processed" event."""
    original = source.original
    return {
        "bucket": source.bucket,
        "key": source.key,
        "run_id": source.run_id,
        "job_id": source.job_id,
        "status": source.status,
        "reason": source.reason,
        "original": (
            {"width": original.width, "height": original.height, "format": original.format}
            if original
            else None
        ),
        "variants": [variant_summary(v) for v in sorted(variants, key=lambda v: v.variant)],
        "manifest_key": manifest_key,
        "finished_at": source.finished_at,
    }


# A source's run: its bucket, key and run id.
RunKey = tuple[str, str, str]


@dataclass(frozen=True)
class FinishedRun:
    """A source run just settled; ``state``: the source as the write that settled it left
    it, if known exactly (else it is read)."""

    bucket: str
    key: str
    run_id: str
    state: SourceState | None = None

    @property
    def run(self) -> RunKey:
        return (self.bucket, self.key, self.run_id)


@dataclass(frozen=True)
class _Announcement:
    """A finished run's event, once its manifest (key and ETag, if any) is written."""

    finished: FinishedRun
    event: Event
    manifest: tuple[str, str | None] | None


class Announcer:
    """Writes manifests and publishes events (``events`` None: events are switched off)."""

    def __init__(
        self,
        log: ProcessingLog,
        jobs: Jobs,
        objects: Objects,
        events: EventPublisher | None,
        output_bucket: str,
    ) -> None:
        self._log = log
        self._jobs = jobs
        self._objects = objects
        self._events = events
        self._output_bucket = output_bucket
        self._announcing: dict[RunKey, asyncio.Future[None]] = {}

    async def source_finished(self, finished: FinishedRun) -> None:
        """Announce the source's current run, if it is ``finished``'s, finished and not yet
        announced; concurrent calls for the same run share one announcement."""
        pending = self._announcing.get(finished.run)
        if pending is None:
            pending = self._announcing[finished.run] = asyncio.ensure_future(
                self._announce_one(finished)
            )
            pending.add_done_callback(lambda _: self._announcing.pop(finished.run, None))
        await asyncio.shield(pending)

    async def _announce_one(self, finished: FinishedRun) -> None:
        failures = await self.sources_finished([finished])
        if finished.run in failures:
            raise failures[finished.run]

    async def sources_finished(self, runs: Sequence[FinishedRun]) -> dict[RunKey, BaseException]:
        """Announce several runs together (the worker's batch): each one's manifest, then
        one publishing of all their events, then each one's mark. What failed, by run: that
        run stays unannounced, for its messages' redelivery to announce."""
        failures: dict[RunKey, BaseException] = {}
        prepared = await asyncio.gather(*map(self._prepare, runs), return_exceptions=True)
        ready: list[_Announcement] = []
        for finished, outcome in zip(runs, prepared, strict=True):
            if isinstance(outcome, BaseException):
                failures[finished.run] = outcome
            elif outcome is not None:
                ready.append(outcome)
        errors = await self._publish([announcement.event for announcement in ready])
        published = []
        for announcement, error in zip(ready, errors, strict=True):
            if error is None:
                published.append(announcement)
            else:
                failures[announcement.finished.run] = error
        marks = await asyncio.gather(*map(self._mark, published), return_exceptions=True)
        for announcement, mark in zip(published, marks, strict=True):
            if isinstance(mark, BaseException):
                failures[announcement.finished.run] = mark
        return failures

    async def _prepare(self, finished: FinishedRun) -> _Announcement | None:
        """The run's event, its manifest written first; None: nothing to announce (not the
        source's current run, not finished, or announced already)."""
        source: SourceRecord | None
        recorded: Mapping[str, VariantRecord]
        if finished.state is None:
            source, recorded = await self._log.source_state(finished.bucket, finished.key)
        else:
            source, recorded = finished.state.source, finished.state.variants
        if (
            source is None
            or source.run_id != finished.run_id
            or source.status in (SourceStatus.PROCESSING, SourceStatus.DELETED)
            or not source.finished
            or source.announced_at
        ):
            return None
        variants = [v for v in recorded.values() if v.run_id == finished.run_id]
        # The manifest lists every variant the source has now: a run that rendered only
        # some (a backfill with --missing-only) keeps the others' outputs, and their records.
        written = await self._write_manifest(source, list(recorded.values()))
        manifest_key = source.manifest_key if written else None
        event = Event(SOURCE_PROCESSED, source_detail(source, variants, manifest_key))
        return _Announcement(finished, event, written)

    async def _mark(self, announcement: _Announcement) -> None:
        bucket, key, run_id = announcement.finished.run
        marked = await self._log.mark_announced(bucket, key, run_id, utc_now())
        if not marked and announcement.manifest:
            # Superseded or deleted since it was read: its manifest must not stay.
            manifest_key, etag = announcement.manifest
            await self._objects.delete_if_unchanged(self._output_bucket, manifest_key, etag)

    async def past_run_finished(self, bucket: str, key: str, run_id: str) -> None:
        """Announce a run that never rendered (gone, overwritten or cancelled before its
        fan-out, or given up), once: its ``RUN#`` record carries the mark."""
        record = await self._log.get_past_run(bucket, key, run_id)
        if record is None or record.announced_at:
            return
        await self._publish_one(SOURCE_PROCESSED, source_detail(record, [], None))
        await self._log.mark_announced(bucket, key, run_id, utc_now(), past=True)

    async def source_deleted(self, deletion: SourceRecord, removed: Sequence[str]) -> None:
        """Announce a deletion (``deletion`` as registered, or found registered), once."""
        if deletion.announced_at:
            return
        await self._publish_one(
            SOURCE_DELETED,
            {
                "bucket": deletion.bucket,
                "key": deletion.key,
                "run_id": deletion.run_id,
                "deleted_at": deletion.deleted_at,
                "removed_keys": sorted(removed),
            },
        )
        await self._log.mark_announced(deletion.bucket, deletion.key, deletion.run_id, utc_now())

    async def job_finished(self, progress: JobProgress | None) -> None:
        """Publish the job's "Job Completed" event once, if ``progress`` (what finishing it
        read) says it has ended."""
        if progress is None or not progress.finished or progress.job.announced_at:
            return
        job_id = progress.job.job_id
        if not await self._jobs.claim_job_announcement(job_id, utc_now(), _stale_before()):
            return
        counters = progress.counters
        await self._publish_one(
            JOB_COMPLETED,
            {
                "job_id": job_id,
                "status": progress.final_status().value,
                "sources": {
                    "expected": progress.expected_sources,
                    "finished": counters.sources_finished,
                    "failed": counters.sources_failed,
                    "skipped": counters.sources_skipped,
                },
                "variants": {
                    "expected": counters.variants_expected,
                    "done": counters.variants_done,
                    "failed": counters.variants_failed,
                    "skipped": counters.variants_skipped,
                },
                "bytes_in": counters.bytes_in,
                "bytes_out": counters.bytes_out,
            },
        )
        await self._jobs.mark_job_announced(job_id, utc_now())

    async def _write_manifest(
        self, source: SourceRecord, variants: Sequence[VariantRecord]
    ) -> tuple[str, str | None] | None:
        """The manifest's key and ETag, once written (None: the run has no done variant,
        no manifest key, or a later run's manifest is there)."""
        key = source.manifest_key
        if not key or not any(v.status == VariantStatus.DONE for v in variants):
            return None
        body = json.dumps(manifest(source, variants), indent=1, sort_keys=True).encode()
        result, etag = await self._objects.write_in_order(
            self._output_bucket,
            key,
            body,
            content_type=MANIFEST_CONTENT_TYPE,
            run_id=source.run_id,
            order=source.generation,
            metadata={},
            cache_control=MANIFEST_CACHE_CONTROL,
        )
        return (key, etag) if result is WriteResult.WRITTEN else None

    async def _publish_one(self, detail_type: str, detail: dict[str, Any]) -> None:
        (error,) = await self._publish([Event(detail_type, detail)])
        if error is not None:
            raise error

    async def _publish(self, events: Sequence[Event]) -> list[BaseException | None]:
        if self._events is None or not events:
            return [None] * len(events)
        errors = await self._events.publish(events)
        published = [
            {"detail_type": event.detail_type, "key": event.detail.get("key")}
            for event, error in zip(events, errors, strict=True)
            if error is None
        ]
        if published:
            logger.info("Events published", events=published)
        return errors

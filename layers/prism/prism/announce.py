"""Telling the world a source or job is finished: the source's responsive manifest in the
output bucket, and one EventBridge event per source run and per job.

A source run is announced by whoever settles it, and again by any later call for the same
run (a redelivery) until it is marked announced on the run's record: manifest, event,
mark, in that order, so a function that dies on the way leaves it to the redelivery.
Calls for one run within a function (the variants of one source settled at once) share
one announcement. Two functions settling the same run at the same moment, or one dying
between publishing and marking, can publish it twice, so the event's ``run_id`` (the same
each time) is what a consumer keys on.

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
from datetime import UTC, datetime, timedelta
from typing import Any

from prism.jobs import JobProgress
from prism.observability import logger
from prism.ports import EventPublisher, Jobs, Objects, ProcessingLog, WriteResult
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
        self._announcing: dict[tuple[str, str, str], asyncio.Future[None]] = {}

    async def source_finished(
        self, bucket: str, key: str, run_id: str, state: SourceState | None = None
    ) -> None:
        """Announce the source's current run, if it is ``run_id``, finished and not yet
        announced. ``state``: the source as the caller's write left it (else it is read)."""
        run = (bucket, key, run_id)
        pending = self._announcing.get(run)
        if pending is None:
            pending = self._announcing[run] = asyncio.ensure_future(
                self._announce_source(bucket, key, run_id, state)
            )
            pending.add_done_callback(lambda _: self._announcing.pop(run, None))
        await asyncio.shield(pending)

    async def _announce_source(
        self, bucket: str, key: str, run_id: str, state: SourceState | None
    ) -> None:
        source: SourceRecord | None
        recorded: Mapping[str, VariantRecord]
        if state is None:
            source, recorded = await self._log.source_state(bucket, key)
        else:
            source, recorded = state.source, state.variants
        if (
            source is None
            or source.run_id != run_id
            or source.status in (SourceStatus.PROCESSING, SourceStatus.DELETED)
            or not source.finished
            or source.announced_at
        ):
            return
        variants = [v for v in recorded.values() if v.run_id == run_id]
        # The manifest lists every variant the source has now: a run that rendered only
        # some (a backfill with --missing-only) keeps the others' outputs, and their records.
        written = await self._write_manifest(source, list(recorded.values()))
        manifest_key = source.manifest_key if written else None
        await self._publish(SOURCE_PROCESSED, source_detail(source, variants, manifest_key))
        if not await self._log.mark_announced(bucket, key, run_id, utc_now()) and written:
            # Superseded or deleted since it was read: its manifest must not stay.
            await self._objects.delete_if_unchanged(self._output_bucket, written[0], written[1])

    async def past_run_finished(self, bucket: str, key: str, run_id: str) -> None:
        """Announce a run that never rendered (gone, overwritten or cancelled before its
        fan-out, or given up), once: its ``RUN#`` record carries the mark."""
        record = await self._log.get_past_run(bucket, key, run_id)
        if record is None or record.announced_at:
            return
        await self._publish(SOURCE_PROCESSED, source_detail(record, [], None))
        await self._log.mark_announced(bucket, key, run_id, utc_now(), past=True)

    async def source_deleted(self, deletion: SourceRecord, removed: Sequence[str]) -> None:
        """Announce a deletion (``deletion`` as registered, or found registered), once."""
        if deletion.announced_at:
            return
        await self._publish(
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
        await self._publish(
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

    async def _publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        if self._events is None:
            return
        await self._events.publish(detail_type, detail)
        logger.info("Event published", detail_type=detail_type, key=detail.get("key"))

"""Worker: render a batch of variant tasks, decoding each source once for all its variants."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from PIL import Image
from pydantic import ValidationError

from prism.aws.clients import Clients, open_clients
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable, RecordResult, utc_now
from prism.aws.storage import ObjectStore, parse_s3_location
from prism.batch import BatchResults, OncePerBatch
from prism.config import Limits, Variant, Watermark
from prism.errors import PermanentError, Reason
from prism.imaging import (
    Source,
    check_limits,
    decode,
    decode_source,
    probe_header,
    render_variant,
    source_animation,
)
from prism.jobs import JobRecord
from prism.messages import SourceRef, VariantTask
from prism.observability import logger, metrics
from prism.records import VariantRecord, VariantStatus
from prism.settings import Settings

T = TypeVar("T")

# Bytes fetched first to read a large source's header (dimensions, frame count).
PROBE_BYTES = 64 * 1024

# Pillow releases the GIL while it decodes, resamples and encodes, so a few threads use
# every core of the Lambda. One pool per process bounds the CPU work of all invocations.
_executor: ThreadPoolExecutor | None = None


def image_executor(threads: int) -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pillow")
    return _executor


class Worker:
    def __init__(self, clients: Clients, settings: Settings) -> None:
        self._store = ObjectStore(clients.s3)
        self._table = ProcessingTable(clients.dynamodb, settings.table_name)
        self._jobs = JobTable(clients.dynamodb, settings.table_name)
        self._settings = settings
        self._io = asyncio.Semaphore(settings.io_concurrency)
        self._sources = asyncio.Semaphore(settings.source_concurrency)
        self._executor = image_executor(settings.image_threads)
        self._logos: OncePerBatch[tuple[str, str], Image.Image] = OncePerBatch()
        # One read per job per batch: a cancellation is seen by the next batch.
        self._jobs_seen: OncePerBatch[str, JobRecord | None] = OncePerBatch()

    async def process(self, records: Sequence[SQSRecord]) -> BatchResults:
        results: dict[str, BaseException | None] = {}
        by_source: dict[tuple[str, str], list[tuple[str, VariantTask]]] = {}
        for record in records:
            try:
                task = VariantTask.model_validate_json(record.body)
            except ValidationError as exc:
                # Not ours to interpret: let it retry into the DLQ, where it can be inspected.
                logger.error(
                    "Malformed variant message", message_id=record.message_id, error=str(exc)
                )
                results[record.message_id] = exc
                continue
            by_source.setdefault((task.source.id, task.run_id), []).append(
                (record.message_id, task)
            )
        for group_results in await asyncio.gather(
            *(self._process_source_bounded(items) for items in by_source.values())
        ):
            results.update(group_results)
        return results

    async def _process_source_bounded(
        self, items: list[tuple[str, VariantTask]]
    ) -> dict[str, BaseException | None]:
        async with self._sources:
            return await self._process_source(items)

    async def _process_source(
        self, items: list[tuple[str, VariantTask]]
    ) -> dict[str, BaseException | None]:
        tasks = [task for _, task in items]
        job_id = tasks[0].job_id
        job = await self._jobs_seen.get(job_id, functools.partial(self._jobs.get, job_id))
        if job is not None and job.cancelled:
            # Not started yet, and its job is being cancelled: skip without rendering.
            cancelled = PermanentError(Reason.CANCELLED, f"job {job.job_id} was cancelled")
            outcomes = await asyncio.gather(
                *(self._record_rejection(task, cancelled) for task in tasks),
                return_exceptions=True,
            )
            return self._results(items, outcomes)
        try:
            image = await self._load_source(
                tasks[0].source, tasks[0].limits, [task.variant for task in tasks]
            )
        except PermanentError as error:
            logger.warning(
                "Source rejected",
                source=tasks[0].source.id,
                reason=error.reason.value,
                error=error.detail,
            )
            outcomes = await asyncio.gather(
                *(self._record_rejection(task, error) for task in tasks), return_exceptions=True
            )
        else:
            await self._table.mark_loaded(
                tasks[0].source.bucket,
                tasks[0].source.key,
                tasks[0].run_id,
                tasks[0].job_id,
                tasks[0].shard,
            )
            outcomes = await asyncio.gather(
                *(self._render_variant(task, image) for task in tasks), return_exceptions=True
            )
        return self._results(items, outcomes)

    def _results(
        self, items: list[tuple[str, VariantTask]], outcomes: Sequence[object]
    ) -> dict[str, BaseException | None]:
        results: dict[str, BaseException | None] = {}
        for (message_id, task), outcome in zip(items, outcomes, strict=True):
            results[message_id] = outcome if isinstance(outcome, BaseException) else None
            if isinstance(outcome, BaseException):
                logger.warning(
                    "Variant not finished; SQS will retry it",
                    source=task.source.id,
                    variant=task.variant.name,
                    error=repr(outcome),
                    exc_info=outcome,
                )
        return results

    async def _load_source(
        self, source: SourceRef, limits: Limits, variants: Sequence[Variant]
    ) -> Source:
        _check_size(source.size, limits, source.id)
        data = None
        if source.size is None or source.size > PROBE_BYTES:
            # Refuse an oversized or bomb-like image from its header, before fetching it all.
            async with self._io:
                prefix = await self._store.read(
                    source.bucket, source.key, etag=source.etag, first_bytes=PROBE_BYTES
                )
            complete = len(prefix) < PROBE_BYTES
            info = probe_header(prefix, complete=complete, max_pixels=limits.max_source_pixels)
            if info is not None:
                check_limits(
                    info, max_pixels=limits.max_source_pixels, animation=source_animation(variants)
                )
            data = prefix if complete else None
        if data is None:
            async with self._io:
                data = await self._store.read(source.bucket, source.key, etag=source.etag)
        _check_size(len(data), limits, source.id)
        return await self._in_thread(
            decode_source, data, max_pixels=limits.max_source_pixels, variants=variants
        )

    async def _render_variant(self, task: VariantTask, image: Source) -> None:
        started = time.perf_counter()
        try:
            logo = await self._logo(task.watermark, task.limits)
            rendered = await self._in_thread(
                render_variant, image, task.variant, task.watermark, logo
            )
        except PermanentError as error:
            await self._record_rejection(task, error)
            return
        async with self._io:
            await self._store.write(
                self._settings.output_bucket,
                task.output_key,
                rendered.data,
                content_type=rendered.content_type,
                metadata={"prism-variant": task.variant.name, "prism-run": task.run_id},
            )
        duration_ms = round((time.perf_counter() - started) * 1000)
        await self._record(
            task,
            _variant_record(
                task,
                status=VariantStatus.DONE,
                output_key=task.output_key,
                format=rendered.format,
                width=rendered.width,
                height=rendered.height,
                bytes=len(rendered.data),
                duration_ms=duration_ms,
                frames=rendered.frames,
                stripped=list(rendered.stripped),
            ),
        )
        metrics.add_metric(name="VariantsRendered", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RenderDuration", unit=MetricUnit.Milliseconds, value=duration_ms)

    async def _record_rejection(self, task: VariantTask, error: PermanentError) -> None:
        status = VariantStatus.SKIPPED if error.skipped else VariantStatus.FAILED
        await self._record(
            task,
            _variant_record(task, status=status, reason=error.reason.value, error=error.detail),
        )
        metrics.add_metric(
            name="VariantsSkipped" if error.skipped else "VariantsFailed",
            unit=MetricUnit.Count,
            value=1,
        )

    async def _record(self, task: VariantTask, record: VariantRecord) -> None:
        async with self._io:
            result = await self._table.record_variant(record)
            if result is RecordResult.STALE:
                logger.info(
                    "Outcome of a superseded run dropped", source=task.source.id, run_id=task.run_id
                )
                return
            _, finished_now = await self._table.complete_source_if_finished(
                task.source.bucket, task.source.key, task.run_id
            )
            if finished_now:
                await self._jobs.finish_if_done(task.job_id)

    async def _logo(self, watermark: Watermark | None, limits: Limits) -> Image.Image | None:
        """The watermark's logo, fetched and decoded once per batch."""
        if watermark is None or watermark.image is None:
            return None
        location = parse_s3_location(watermark.image, self._settings.input_bucket)
        return await self._logos.get(
            location, functools.partial(self._load_logo, *location, limits)
        )

    async def _load_logo(self, bucket: str, key: str, limits: Limits) -> Image.Image:
        async with self._io:
            data = await self._store.read(bucket, key)
        return await self._in_thread(decode, data, max_pixels=limits.max_source_pixels)

    async def _in_thread(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )


def _variant_record(task: VariantTask, *, status: VariantStatus, **fields: Any) -> VariantRecord:
    return VariantRecord(
        bucket=task.source.bucket,
        key=task.source.key,
        variant=task.variant.name,
        run_id=task.run_id,
        job_id=task.job_id,
        shard=task.shard,
        status=status.value,
        finished_at=utc_now(),
        **fields,
    )


def _check_size(size: int | None, limits: Limits, source_id: str) -> None:
    if size is not None and size > limits.max_source_bytes:
        raise PermanentError(
            Reason.TOO_LARGE,
            f"{source_id} is {size} bytes; the limit is {limits.max_source_bytes}",
        )
    if size == 0:
        raise PermanentError(Reason.EMPTY_FILE, f"{source_id} is empty")


async def render_batch(records: Sequence[SQSRecord], settings: Settings) -> BatchResults:
    async with open_clients() as clients:
        return await Worker(clients, settings).process(records)

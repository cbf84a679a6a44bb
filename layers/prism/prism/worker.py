"""Worker: render a batch of variant tasks, decoding each source once for all its variants."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from PIL import Image
from pydantic import ValidationError

from prism.aws.clients import Clients, open_clients
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable, RecordResult
from prism.aws.storage import ObjectStore, WriteResult, parse_s3_location
from prism.batch import BatchResults, OncePerBatch
from prism.config import Limits, Variant, Watermark
from prism.errors import PermanentError, Reason, TransientError
from prism.imaging import (
    PROBE_BYTES,
    Source,
    admit_header,
    check_size,
    decode,
    decode_source,
    render_variant,
    source_animation,
)
from prism.jobs import JobRecord
from prism.last_chance import persistently
from prism.messages import SourceRef, VariantTask
from prism.observability import logger, metrics
from prism.outcomes import rejection_record, variant_record
from prism.records import VariantRecord, VariantStatus
from prism.settings import Settings

T = TypeVar("T")

# Pillow releases the GIL while it decodes, resamples and encodes, so a few threads use
# every core of the Lambda. One pool per process bounds the CPU work of all invocations.
_executor: ThreadPoolExecutor | None = None


def image_executor(threads: int) -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pillow")
    return _executor


@dataclass(frozen=True)
class Delivery:
    """One variant-queue message of the batch."""

    message_id: str
    task: VariantTask
    # How many times SQS has handed this message out, this time included.
    receive_count: int


class Worker:
    def __init__(
        self,
        clients: Clients,
        settings: Settings,
        remaining_ms: Callable[[], int] | None = None,
    ) -> None:
        self._store = ObjectStore(clients.s3)
        self._table = ProcessingTable(clients.dynamodb, settings.table_name)
        self._jobs = JobTable(clients.dynamodb, settings.table_name)
        self._settings = settings
        self._remaining_ms = remaining_ms
        self._io = asyncio.Semaphore(settings.io_concurrency)
        self._sources = asyncio.Semaphore(settings.source_concurrency)
        self._executor = image_executor(settings.image_threads)
        self._logos: OncePerBatch[tuple[str, str], Image.Image] = OncePerBatch()
        # One read per job per batch: a cancellation is seen by the next batch.
        self._jobs_seen: OncePerBatch[str, JobRecord | None] = OncePerBatch()

    async def process(self, records: Sequence[SQSRecord]) -> BatchResults:
        results: dict[str, BaseException | None] = {}
        by_source: dict[tuple[str, str], list[Delivery]] = {}
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
            receive_count = int(record.attributes.approximate_receive_count or 1)
            by_source.setdefault((task.source.id, task.run_id), []).append(
                Delivery(record.message_id, task, receive_count)
            )
        for group_results in await asyncio.gather(
            *(self._process_source_bounded(items) for items in by_source.values())
        ):
            results.update(group_results)
        return results

    async def _process_source_bounded(
        self, deliveries: list[Delivery]
    ) -> dict[str, BaseException | None]:
        async with self._sources:
            if self._out_of_time():
                # Started now, it could run past the timeout, and Lambda would then retry the
                # whole batch, finished variants included: hand it back to SQS untouched.
                deferred = TransientError("not started: too little time left in this invocation")
                return await self._results(deliveries, [deferred] * len(deliveries))
            try:
                outcomes = await self._process_source([d.task for d in deliveries])
            except Exception as exc:  # the source's shared steps failed: retry all of it
                outcomes = [exc] * len(deliveries)
            return await self._results(deliveries, outcomes)

    def _out_of_time(self) -> bool:
        if self._remaining_ms is None:
            return False
        return self._remaining_ms() < self._settings.time_reserve_seconds * 1000

    async def _process_source(self, tasks: list[VariantTask]) -> list[BaseException | None]:
        """Each task's outcome (None: accounted for) for one run of one source."""
        first = tasks[0]
        source, recorded = await self._table.source_state(first.source.bucket, first.source.key)
        if source is None or source.run_id != first.run_id:
            # A superseded run: its outcomes would count nothing, so it renders nothing.
            logger.info("Tasks of a superseded run dropped", source=first.source.id)
            return [None] * len(tasks)
        # A redelivered task whose outcome this run has recorded already needs no new work.
        duplicates = [
            task
            for task in tasks
            if task.variant.name in recorded
            and recorded[task.variant.name].run_id == task.run_id
            and recorded[task.variant.name].reason != Reason.RETRIES_EXHAUSTED
        ]
        if duplicates:
            metrics.add_metric(
                name="DuplicateTasksSkipped", unit=MetricUnit.Count, value=len(duplicates)
            )
            await asyncio.gather(
                *(
                    self._remove_stale_output(task)
                    for task in duplicates
                    if recorded[task.variant.name].status != VariantStatus.DONE
                )
            )
            await self._settle(first)
        # One render per variant, however often its message is in this batch.
        done_before = {task.variant.name for task in duplicates}
        unique = {task.variant.name: task for task in tasks}
        todo = [task for name, task in unique.items() if name not in done_before]
        outcomes: dict[str, BaseException | None] = {t.variant.name: None for t in duplicates}
        if todo:
            results = await self._render_source(todo)
            outcomes.update(
                (task.variant.name, result) for task, result in zip(todo, results, strict=True)
            )
        return [outcomes[task.variant.name] for task in tasks]

    async def _render_source(self, tasks: list[VariantTask]) -> list[BaseException | None]:
        first = tasks[0]
        job = await self._jobs_seen.get(
            first.job_id, functools.partial(self._jobs.get, first.job_id)
        )
        if job is not None and job.cancelled:
            # Not started yet, and its job is being cancelled: skip without rendering.
            cancelled = PermanentError(Reason.CANCELLED, f"job {job.job_id} was cancelled")
            return await _gather(self._record_rejection(task, cancelled) for task in tasks)
        try:
            image = await self._load_source(
                first.source, first.limits, [task.variant for task in tasks]
            )
        except PermanentError as error:
            logger.warning(
                "Source rejected",
                source=first.source.id,
                reason=error.reason.value,
                error=error.detail,
            )
            return await _gather(self._record_rejection(task, error) for task in tasks)
        await self._table.mark_loaded(
            first.source.bucket, first.source.key, first.run_id, first.job_id, first.shard
        )
        return await _gather(self._render_variant(task, image) for task in tasks)

    async def _results(
        self, deliveries: list[Delivery], outcomes: Sequence[BaseException | None]
    ) -> dict[str, BaseException | None]:
        results: dict[str, BaseException | None] = {}
        for delivery, outcome in zip(deliveries, outcomes, strict=True):
            results[delivery.message_id] = outcome
            if outcome is None:
                continue
            task = delivery.task
            logger.warning(
                "Variant not finished; SQS will retry it",
                source=task.source.id,
                variant=task.variant.name,
                receive_count=delivery.receive_count,
                error=repr(outcome),
                exc_info=outcome,
            )
            if delivery.receive_count >= self._settings.variants_max_receive_count:
                await self._record_exhausted(delivery, outcome)
        return results

    async def _record_exhausted(self, delivery: Delivery, error: BaseException) -> None:
        """The message's last allowed delivery failed: it goes to the dead-letter queue, and
        its variant is recorded failed now, so that its source and job still end. A redrive
        that then succeeds replaces this record (see ProcessingTable.record_variant)."""
        exhausted = PermanentError(
            Reason.RETRIES_EXHAUSTED,
            f"{delivery.receive_count} attempts; the message is in the dead-letter queue; "
            f"last error: {error!r}"[:1000],
        )
        task = delivery.task
        try:
            result = await persistently(
                lambda: self._table.record_variant(rejection_record(task, exhausted))
            )
            if result is not RecordResult.STALE:  # an output of an earlier attempt must go
                await persistently(lambda: self._remove_output_unless_done(task))
            if result is not RecordResult.STALE and await persistently(
                lambda: self._table.settle_source(task.source.bucket, task.source.key, task.run_id)
            ):
                await persistently(lambda: self._jobs.finish_if_done(task.job_id))
        except Exception:
            logger.exception("Could not record an exhausted variant", source=task.source.id)
        metrics.add_metric(name="VariantsExhausted", unit=MetricUnit.Count, value=1)

    async def _load_source(
        self, source: SourceRef, limits: Limits, variants: Sequence[Variant]
    ) -> Source:
        check_size(source.size, limits, source.id)
        data = None
        if source.size is None or source.size > PROBE_BYTES:
            # Refuse an oversized or bomb-like image from its header, before fetching it all.
            async with self._io:
                prefix = await self._store.read(
                    source.bucket,
                    source.key,
                    etag=source.etag,
                    version_id=source.version_id,
                    first_bytes=PROBE_BYTES,
                )
            complete = len(prefix) < PROBE_BYTES
            admit_header(
                prefix, complete=complete, limits=limits, animation=source_animation(variants)
            )
            data = prefix if complete else None
        if data is None:
            async with self._io:
                data = await self._store.read(
                    source.bucket, source.key, etag=source.etag, version_id=source.version_id
                )
        check_size(len(data), limits, source.id)
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
            written, etag = await self._store.write_in_order(
                self._settings.output_bucket,
                task.output_key,
                rendered.data,
                content_type=rendered.content_type,
                run_id=task.run_id,
                order=task.run_order,
                metadata={"prism-variant": task.variant.name},
            )
        if written is WriteResult.NEWER_EXISTS:
            newer = PermanentError(Reason.SUPERSEDED, "a later upload's output is there already")
            await self._record(task, rejection_record(task, newer))
            return
        duration_ms = round((time.perf_counter() - started) * 1000)
        result = await self._record(
            task,
            variant_record(
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
        if result is RecordResult.STALE:
            # Re-uploaded while rendering: this output must not outlive its run's record.
            async with self._io:
                await self._store.delete_if_unchanged(
                    self._settings.output_bucket, task.output_key, etag
                )
            return
        metrics.add_metric(name="VariantsRendered", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RenderDuration", unit=MetricUnit.Milliseconds, value=duration_ms)

    async def _record_rejection(self, task: VariantTask, error: PermanentError) -> None:
        result = await self._record(task, rejection_record(task, error))
        if result is RecordResult.COUNTED:
            # The source's current run has no output for this variant: an older run's (or
            # this run's from an attempt that died before recording) must not stay.
            await self._remove_stale_output(task)
        elif result is RecordResult.DUPLICATE:
            await self._remove_output_unless_done(task)
        metrics.add_metric(
            name="VariantsSkipped" if error.skipped else "VariantsFailed",
            unit=MetricUnit.Count,
            value=1,
        )

    async def _remove_output_unless_done(self, task: VariantTask) -> None:
        """Recorded before (or by this very call, its answer lost and retried): what stands
        is the recorded outcome, and only a ``done`` keeps its output."""
        _, recorded = await self._table.source_state(task.source.bucket, task.source.key)
        existing = recorded.get(task.variant.name)
        if (
            existing is not None
            and existing.run_id == task.run_id
            and existing.status != VariantStatus.DONE
        ):
            await self._remove_stale_output(task)

    async def _remove_stale_output(self, task: VariantTask) -> None:
        async with self._io:
            if await self._store.remove_outputs_up_to(
                self._settings.output_bucket, task.output_key, task.run_order
            ):
                logger.info("Removed an output the current run did not write", key=task.output_key)

    async def _record(self, task: VariantTask, record: VariantRecord) -> RecordResult:
        async with self._io:
            result = await self._table.record_variant(record)
        if result is RecordResult.STALE:
            logger.info(
                "Outcome of a superseded run dropped", source=task.source.id, run_id=task.run_id
            )
            return result
        await self._settle(task)
        return result

    async def _settle(self, task: VariantTask) -> None:
        async with self._io:
            if await self._table.settle_source(task.source.bucket, task.source.key, task.run_id):
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
        try:
            async with self._io:
                data = await self._store.read(bucket, key)
            return await self._in_thread(decode, data, max_pixels=limits.max_source_pixels)
        except PermanentError as error:
            # Not the photo's fault: say it is the watermark that is missing or unreadable.
            raise PermanentError(
                Reason.WATERMARK_MISSING,
                f"watermark logo s3://{bucket}/{key}: {error.reason.value}: {error.detail}",
            ) from error

    async def _in_thread(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )


async def _gather(outcomes: Iterable[Awaitable[None]]) -> list[BaseException | None]:
    results = await asyncio.gather(*outcomes, return_exceptions=True)
    return [result if isinstance(result, BaseException) else None for result in results]


async def render_batch(
    records: Sequence[SQSRecord],
    settings: Settings,
    remaining_ms: Callable[[], int] | None = None,
) -> BatchResults:
    async with open_clients() as clients:
        return await Worker(clients, settings, remaining_ms).process(records)

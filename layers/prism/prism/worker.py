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

from prism.announce import Announcer
from prism.batch import BatchResults, OncePerBatch, receive_count
from prism.budget import MemoryBudget
from prism.config import Limits, Variant, Watermark
from prism.dedupe import Reused, Reuses, content_digest
from prism.errors import PermanentError, Reason, TransientError
from prism.imaging import (
    PROBE_BYTES,
    Source,
    admit_prefix,
    check_size,
    decode,
    decode_footprint,
    decode_source,
    needs_probe,
    render_variant,
)
from prism.imaging.placeholder import placeholder
from prism.jobs import JobRecord
from prism.keys import parse_s3_location
from prism.last_chance import persistently
from prism.messages import SQS_BATCH_LIMIT, SourceRef, VariantTask
from prism.observability import count_failure, logger, metrics, record_render_times
from prism.outcomes import Outcomes, rejection_record, superseded_record, variant_record
from prism.ports import (
    EventPublisher,
    Jobs,
    Objects,
    ProcessingLog,
    RecordResult,
    Vet,
    WriteResult,
)
from prism.recent_decodes import pixel_bytes, recent_decodes
from prism.records import (
    SourceFacts,
    SourceRecord,
    SourceState,
    SourceStatus,
    VariantRecord,
    VariantStatus,
)
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


@dataclass(frozen=True)
class _Attempt:
    """A variant rendered and written, or refused; its outcome not yet recorded."""

    task: VariantTask
    record: VariantRecord
    # The ETag of the output written (a ``done`` record).
    etag: str | None = None
    # Refused (a permanent error): recorded with a rejection's follow-ups.
    rejection: PermanentError | None = None

    @classmethod
    def of(cls, copy: Reused) -> _Attempt:
        """A variant copied from an earlier render (dedupe) instead of rendered."""
        return cls(copy.task, copy.record, copy.etag)


@dataclass(frozen=True)
class SourceTasks:
    """What one batch's tasks of one source's run call for (see ``sort_tasks``)."""

    # False: the source has been registered again since; its tasks count nothing.
    current: bool
    # Recorded already by this run (a redelivery): acknowledged without rendering.
    duplicates: list[VariantTask]
    # To render, once per variant however often its message is in the batch.
    todo: list[VariantTask]


def sort_tasks(
    tasks: Sequence[VariantTask],
    source: SourceRecord | None,
    recorded: dict[str, VariantRecord],
) -> SourceTasks:
    """Sort one run's tasks by what the processing log holds (``source``, ``recorded``)."""
    run_id = tasks[0].run_id
    if source is None or source.run_id != run_id:
        return SourceTasks(current=False, duplicates=[], todo=[])
    duplicates = [
        task
        for task in tasks
        if task.variant.name in recorded
        and recorded[task.variant.name].run_id == task.run_id
        and recorded[task.variant.name].reason != Reason.RETRIES_EXHAUSTED
    ]
    done_before = {task.variant.name for task in duplicates}
    unique = {task.variant.name: task for task in tasks}
    todo = [task for name, task in unique.items() if name not in done_before]
    return SourceTasks(current=True, duplicates=duplicates, todo=todo)


def batch_order(deliveries: Sequence[Delivery]) -> tuple[int, int]:
    """Where one run's tasks go in their batch: first the runs whose first task is here
    with other variants whose tasks are not (rendered ahead: their tasks, in another
    batch, then find them done), then whole runs, last the tails of runs whose first task
    is in another batch (which by then has most likely rendered them). Within each,
    largest uploads first (by bytes, the only size known before fetching): the small ones
    then fill the pool's threads while the last large one is still being decoded."""
    names = {delivery.task.variant.name for delivery in deliveries}
    firsts = [d.task for d in deliveries if d.task.others is not None]
    if any(o.variant.name not in names for task in firsts for o in task.others or ()):
        place = 0
    else:
        place = 1 if firsts else 2
    return place, -(deliveries[0].task.source.size or 0)


def _recorded_for(recorded: dict[str, VariantRecord], task: VariantTask, run_id: str) -> bool:
    record = recorded.get(task.variant.name)
    return record is not None and record.run_id == run_id


def source_facts(source: Source) -> SourceFacts:
    """What the manifest says of the upload: its upright size, format and placeholder."""
    width, height = source.upright_size
    hint = placeholder(source.image)
    return SourceFacts(
        width=width,
        height=height,
        format=source.info.format.lower(),
        blurhash=hint.blurhash,
        dominant_colour=hint.dominant_colour,
    )


class Worker:
    def __init__(
        self,
        objects: Objects,
        log: ProcessingLog,
        jobs: Jobs,
        settings: Settings,
        remaining_ms: Callable[[], int] | None = None,
        events: EventPublisher | None = None,
    ) -> None:
        self._objects = objects
        self._log = log
        self._jobs = jobs
        self._settings = settings
        self._remaining_ms = remaining_ms
        self._io = asyncio.Semaphore(settings.io_concurrency)
        announcer = Announcer(log, jobs, objects, events, settings.output_bucket)
        # A batch's finished sources are announced together once it is done (one
        # PutEvents for all their events), not each as it finishes.
        self._outcomes = Outcomes(
            log,
            jobs,
            objects,
            settings.output_bucket,
            self._io,
            announcer=announcer,
            hold_announcements=True,
        )
        self._sources = asyncio.Semaphore(settings.source_concurrency)
        # One invocation at a time per Lambda container: the invocation's budget is the
        # container's (an emulated local instance is a container of its own).
        self._memory = MemoryBudget(settings.source_memory_mb * 1024 * 1024)
        self._executor = image_executor(settings.image_threads)
        self._reuses = Reuses(objects, log, settings.output_bucket, self._io)
        self._logos: OncePerBatch[tuple[str, str], Image.Image] = OncePerBatch()
        # One read per job per batch: a cancellation is seen by the next batch.
        self._jobs_seen: OncePerBatch[str, JobRecord | None] = OncePerBatch()
        # Each rendered variant's time (ms) by variant name, sent as one metric per name.
        self._render_times: dict[str, list[float]] = {}
        self._ahead_budget = 0

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
            by_source.setdefault((task.source.id, task.run_id), []).append(
                Delivery(record.message_id, task, receive_count(record))
            )
        groups = sorted(by_source.values(), key=batch_order)
        # Variants of other batches' tasks this batch may render (``_tasks_ahead``): at most
        # a full batch's worth, so that it never does more than two batches' work.
        self._ahead_budget = SQS_BATCH_LIMIT
        for group_results in await asyncio.gather(
            *(self._process_source_bounded(items) for items in groups)
        ):
            results.update(group_results)
        await self._announce(groups, results)
        record_render_times(self._render_times)
        return results

    async def _announce(
        self, groups: list[list[Delivery]], results: dict[str, BaseException | None]
    ) -> None:
        """Announce the sources the batch finished; a source that could not be announced
        has its messages retried (the redelivery announces it), unless this was their last
        delivery: then it is tried again now, persistently, as a last chance."""
        failures = await self._outcomes.announce_held()
        for deliveries in groups:
            first = deliveries[0].task
            error = failures.get((first.source.bucket, first.source.key, first.run_id))
            if error is None:
                continue
            last = self._settings.variants_max_receive_count
            if any(delivery.receive_count >= last for delivery in deliveries):
                try:
                    settle = functools.partial(self._outcomes.settle, first, hold=False)
                    await persistently(settle)
                    continue
                except Exception as exc:
                    error = exc
            logger.warning(
                "Source not announced; SQS will retry its messages",
                source=first.source.id,
                error=repr(error),
            )
            for delivery in deliveries:
                if results.get(delivery.message_id) is None:
                    results[delivery.message_id] = error

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
        source, recorded = await self._log.source_state(first.source.bucket, first.source.key)
        sorted_tasks = sort_tasks(tasks, source, recorded)
        if not sorted_tasks.current:
            # A superseded run: its outcomes would count nothing, so it renders nothing.
            logger.info("Tasks of a superseded run dropped", source=first.source.id)
            if source is not None and source.status == SourceStatus.DELETED:
                # An earlier attempt of these tasks may have written before the deletion
                # removed the source's outputs, and died before it could take its back.
                await asyncio.gather(*(self._outcomes.remove_stale_output(t) for t in tasks))
            return [None] * len(tasks)
        duplicates, todo = sorted_tasks.duplicates, sorted_tasks.todo
        if duplicates:
            metrics.add_metric(
                name="DuplicateTasksSkipped", unit=MetricUnit.Count, value=len(duplicates)
            )
            await asyncio.gather(
                *(
                    self._outcomes.remove_stale_output(task)
                    for task in duplicates
                    if recorded[task.variant.name].status != VariantStatus.DONE
                )
            )
            if not all(recorded[task.variant.name].rendered_ahead for task in duplicates):
                # Made good here if the worker that recorded them died before settling
                # and announcing. Variants rendered ahead are not: the batch that did so is
                # most likely still running and holding its announcement (one from here
                # would come twice, and could end the job before that batch's other
                # sources are announced), and if it died, its first task's redelivery
                # settles the run.
                await self._outcomes.settle(first)
        outcomes: dict[str, BaseException | None] = {t.variant.name: None for t in duplicates}
        if todo:
            assert source is not None  # a current run has its source record
            ahead = self._tasks_ahead(tasks, recorded)
            recorded_now = sum(1 for v in recorded.values() if v.run_id == first.run_id)
            more_to_come = recorded_now + len(todo) + len(ahead) < source.expected
            seen = SourceState(source, recorded)
            results = await self._render_source([*todo, *ahead], seen, more_to_come)
            outcomes.update(
                (task.variant.name, result)
                for task, result in zip(todo, results[: len(todo)], strict=True)
            )
            self._count_ahead(ahead, results[len(todo) :])
        return [outcomes[task.variant.name] for task in tasks]

    def _tasks_ahead(
        self, tasks: Sequence[VariantTask], recorded: dict[str, VariantRecord]
    ) -> list[VariantTask]:
        """The variants of the run that the first of ``tasks`` names and that neither this
        batch has a task for nor the processing log holds for the run: rendered from this
        batch's decode, their own tasks (in another batch) then find them recorded. A
        transient failure of one is left to its own task; a permanent one is what its own
        task would have recorded."""
        run_id = tasks[0].run_id
        batch = {task.variant.name for task in tasks}
        # By name: the first task may be in the batch twice (SQS delivers at least once).
        named = {
            other.variant.name: other
            for task in tasks
            for other in task.other_tasks()
            if other.variant.name not in batch and not _recorded_for(recorded, other, run_id)
        }
        ahead = list(named.values())[: max(self._ahead_budget, 0)]
        self._ahead_budget -= len(ahead)
        return ahead

    def _count_ahead(
        self, ahead: Sequence[VariantTask], results: Sequence[BaseException | None]
    ) -> None:
        done = sum(1 for result in results if result is None)
        if done:
            metrics.add_metric(name="VariantsRenderedAhead", unit=MetricUnit.Count, value=done)
        for task, result in zip(ahead, results, strict=True):
            if result is not None:
                logger.info(
                    "Variant not rendered ahead; its own task will render it",
                    source=task.source.id,
                    variant=task.variant.name,
                    error=repr(result),
                )

    async def _render_source(
        self, tasks: list[VariantTask], seen: SourceState, more_to_come: bool = False
    ) -> list[BaseException | None]:
        """Render ``tasks`` of the source run that ``seen`` (read before) is the state of;
        ``more_to_come``: other variants of the run are still to be rendered (by a later
        batch, most likely), so the decode is kept for them."""
        first = tasks[0]
        job = await self._jobs_seen.get(
            first.job_id, functools.partial(self._jobs.get, first.job_id)
        )
        if job is not None and job.cancelled:
            # Not started yet, and its job is being cancelled: skip without rendering.
            cancelled = PermanentError(Reason.CANCELLED, f"job {job.job_id} was cancelled")
            return await _gather(self._outcomes.reject(task, cancelled) for task in tasks)
        variants = [task.variant for task in tasks]
        max_pixels = first.limits.max_source_pixels
        recent = recent_decodes(self._settings.source_memory_mb * 1024 * 1024 // 4)
        kept = None if first.dedupe else recent.take(first, variants)
        if kept is not None:  # decoded by the batch before: no fetch, no decode
            metrics.add_metric(name="DecodesReused", unit=MetricUnit.Count, value=1)
            async with self._memory.reserve(pixel_bytes(kept)):
                results = await self._render_all(tasks, kept, seen, {}, None)
            if more_to_come:
                recent.keep(first, kept)
            return results
        try:
            data = await self._fetch_source(first.source, first.limits, variants)
            content, reused, original = await self._reuse(tasks, data)
            if len(reused) == len(tasks):  # every variant copied: nothing to decode
                attempts = [reused[task.variant.name] for task in tasks]
                return await self._record_all(attempts, seen, original)
            footprint = await self._in_thread(
                decode_footprint, data, max_pixels=max_pixels, variants=variants
            )
            # Decoded while other sources of the batch encode, within the worker's memory.
            async with self._memory.reserve(footprint):
                image = await self._in_thread(
                    decode_source, data, max_pixels=max_pixels, variants=variants
                )
                del data
                results = await self._render_all(tasks, image, seen, reused, content)
            if more_to_come:
                recent.keep(first, image)
            return results
        except PermanentError as error:
            logger.warning(
                "Source rejected",
                source=first.source.id,
                reason=error.reason.value,
                error=error.detail,
            )
            return await _gather(self._outcomes.reject(task, error) for task in tasks)

    async def _reuse(
        self, tasks: list[VariantTask], data: bytes
    ) -> tuple[str | None, dict[str, _Attempt], SourceFacts | None]:
        """With dedupe on: the source's content digest, the variants copied from earlier
        renders of the same bytes (by name), and the source's facts recorded with them."""
        if not tasks[0].dedupe:
            return None, {}, None
        content = await self._in_thread(content_digest, data)
        copies, original = await self._reuses.reuse(tasks, content)
        if copies:
            metrics.add_metric(name="VariantsReused", unit=MetricUnit.Count, value=len(copies))
        return content, {name: _Attempt.of(copy) for name, copy in copies.items()}, original

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
        its variant is recorded failed now, so that its source and job still end."""
        exhausted = PermanentError(
            Reason.RETRIES_EXHAUSTED,
            f"{delivery.receive_count} attempts; the message is in the dead-letter queue; "
            f"last error: {error!r}"[:1000],
        )
        try:
            await self._outcomes.give_up(delivery.task, exhausted)
        except Exception:
            logger.exception(
                "Could not record an exhausted variant", source=delivery.task.source.id
            )
        metrics.add_metric(name="VariantsExhausted", unit=MetricUnit.Count, value=1)
        count_failure(exhausted.reason.value)

    async def _fetch_source(
        self, source: SourceRef, limits: Limits, variants: Sequence[Variant]
    ) -> bytes:
        """The source's bytes, unless its size or header is refused first."""
        check_size(source.size, limits, source.id)
        # An oversized or bomb-like image is refused from its header, before the rest of it
        # is downloaded (in the same GET).
        vet = Vet(PROBE_BYTES, lambda first: admit_prefix(first, limits, variants))
        async with self._io:
            data = await self._objects.read(
                source.bucket,
                source.key,
                etag=source.etag,
                version_id=source.version_id,
                vet=vet if needs_probe(source.size) else None,
            )
        check_size(len(data), limits, source.id)
        return data

    async def _render_all(
        self,
        tasks: list[VariantTask],
        image: Source,
        seen: SourceState,
        reused: dict[str, _Attempt],
        content: str | None,
    ) -> list[BaseException | None]:
        """Render and write every variant not ``reused`` (copied already), then record their
        outcomes (and the source's loaded mark) together."""
        to_render = [task for task in tasks if task.variant.name not in reused]
        facts, *rendered = await asyncio.gather(
            self._in_thread(source_facts, image),
            *(self._attempt(task, image) for task in to_render),
            return_exceptions=True,
        )
        by_name: dict[str, _Attempt | BaseException] = dict(reused)
        for task, attempt in zip(to_render, rendered, strict=True):
            assert isinstance(attempt, _Attempt | BaseException)
            by_name[task.variant.name] = attempt
        original = facts if isinstance(facts, SourceFacts) else None
        results = await self._record_all([by_name[t.variant.name] for t in tasks], seen, original)
        if content is not None:
            # Kept once recorded (a render refused as stale is no render to copy).
            outcome = {t.variant.name: r for t, r in zip(tasks, results, strict=True)}
            done = [
                (a.task, a.record, a.etag)
                for a in rendered
                if isinstance(a, _Attempt)
                and a.etag
                and a.record.status == VariantStatus.DONE
                and outcome[a.task.variant.name] is None
            ]
            await self._reuses.remember(content, done, original)
        return results

    async def _record_all(
        self,
        attempts: Sequence[_Attempt | BaseException],
        seen: SourceState,
        original: SourceFacts | None,
    ) -> list[BaseException | None]:
        """Record the attempts' outcomes together, then do what follows from each."""
        ready = [attempt for attempt in attempts if isinstance(attempt, _Attempt)]
        try:
            results = await self._outcomes.record_many(
                [(a.task, a.record) for a in ready], seen, original
            )
        except Exception as exc:  # nothing known to be recorded: every task is retried
            return [a if isinstance(a, BaseException) else exc for a in attempts]
        followed = iter(
            await _gather(
                self._after_record(attempt, result)
                for attempt, result in zip(ready, results, strict=True)
            )
        )
        return [a if isinstance(a, BaseException) else next(followed) for a in attempts]

    async def _attempt(self, task: VariantTask, image: Source) -> _Attempt:
        """The variant rendered and written (or refused), its outcome not yet recorded."""
        started = time.perf_counter()
        try:
            logo = await self._logo(task.watermark, task.limits)
            rendered = await self._in_thread(
                render_variant, image, task.variant, task.watermark, logo
            )
        except PermanentError as error:
            return _Attempt(task, rejection_record(task, error), rejection=error)
        async with self._io:
            written, etag = await self._objects.write_in_order(
                self._settings.output_bucket,
                task.output_key,
                rendered.data,
                content_type=rendered.content_type,
                run_id=task.run_id,
                order=task.run_order,
                metadata=task.output_metadata,
                cache_control=task.variant.cache_control,
                content_disposition=task.variant.content_disposition,
            )
        if written is WriteResult.NEWER_EXISTS:
            return _Attempt(task, superseded_record(task))
        record = variant_record(
            task,
            status=VariantStatus.DONE,
            output_key=task.output_key,
            format=rendered.format,
            width=rendered.width,
            height=rendered.height,
            bytes=len(rendered.data),
            duration_ms=round((time.perf_counter() - started) * 1000),
            frames=rendered.frames,
            stripped=list(rendered.stripped),
        )
        return _Attempt(task, record, etag=etag)

    async def _after_record(self, attempt: _Attempt, result: RecordResult) -> None:
        task = attempt.task
        if attempt.rejection is not None:
            await self._outcomes.after_rejection(task, attempt.rejection, result)
        elif attempt.record.status != VariantStatus.DONE:
            return  # a later run's output is there: nothing of this one was written
        elif result is RecordResult.STALE:
            await self._outcomes.remove_own_output(task, attempt.etag)
        else:
            metrics.add_metric(name="VariantsRendered", unit=MetricUnit.Count, value=1)
            metrics.add_metric(
                name="RenderDuration",
                unit=MetricUnit.Milliseconds,
                value=attempt.record.duration_ms or 0,
            )
            self._render_times.setdefault(task.variant.name, []).append(
                attempt.record.duration_ms or 0
            )

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
                data = await self._objects.read(bucket, key)
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

"""Fan-out: turn each new or backfilled object into one variant task per variant."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from prism.announce import Announcer
from prism.batch import BatchResults, OncePerBatch, receive_count
from prism.config import PipelineConfig, Variant
from prism.deletion import Deletions
from prism.errors import PermanentError, Reason
from prism.imaging import needed_size
from prism.jobs import JobCounters, JobRecord, default_job_id, shard_of
from prism.keys import COLLISION_FREE_OUTPUT_KEY, MAX_KEY_BYTES, bare_etag, key_too_long
from prism.last_chance import once, persistently
from prism.messages import JOB_METADATA_KEY, VariantTask, with_others
from prism.observability import count_failure, logger, metrics
from prism.outcomes import Outcomes, rejection_record
from prism.ports import (
    EventPublisher,
    Jobs,
    ObjectHead,
    Objects,
    ProcessingLog,
    RecordResult,
    Registration,
    TaskQueue,
)
from prism.records import SourceRecord, SourceStatus, unrendered_status, utc_now
from prism.settings import Settings
from prism.uploads import Upload, removals_in, uploads_in

_UNRENDERED_METRICS = {
    Reason.SUPERSEDED: "UploadsSuperseded",
    Reason.SOURCE_MISSING: "UploadsMissing",
    Reason.RETRIES_EXHAUSTED: "UploadsExhausted",
}


def plan_tasks(
    upload: Upload,
    config: PipelineConfig,
    settings: Settings,
    job_id: str,
    shard: int,
    run_order: int = 0,
) -> list[VariantTask]:
    return [
        VariantTask(
            run_id=upload.run_id,
            run_order=run_order,
            job_id=job_id,
            shard=shard,
            source=upload.source,
            variant=variant,
            watermark=config.effective_watermark(variant),
            output_key=config.output_key_for(upload.source.key, variant, settings.upload_prefix),
            limits=config.limits,
            dedupe=config.dedupe,
        )
        for variant in selected_variants(config, upload.variants)
    ]


def selected_variants(config: PipelineConfig, names: Sequence[str] | None) -> list[Variant]:
    """The variants to render, the one needing the largest picture first: a source's tasks
    go out in that order, so the batch with the first task decodes enough for all of them
    (it renders the others ahead, ``VariantTask.others``), and when a batch ends inside a
    source, the tasks left for the next need no more of the picture than was decoded
    (prism.recent_decodes)."""
    wanted = set(names) if names is not None else None
    chosen = [v for v in config.variants if wanted is None or v.name in wanted]
    return sorted(chosen, key=_picture_needed, reverse=True)


def _picture_needed(variant: Variant) -> float:
    size = needed_size(variant.transforms)
    return math.inf if size is None else size[0] * size[1]


class FanOut:
    def __init__(
        self,
        objects: Objects,
        log: ProcessingLog,
        jobs: Jobs,
        queue: TaskQueue,
        settings: Settings,
        config: PipelineConfig,
        events: EventPublisher | None = None,
    ) -> None:
        self._log = log
        self._jobs = jobs
        self._queue = queue
        self._objects = objects
        self._settings = settings
        self._config = config
        self._announcer = Announcer(log, jobs, objects, events, settings.output_bucket)
        self._outcomes = Outcomes(
            log, jobs, objects, settings.output_bucket, announcer=self._announcer
        )
        self._deletions = Deletions(objects, log, settings, config, self._announcer)
        # One read per job per batch: a cancellation is seen by the next batch.
        self._jobs_seen: OncePerBatch[str, JobRecord | None] = OncePerBatch()

    async def process(self, records: Sequence[SQSRecord]) -> BatchResults:
        outcomes = await asyncio.gather(
            *(self._process_record(record) for record in records), return_exceptions=True
        )
        results: dict[str, BaseException | None] = {}
        for record, outcome in zip(records, outcomes, strict=True):
            results[record.message_id] = outcome if isinstance(outcome, BaseException) else None
            if isinstance(outcome, BaseException):
                logger.warning(
                    "Upload not fanned out; SQS will retry it",
                    message_id=record.message_id,
                    error=repr(outcome),
                    exc_info=outcome,
                )
        return results

    async def _process_record(self, record: SQSRecord) -> None:
        uploads = uploads_in(record)
        removals = removals_in(record)
        if not uploads and not removals:
            logger.info("Ignoring a message that announces no upload", message_id=record.message_id)
        if removals:
            # Idempotent: a redelivery finishes what an earlier attempt left undone.
            await asyncio.gather(*(self._deletions.delete(removal) for removal in removals))
        outcomes = await asyncio.gather(
            *(self._fan_out(upload) for upload in uploads), return_exceptions=True
        )
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if not errors:
            return
        if receive_count(record) >= self._settings.uploads_max_receive_count:
            # The last delivery: the message goes to the dead-letter queue, and its uploads
            # are recorded failed in their jobs now, so that the jobs still end.
            for upload, outcome in zip(uploads, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    await self._give_up(upload, outcome)
        raise errors[0]

    async def _give_up(self, upload: Upload, error: BaseException) -> None:
        bucket, key = upload.source.bucket, upload.source.key
        try:
            source = await persistently(lambda: self._log.get_source(bucket, key))
            if source is not None and source.run_id == upload.run_id:
                await self._give_up_registered(upload, source, error)
                return
            own = await persistently(lambda: self._version_head(upload)) or (
                await persistently(lambda: self._objects.head(bucket, key))
            )
            job = await persistently(lambda: self._job_for(upload, own.metadata if own else {}))
            await self._record_unrendered(
                upload,
                job,
                shard_of(upload.source.id, job.shards),
                Reason.RETRIES_EXHAUSTED,
                step=persistently,
            )
        except Exception:
            logger.exception("Could not record an exhausted upload", source=upload.source.id)

    async def _give_up_registered(
        self, upload: Upload, source: SourceRecord, error: BaseException
    ) -> None:
        """The run was registered on an earlier delivery, but its tasks may not all have
        been sent: every variant not yet recorded ends ``retries_exhausted`` (a task that
        was sent and then succeeds replaces its record), so the source and job end."""
        pinned = {"etag": source.etag, "size": source.size}
        upload = replace(upload, source=upload.source.model_copy(update=pinned))
        tasks = plan_tasks(
            upload, self._config, self._settings, source.job_id, source.shard, source.generation
        )
        if upload.missing_only:
            tasks = await persistently(lambda: self._missing(tasks))
        exhausted = PermanentError(
            Reason.RETRIES_EXHAUSTED,
            f"the upload's fan-out failed on its last delivery: {error!r}"[:1000],
        )
        for record in [rejection_record(task, exhausted) for task in tasks]:
            await persistently(functools.partial(self._log.record_variant, record))
        await persistently(
            lambda: self._outcomes.settle_run(
                source.bucket, source.key, source.run_id, source.job_id
            )
        )

    async def _fan_out(self, upload: Upload) -> None:
        source = upload.source
        current = await self._objects.head(source.bucket, source.key)
        if source.version_id:  # a versioned bucket: exactly this upload
            is_current = current is not None and current.version_id == source.version_id
        else:
            is_current = current is not None and (
                not source.etag or current.etag == bare_etag(source.etag)
            )
        # The upload's own metadata names its job, even once it has been overwritten.
        own = current if is_current else await self._version_head(upload)
        job = await self._job_for(upload, own.metadata if own else {})
        shard = shard_of(source.id, job.shards)
        if current is None or not is_current:
            # Gone, or a newer upload of the key has its own notification: this one still
            # counts in its job, as a source that ended without rendering.
            await self._record_unrendered(
                upload, job, shard, Reason.SOURCE_MISSING if current is None else Reason.SUPERSEDED
            )
            return
        upload = replace(
            upload,
            source=source.model_copy(
                update={
                    "etag": current.etag,
                    "size": current.size,
                    "version_id": current.version_id,
                }
            ),
        )
        tasks = plan_tasks(upload, self._config, self._settings, job.job_id, shard)
        if job.cancelled:
            await self._record_unrendered(upload, job, shard, Reason.CANCELLED, len(tasks))
            return
        if upload.missing_only:
            tasks = await self._missing(tasks)
        if not tasks:
            # Every output is there already: the run that wrote them stays the current one.
            await self._record_unrendered(upload, job, shard, None)
            return
        manifest_key = await self._manifest_key(upload.source.id, upload.source.key)
        registration, registered = await self._log.register_source(
            self._source_record(upload, job, shard, len(tasks), manifest_key),
            JobCounters(
                sources_registered=1,
                variants_expected=len(tasks),
                bytes_in=upload.source.size or 0,
            ),
        )
        if registration is Registration.OUTDATED:
            await self._record_unrendered(upload, job, shard, Reason.SUPERSEDED)
            return
        tasks = [task.model_copy(update={"run_order": registered.generation}) for task in tasks]
        rejected = await self._rejections(tasks)
        # Send even when this run was registered before: the earlier attempt may have died
        # before sending, and the worker ignores tasks it has already recorded. The first
        # task names only the variants sent: a rejected one must never be rendered.
        await self._queue.send(
            with_others([task for task in tasks if task.variant.name not in rejected])
        )
        if rejected:
            await self._record_rejections(tasks, rejected)
        metrics.add_metric(name="UploadsFannedOut", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name="VariantTasksSent", unit=MetricUnit.Count, value=len(tasks) - len(rejected)
        )
        logger.info(
            "Fanned out upload",
            source=upload.source.id,
            job_id=job.job_id,
            variants=len(tasks),
            rejected=sorted(rejected),
            run_id=upload.run_id,
            redelivered=registration is Registration.ALREADY,
        )

    async def _version_head(self, upload: Upload) -> ObjectHead | None:
        if not upload.source.version_id:
            return None
        return await self._objects.head(
            upload.source.bucket, upload.source.key, upload.source.version_id
        )

    async def _rejections(self, tasks: Sequence[VariantTask]) -> dict[str, PermanentError]:
        """Variants that must not be rendered, by name: an output key S3 would refuse, or
        one that another source's output owns already (each key is claimed for its source,
        so two sources can never overwrite each other's outputs)."""
        rejected: dict[str, PermanentError] = {}
        claimable = []
        for task in tasks:
            if key_too_long(task.output_key):
                rejected[task.variant.name] = PermanentError(
                    Reason.OUTPUT_KEY_TOO_LONG,
                    f"output key is {len(task.output_key.encode())} bytes; S3 allows "
                    f"{MAX_KEY_BYTES}: {task.output_key[:80]}...",
                )
            else:
                claimable.append(task)
        owners = await asyncio.gather(
            *(
                self._log.claim_output(
                    self._settings.output_bucket, task.output_key, task.source.id
                )
                for task in claimable
            )
        )
        for task, owner in zip(claimable, owners, strict=True):
            if owner != task.source.id:
                rejected[task.variant.name] = PermanentError(
                    Reason.OUTPUT_CONFLICT,
                    f"output {task.output_key} belongs to s3://{owner}; choose an output_key "
                    f'layout that tells them apart, e.g. "{COLLISION_FREE_OUTPUT_KEY}"',
                )
        return rejected

    async def _record_rejections(
        self, tasks: Sequence[VariantTask], rejected: dict[str, PermanentError]
    ) -> None:
        results: list[RecordResult] = []
        for task in tasks:
            error = rejected.get(task.variant.name)
            if error is None:
                continue
            logger.warning(
                "Variant rejected at fan-out",
                source=task.source.id,
                variant=task.variant.name,
                reason=error.reason.value,
                error=error.detail,
            )
            metrics.add_metric(name="VariantsFailed", unit=MetricUnit.Count, value=1)
            count_failure(error.reason.value)
            results.append(await self._log.record_variant(rejection_record(task, error)))
        # One counted now: a worker that settled the run after it announces the run.
        await self._outcomes.settle(tasks[0], make_good=RecordResult.COUNTED not in results)

    async def _record_unrendered(
        self,
        upload: Upload,
        job: JobRecord,
        shard: int,
        reason: Reason | None,
        variants: int = 0,
        *,
        step: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]] = once,
    ) -> None:
        """An upload that does not become the source's current run is still accounted for
        in its job, once: gone or overwritten before its fan-out, given up after its
        retries, cancelled (its ``variants`` skipped), or with nothing left to render."""
        record = replace(
            self._source_record(upload, job, shard, variants),
            status=unrendered_status(reason).value,
            skipped=variants,
            reason=reason.value if reason else None,
            finished_at=utc_now(),
        )
        if await step(lambda: self._log.record_past_run(record)):
            logger.info("Upload needs no rendering", source=upload.source.id, reason=reason)
            if reason in _UNRENDERED_METRICS:
                metrics.add_metric(name=_UNRENDERED_METRICS[reason], unit=MetricUnit.Count, value=1)
        await step(
            lambda: self._announcer.past_run_finished(record.bucket, record.key, record.run_id)
        )
        await step(lambda: self._outcomes.finish_job(job.job_id))

    async def _job_for(self, upload: Upload, metadata: dict[str, str]) -> JobRecord:
        """The upload's job: named by the request or the object's metadata, else the day's."""
        job_id = upload.job_id or metadata.get(JOB_METADATA_KEY)
        if job_id:
            job = await self._jobs_seen.get(job_id, functools.partial(self._jobs.get, job_id))
            if job is not None:
                return job
            logger.warning("Upload names an unknown job; using the day's job", job_id=job_id)
        day_job = default_job_id(upload.event_time or utc_now())
        job = await self._jobs_seen.get(day_job, functools.partial(self._day_job, day_job))
        assert job is not None  # _day_job creates it
        return job

    async def _day_job(self, job_id: str) -> JobRecord:
        job = await self._jobs.get(job_id)
        if job is None:
            await self._jobs.ensure_default(job_id, self._settings.job_counter_shards)
            job = await self._jobs.require(job_id)
        return job

    async def _missing(self, tasks: list[VariantTask]) -> list[VariantTask]:
        exists = await asyncio.gather(
            *(self._objects.head(self._settings.output_bucket, task.output_key) for task in tasks)
        )
        return [task for task, head in zip(tasks, exists, strict=True) if head is None]

    def _source_record(
        self,
        upload: Upload,
        job: JobRecord,
        shard: int,
        expected: int,
        manifest_key: str | None = None,
    ) -> SourceRecord:
        return SourceRecord(
            bucket=upload.source.bucket,
            key=upload.source.key,
            job_id=job.job_id,
            run_id=upload.run_id,
            status=SourceStatus.PROCESSING.value,
            expected=expected,
            etag=upload.source.etag,
            size=upload.source.size,
            registered_at=utc_now(),
            shard=shard,
            sequencer=upload.sequencer,
            manifest_key=manifest_key,
            url_base=self._config.public_url or None,
        )

    async def _manifest_key(self, source_id: str, key: str) -> str | None:
        """The source's manifest key, claimed for it like an output key (None: manifests
        are off, or another source's manifest has that key)."""
        manifest_key = self._config.manifest_key_for(key, self._settings.upload_prefix)
        if manifest_key is None or key_too_long(manifest_key):
            return None
        owner = await self._log.claim_output(self._settings.output_bucket, manifest_key, source_id)
        if owner != source_id:
            logger.warning(
                "No manifest: another source's manifest has its key",
                source=source_id,
                manifest_key=manifest_key,
                owner=owner,
            )
            return None
        return manifest_key

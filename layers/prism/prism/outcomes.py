"""A variant task's outcome: the record the processing log keeps, and what follows from
recording it.

Every outcome is recorded the same way, by the fan-out and the worker alike: the variant's
record (counted once per run), then the source settled (its status set once every variant
is accounted for), then its job finished if that was its last source. Asking to settle or
finish again is harmless, so a redelivery makes good a bookkeeping step that died.

A run is announced, and its job asked to finish, by the caller whose write settled it,
and by the redelivery of that caller's messages if it died before it was done: a caller
that finds the run settled announces it only when making good its own earlier attempt
(``make_good``). One that counted an outcome of its own just now, or found its variant
recorded by another task (both batches rendered it, see ``Worker._tasks_ahead``), leaves
it to the settler, which is still at work: two announcements would publish the run's
event twice, and the second could end the job before the settler's batch announced its
other sources.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from prism.announce import Announcer, FinishedRun, RunKey
from prism.errors import PermanentError, Reason
from prism.last_chance import persistently
from prism.messages import VariantTask
from prism.observability import count_failure, logger, metrics
from prism.ports import Jobs, Objects, ProcessingLog, RecordResult, Settlement
from prism.records import (
    SourceFacts,
    SourceState,
    VariantRecord,
    VariantStatus,
    utc_now,
)


def variant_record(task: VariantTask, *, status: VariantStatus, **fields: Any) -> VariantRecord:
    return VariantRecord(
        bucket=task.source.bucket,
        key=task.source.key,
        variant=task.variant.name,
        run_id=task.run_id,
        job_id=task.job_id,
        shard=task.shard,
        status=status.value,
        finished_at=utc_now(),
        rendered_ahead=True if task.ahead else None,
        **fields,
    )


def rejection_record(task: VariantTask, error: PermanentError) -> VariantRecord:
    status = VariantStatus.SKIPPED if error.skipped else VariantStatus.FAILED
    return variant_record(task, status=status, reason=error.reason.value, error=error.detail)


def superseded_record(task: VariantTask) -> VariantRecord:
    """The task's outcome when a later run's output is at its key already (not written)."""
    newer = PermanentError(Reason.SUPERSEDED, "a later upload's output is there already")
    return rejection_record(task, newer)


class Outcomes:
    """Records outcomes into the processing log and keeps sources, jobs and outputs in step
    with them. ``io`` (optional) bounds the requests in flight."""

    def __init__(
        self,
        log: ProcessingLog,
        jobs: Jobs,
        objects: Objects,
        output_bucket: str,
        io: asyncio.Semaphore | None = None,
        announcer: Announcer | None = None,
        hold_announcements: bool = False,
    ) -> None:
        self._log = log
        self._jobs = jobs
        self._objects = objects
        self._output_bucket = output_bucket
        self._io = io
        self._announcer = announcer
        # Runs ended but not yet announced (``hold_announcements``: the worker announces a
        # batch's runs together, in one publishing of their events).
        self._held: dict[RunKey, tuple[FinishedRun, str]] | None = (
            {} if hold_announcements else None
        )

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._io is None:
            yield
            return
        async with self._io:
            yield

    async def record(self, task: VariantTask, record: VariantRecord) -> RecordResult:
        """Record ``record`` for its run and settle the source (unless the run is stale)."""
        async with self._slot():
            result = await self._log.record_variant(record)
        if result is RecordResult.STALE:
            logger.info(
                "Outcome of a superseded run dropped", source=task.source.id, run_id=task.run_id
            )
            return result
        own_earlier = result is RecordResult.DUPLICATE and await self._recorded_by(task)
        await self.settle(task, make_good=own_earlier)
        return result

    async def _recorded_by(self, task: VariantTask) -> bool:
        """Whether the task's variant was recorded for its run by this task (an earlier
        delivery of it), not by another task rendering it too: the first of a run's tasks
        rendering it ahead, or the variant's own task if this one rendered it ahead."""
        _, recorded = await self._log.source_state(task.source.bucket, task.source.key)
        earlier = recorded.get(task.variant.name)
        if earlier is None or earlier.run_id != task.run_id:
            return True
        return bool(earlier.rendered_ahead) == task.ahead

    async def settle(self, task: VariantTask, *, hold: bool = True, make_good: bool = True) -> bool:
        """Settle the task's source, then its job if the source's run is settled (see the
        module's docstring for ``make_good``)."""
        return await self.settle_run(
            task.source.bucket,
            task.source.key,
            task.run_id,
            task.job_id,
            hold=hold,
            make_good=make_good,
        )

    async def settle_run(
        self,
        bucket: str,
        key: str,
        run_id: str,
        job_id: str,
        *,
        hold: bool = True,
        make_good: bool = True,
    ) -> bool:
        """Whether the run is settled; announced and its job asked to finish if this call
        settled it, or if it was settled before and ``make_good``."""
        async with self._slot():
            settlement = await self._log.settle_source(bucket, key, run_id)
            if settlement is Settlement.SETTLED or (
                make_good and settlement is Settlement.WAS_SETTLED
            ):
                await self.source_ended(FinishedRun(bucket, key, run_id), job_id, hold=hold)
        return settlement.finished

    async def source_ended(self, finished: FinishedRun, job_id: str, *, hold: bool = True) -> None:
        """The source's run is settled: announce it, then end its job if it was the last;
        held for ``announce_held`` instead, if these outcomes hold their announcements and
        ``hold`` allows it."""
        if self._held is not None and hold:
            # The latest call's state is the latest known (a later one without: read again).
            self._held[finished.run] = (finished, job_id)
            return
        if self._announcer is not None:
            await self._announcer.source_finished(finished)
        await self.finish_job(job_id)

    async def announce_held(self) -> dict[RunKey, BaseException]:
        """Announce the runs ended since the last call, together (see ``Announcer.
        sources_finished``), then finish their jobs: each job once, and only if none of its
        runs failed to be announced (its "Job Completed" must come after them). What failed,
        by run."""
        if not self._held:
            return {}
        held = list(self._held.values())
        self._held.clear()
        runs = [finished for finished, _ in held]
        failures = await self._announcer.sources_finished(runs) if self._announcer else {}
        failed_jobs = {job_id for finished, job_id in held if finished.run in failures}
        jobs = sorted({job_id for _, job_id in held} - failed_jobs)
        finished_jobs = await asyncio.gather(*map(self.finish_job, jobs), return_exceptions=True)
        for job_id, outcome in zip(jobs, finished_jobs, strict=True):
            if isinstance(outcome, BaseException):
                for finished, held_job in held:
                    if held_job == job_id:
                        failures.setdefault(finished.run, outcome)
        return failures

    async def finish_job(self, job_id: str) -> None:
        progress = await self._jobs.finish_if_done(job_id)
        if self._announcer is not None:
            await self._announcer.job_finished(progress)

    async def record_many(
        self,
        outcomes: Sequence[tuple[VariantTask, VariantRecord]],
        seen: SourceState,
        original: SourceFacts | None = None,
    ) -> list[RecordResult]:
        """Record outcomes of one source's run, rendered after reading ``seen``: in one
        write, which also marks the source loaded (keeping ``original`` on it) and settles
        it, when nothing changed since (the usual case); else the loaded mark and each
        outcome on its own."""
        if not outcomes:
            return []
        task = outcomes[0][0]
        source = seen.source
        records = [record for _, record in outcomes]
        async with self._slot():
            now = await self._log.record_variants(records, source, original)
            if now is not None:
                if now.finished:
                    # The write was conditional on nothing having changed since ``seen``:
                    # the source is now exactly that plus these records.
                    variants = {**seen.variants, **{r.variant: r for r in records}}
                    await self.source_ended(
                        FinishedRun(
                            source.bucket, source.key, source.run_id, SourceState(now, variants)
                        ),
                        task.job_id,
                    )
                return [RecordResult.COUNTED] * len(outcomes)
            await self._log.mark_loaded(
                source.bucket, source.key, source.run_id, task.job_id, task.shard, original
            )
        return list(await asyncio.gather(*(self.record(t, rec) for t, rec in outcomes)))

    async def reject(self, task: VariantTask, error: PermanentError) -> None:
        """Record a permanent failure or skip; the variant then has no output of this run."""
        result = await self.record(task, rejection_record(task, error))
        await self.after_rejection(task, error, result)

    async def after_rejection(
        self, task: VariantTask, error: PermanentError, result: RecordResult
    ) -> None:
        if result is RecordResult.COUNTED:
            # The source's current run has no output for this variant: an older run's (or
            # this run's from an attempt that died before recording) must not stay.
            await self.remove_stale_output(task)
        elif result is RecordResult.DUPLICATE:
            await self.remove_output_unless_done(task)
        metrics.add_metric(
            name="VariantsSkipped" if error.skipped else "VariantsFailed",
            unit=MetricUnit.Count,
            value=1,
        )
        count_failure(error.reason.value)

    async def give_up(self, task: VariantTask, exhausted: PermanentError) -> None:
        """The task's last allowed delivery failed: record it ``retries_exhausted`` so that its
        source and job still end. Each step is idempotent and tried persistently; a redrive
        that then succeeds replaces the record (see ProcessingLog.record_variant)."""
        result = await persistently(
            lambda: self._log.record_variant(rejection_record(task, exhausted))
        )
        if result is not RecordResult.STALE:  # an output of an earlier attempt must go
            await persistently(lambda: self.remove_output_unless_done(task))
            # Announced now, and persistently too: there is no later delivery to do it.
            await persistently(lambda: self.settle(task, hold=False))

    async def remove_output_unless_done(self, task: VariantTask) -> None:
        """Recorded before (or by this very call, its answer lost and retried): what stands
        is the recorded outcome, and only a ``done`` keeps its output."""
        _, recorded = await self._log.source_state(task.source.bucket, task.source.key)
        existing = recorded.get(task.variant.name)
        if (
            existing is not None
            and existing.run_id == task.run_id
            and existing.status != VariantStatus.DONE
        ):
            await self.remove_stale_output(task)

    async def remove_stale_output(self, task: VariantTask) -> None:
        async with self._slot():
            if await self._objects.remove_outputs_up_to(
                self._output_bucket, task.output_key, task.run_order
            ):
                logger.info("Removed an output the current run did not write", key=task.output_key)

    async def remove_own_output(self, task: VariantTask, etag: str | None) -> None:
        """Re-uploaded while rendering: this output must not outlive its run's record."""
        async with self._slot():
            await self._objects.delete_if_unchanged(self._output_bucket, task.output_key, etag)

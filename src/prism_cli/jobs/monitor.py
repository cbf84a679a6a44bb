"""Following a job: poll its progress, show it live, react to Ctrl+C, report failures;
and :func:`feed_and_follow`, the one flow of a job being fed while it is followed
(``prism submit``, ``backfill`` and ``run``).

Ctrl+C while following:
- before the job is sealed (its files are still being uploaded or enqueued), it cancels the
  job: a half-submitted job cannot be left behind. On a terminal it asks first; "no"
  carries on;
- once sealed, on a terminal it asks "Cancel job X? [y/N]": yes cancels and keeps
  following until the job has ended; no detaches (``prism run``: carries on, its stack
  ends with it). Without a terminal, or with ``--detach-on-interrupt``, it detaches
  (``prism run`` and ``prism demo``: cancel);
- once a cancel is requested, another Ctrl+C detaches (``prism run``: aborts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from prism.aws.job_table import JobTable
from prism.jobs import ACTIVE_STATUSES, JobProgress
from prism_cli.interrupts import Interrupts
from prism_cli.jobs.display import JobView, ProgressTracker
from prism_cli.jobs.feed import Feeder
from prism_cli.jobs.log import failed_lines, read_job_records
from prism_cli.jobs.view import failure_line, render_view

POLL_SECONDS = 1.0
# A local run's stack is in this process: its progress is cheap to read, and a run of a
# few images should not wait a second to learn that it has ended.
LOCAL_POLL_SECONDS = 0.25
# Failed variants are listed live for jobs up to this many sources (reading them is a
# query per shard); larger jobs show the count and point at ``prism log --failed-only``.
LIVE_FAILURES_MAX_SOURCES = 2000
FAILURE_READ_INTERVAL = 5.0
LIVE_FAILURE_LINES = 20


class AfterInterrupt(Enum):
    DETACH = "detach"  # stop following; the job carries on
    CANCEL = "cancel"
    CONTINUE = "continue"


@dataclass(frozen=True)
class FollowPolicy:
    ask: bool  # a terminal, and no --detach-on-interrupt
    unattended: AfterInterrupt  # a sealed job, nobody to ask: DETACH or CANCEL
    declined: AfterInterrupt  # "no" to the question: DETACH or CONTINUE
    poll_seconds: float = POLL_SECONDS

    @classmethod
    def for_job_command(cls, *, interactive: bool, detach_on_interrupt: bool) -> FollowPolicy:
        return cls(
            ask=interactive and not detach_on_interrupt,
            unattended=AfterInterrupt.DETACH,
            declined=AfterInterrupt.DETACH,
        )

    @classmethod
    def for_local_run(cls, *, interactive: bool) -> FollowPolicy:
        return cls(
            ask=interactive,
            unattended=AfterInterrupt.CANCEL,
            declined=AfterInterrupt.CONTINUE,
            poll_seconds=LOCAL_POLL_SECONDS,
        )


@dataclass(frozen=True)
class FollowResult:
    progress: JobProgress
    detached: bool = False  # the user stopped following a running job
    cancel_requested: bool = False


async def current_progress(table: JobTable, job_id: str) -> JobProgress:
    """The job's progress, after setting its final status if it has just finished (the last
    worker normally does; a reader may as well). JobNotFound for an unknown job."""
    progress = await table.progress(job_id)
    if progress.finished and progress.job.status in ACTIVE_STATUSES:
        progress = await table.finish_if_done(job_id) or await table.progress(job_id)
    return progress


@dataclass(eq=False)
class JobMonitor:
    """Shows one job until it ends (or ``until()`` / ``idle()`` says to stop).

    While ``feeder`` feeds the job (the task ``feeding``), its row comes first, a cancel
    stops it, and its error ends the follow."""

    table: JobTable
    job_id: str
    console: Console
    interrupts: Interrupts
    policy: FollowPolicy
    feeder: Feeder | None = None
    feeding: asyncio.Task[int] | None = None
    show_failures: bool = True

    def __post_init__(self) -> None:
        self._tracker = ProgressTracker()
        self._renderable: RenderableType = Text("")
        self._cancel_requested = False
        self._failures = _LiveFailures(self.table, self.job_id, self.console)

    # --- the loop -------------------------------------------------------------------------------
    async def follow(
        self,
        *,
        until: Callable[[], bool] | None = None,
        idle: Callable[[], Awaitable[bool]] | None = None,
    ) -> FollowResult:
        # On a terminal the display is redrawn in place; otherwise (a pipe, a CI log) it is
        # printed once, at the end, and failures are printed as lines as they come. A quiet
        # console shows neither. The display leaves sys.stdout and sys.stderr alone: a
        # local run sends them to its functions' log (prism_cli.local.function_log), and
        # what rich would capture it would draw over the display instead.
        live: Live | None = None
        if self.console.is_terminal and not self.console.quiet:
            live = Live(
                console=self.console,
                refresh_per_second=4,
                get_renderable=lambda: self._renderable,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            live.start()
        try:
            while True:
                self._check_feeding()
                progress = await self.poll()
                self._renderable = self._render(progress)
                if live is not None:
                    live.refresh()
                if self.show_failures:
                    await self._failures.report(progress)
                if progress.job.status not in ACTIVE_STATUSES:
                    return self._result(progress)
                if until is not None and until():
                    return self._result(progress)
                if idle is not None and self._sealed() and await idle():
                    return self._result(progress)
                if await self.interrupts.wait(self.policy.poll_seconds):
                    self.interrupts.clear()
                    if await self._interrupted(progress, live) is AfterInterrupt.DETACH:
                        return self._result(progress, detached=True)
        finally:
            if live is not None:
                live.stop()
            else:
                self.console.print(self._renderable)

    async def poll(self) -> JobProgress:
        progress = await current_progress(self.table, self.job_id)
        if progress.job.cancelled:
            self._stop_feeding()  # cancelled elsewhere: stop feeding the job
        return progress

    def _sealed(self) -> bool:
        return self.feeder is None or self.feeder.sealed

    def _stop_feeding(self) -> None:
        if self.feeder is not None:
            self.feeder.request_stop()

    def _check_feeding(self) -> None:
        task = self.feeding
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error

    def _result(self, progress: JobProgress, **flags: bool) -> FollowResult:
        return FollowResult(progress=progress, cancel_requested=self._cancel_requested, **flags)

    def _render(self, progress: JobProgress) -> RenderableType:
        now = time.monotonic()
        view = self._tracker.update(progress, now, datetime.now(UTC))
        notes = []
        if self._cancel_requested and view.active:
            notes.append("[yellow]Cancelling: work not started yet is skipped[/]")
        before = self.feeder.rows(now) if self.feeder is not None else ()
        return render_view(view, before=before, notes=notes)

    # --- Ctrl+C -----------------------------------------------------------------------------------
    async def _interrupted(self, progress: JobProgress, live: Live | None) -> AfterInterrupt:
        sealed = self._sealed()
        if self._cancel_requested or progress.job.cancelled:
            if self.policy.declined is AfterInterrupt.CONTINUE:
                self.interrupts.abort()
                return AfterInterrupt.CONTINUE
            return AfterInterrupt.DETACH
        if self.policy.ask:
            if live is not None:
                live.stop()
            try:
                # On the console's terminal: sys.stdout may be the functions' log.
                question = f"Cancel job {self.job_id}? [y/N] "
                yes = await self.interrupts.ask(question, stream=self.console.file)
            finally:
                if live is not None:
                    live.start()
            if yes:
                await self.cancel()
                return AfterInterrupt.CANCEL
            if not sealed:
                return AfterInterrupt.CONTINUE
            return self.policy.declined
        if not sealed or self.policy.unattended is AfterInterrupt.CANCEL:
            await self.cancel()
            return AfterInterrupt.CANCEL
        return AfterInterrupt.DETACH

    async def cancel(self) -> None:
        self._cancel_requested = True
        self._stop_feeding()
        job = await self.table.request_cancel(self.job_id)
        self.console.print(f"Cancelling job {self.job_id} (status {job.status})", highlight=False)


@dataclass
class _LiveFailures:
    """Failed variants printed as they happen (the first few, for jobs that are not huge)."""

    table: JobTable
    job_id: str
    console: Console
    seen: set[tuple[str, str]] = field(default_factory=set)
    counted: int = 0
    read_at: float = -FAILURE_READ_INTERVAL
    lines: int = 0

    async def report(self, progress: JobProgress) -> None:
        failed = progress.counters.variants_failed
        size = progress.expected_sources or progress.counters.sources_registered
        if failed <= self.counted or size > LIVE_FAILURES_MAX_SOURCES:
            return
        now = time.monotonic()
        ended = progress.job.status not in ACTIVE_STATUSES
        if not ended and now - self.read_at < FAILURE_READ_INTERVAL:
            return
        self.read_at = now
        records = await read_job_records(self.table, progress.job)
        self.counted = failed
        for path, variant, detail in failed_lines(records.failed_variants()):
            if (path, variant) in self.seen:
                continue
            self.seen.add((path, variant))
            self.lines += 1
            if self.lines <= LIVE_FAILURE_LINES:
                self.console.print(
                    failure_line(path, variant, detail), highlight=False, soft_wrap=True
                )
            elif self.lines == LIVE_FAILURE_LINES + 1:
                self.console.print(
                    f"  ... more failures: prism log {self.job_id} --failed-only", highlight=False
                )


async def feed_and_follow(
    table: JobTable,
    feeder: Feeder,
    console: Console,
    interrupts: Interrupts,
    policy: FollowPolicy,
    *,
    no_follow: bool = False,
    idle: Callable[[], Awaitable[bool]] | None = None,
    show_failures: bool = True,
) -> tuple[FollowResult, int]:
    """Feed ``feeder``'s job in the background while following it: until it ends, until it
    is sealed (``no_follow``) or until ``idle`` says nothing more will happen. The follow's
    result, and the number of sources fed."""
    feeding: asyncio.Task[int] = asyncio.create_task(feeder.run())
    monitor = JobMonitor(
        table, feeder.job_id, console, interrupts, policy, feeder, feeding, show_failures
    )
    result = await monitor.follow(until=feeding.done if no_follow else None, idle=idle)
    return result, await feeding


def final_view(progress: JobProgress) -> JobView:
    return ProgressTracker().update(progress, time.monotonic(), datetime.now(UTC))

"""``prism run``: push local folders through the real handlers on a local stack of its own.

The run makes a moto stack from ``template.yaml`` and drives it as a job, with the job
commands' own flow (:func:`~prism_cli.jobs.monitor.feed_and_follow`): it creates a job,
uploads the files with the job in their metadata (S3 notifies the uploads queue; emulated
SQS event sources drive the fan-out and worker handlers), seals the job and follows its
progress until it has ended, or until nothing is left to do (queues empty, no invocation
under way: whatever is then in a dead-letter queue failed). The rendered variants are
downloaded into ``--out`` mirroring the inputs, next to ``processing_log.json`` (built from
the job's records).

The stack holds only what is under way, whatever the folder's size: the uploads are paced
to stay a few batches ahead of the functions, and each source's outputs are downloaded
and its objects removed from the stack as soon as it is finished
(:mod:`prism_cli.run.retire`).

Ctrl+C asks whether to cancel the job (on a terminal) or cancels it (otherwise); the log of
what was done is still written. A second Ctrl+C aborts. One :class:`Interrupts` owns SIGINT
for the whole run, the making of the stack included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from prism.aws.clients import open_clients
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable
from prism.config import PipelineConfig
from prism.jobs import JobKind
from prism.records import SourceStatus
from prism.settings import Settings
from prism_cli.config_files import load_config
from prism_cli.errors import UserError
from prism_cli.exit_codes import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK
from prism_cli.interrupts import Interrupts, interactive
from prism_cli.jobs.downloads import prepare_output_folder
from prism_cli.jobs.feed import UploadFeeder, UploadItem
from prism_cli.jobs.ids import create_job, new_job_id
from prism_cli.jobs.inputs import InputFile, scan_folders
from prism_cli.jobs.log import JobRecords, read_job_records
from prism_cli.jobs.monitor import FollowPolicy, feed_and_follow
from prism_cli.jobs.processing_log import ProcessingLog
from prism_cli.local.function_log import function_output_to
from prism_cli.local.lambda_emulator import (
    SqsEventSourceEmulator,
    batch_capacity,
    function_instances,
    idle_for,
)
from prism_cli.local.stack import LocalStack, local_environment
from prism_cli.local.template import find_template, load_template
from prism_cli.report import write_report
from prism_cli.run.dead_letters import read_dead_letters
from prism_cli.run.out_folder import check_folders
from prism_cli.run.output_keys import check_output_keys
from prism_cli.run.periodic import every
from prism_cli.run.ready_events import SPOOL_SECONDS, EventSpool
from prism_cli.run.retire import Retirement, table_forgetter
from prism_cli.run.run_log import RunPlace, fill_run_log
from prism_cli.run.summary import RunResult
from prism_cli.run.watermark_logos import Logo, find_logos

LOG_NAME = "processing_log.json"
FUNCTION_LOG_NAME = "functions.log"

# Idle (queues empty, nothing in flight) this many polls in a row ends the run.
_IDLE_POLLS = 3
# The emulated event sources' batching window (the template's: 1 s for the fan-out, 2 s for
# the workers). Lambda waits that long for a full batch; on a busy queue batches fill at
# once either way, and on a quiet one a local run would only wait.
LOCAL_BATCHING_WINDOW = 0.2
# Uploads wait while the functions' queues hold this many rounds of batches (waiting or in
# flight): enough to keep every instance busy, little enough for the stack to hold.
_BACKLOG_ROUNDS = 2
_PACE_SECONDS = 0.02


@dataclass(frozen=True)
class RunOptions:
    inputs: Sequence[Path]
    out: Path
    config_path: Path | None = None
    # Config text given directly (the demo); wins over ``config_path``.
    config_text: str | None = None
    config_label: str | None = None
    workers: int = 4
    template: Path | None = None


# --- the run -----------------------------------------------------------------------------
def run(options: RunOptions, console: Console | None = None) -> RunResult:
    """Process ``options.inputs`` into ``options.out``. UserError for bad input."""
    console = console or Console(file=sys.stdout)
    folders = check_folders(options.inputs, options.out)
    config_text, config_label, config = load_config(
        options.config_path, options.config_text, options.config_label
    )
    template_path = find_template(options.template)
    scan = scan_folders(folders)
    if not scan.files:
        if not scan.skipped and not scan.failed:
            raise UserError(f"no files found in {', '.join(map(str, folders))}")
        raise UserError(f"no supported images in {', '.join(map(str, folders))}")
    if options.workers < 1:
        raise UserError("--workers must be at least 1")
    # Everything that can be checked is checked before the stack starts and uploads begin.
    upload_prefix = _upload_prefix(template_path)
    check_output_keys(scan.files, config, upload_prefix)
    config_path = options.config_path if options.config_text is None else None
    logos = find_logos(config, config_path, upload_prefix)
    out = options.out
    prepare_output_folder(out)

    log = ProcessingLog(
        inputs=[str(folder) for folder in folders],
        output=str(out),
        config=config_label,
        function_log=FUNCTION_LOG_NAME,
        skipped=list(scan.skipped),
        failed=list(scan.failed),
    )
    (out / FUNCTION_LOG_NAME).unlink(missing_ok=True)

    def stopping() -> None:
        console.print("[yellow]Stopping: finishing invocations under way (Ctrl+C again to abort)")

    with (
        Interrupts(on_stop=stopping) as interrupts,
        function_output_to(out / FUNCTION_LOG_NAME),
        LocalStack(template_path) as stack,
    ):
        if config_text is not None:
            stack.put_pipeline_config(config_text)
        local_run = _Run(stack, scan.files, out, config, console, interrupts)
        local_run.upload_logos(logos)
        instances = function_instances(stack.template, options.workers, within_concurrency=True)
        with stack.running_functions(instances, batching_window=LOCAL_BATCHING_WINDOW) as emulators:
            outcome = asyncio.run(local_run.job(emulators))
        interrupted = outcome.interrupted or interrupts.pending()
        log.job = outcome.job_id
        local_run.collect(log, outcome.records or JobRecords(), interrupted, outcome.retirement)
        events = local_run.events.collect()
    log = log.model_copy(update={"finished_at": datetime.now(UTC), "interrupted": interrupted})
    log_path = out / LOG_NAME
    log.save(log_path)
    write_report(out, log)  # report.html, next to the log
    failures = log.failed or log.partial or log.summary.variants_failed
    code = EXIT_FAILURES if failures else EXIT_OK
    return RunResult(
        log=log,
        log_path=log_path,
        exit_code=EXIT_INTERRUPTED if interrupted else code,
        events=events,
    )


def _upload_prefix(template_path: Path) -> str:
    """The prefix the run's files are uploaded under, as the template sets it."""
    template = load_template(template_path)
    return Settings.from_env(local_environment(template, endpoint="")).upload_prefix


@dataclass
class _Outcome:
    """What the job flow of one run left behind."""

    job_id: str | None = None
    records: JobRecords | None = None
    interrupted: bool = False
    retirement: Retirement | None = None


class _Run:
    """One ``prism run``: a job on the run's own stack, fed with the files and followed."""

    def __init__(
        self,
        stack: LocalStack,
        files: list[InputFile],
        out: Path,
        config: PipelineConfig,
        console: Console,
        interrupts: Interrupts,
    ) -> None:
        self.stack = stack
        self.settings = Settings.from_env(stack.environment)
        self.files = files
        self.place = RunPlace(self.settings.input_bucket, self.settings.output_bucket, out, config)
        self.console = console
        self.interrupts = interrupts
        self.keys = {file.key(self.settings.upload_prefix): file for file in files}
        self.events = EventSpool(stack, out)

    def upload_logos(self, logos: list[Logo]) -> None:
        """Put the config's watermark logos where the workers look for them (outside the
        upload prefix, so they are not processed)."""
        for logo in logos:
            try:
                data = logo.path.read_bytes()
            except OSError as exc:
                raise UserError(
                    f"cannot read watermark image {logo.path}: {exc.strerror or exc}"
                ) from None
            self.stack.clients.s3.put_object(
                Bucket=self.settings.input_bucket, Key=logo.key, Body=data
            )

    async def job(self, emulators: Sequence[SqsEventSourceEmulator]) -> _Outcome:
        """Create the job, feed it the files and follow it (``emulators`` run the stack's
        functions)."""
        outcome = _Outcome()
        if self.interrupts.pending():  # Ctrl+C while the stack was being made
            return _Outcome(interrupted=True)

        # Nothing left to do (queues empty, no invocation under way) a few polls in a row:
        # whatever did not finish is then in a dead-letter queue.
        settled = idle_for(_IDLE_POLLS, emulators, self.stack.clients.sqs)

        async with self.interrupts, open_clients() as clients:
            table = JobTable(
                clients.dynamodb,
                self.settings.table_name,
                retention_days=self.settings.record_retention_days,
            )
            job_id = new_job_id()
            description = "prism run " + " ".join(sorted({f.label for f in self.files}))
            shards = self.settings.job_counter_shards
            await create_job(table, job_id, JobKind.SUBMIT, description, shards=shards)
            outcome.job_id = job_id
            items = [UploadItem(key, file.path, file.display) for key, file in self.keys.items()]
            if self.place.config.dedupe:
                items = await asyncio.to_thread(duplicates_last, items)
            # An original's outputs stay in the stack until the end: its duplicates copy them.
            copied = {item.after for item in items if item.after}
            retirement = outcome.retirement = self._retirement(
                clients.dynamodb, emulators, keep=copied
            )
            processing = ProcessingTable(clients.dynamodb, self.settings.table_name)
            feeder = UploadFeeder(
                table,
                job_id,
                clients.s3,
                self.settings.input_bucket,
                items,
                pace=_Pace(self.stack, emulators),
                ready=functools.partial(_original_finished, processing, self.settings.input_bucket),
            )
            retiring = asyncio.create_task(retirement.run())
            spooled = asyncio.Event()
            # Memory only: what is left is collected at the end.
            spooling = asyncio.create_task(
                every(SPOOL_SECONDS, spooled, self._move_events, "moving the stack's events")
            )
            try:
                result, _ = await feed_and_follow(
                    table,
                    feeder,
                    self.console,
                    self.interrupts,
                    FollowPolicy.for_local_run(interactive=interactive()),
                    idle=lambda: asyncio.to_thread(settled),
                    show_failures=False,  # the summary lists them
                )
            finally:
                retirement.stop()  # and let a release under way end: the log comes next
                spooled.set()  # once a move under way has ended
                await retiring
                await spooling
            outcome.interrupted = result.cancel_requested or result.progress.job.cancelled
            outcome.records = await read_job_records(table, result.progress.job)
            outcome.records.add_missing(retirement.records)  # taken out of the table
        return outcome

    async def _move_events(self) -> None:
        await asyncio.to_thread(self.events.move)

    def _retirement(
        self,
        dynamodb: Any,
        emulators: Sequence[SqsEventSourceEmulator],
        keep: set[str] | None = None,
    ) -> Retirement:
        """Finished sources released as they finish, observed through ``emulators``
        (except those in ``keep``, left for the end)."""
        retirement = Retirement(
            ProcessingTable(dynamodb, self.settings.table_name),
            self.stack.clients.s3,
            self.place,
            [key for key in self.keys if key not in (keep or set())],
            forget=table_forgetter(dynamodb, self.settings.table_name),
        )
        notified = {
            notification.queue
            for bucket in self.stack.template.buckets.values()
            for notification in bucket.queue_notifications
        }
        for emulator in emulators:
            if emulator.event.queue in notified:
                emulator.on_deleted = retirement.uploads_settled
            else:
                emulator.on_deleted = retirement.tasks_settled
        return retirement

    # --- the log ----------------------------------------------------------------------------
    def collect(
        self,
        log: ProcessingLog,
        records: JobRecords,
        interrupted: bool,
        retirement: Retirement | None = None,
    ) -> None:
        template = self.stack.template
        sqs, s3 = self.stack.clients.sqs, self.stack.clients.s3
        dead = read_dead_letters(sqs, [queue.url for queue in template.dead_letter_queues()])
        fill_run_log(
            log,
            self.keys,
            records,
            dead,
            self.place,
            s3,
            interrupted=interrupted,
            downloaded=retirement.downloaded if retirement is not None else None,
        )


def duplicates_last(items: Sequence[UploadItem]) -> list[UploadItem]:
    """``items`` with each file whose bytes an earlier file has moved to the end, uploaded
    once that file's source is finished (``after``), so that dedupe copies its variants
    instead of rendering them at the same time. Unreadable files stay where they are."""
    originals: dict[str, str] = {}
    first, later = [], []
    for item in items:
        try:
            with item.path.open("rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
        except OSError:
            first.append(item)
            continue
        if digest in originals:
            later.append(dataclasses.replace(item, after=originals[digest]))
        else:
            originals[digest] = item.key
            first.append(item)
    return first + later


async def _original_finished(
    table: ProcessingTable, bucket: str, item: UploadItem, limit: float = 300
) -> None:
    """Until the source ``item`` duplicates is finished (or ``limit`` seconds passed)."""
    assert item.after is not None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        source = await table.get_source(bucket, item.after)
        if source is not None and source.status != SourceStatus.PROCESSING and source.finished:
            return
        await asyncio.sleep(_PACE_SECONDS * 5)


class _Pace:
    """Lets an upload go while the functions' queues hold fewer messages than
    ``_BACKLOG_ROUNDS`` rounds of their batches (each upload adds one message)."""

    def __init__(self, stack: LocalStack, emulators: Sequence[SqsEventSourceEmulator]) -> None:
        self._held = functools.partial(
            stack.messages_held, {emulator.queue.name for emulator in emulators}
        )
        self._limit = max(_BACKLOG_ROUNDS * batch_capacity(emulators), 1)
        self._room = 0
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        async with self._lock:
            while self._room <= 0:
                self._room = self._limit - await asyncio.to_thread(self._held)
                if self._room <= 0:
                    await asyncio.sleep(_PACE_SECONDS)
            self._room -= 1

"""``prism run``: push local folders through the real handlers on a local stack of its own.

The run makes a moto stack from ``template.yaml`` and drives it as a job, like ``prism
submit`` does on a long-running stack: it creates a job, uploads the files with the job in
their metadata (S3 notifies the uploads queue; emulated SQS event sources drive the fan-out
and worker handlers), seals the job and follows its progress until it has ended, or until
nothing is left to do (queues empty, no invocation under way: whatever is then in a
dead-letter queue failed). The rendered variants are downloaded into ``--out`` mirroring
the inputs, next to ``processing_log.json`` (built from the job's records).

Ctrl+C asks whether to cancel the job (on a terminal) or cancels it (otherwise); the log of
what was done is still written. A second Ctrl+C aborts.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from prism.aws.clients import open_clients
from prism.aws.job_table import JobTable
from prism.config import ConfigError, PipelineConfig, default_config, parse_config
from prism.jobs import JobKind
from prism.settings import Settings
from prism_cli.config_files import read_config_file
from prism_cli.errors import UserError
from prism_cli.exit_codes import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from prism_cli.inputs import InputFile, check_folders, scan_folders
from prism_cli.interrupts import Interrupts, interactive
from prism_cli.job_feed import UploadFeeder, UploadItem
from prism_cli.job_ids import new_job, new_job_id
from prism_cli.job_log import JobRecords, partial_detail, read_job_records
from prism_cli.job_monitor import FollowPolicy, JobMonitor
from prism_cli.lambda_emulator import (
    SqsEventSourceEmulator,
    emulators_for,
    forget_warm_state,
    pipeline_idle,
)
from prism_cli.local_stack import LocalStack, local_environment
from prism_cli.out_folder import prepare_output_folder
from prism_cli.output_keys import check_output_keys
from prism_cli.processing_log import ProcessingLog
from prism_cli.results import read_dead_letters
from prism_cli.run_log import RunPlace, fill_run_log
from prism_cli.template import StackTemplate, load_template
from prism_cli.watermark_logos import Logo, find_logos

__all__ = ["EXIT_FAILURES", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "RunOptions", "run"]

LOG_NAME = "processing_log.json"
FUNCTION_LOG_NAME = "functions.log"

# Idle (queues empty, nothing in flight) this many polls in a row ends the run.
_IDLE_POLLS = 3
_FANOUT_INSTANCES = 2


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


@dataclass(frozen=True)
class RunResult:
    log: ProcessingLog
    log_path: Path
    exit_code: int


# --- preparation -------------------------------------------------------------------------
def find_template(explicit: Path | None = None) -> Path:
    """``--template``, else the source checkout this package lives in, else cwd upwards."""
    if explicit is not None:
        if not explicit.is_file():
            raise UserError(f"template not found: {explicit}")
        return explicit
    here = Path(__file__).resolve()
    for folder in [*here.parents, Path.cwd(), *Path.cwd().parents]:
        candidate = folder / "template.yaml"
        if candidate.is_file() and (folder / "functions").is_dir():
            return candidate
    raise UserError("cannot find Prism's template.yaml; pass --template")


def read_config(options: RunOptions) -> tuple[str | None, str]:
    """The validated config text (None: built-in default) and how to name it in the log."""
    if options.config_text is not None:
        text, label = options.config_text, options.config_label or "given config"
    elif options.config_path is not None:
        text, label = read_config_file(options.config_path), str(options.config_path)
    else:
        return None, "built-in default"
    try:
        parse_config(text, label)
    except ConfigError as exc:
        raise UserError(" ".join(str(exc).split())) from None
    return text, label


# --- process plumbing --------------------------------------------------------------------
class _StreamProxy(io.TextIOBase):
    """A stdout stand-in whose target can change: handlers keep writing to it after a run."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


_stdout_proxy: _StreamProxy | None = None
_proxy_lock = threading.Lock()


@contextmanager
def function_output_to(path: Path) -> Iterator[None]:
    """Send handler output (Powertools logs, EMF metrics, warnings) to ``path``.

    Powertools binds its log stream to ``sys.stdout`` when a handler module is imported,
    so stdout is replaced by a proxy that stays valid after this run.
    """
    global _stdout_proxy
    with _proxy_lock:
        if _stdout_proxy is None:
            _stdout_proxy = _StreamProxy(sys.stdout)
        proxy = _stdout_proxy
    with path.open("a", encoding="utf-8") as log_file:
        previous = proxy.target
        proxy.target = log_file
        file_handler = logging.StreamHandler(log_file)
        file_handler.setLevel(logging.WARNING)
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root = logging.getLogger()
        root.addHandler(file_handler)
        logging.captureWarnings(True)  # e.g. Powertools' "no metrics to publish"
        try:
            with redirect_stdout(proxy):
                yield
        finally:
            logging.captureWarnings(False)
            root.removeHandler(file_handler)
            proxy.target = previous


@contextmanager
def _interrupt_sets(stop: threading.Event, console: Console) -> Iterator[None]:
    """First Ctrl+C asks for a clean stop; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        console.print("[yellow]Stopping: finishing invocations under way (Ctrl+C again to abort)")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --- the run -----------------------------------------------------------------------------
def run(
    options: RunOptions, console: Console | None = None, stop: threading.Event | None = None
) -> RunResult:
    """Process ``options.inputs`` into ``options.out``. UserError for bad input."""
    console = console or Console(file=sys.stdout)
    stop = stop or threading.Event()
    folders = check_folders(options.inputs, options.out)
    config_text, config_label = read_config(options)
    config = default_config() if config_text is None else parse_config(config_text, config_label)
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
    with (
        _interrupt_sets(stop, console),
        function_output_to(out / FUNCTION_LOG_NAME),
        LocalStack(template_path) as stack,
    ):
        forget_warm_state()  # a new stack: the functions start cold
        if config_text is not None:
            stack.put_pipeline_config(config_text)
        local_run = _Run(stack, scan.files, out, config, options.workers, console, stop)
        local_run.upload_logos(logos)
        interrupted = local_run.execute(log)
    log = log.model_copy(update={"finished_at": datetime.now(UTC), "interrupted": interrupted})
    log_path = out / LOG_NAME
    log.save(log_path)
    failures = log.failed or log.partial or log.summary.variants_failed
    code = EXIT_FAILURES if failures else EXIT_OK
    return RunResult(
        log=log, log_path=log_path, exit_code=EXIT_INTERRUPTED if interrupted else code
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


class _Run:
    """One ``prism run``: a job on the run's own stack, fed with the files and followed."""

    def __init__(
        self,
        stack: LocalStack,
        files: list[InputFile],
        out: Path,
        config: PipelineConfig,
        workers: int,
        console: Console,
        stop: threading.Event,
    ) -> None:
        self.stack = stack
        self.config = config
        self.template: StackTemplate = stack.template
        self.settings = Settings.from_env(stack.environment)
        self.files = files
        self.out = out
        self.console = console
        self.stop = stop
        self.clients = stack.clients
        self.keys = {file.key(self.settings.upload_prefix): file for file in files}
        # Functions fed by a bucket notification (the fan-out) see one message per upload and
        # get a couple of instances; the rest (the workers) get ``workers``, capped by the
        # event source's MaximumConcurrency.
        notified = {n.queue for b in self.template.buckets.values() for n in b.queue_notifications}
        instances = {
            fn.logical_id: _FANOUT_INSTANCES
            if event.queue in notified
            else min(workers, event.maximum_concurrency or workers)
            for fn, event in self.template.sqs_consumers()
        }
        self.emulators: list[SqsEventSourceEmulator] = emulators_for(
            self.template, self.clients.sqs, instances=instances
        )
        self._idle_polls = 0

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
            self.clients.s3.put_object(Bucket=self.settings.input_bucket, Key=logo.key, Body=data)

    def execute(self, log: ProcessingLog) -> bool:
        """Run the job and fill ``log``; whether the run was interrupted."""
        for emulator in self.emulators:
            emulator.start()
        try:
            outcome = asyncio.run(self._job())
        finally:
            for emulator in self.emulators:
                emulator.request_stop()
            for emulator in self.emulators:
                emulator.join()
        interrupted = outcome.interrupted or self.stop.is_set()
        log.job = outcome.job_id
        self._collect(log, outcome.records or JobRecords(), interrupted)
        return interrupted

    async def _job(self) -> _Outcome:
        outcome = _Outcome()
        if self.stop.is_set():  # Ctrl+C while the stack was being made
            return _Outcome(interrupted=True)
        async with open_clients() as clients, Interrupts() as interrupts:
            table = JobTable(clients.dynamodb, self.settings.table_name)
            job_id = new_job_id()
            await table.create(
                new_job(
                    job_id,
                    JobKind.SUBMIT,
                    shards=self.settings.job_counter_shards,
                    description="prism run " + " ".join(sorted({f.label for f in self.files})),
                )
            )
            outcome.job_id = job_id
            items = [UploadItem(key, file.path, file.display) for key, file in self.keys.items()]
            feeder = UploadFeeder(table, job_id, clients.s3, self.settings.input_bucket, items)
            feeding = asyncio.create_task(feeder.run())
            monitor = JobMonitor(
                table,
                job_id,
                self.console,
                interrupts,
                FollowPolicy.for_local_run(interactive=interactive()),
                sealed=feeder.is_sealed,
                rows_before=feeder.rows,
                on_cancel=feeder.request_stop,
                background=feeding,
                show_failures=False,  # the summary lists them
            )
            result = await monitor.follow(idle=self._idle)
            await feeding
            outcome.interrupted = result.cancel_requested or result.progress.job.cancelled
            outcome.records = await read_job_records(table, result.progress.job)
        return outcome

    async def _idle(self) -> bool:
        """Nothing left to do (queues empty, no invocation under way) a few polls in a row:
        whatever did not finish is then in a dead-letter queue."""
        idle = await asyncio.to_thread(pipeline_idle, self.emulators, self.clients.sqs)
        self._idle_polls = self._idle_polls + 1 if idle else 0
        return self._idle_polls >= _IDLE_POLLS

    # --- the log ----------------------------------------------------------------------------
    def _collect(self, log: ProcessingLog, records: JobRecords, interrupted: bool) -> None:
        dead = read_dead_letters(
            self.clients.sqs, [queue.url for queue in self.template.dead_letter_queues()]
        )
        place = RunPlace(
            input_bucket=self.settings.input_bucket,
            output_bucket=self.settings.output_bucket,
            out=self.out,
            config=self.config,
        )
        fill_run_log(log, self.keys, records, dead, place, self.clients.s3, interrupted=interrupted)


# --- output ------------------------------------------------------------------------------
def print_summary(console: Console, result: RunResult, started: float) -> None:
    log, summary = result.log, result.log.summary
    status = "[yellow]interrupted[/]" if log.interrupted else "done"

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    # The same counts as the log's summary, each named with its unit.
    say(
        f"Prism run {status} in {time.monotonic() - started:.1f} s: "
        f"files: {summary.successful} successful, {summary.partial} partial, "
        f"{summary.failed} failed, {summary.skipped} skipped; "
        f"variants: {summary.variants_done} written to {escape(log.output)}, "
        f"{summary.variants_failed} failed, {summary.variants_skipped} skipped"
    )
    shown = 10
    lines = [
        *(("[magenta]partial[/]", p.path, partial_detail(p)) for p in log.partial),
        *(("[red]failed[/] ", f.path, f.error) for f in log.failed),
        *(("[dim]skipped[/]", s.path, s.reason) for s in log.skipped),
    ]
    for label, path, detail in lines[:shown]:
        say(f"  {label} {escape(path)}: {escape(detail)}")
    if len(lines) > shown:
        say(f"  ... {len(lines) - shown} more in the log")
    say(f"Log: {escape(str(result.log_path))}")

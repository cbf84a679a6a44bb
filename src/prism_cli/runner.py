"""``prism run``: push local folders through the real handlers on a local stack.

The files are uploaded to the input bucket of a moto stack built from ``template.yaml``;
S3 notifies the uploads queue; emulated SQS event sources drive the fan-out and worker
handlers; the run ends when every source's record is finished, or when nothing is left
to do (queues empty, no invocation under way: whatever is then in a dead-letter queue
failed). The rendered variants are downloaded into ``--out`` mirroring the inputs, next to
``processing_log.json``.
"""

from __future__ import annotations

import io
import logging
import posixpath
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from prism.config import ConfigError, parse_config
from prism.records import SourceRecord, SourceStatus, VariantRecord, VariantStatus
from prism.settings import Settings
from prism_cli.errors import UserError
from prism_cli.inputs import InputFile, check_folders, scan_folders
from prism_cli.lambda_emulator import (
    SqsEventSourceEmulator,
    emulators_for,
    forget_warm_state,
    pipeline_idle,
)
from prism_cli.local_stack import LocalStack
from prism_cli.processing_log import FailedFile, ProcessingLog, SkippedFile, VariantEntry
from prism_cli.results import DeadLetters, RecordReader, read_dead_letters
from prism_cli.template import StackTemplate

LOG_NAME = "processing_log.json"
FUNCTION_LOG_NAME = "functions.log"
EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_POLL_SECONDS = 0.5
# Idle (queues empty, nothing in flight) this many polls in a row ends the run.
_IDLE_POLLS = 3
_FANOUT_INSTANCES = 2
_IO_THREADS = 16


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
        try:
            text = options.config_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read config {options.config_path}: {exc.strerror}") from None
        label = str(options.config_path)
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
def _function_output_to(path: Path) -> Iterator[None]:
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
    template_path = find_template(options.template)
    scan = scan_folders(folders)
    if not scan.files:
        if not scan.skipped and not scan.failed:
            raise UserError(f"no files found in {', '.join(map(str, folders))}")
        raise UserError(f"no supported images in {', '.join(map(str, folders))}")
    if options.workers < 1:
        raise UserError("--workers must be at least 1")

    out = options.out
    out.mkdir(parents=True, exist_ok=True)
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
        _function_output_to(out / FUNCTION_LOG_NAME),
        LocalStack(template_path) as stack,
    ):
        forget_warm_state()  # a new stack: the functions start cold
        if config_text is not None:
            stack.put_pipeline_config(config_text)
        _Run(stack, scan.files, out, options.workers, console, stop).execute(log)
    log = log.model_copy(update={"finished_at": datetime.now(UTC), "interrupted": stop.is_set()})
    log_path = out / LOG_NAME
    log.save(log_path)
    code = EXIT_FAILURES if log.failed else EXIT_OK
    return RunResult(
        log=log, log_path=log_path, exit_code=EXIT_INTERRUPTED if stop.is_set() else code
    )


class _Run:
    def __init__(
        self,
        stack: LocalStack,
        files: list[InputFile],
        out: Path,
        workers: int,
        console: Console,
        stop: threading.Event,
    ) -> None:
        self.stack = stack
        self.template: StackTemplate = stack.template
        self.settings = Settings.from_env(stack.environment)
        self.files = files
        self.out = out
        self.console = console
        self.stop = stop
        self.clients = stack.clients
        self.keys = {file.key(self.settings.upload_prefix): file for file in files}
        table = next(
            (t for t in self.template.tables.values() if t.name == self.settings.table_name), None
        )
        if table is None:
            raise UserError(f"template has no table named {self.settings.table_name}")
        self.records = RecordReader(self.clients.dynamodb, table, self.settings.input_bucket)
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

    def execute(self, log: ProcessingLog) -> None:
        finished: dict[str, SourceRecord] = {}
        progress = Progress(
            TextColumn("{task.description:<11}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        with progress:
            uploading = progress.add_task("Uploading", total=len(self.keys))
            processing = progress.add_task("Processing", total=len(self.keys), start=False)
            for emulator in self.emulators:
                emulator.start()
            try:
                self._upload(lambda: progress.advance(uploading))
                progress.start_task(processing)
                self._wait(finished, lambda n: progress.update(processing, completed=n))
            finally:
                for emulator in self.emulators:
                    emulator.request_stop()
                for emulator in self.emulators:
                    emulator.join()
            # Invocations under way when the run stopped may have finished sources.
            self._refresh(finished)
            progress.update(processing, completed=len(finished))
        self._collect(log, finished)

    # --- phases ---------------------------------------------------------------------------
    def _upload(self, advance: Callable[[], object]) -> None:
        s3 = self.clients.s3

        def upload(item: tuple[str, InputFile]) -> None:
            if self.stop.is_set():
                return
            key, file = item
            with file.path.open("rb") as body:
                s3.put_object(Bucket=self.settings.input_bucket, Key=key, Body=body)
            advance()

        with ThreadPoolExecutor(_IO_THREADS) as pool:
            for _ in pool.map(upload, self.keys.items()):
                pass

    def _refresh(self, finished: dict[str, SourceRecord]) -> None:
        pending = [key for key in self.keys if key not in finished]
        for key, record in self.records.sources(pending).items():
            if record.finished:
                finished[key] = record

    def _wait(self, finished: dict[str, SourceRecord], report: Callable[[int], object]) -> None:
        idle_polls = 0
        while not self.stop.is_set():
            self._refresh(finished)
            report(len(finished))
            if len(finished) == len(self.keys):
                return
            idle = pipeline_idle(self.emulators, self.clients.sqs)
            idle_polls = idle_polls + 1 if idle else 0
            if idle_polls >= _IDLE_POLLS:
                return
            self.stop.wait(_POLL_SECONDS)

    def _collect(self, log: ProcessingLog, finished: dict[str, SourceRecord]) -> None:
        dead = read_dead_letters(
            self.clients.sqs, [queue.url for queue in self.template.dead_letter_queues()]
        )
        registered = self.records.sources(list(self.keys))
        downloads: list[tuple[str, Path]] = []
        for key, file in self.keys.items():
            record = registered.get(key)
            variants = self.records.variants(key) if record else []
            entries = [self._entry(file, variant, downloads) for variant in variants]
            recorded = {variant.variant for variant in variants}
            for name in sorted(dead.variants.get(key, set()) - recorded):
                entries.append(
                    VariantEntry(
                        path=file.display, variant=name, status="failed", reason="retries_exhausted"
                    )
                )
            log.variants.extend(entries)
            self._classify(log, file, key, record, entries, dead)
        self._download(downloads)

    def _entry(
        self, file: InputFile, variant: VariantRecord, downloads: list[tuple[str, Path]]
    ) -> VariantEntry:
        output: str | None = None
        if variant.status == VariantStatus.DONE and variant.output_key:
            destination = file.output_dir(self.out) / posixpath.basename(variant.output_key)
            downloads.append((variant.output_key, destination))
            output = destination.relative_to(self.out).as_posix()
        return VariantEntry(
            path=file.display,
            variant=variant.variant,
            status=variant.status,
            output=output,
            width=variant.width,
            height=variant.height,
            bytes=variant.bytes,
            duration_ms=variant.duration_ms,
            reason=variant.reason,
            error=variant.error,
        )

    def _classify(
        self,
        log: ProcessingLog,
        file: InputFile,
        key: str,
        record: SourceRecord | None,
        entries: list[VariantEntry],
        dead: DeadLetters,
    ) -> None:
        failures = [entry for entry in entries if entry.status == VariantStatus.FAILED]
        if record is None:
            reason = "retries_exhausted" if key in dead.uploads else "not_processed"
            if reason == "not_processed" and self.stop.is_set():
                reason = "interrupted"
            log.failed.append(FailedFile(path=file.display, error=reason))
        elif failures or not record.finished:
            details = sorted({_describe(entry) for entry in failures}) or [
                "interrupted" if self.stop.is_set() else "not_finished"
            ]
            log.failed.append(FailedFile(path=file.display, error="; ".join(details)))
        elif record.status == SourceStatus.SKIPPED or (entries and not _any_done(entries)):
            reasons = sorted({entry.reason or "skipped" for entry in entries}) or ["skipped"]
            log.skipped.append(SkippedFile(path=file.display, reason="; ".join(reasons)))
        else:
            log.successful.append(file.display)

    def _download(self, downloads: list[tuple[str, Path]]) -> None:
        s3 = self.clients.s3
        bucket = self.settings.output_bucket

        def download(item: tuple[str, Path]) -> None:
            key, destination = item
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

        with ThreadPoolExecutor(_IO_THREADS) as pool:
            for _ in pool.map(download, downloads):
                pass


def _any_done(entries: list[VariantEntry]) -> bool:
    return any(entry.status == VariantStatus.DONE for entry in entries)


def _describe(entry: VariantEntry) -> str:
    reason = entry.reason or "failed"
    return f"{reason}: {entry.error}" if entry.error else reason


# --- output ------------------------------------------------------------------------------
def print_summary(console: Console, result: RunResult, started: float) -> None:
    log, summary = result.log, result.log.summary
    status = "[yellow]interrupted[/]" if log.interrupted else "done"

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    say(
        f"Prism run {status} in {time.monotonic() - started:.1f} s: "
        f"{summary.successful} processed, {summary.failed} failed, {summary.skipped} skipped; "
        f"{summary.variants_done} variants written to {escape(log.output)}"
    )
    shown = 10
    for failure in log.failed[:shown]:
        say(f"  [red]failed[/]  {escape(failure.path)}: {escape(failure.error)}")
    for skipped in log.skipped[:shown]:
        say(f"  [dim]skipped[/] {escape(skipped.path)}: {escape(skipped.reason)}")
    hidden = max(len(log.failed) - shown, 0) + max(len(log.skipped) - shown, 0)
    if hidden:
        say(f"  ... {hidden} more in the log")
    say(f"Log: {escape(str(result.log_path))}")

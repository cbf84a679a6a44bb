"""A job's processing log, built from its source and variant records (the ``by-job`` index).

The same shape as ``prism run``'s ``processing_log.json`` (:class:`ProcessingLog`): every
source is successful, failed (with the reasons), skipped (with the reason) or, while the
job runs, pending; every variant has an entry with its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prism.aws.job_table import JobTable
from prism.jobs import JobRecord
from prism.records import SourceRecord, SourceStatus, VariantRecord, VariantStatus
from prism_cli.processing_log import FailedFile, ProcessingLog, SkippedFile, VariantEntry
from prism_cli.progress_display import parse_time

SourceKey = tuple[str, str]  # (bucket, key)


@dataclass
class JobRecords:
    sources: dict[SourceKey, SourceRecord] = field(default_factory=dict)
    variants: dict[SourceKey, list[VariantRecord]] = field(default_factory=dict)

    def add(self, record: SourceRecord | VariantRecord) -> None:
        key = (record.bucket, record.key)
        if isinstance(record, SourceRecord):
            self.sources[key] = record
        else:
            self.variants.setdefault(key, []).append(record)

    def variants_of(self, key: SourceKey) -> list[VariantRecord]:
        """The variants of the source's current run, in name order."""
        source = self.sources.get(key)
        records = self.variants.get(key, [])
        if source is not None:
            records = [record for record in records if record.run_id == source.run_id]
        return sorted(records, key=lambda record: record.variant)

    def failed_variants(self) -> list[VariantRecord]:
        return [
            variant
            for key in self.sources
            for variant in self.variants_of(key)
            if variant.status == VariantStatus.FAILED
        ]


async def read_job_records(table: JobTable, job: JobRecord) -> JobRecords:
    records = JobRecords()
    async for record in table.records(job):
        records.add(record)
    return records


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# --- classification (shared with ``prism run``) ---------------------------------------------
@dataclass(frozen=True)
class Outcome:
    kind: str  # successful | failed | skipped | pending
    detail: str = ""


def describe_failure(entry: VariantEntry) -> str:
    reason = entry.reason or "failed"
    return f"{reason}: {entry.error}" if entry.error else reason


def source_outcome(source: SourceRecord, entries: list[VariantEntry]) -> Outcome:
    """What happened to a registered source, judged by its record and its variants."""
    failures = [entry for entry in entries if entry.status == VariantStatus.FAILED]
    if failures or source.status == SourceStatus.COMPLETE_WITH_FAILURES:
        details = sorted({describe_failure(entry) for entry in failures})
        return Outcome("failed", "; ".join(details) or source.reason or "failed")
    if source.status == SourceStatus.PROCESSING and not source.finished:
        return Outcome("pending")
    done = any(entry.status == VariantStatus.DONE for entry in entries)
    if source.status == SourceStatus.SKIPPED or (entries and not done):
        reasons = sorted({entry.reason or "skipped" for entry in entries})
        return Outcome("skipped", "; ".join(reasons) or source.reason or "skipped")
    return Outcome("successful")


def variant_entry(path: str, record: VariantRecord, output: str | None) -> VariantEntry:
    return VariantEntry(
        path=path,
        variant=record.variant,
        status=record.status,
        output=output if record.status == VariantStatus.DONE else None,
        width=record.width,
        height=record.height,
        bytes=record.bytes,
        duration_ms=record.duration_ms,
        reason=record.reason,
        error=record.error,
    )


def add_outcome(log: ProcessingLog, path: str, outcome: Outcome) -> None:
    if outcome.kind == "successful":
        log.successful.append(path)
    elif outcome.kind == "failed":
        log.failed.append(FailedFile(path=path, error=outcome.detail))
    elif outcome.kind == "skipped":
        log.skipped.append(SkippedFile(path=path, reason=outcome.detail))
    else:
        log.pending.append(path)


# --- a job's log --------------------------------------------------------------------------
def build_job_log(
    job: JobRecord,
    records: JobRecords,
    output_bucket: str,
    *,
    failed_only: bool = False,
    path_of: Callable[[str, str], str] = s3_url,
) -> ProcessingLog:
    log = ProcessingLog(
        job=job.job_id,
        started_at=parse_time(job.created_at) or datetime.now(UTC),
        finished_at=parse_time(job.finished_at),
        interrupted=job.cancelled,
        inputs=[job.description] if job.description else [],
        output=s3_url(output_bucket, ""),
        config=f"the pipeline config of job {job.job_id}",
    )
    for key in sorted(records.sources):
        source = records.sources[key]
        path = path_of(*key)
        entries = [
            variant_entry(
                path,
                record,
                s3_url(output_bucket, record.output_key) if record.output_key else None,
            )
            for record in records.variants_of(key)
        ]
        outcome = source_outcome(source, entries)
        if failed_only:
            if outcome.kind != "failed":
                continue
            entries = [entry for entry in entries if entry.status == VariantStatus.FAILED]
        add_outcome(log, path, outcome)
        log.variants.extend(entries)
    return log


# --- printing -----------------------------------------------------------------------------------
def print_log(console: Console, log: ProcessingLog, *, failed_only: bool = False) -> None:
    summary = log.summary
    title = f"Job {log.job}" if log.job else "Processing log"
    if log.interrupted:
        title += " (cancelled)" if log.job else " (interrupted)"
    if failed_only:
        line = f"{summary.failed} failed sources, {summary.variants_failed} failed variants"
    else:
        line = (
            f"{summary.successful} successful, {summary.failed} failed, "
            f"{summary.skipped} skipped"
            + (f", {len(log.pending)} pending" if log.pending else "")
            + f"; variants {summary.variants_done} done, {summary.variants_failed} failed, "
            f"{summary.variants_skipped} skipped"
        )
    console.print(f"[bold]{escape(title)}[/]: {line}", highlight=False, soft_wrap=True)
    rows = _rows(log, failed_only=failed_only)
    if not rows:
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("outcome")
    table.add_column("source", overflow="fold")
    table.add_column("detail", overflow="fold")
    for outcome, path, detail in rows:
        style = {"failed": "red", "skipped": "dim", "pending": "yellow"}.get(outcome, "green")
        table.add_row(f"[{style}]{outcome}[/]", escape(path), escape(detail))
    console.print(table)


def _rows(log: ProcessingLog, *, failed_only: bool) -> list[tuple[str, str, str]]:
    rows = [("failed", failure.path, failure.error) for failure in log.failed]
    if failed_only:
        return rows
    done: dict[str, list[str]] = {}
    for entry in log.variants:
        if entry.status == VariantStatus.DONE:
            done.setdefault(entry.path, []).append(entry.variant)
    rows = [("successful", path, ", ".join(done.get(path, []))) for path in log.successful] + rows
    rows += [("skipped", skipped.path, skipped.reason) for skipped in log.skipped]
    rows += [("pending", path, "") for path in log.pending]
    return rows


def failed_lines(records: Iterable[VariantRecord]) -> list[tuple[str, str, str | None, str | None]]:
    """(path, variant, reason, error) of failed variants, for the live display."""
    return [
        (s3_url(record.bucket, record.key), record.variant, record.reason, record.error)
        for record in records
    ]

"""A job's processing log, built from its source and variant records (the ``by-job`` index).

The same shape as ``prism run``'s ``processing_log.json`` (:class:`ProcessingLog`): every
source is successful (every variant written), partial (some written, some not, each with
its reason), failed (none written, with the reasons), skipped (with the reason) or, while
the job runs, pending; every variant has an entry with its outcome.
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
from prism_cli.jobs.display import parse_time
from prism_cli.jobs.processing_log import (
    FailedFile,
    PartialFile,
    ProcessingLog,
    SkippedFile,
    VariantEntry,
)
from prism_cli.jobs.s3_urls import s3_url

SourceKey = tuple[str, str]  # (bucket, key)


@dataclass
class JobRecords:
    sources: dict[SourceKey, SourceRecord] = field(default_factory=dict)
    variants: dict[SourceKey, list[VariantRecord]] = field(default_factory=dict)

    def add(self, record: SourceRecord | VariantRecord) -> None:
        key = (record.bucket, record.key)
        if isinstance(record, SourceRecord):
            # A past run (superseded, or never current) stands for its key only when the
            # job has no current run of it; the latest past run wins.
            known = self.sources.get(key)
            if (
                known is None
                or not record.archived
                or (known.archived and record.generation >= known.generation)
            ):
                self.sources[key] = record
        else:
            self.variants.setdefault(key, []).append(record)

    def add_missing(self, other: JobRecords) -> None:
        """The sources of ``other`` that this has no record of, with their variants."""
        for key, source in other.sources.items():
            if key not in self.sources:
                self.sources[key] = source
                self.variants[key] = list(other.variants.get(key, []))

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


# --- classification (shared with ``prism run``) ---------------------------------------------
@dataclass(frozen=True)
class Outcome:
    kind: str  # successful | partial | failed | skipped | pending
    detail: str = ""
    done: tuple[str, ...] = ()  # partial: the variants written
    not_done: tuple[tuple[str, str], ...] = ()  # partial: (variant, why) of the others


def failure_detail(reason: str | None, error: str | None) -> str:
    """Why a variant failed: its reason, and its error if it has one."""
    detail = reason or "failed"
    return f"{detail}: {error}" if error else detail


def describe_failure(entry: VariantEntry) -> str:
    """Why a variant was not written: a failure's reason and error, a skip's reason (the
    reason says it all: ``cancelled``, ``superseded``, ``unsupported_format``)."""
    if entry.status == VariantStatus.SKIPPED:
        return entry.reason or "skipped"
    return failure_detail(entry.reason, entry.error)


def source_outcome(
    source: SourceRecord,
    entries: list[VariantEntry],
    *,
    unrecorded: Iterable[str] = (),
    unrecorded_reason: str = "not_finished",
) -> Outcome:
    """What happened to a registered source, judged by its record and its variants.

    ``unrecorded`` names variants the source should have but that have no entry (a run
    that stopped before they were done): they count as failed, for ``unrecorded_reason``.
    Without them, a source still processing is pending.
    """
    missing = sorted(set(unrecorded) - {entry.variant for entry in entries})
    if source.status == SourceStatus.PROCESSING and not source.finished and not missing:
        return Outcome("pending")
    if not entries and not missing:
        return _outcome_by_counts(source)
    done = [entry.variant for entry in entries if entry.status == VariantStatus.DONE]

    def not_written(status: VariantStatus) -> list[tuple[str, str]]:
        return [(e.variant, describe_failure(e)) for e in entries if e.status == status]

    failed = not_written(VariantStatus.FAILED) + [(name, unrecorded_reason) for name in missing]
    skipped = not_written(VariantStatus.SKIPPED)
    not_done = sorted(failed + skipped)
    reasons = "; ".join(sorted({why for _, why in not_done}))
    if done and not_done:
        return Outcome("partial", reasons, done=tuple(done), not_done=tuple(not_done))
    if done:
        return Outcome("successful")
    if failed or source.status == SourceStatus.COMPLETE_WITH_FAILURES:
        return Outcome("failed", reasons or source.reason or "failed")
    return Outcome("skipped", reasons or source.reason or "skipped")


def _outcome_by_counts(source: SourceRecord) -> Outcome:
    """A source without variant entries: rejected before fan-out, or a past run whose
    variant items now belong to a later run."""
    not_done = source.failed + source.skipped
    why = source.reason or ("failed" if source.failed else "skipped")
    if source.done and not_done:
        return Outcome("partial", f"{not_done} of {source.expected} variants: {why}")
    if source.status == SourceStatus.SKIPPED:
        return Outcome("skipped", why)
    if source.failed or source.status == SourceStatus.COMPLETE_WITH_FAILURES:
        return Outcome("failed", why)
    if source.skipped and not source.done:
        return Outcome("skipped", why)
    return Outcome("successful")  # every variant written, or none was expected


# What a log's variant entry takes from the variant's record, under the same names.
_ENTRY_FIELDS = (
    "variant",
    "status",
    "width",
    "height",
    "bytes",
    "duration_ms",
    "reason",
    "error",
    "reused_from",
)


def variant_entry(path: str, record: VariantRecord, output: str | None) -> VariantEntry:
    done = record.status == VariantStatus.DONE
    copied = {name: getattr(record, name) for name in _ENTRY_FIELDS}
    return VariantEntry(path=path, output=output if done else None, **copied)


def add_outcome(log: ProcessingLog, path: str, outcome: Outcome) -> None:
    if outcome.kind == "successful":
        log.successful.append(path)
    elif outcome.kind == "partial":
        log.partial.append(
            PartialFile(
                path=path,
                detail=outcome.detail,
                done=list(outcome.done),
                not_done=dict(outcome.not_done),
            )
        )
    elif outcome.kind == "failed":
        log.failed.append(FailedFile(path=path, error=outcome.detail))
    elif outcome.kind == "skipped":
        log.skipped.append(SkippedFile(path=path, reason=outcome.detail))
    else:
        log.pending.append(path)


# --- a job's log --------------------------------------------------------------------------
def job_log_header(job: JobRecord, output: str, config: str) -> ProcessingLog:
    """A job's log with nothing in it yet: its times, inputs, output and config."""
    return ProcessingLog(
        job=job.job_id,
        started_at=parse_time(job.created_at) or datetime.now(UTC),
        finished_at=parse_time(job.finished_at),
        interrupted=job.cancelled,
        inputs=[job.description] if job.description else [],
        output=output,
        config=config,
    )


def build_job_log(
    job: JobRecord,
    records: JobRecords,
    output_bucket: str,
    *,
    config: str = "",
    failed_only: bool = False,
    path_of: Callable[[str, str], str] = s3_url,
) -> ProcessingLog:
    """``config``: the pipeline config, as YAML (see
    :func:`prism_cli.jobs.stack_config.config_yaml`)."""
    log = job_log_header(job, s3_url(output_bucket, ""), config)
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
            entries = [entry for entry in entries if entry.status == VariantStatus.FAILED]
            if outcome.kind != "failed" and not (outcome.kind == "partial" and entries):
                continue
        add_outcome(log, path, outcome)
        log.variants.extend(entries)
    return log


# --- printing -----------------------------------------------------------------------------------
def summary_line(log: ProcessingLog) -> str:
    """The log's counts, each with its unit: sources (files) and variants."""
    summary = log.summary
    return (
        f"sources: {summary.successful} successful, {summary.partial} partial, "
        f"{summary.failed} failed, {summary.skipped} skipped"
        + (f", {len(log.pending)} pending" if log.pending else "")
        + f"; variants: {summary.variants_done} done, {summary.variants_failed} failed, "
        f"{summary.variants_skipped} skipped"
    )


def print_log(console: Console, log: ProcessingLog, *, failed_only: bool = False) -> None:
    summary = log.summary
    title = f"Job {log.job}" if log.job else "Processing log"
    if log.interrupted:
        title += " (cancelled)" if log.job else " (interrupted)"
    if failed_only:
        line = (
            f"sources: {summary.failed} failed, {summary.partial} partial; "
            f"variants: {summary.variants_failed} failed"
        )
    else:
        line = summary_line(log)
    console.print(f"[bold]{escape(title)}[/]: {line}", highlight=False, soft_wrap=True)
    rows = _rows(log, failed_only=failed_only)
    if not rows:
        return
    if not console.is_terminal:
        # Piped or redirected: one line per source, never wrapped (a URL cut at 80 columns
        # cannot be copied, grepped or cut), columns apart by two spaces.
        width = max(len(outcome) for outcome, _, _ in rows)
        for outcome, path, detail in rows:
            line = f"{outcome.ljust(width)}  {path}" + (f"  {detail}" if detail else "")
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("outcome")
    table.add_column("source", overflow="fold")
    table.add_column("detail", overflow="fold")
    styles = {"failed": "red", "partial": "magenta", "skipped": "dim", "pending": "yellow"}
    for outcome, path, detail in rows:
        style = styles.get(outcome, "green")
        table.add_row(f"[{style}]{outcome}[/]", escape(path), escape(detail))
    console.print(table)


def has_failures(log: ProcessingLog) -> bool:
    """Whether any source failed or any variant failed (what ``--failed-only`` lists)."""
    return bool(log.failed) or any(entry.status == VariantStatus.FAILED for entry in log.variants)


def partial_detail(partial: PartialFile) -> str:
    """A partial source's detail: ``written: a, b; c: reason``."""
    parts = [f"written: {', '.join(partial.done)}"] if partial.done else []
    parts += [f"{name}: {why}" for name, why in partial.not_done.items()]
    return "; ".join(parts) or partial.detail


def _rows(log: ProcessingLog, *, failed_only: bool) -> list[tuple[str, str, str]]:
    rows = [("partial", partial.path, partial_detail(partial)) for partial in log.partial]
    rows += [("failed", failure.path, failure.error) for failure in log.failed]
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


def failed_lines(records: Iterable[VariantRecord]) -> list[tuple[str, str, str]]:
    """(path, variant, why) of failed variants, for the live display."""
    return [
        (s3_url(r.bucket, r.key), r.variant, failure_detail(r.reason, r.error)) for r in records
    ]

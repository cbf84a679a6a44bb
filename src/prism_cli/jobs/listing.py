"""``prism jobs``: the stack's jobs, most recent first, with their counts and age.

Jobs are the items ``pk=JOB#<id>, sk=JOB`` of the processing table. The table has no index
by kind of item, so the list is a Scan filtered on the sort key (the CLI may Scan; the
functions' roles do not change); each job shown then has its counter shards read, as
``prism status`` does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prism.aws import schema
from prism.aws.job_table import JobTable
from prism.jobs import JobProgress, JobRecord
from prism_cli.jobs.display import parse_time

# Jobs whose counters are read at once.
_PROGRESS_READS = 8


async def scan_jobs(dynamodb: Any, table_name: str) -> list[JobRecord]:
    """Every job item of the table, page by page (only job items are returned)."""
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "FilterExpression": "sk = :job AND begins_with(pk, :prefix)",
        "ExpressionAttributeValues": schema.to_attributes(
            {":job": schema.JOB_SK, ":prefix": schema.job_pk("")}
        ),
    }
    jobs: list[JobRecord] = []
    while True:
        response = await dynamodb.scan(**kwargs)
        jobs.extend(schema.from_item(JobRecord, item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return jobs
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def most_recent(jobs: list[JobRecord], limit: int) -> list[JobRecord]:
    """The ``limit`` most recently created jobs, newest first (ties: by id)."""
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(
        jobs, key=lambda job: (parse_time(job.created_at) or epoch, job.job_id), reverse=True
    )
    return ordered[:limit]


async def recent_jobs(
    dynamodb: Any, table: JobTable, table_name: str, limit: int
) -> list[JobProgress]:
    """The ``limit`` most recent jobs with their counters summed over their shards."""
    jobs = most_recent(await scan_jobs(dynamodb, table_name), limit)
    slots = asyncio.Semaphore(_PROGRESS_READS)

    async def progress(job: JobRecord) -> JobProgress:
        async with slots:
            return await table.progress(job.job_id)

    return list(await asyncio.gather(*(progress(job) for job in jobs)))


def format_age(created_at: str, now: datetime) -> str:
    """How long ago: ``45s``, ``12m``, ``3h``, ``2d``; ``-`` when not known."""
    moment = parse_time(created_at)
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def job_document(progress: JobProgress, now: datetime) -> dict[str, Any]:
    """One job of ``prism jobs --json``."""
    job, counters = progress.job, progress.counters
    created = parse_time(job.created_at)
    return {
        "job": job.job_id,
        "kind": job.kind,
        "status": job.status,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "age_seconds": round((now - created).total_seconds(), 1) if created else None,
        "description": job.description,
        "sources": {
            "expected": progress.expected_sources,
            "registered": counters.sources_registered,
            "finished": counters.sources_finished,
            "failed": counters.sources_failed,
            "skipped": counters.sources_skipped,
        },
        "variants": {
            "expected": counters.variants_expected,
            "done": counters.variants_done,
            "failed": counters.variants_failed,
            "skipped": counters.variants_skipped,
        },
    }


def _sources_cell(progress: JobProgress) -> str:
    expected = progress.expected_sources
    finished = progress.counters.sources_finished
    return f"{finished}/{expected}" if expected is not None else f"{finished}/?"


def print_jobs(console: Console, jobs: list[JobProgress], now: datetime) -> None:
    if not jobs:
        console.print("No jobs yet.", highlight=False)
        return
    styles = {"complete": "green", "complete_with_failures": "red", "cancelled": "yellow"}
    rows = []
    for progress in jobs:
        job, counters = progress.job, progress.counters
        rows.append(
            (
                job.job_id,
                job.kind,
                job.status,
                _sources_cell(progress),
                str(counters.variants_done),
                str(counters.variants_failed),
                str(counters.variants_skipped),
                format_age(job.created_at, now),
            )
        )
    headers = ("job", "kind", "status", "sources", "done", "failed", "skipped", "age")
    if not console.is_terminal:  # piped: plain columns, never wrapped
        widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            console.print(escape(line.rstrip()), highlight=False, soft_wrap=True)
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for header in headers:
        numeric = header in ("done", "failed", "skipped")
        table.add_column(header, justify="right" if numeric else "left")
    for row in rows:
        style = styles.get(row[2], "cyan")
        cells = [escape(cell) for cell in row]
        cells[2] = f"[{style}]{cells[2]}[/]"
        table.add_row(*cells)
    console.print(table)

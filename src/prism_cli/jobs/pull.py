"""``prism pull JOB --out DIR``: a job's outputs and its ``processing_log.json`` on disk.

Only the job's own outputs are fetched: those its records name (each source's current run,
its variants that are done). They land where ``prism run`` puts them (the output key
without the config's output prefix), and the log is the job's log in ``prism run``'s
shape: sources as ``s3://`` URLs, outputs relative to ``DIR``, and a variant whose
download failed logged as ``download_failed`` with the reason.

The layout, the folder check and the downloads are ``prism run``'s own
(:mod:`prism_cli.jobs.downloads`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prism.jobs import JobRecord
from prism.records import VariantStatus
from prism_cli.jobs.downloads import (
    DOWNLOAD_FAILED,
    Download,
    download_all,
    local_output_path,
)
from prism_cli.jobs.log import (
    JobRecords,
    add_outcome,
    job_log_header,
    source_outcome,
    variant_entry,
)
from prism_cli.jobs.processing_log import ProcessingLog, VariantEntry
from prism_cli.jobs.s3_urls import s3_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LOG_NAME = "processing_log.json"


# --- a job's outputs and log ---------------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    log: ProcessingLog
    log_path: Path
    downloaded: int
    failed_downloads: int


def planned_downloads(
    records: JobRecords, out: Path, output_prefix: str
) -> dict[tuple[str, str], Download | str]:
    """(source URL, variant) -> its download, or why it cannot be placed below ``out``."""
    planned: dict[tuple[str, str], Download | str] = {}
    for key in sorted(records.sources):
        for record in records.variants_of(key):
            if record.status != VariantStatus.DONE or not record.output_key:
                continue
            destination = local_output_path(out, record.output_key, output_prefix)
            planned[(s3_url(*key), record.variant)] = (
                Download(record.output_key, destination)
                if destination is not None
                else f"output key {record.output_key} names no file below --out"
            )
    return planned


def pull_job(
    s3: S3Client,
    job: JobRecord,
    records: JobRecords,
    *,
    output_bucket: str,
    out: Path,
    output_prefix: str,
    config_text: str,
) -> PullResult:
    """Download the job's outputs into ``out`` (their keys without ``output_prefix``) and
    write its log there, its ``config`` being ``config_text``."""
    planned = planned_downloads(records, out, output_prefix)
    downloads = [item for item in planned.values() if isinstance(item, Download)]
    failures = download_all(s3, output_bucket, downloads)

    log = job_log_header(job, str(out), config_text)
    for key in sorted(records.sources):
        path = s3_url(*key)
        entries = [
            _local_entry(variant_entry(path, record, None), planned, failures, out)
            for record in records.variants_of(key)
        ]
        log.variants.extend(entries)
        add_outcome(log, path, source_outcome(records.sources[key], entries))
    log_path = out / LOG_NAME
    log.save(log_path)
    return PullResult(
        log=log,
        log_path=log_path,
        downloaded=len(downloads) - len(failures),
        failed_downloads=len(failures) + (len(planned) - len(downloads)),
    )


def _local_entry(
    entry: VariantEntry,
    planned: dict[tuple[str, str], Download | str],
    failures: dict[Download, str],
    out: Path,
) -> VariantEntry:
    plan = planned.get((entry.path, entry.variant))
    if plan is None:
        return entry
    error = plan if isinstance(plan, str) else failures.get(plan)
    if error is not None:
        update = {"status": VariantStatus.FAILED.value, "output": None, "reason": DOWNLOAD_FAILED}
        return entry.model_copy(update={**update, "error": error})
    assert isinstance(plan, Download)
    return entry.model_copy(update={"output": plan.destination.relative_to(out).as_posix()})

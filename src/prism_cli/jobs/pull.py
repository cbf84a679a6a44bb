"""``prism pull JOB --out DIR``: a job's outputs and its ``processing_log.json`` on disk.

Only the job's own outputs are fetched: those its records name (each source's current run,
its variants that are done). They land where ``prism run`` puts them (the output key
without the config's output prefix), and the log is the job's log in ``prism run``'s
shape: sources as ``s3://`` URLs, outputs relative to ``DIR``, and a variant whose
download failed logged as ``download_failed`` with the reason.

The job commands may not import :mod:`prism_cli.run` (an import contract), so the layout
(:func:`local_output_path`), the folder check and the streamed, threaded downloads are
this module's own; tests/unit/test_cli_pull.py checks the layout against ``prism run``'s.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from prism.jobs import JobRecord
from prism.records import VariantStatus
from prism_cli.errors import UserError, aws_error
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
DOWNLOAD_FAILED = "download_failed"  # as prism run logs it
_IO_THREADS = 16
_CHUNK_BYTES = 1024 * 1024


# --- where outputs go, and fetching them ------------------------------------------------------
def local_output_path(out: Path, output_key: str, output_prefix: str) -> Path | None:
    """Where the output ``output_key`` goes under ``out``, as in ``prism run``: the key
    without the config's output prefix. None for a key that would leave ``out``."""
    relative = output_key
    prefix = output_prefix.strip("/")
    if prefix and relative.startswith(prefix + "/"):
        relative = relative[len(prefix) + 1 :]
    parts = [part for part in PurePosixPath(relative).parts if part not in ("", "/")]
    if not parts or any(part in (".", "..") for part in parts):
        return None
    return out.joinpath(*parts)


def prepare_output_folder(out: Path) -> None:
    """Create ``out`` and check that files can be written in it; a UserError if not."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out, prefix=".prism-write-check-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to --out {out}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Download:
    key: str  # in the output bucket
    destination: Path


def download_all(
    s3: S3Client, bucket: str, downloads: Sequence[Download], threads: int = _IO_THREADS
) -> dict[Download, str]:
    """Fetch every object to its destination, streamed, one failure never stopping the
    others; the error of each one that failed."""

    def fetch(item: Download) -> str | None:
        try:
            body = s3.get_object(Bucket=bucket, Key=item.key)["Body"]
            try:
                _write(body, item.destination)
            finally:
                body.close()
        except OSError as exc:
            name = exc.filename if isinstance(exc.filename, str) else str(item.destination)
            return f"{exc.strerror or exc}: {name}"
        except ClientError as exc:
            return aws_error(exc)
        except BotoCoreError as exc:
            return str(exc)
        return None

    if not downloads:
        return {}
    with ThreadPoolExecutor(min(threads, len(downloads))) as pool:
        results = list(pool.map(fetch, downloads))
    return {item: error for item, error in zip(downloads, results, strict=True) if error}


def _write(body: Any, destination: Path) -> None:
    """Stream ``body`` into ``destination``; no partial file is left if that fails."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with destination.open("wb") as file:
            shutil.copyfileobj(body, file, _CHUNK_BYTES)
    except BaseException:
        with contextlib.suppress(OSError):
            destination.unlink(missing_ok=True)
        raise


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

"""``prism run``'s log: the job's records as the user sees them, with the outputs on disk.

Every input file gets its variants' entries and one outcome (see :mod:`prism_cli.jobs.log`).
Files are named as the user gave them, errors included (:mod:`prism_cli.run.local_paths`),
and outputs by their path relative to ``--out``. The rendered variants are downloaded
first (those the run downloaded while it went on, see :mod:`prism_cli.run.retire`, are
not fetched again), so that one that cannot be written locally is logged as
``download_failed`` instead of counting as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prism.config import PipelineConfig
from prism.keys import MANIFEST_VARIANT
from prism.records import SourceRecord, VariantRecord, VariantStatus
from prism_cli.jobs.downloads import DOWNLOAD_FAILED, Download, download_all, local_output_path
from prism_cli.jobs.inputs import InputFile
from prism_cli.jobs.log import JobRecords, Outcome, add_outcome, source_outcome, variant_entry
from prism_cli.jobs.processing_log import ProcessingLog, VariantEntry
from prism_cli.run.dead_letters import DeadLetters
from prism_cli.run.local_paths import LocalPaths

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RETRIES_EXHAUSTED = "retries_exhausted"


@dataclass(frozen=True)
class RunPlace:
    """Where a run's objects are, and where its outputs go."""

    input_bucket: str
    output_bucket: str
    out: Path
    config: PipelineConfig


@dataclass
class _File:
    key: str
    file: InputFile
    record: SourceRecord | None
    entries: list[VariantEntry]


def fill_run_log(
    log: ProcessingLog,
    files: Mapping[str, InputFile],
    records: JobRecords,
    dead: DeadLetters,
    place: RunPlace,
    s3: S3Client,
    *,
    interrupted: bool,
    downloaded: Mapping[Download, str | None] | None = None,
) -> None:
    """Add every file of ``files`` (object key -> file) to ``log``, downloading outputs
    (except those in ``downloaded``: what became of each, None if it was written)."""
    downloaded = downloaded or {}
    paths = LocalPaths(place.input_bucket, {key: file.display for key, file in files.items()})
    downloads: dict[tuple[str, str], Download] = {}  # (path, variant) -> its download
    collected = []
    for key, file in files.items():
        record = records.sources.get((place.input_bucket, key))
        variants = records.variants_of((place.input_bucket, key)) if record else []
        entries = [_entry(file, key, variant, paths, place, downloads) for variant in variants]
        recorded = {variant.variant for variant in variants}
        for name in sorted(dead.variants.get(key, set()) - recorded):
            entries.append(
                VariantEntry(
                    path=file.display, variant=name, status="failed", reason=RETRIES_EXHAUSTED
                )
            )
        collected.append(_File(key, file, record, entries))
        manifest = _manifest_download(record, place)
        if manifest is not None:  # next to the variants, as in the output bucket
            downloads[(file.display, MANIFEST_VARIANT)] = manifest
    wanted = [download for download in downloads.values() if download not in downloaded]
    failures = download_all(s3, place.output_bucket, wanted)
    failures.update(
        (download, error) for download, error in downloaded.items() if error is not None
    )
    variant_names = [variant.name for variant in place.config.variants]
    for item in collected:
        entries = [_downloaded(entry, downloads, failures) for entry in item.entries]
        log.variants.extend(entries)
        outcome = file_outcome(item.key, item.record, entries, dead, interrupted, variant_names)
        add_outcome(log, item.file.display, outcome)


def _manifest_download(record: SourceRecord | None, place: RunPlace) -> Download | None:
    """The source's manifest, if its run wrote one."""
    if record is None or not record.manifest_key or not record.announced_at or not record.done:
        return None
    destination = local_output_path(place.out, record.manifest_key, place.config.output_prefix)
    return Download(record.manifest_key, destination) if destination else None


def _entry(
    file: InputFile,
    key: str,
    variant: VariantRecord,
    paths: LocalPaths,
    place: RunPlace,
    downloads: dict[tuple[str, str], Download],
) -> VariantEntry:
    output: str | None = None
    entry = variant_entry(file.display, variant, None)
    if variant.status == VariantStatus.DONE and variant.output_key:
        destination = local_output_path(place.out, variant.output_key, place.config.output_prefix)
        if destination is None:
            return _download_failed(
                entry, f"output key {variant.output_key} names no file below --out"
            )
        downloads[(file.display, variant.variant)] = Download(variant.output_key, destination)
        output = destination.relative_to(place.out).as_posix()
    return entry.model_copy(update={"output": output, "error": paths.rewrite(entry.error, key)})


def _downloaded(
    entry: VariantEntry,
    downloads: Mapping[tuple[str, str], Download],
    failures: Mapping[Download, str],
) -> VariantEntry:
    download = downloads.get((entry.path, entry.variant))
    error = failures.get(download) if download is not None else None
    return entry if error is None else _download_failed(entry, error)


def _download_failed(entry: VariantEntry, error: str) -> VariantEntry:
    update = {"status": VariantStatus.FAILED.value, "output": None, "reason": DOWNLOAD_FAILED}
    return entry.model_copy(update={**update, "error": error})


def file_outcome(
    key: str,
    record: SourceRecord | None,
    entries: list[VariantEntry],
    dead: DeadLetters,
    interrupted: bool,
    variant_names: list[str],
) -> Outcome:
    """The outcome of the file uploaded as ``key`` once the run is over."""
    unfinished = "interrupted" if interrupted else "not_finished"
    if record is None:
        if key in dead.uploads:
            return Outcome("failed", RETRIES_EXHAUSTED)
        return Outcome("failed", "interrupted" if interrupted else "not_processed")
    # The run is over: whatever a source still waits for will not come.
    outcome = source_outcome(
        record,
        entries,
        unrecorded=() if record.finished else variant_names,
        unrecorded_reason=unfinished,
    )
    if outcome.kind == "pending":  # counted unfinished, yet every variant has an entry
        return Outcome("failed", unfinished)
    return outcome

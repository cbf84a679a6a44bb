"""The processing log of ``prism run`` and ``prism log``: how sources are classified
(successful, partial, failed, skipped), the summary's counts, dead letters, and paths."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from prism.jobs import JobRecord
from prism.records import SourceRecord, VariantRecord
from prism_cli.jobs.log import JobRecords, build_job_log, print_log, source_outcome
from prism_cli.jobs.processing_log import (
    FailedFile,
    PartialFile,
    ProcessingLog,
    SkippedFile,
    VariantEntry,
)
from prism_cli.run.dead_letters import DeadLetters
from prism_cli.run.local_paths import LocalPaths
from prism_cli.run.run_log import file_outcome
from prism_cli.run.summary import RunResult, print_summary


def source(key: str = "a.jpg", status: str = "complete", **fields: Any) -> SourceRecord:
    return SourceRecord(bucket="in", key=key, job_id="j", run_id="r", status=status, **fields)


def variant(key: str, name: str, status: str, run: str = "r", **fields: Any) -> VariantRecord:
    return VariantRecord(bucket="in", key=key, variant=name, run_id=run, status=status, **fields)


def job_records(*records: SourceRecord | VariantRecord) -> JobRecords:
    collected = JobRecords()
    for record in records:
        collected.add(record)
    return collected


def entry(
    variant: str, status: str, reason: str | None = None, error: str | None = None
) -> VariantEntry:
    return VariantEntry(path="a.jpg", variant=variant, status=status, reason=reason, error=error)


# --- partial sources --------------------------------------------------------------------------
def test_some_variants_written_is_partial_with_each_missing_variants_reason() -> None:
    record = source(status="complete_with_failures", expected=3, done=1, failed=1, skipped=1)
    entries = [
        entry("large", "failed", "encode_failed", "boom"),
        entry("thumbnail", "done"),
        entry("web", "skipped", "cancelled"),
    ]

    outcome = source_outcome(record, entries)

    assert outcome.kind == "partial"
    assert outcome.done == ("thumbnail",)
    assert dict(outcome.not_done) == {"large": "encode_failed: boom", "web": "cancelled"}


def test_cancelled_after_one_variant_is_partial_not_successful() -> None:
    record = source(expected=3, done=1, skipped=2)
    entries = [entry("a", "done"), entry("b", "skipped", "cancelled"), entry("c", "skipped")]
    assert source_outcome(record, entries).kind == "partial"


def test_none_written_is_failed_or_skipped_and_all_written_is_successful() -> None:
    failed = source(status="complete_with_failures", expected=2, failed=1, skipped=1)
    assert (
        source_outcome(failed, [entry("a", "failed", "corrupt"), entry("b", "skipped")]).kind
        == "failed"
    )
    skipped = source(status="skipped", expected=2, skipped=2)
    assert source_outcome(skipped, [entry("a", "skipped", "cancelled")] * 2).kind == "skipped"
    whole = source(expected=2, done=2)
    assert source_outcome(whole, [entry("a", "done"), entry("b", "done")]).kind == "successful"
    # A source rejected before its variants were sent: judged by its record alone.
    gone = source(status="complete_with_failures", expected=0, reason="source_missing")
    assert source_outcome(gone, []).detail == "source_missing"


def test_a_stopped_run_counts_unrecorded_variants_as_not_done() -> None:
    record = source(status="processing", expected=3, done=1)
    entries = [entry("a", "done")]
    assert source_outcome(record, entries).kind == "pending"

    outcome = source_outcome(
        record, entries, unrecorded=["a", "b", "c"], unrecorded_reason="interrupted"
    )

    assert outcome.kind == "partial"
    assert dict(outcome.not_done) == {"b": "interrupted", "c": "interrupted"}


def test_job_log_lists_partial_sources_and_counts_them() -> None:
    records = job_records(
        source("part.jpg", "complete_with_failures", expected=2, done=1, failed=1),
        variant("part.jpg", "a", "done"),
        variant("part.jpg", "b", "failed", reason="corrupt"),
        source("ok.jpg", expected=1, done=1),
        variant("ok.jpg", "a", "done"),
    )
    job = JobRecord(job_id="j", status="complete_with_failures", kind="submit", created_at="x")

    log = build_job_log(job, records, "out")

    assert log.successful == ["s3://in/ok.jpg"]
    assert [(p.path, p.done, p.not_done) for p in log.partial] == [
        ("s3://in/part.jpg", ["a"], {"b": "corrupt"})
    ]
    assert log.failed == []
    assert log.summary.partial == 1 and log.summary.files == 2
    console = Console(record=True, width=200)
    print_log(console, log)
    shown = console.export_text()
    assert "sources: 1 successful, 1 partial, 0 failed, 0 skipped" in shown
    assert "variants: 2 done, 1 failed, 0 skipped" in shown
    assert "written: a; b: corrupt" in shown
    # --failed-only keeps a partial source for its failed variant.
    failed_only = build_job_log(job, records, "out", failed_only=True)
    assert [p.path for p in failed_only.partial] == ["s3://in/part.jpg"]
    assert [v.variant for v in failed_only.variants] == ["b"]


def test_source_outcomes_in_a_job_log() -> None:
    records = job_records(
        source("ok.jpg", "complete", expected=2, done=2),
        variant("ok.jpg", "a", "done", output_key="ok_a.jpg"),
        variant("ok.jpg", "b", "done", output_key="ok_b.jpg"),
        variant("ok.jpg", "c", "failed", run="old", reason="corrupt"),  # an older run's
        source("bad.jpg", "complete_with_failures", expected=2, failed=1, done=1),
        variant("bad.jpg", "a", "failed", reason="encode_failed", error="boom"),
        variant("bad.jpg", "b", "done", output_key="bad_b.jpg"),
        source("late.jpg", "skipped", expected=2, skipped=2, reason="cancelled"),
        source("gone.jpg", "complete_with_failures", expected=0, reason="source_missing"),
        source("busy.jpg", "processing", expected=2, done=1),
        variant("busy.jpg", "a", "done", output_key="busy_a.jpg"),
    )
    job = JobRecord(job_id="j", status="running", kind="submit", created_at="2026-05-01T00:00:00")

    log = build_job_log(job, records, "out")

    assert log.successful == ["s3://in/ok.jpg"]
    assert [(p.path, p.done, p.not_done) for p in log.partial] == [
        ("s3://in/bad.jpg", ["b"], {"a": "encode_failed: boom"})
    ]
    assert [(f.path, f.error) for f in log.failed] == [("s3://in/gone.jpg", "source_missing")]
    assert [(s.path, s.reason) for s in log.skipped] == [("s3://in/late.jpg", "cancelled")]
    assert log.pending == ["s3://in/busy.jpg"]
    assert {v.output for v in log.variants if v.status == "done"} == {
        "s3://out/ok_a.jpg",
        "s3://out/ok_b.jpg",
        "s3://out/bad_b.jpg",
        "s3://out/busy_a.jpg",
    }
    assert log.summary.variants_failed == 1  # not the older run's
    failed_only = build_job_log(job, records, "out", failed_only=True)
    assert failed_only.successful == [] and failed_only.pending == []
    assert [v.variant for v in failed_only.variants] == ["a"]
    assert [p.path for p in failed_only.partial] == ["s3://in/bad.jpg"]


def test_a_past_run_does_not_replace_the_current_one() -> None:
    records = JobRecords()
    current = source("a.jpg", expected=1, done=1)
    past = SourceRecord(
        bucket="in",
        key="a.jpg",
        job_id="j",
        run_id="old",
        status="skipped",
        expected=1,
        skipped=1,
        reason="superseded",
        archived=True,
    )
    records.add(current)
    records.add(past)
    assert records.sources[("in", "a.jpg")] == current


def test_log_round_trip_and_summary_with_partial(tmp_path: Path) -> None:
    log = ProcessingLog(
        successful=["p/a.jpg"],
        partial=[PartialFile(path="p/b.jpg", detail="corrupt", done=["x"], not_done={"y": "c"})],
        failed=[FailedFile(path="p/c.jpg", error="truncated")],
        skipped=[SkippedFile(path="p/d.txt", reason="unsupported_format")],
        variants=[entry("x", "done"), entry("y", "failed"), entry("z", "skipped")],
    )
    path = tmp_path / "log.json"
    log.save(path)
    assert ProcessingLog.load(path) == log
    assert json.loads(path.read_text())["summary"] == {
        "files": 4,
        "successful": 1,
        "partial": 1,
        "failed": 1,
        "skipped": 1,
        "variants_done": 1,
        "variants_failed": 1,
        "variants_skipped": 1,
    }


def test_run_summary_names_units_and_matches_the_log(tmp_path: Path) -> None:
    log = ProcessingLog(
        output="out",
        successful=["p/a.jpg"],
        partial=[PartialFile(path="p/b.jpg", detail="cancelled", done=["x"])],
        skipped=[SkippedFile(path="p/d.txt", reason="unsupported_format")],
        variants=[entry("x", "done"), entry("x", "done"), entry("y", "skipped", "cancelled")],
    )
    console = Console(record=True, width=300)

    print_summary(console, RunResult(log, tmp_path / "log.json", 0), time.monotonic())

    first = console.export_text().splitlines()[0]
    assert "1 file successful, 1 file partial, 0 files failed, 1 file skipped;" in first
    assert "2 variants written to out, 0 variants failed, 1 variant skipped" in first


# --- dead letters -----------------------------------------------------------------------------
def s3_event(key: str) -> str:
    """An S3 notification as S3 (and moto) sends it: the key URL-encoded."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": "in", "arn": "arn:aws:s3:::in"},
                        "object": {"key": key, "size": 3, "eTag": "e"},
                    },
                }
            ]
        }
    )


def test_dead_upload_keys_are_decoded_and_logged_as_retries_exhausted() -> None:
    dead = DeadLetters()
    dead.add_body(s3_event("uploads%2Fx%2Fa+b+c.jpg"))
    dead.add_body(s3_event("uploads/x/100%25+sure.jpg"))
    dead.add_body("not json")

    assert dead.uploads == {"uploads/x/a b c.jpg", "uploads/x/100% sure.jpg"}
    assert dead.unrecognised == 1
    outcome = file_outcome("uploads/x/a b c.jpg", None, [], dead, False, ["a"])
    assert (outcome.kind, outcome.detail) == ("failed", "retries_exhausted")


# --- paths ------------------------------------------------------------------------------------
def test_local_paths_name_files_as_the_user_gave_them() -> None:
    paths = LocalPaths(
        "prism-local-input-123",
        {"uploads/zeros/a.jpg": "photos/zeros/a.jpg", "uploads/zeros/a.jpg.png": "photos/x.png"},
    )

    assert (
        paths.rewrite("prism-local-input-123/uploads/zeros/a.jpg is empty", "uploads/zeros/a.jpg")
        == "photos/zeros/a.jpg is empty"
    )
    assert (
        paths.rewrite("output k belongs to s3://prism-local-input-123/uploads/zeros/a.jpg.png")
        == "output k belongs to photos/x.png"
    )
    unknown = "s3://prism-local-input-123/elsewhere/logo.png is missing"
    assert paths.rewrite(unknown) == unknown
    assert paths.rewrite(None) is None


@pytest.mark.parametrize("reason", ["interrupted", "not_processed"])
def test_unregistered_file_is_failed_with_why(reason: str) -> None:
    outcome = file_outcome("k", None, [], DeadLetters(), reason == "interrupted", ["a"])
    assert (outcome.kind, outcome.detail) == ("failed", reason)


# --- prism log, piped and with --failed-only (issue 11) -----------------------------------------
LONG_URL = (
    "s3://prism-local-input-123456789012/uploads/" + "deep/" * 12 + "photo-with-a-long-name.jpg"
)


def test_piped_log_never_wraps_a_url_mid_word() -> None:
    log = ProcessingLog(
        job="j",
        successful=[LONG_URL],
        failed=[FailedFile(path=LONG_URL + ".png", error="truncated: image file is truncated")],
    )
    piped = Console(file=io.StringIO(), width=80, force_terminal=False)

    print_log(piped, log)

    lines = piped.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert any(line.startswith("successful") and line.endswith(LONG_URL) for line in lines)
    [failed] = [line for line in lines if line.startswith("failed")]
    assert f"  {LONG_URL}.png  truncated: image file is truncated" in failed


def failing_log(tmp_path: Path, *, failures: bool) -> Path:
    log = ProcessingLog(
        job="j",
        successful=["a.jpg"],
        failed=[FailedFile(path="b.jpg", error="corrupt")] if failures else [],
        variants=[VariantEntry(path="a.jpg", variant="web", status="done")]
        + (
            [VariantEntry(path="b.jpg", variant="web", status="failed", reason="corrupt")]
            if failures
            else []
        ),
    )
    path = tmp_path / "log.json"
    log.save(path)
    return path


def test_failed_only_exits_1_when_it_lists_failures(tmp_path: Path) -> None:
    from prism_cli.exit_codes import EXIT_FAILURES, EXIT_OK
    from prism_cli.main import main

    path = failing_log(tmp_path, failures=True)
    assert main(["log", "--load", str(path), "--failed-only"]) == EXIT_FAILURES
    assert main(["log", "--load", str(path)]) == EXIT_OK  # the whole log: shown, exit 0
    clean = failing_log(tmp_path, failures=False)
    assert main(["log", "--load", str(clean), "--failed-only"]) == EXIT_OK

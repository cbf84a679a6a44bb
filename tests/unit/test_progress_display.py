"""What the job progress display shows, from constructed snapshots at given times."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from prism.jobs import JobCounters, JobProgress, JobRecord
from prism_cli.jobs.display import (
    JobView,
    ProgressTracker,
    RateMeter,
    StageView,
    elapsed_seconds,
    format_bytes,
    format_count,
    format_duration,
    format_eta,
    format_percent,
    format_rate,
    snapshot_view,
    view_to_dict,
)
from prism_cli.jobs.view import BAR_WIDTH, progress_document, render_view, segment_widths

CREATED = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def job(
    *,
    sealed: bool = True,
    expected: int | None = 4,
    status: str = "running",
    finished_at: datetime | None = None,
) -> JobRecord:
    return JobRecord(
        job_id="job-1",
        status=status,
        kind="submit",
        created_at=CREATED.isoformat(timespec="milliseconds"),
        sealed=sealed,
        expected_sources=expected if sealed else None,
        finished_at=None if finished_at is None else finished_at.isoformat(),
    )


def snapshot(record: JobRecord | None = None, **counters: int) -> JobProgress:
    return JobProgress(job=record or job(), counters=JobCounters(**counters))


# --- one stage -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("count", "total", "percent"),
    [(0, 4, 0.0), (1, 3, 100 / 3), (4, 4, 100.0), (5, 4, 100.0), (0, 0, 100.0), (3, None, None)],
)
def test_percent(count: int, total: int | None, percent: float | None) -> None:
    assert StageView("complete", count, total).percent == percent


def test_eta_needs_a_total_and_a_rate() -> None:
    assert StageView("complete", 2, None, rate=5.0).eta_seconds is None  # total not known
    assert StageView("complete", 2, 10, rate=None).eta_seconds is None  # no rate yet
    assert StageView("complete", 2, 10, rate=0.0).eta_seconds is None  # stalled: no promise
    assert StageView("complete", 2, 10, rate=2.0).eta_seconds == 4.0
    assert StageView("complete", 10, 10, rate=None).eta_seconds == 0.0  # done: nothing left
    assert StageView("complete", 0, 0, rate=None).eta_seconds == 0.0


def test_rate_meter_measures_over_its_window() -> None:
    meter = RateMeter(window=30)
    assert meter.update(0, now=100.0) is None  # one sample: no rate
    assert meter.update(0, now=100.0) is None  # no time has passed
    assert meter.update(20, now=110.0) == 2.0
    # Samples older than the window drop out, but one at its start is kept.
    assert meter.update(100, now=150.0) == pytest.approx((100 - 20) / 40)
    assert meter.update(100, now=190.0) == 0.0  # nothing happened for a whole window


def test_rate_never_goes_negative() -> None:
    meter = RateMeter()
    meter.update(10, now=0.0)
    assert meter.update(7, now=1.0) == 0.0


# --- a job ---------------------------------------------------------------------------------------
def test_tracker_turns_snapshots_into_stage_views() -> None:
    tracker = ProgressTracker(window=60)
    wall = CREATED + timedelta(seconds=30)
    first = tracker.update(
        snapshot(sources_registered=2, variants_expected=6, variants_done=1), 0.0, wall
    )
    assert [stage.name for stage in first.stages] == [
        "scanning",
        "loading",
        "processing",
        "saving",
        "complete",
    ]
    assert all(stage.rate is None for stage in first.stages)

    second = tracker.update(
        snapshot(
            sources_registered=4,
            sources_loaded=3,
            sources_finished=2,
            variants_expected=12,
            variants_done=6,
            variants_failed=1,
            variants_skipped=1,
            bytes_in=1000,
            bytes_out=400,
        ),
        10.0,
        wall + timedelta(seconds=10),
    )
    processing = second.stage("processing")
    assert (processing.count, processing.total) == (8, 12)
    assert processing.rate == pytest.approx((8 - 1) / 10)
    assert processing.eta_seconds == pytest.approx(4 / 0.7)
    complete = second.stage("complete")
    assert (complete.count, complete.total, complete.percent) == (2, 4, 50.0)
    saving = second.stage("saving")  # accounted for: 6 written, 1 failed, 1 skipped
    assert (saving.count, saving.done, saving.failed, saving.skipped) == (8, 6, 1, 1)
    assert (second.bytes_in, second.bytes_out, second.variants_failed) == (1000, 400, 1)
    assert second.elapsed_seconds == 40.0
    assert second.active


def test_an_unsealed_job_has_unknown_totals() -> None:
    view = snapshot_view(
        snapshot(job(sealed=False), sources_registered=3, sources_finished=1),
        CREATED + timedelta(seconds=5),
    )
    for name in ("scanning", "loading", "complete"):
        stage = view.stage(name)
        assert stage.total is None and stage.percent is None and stage.eta_seconds is None
    assert view.expected_sources is None
    assert format_count(view.stage("scanning")) == "3/?"


def test_a_finished_job_stops_its_clock_and_is_not_active() -> None:
    ended = CREATED + timedelta(minutes=2, seconds=5)
    view = snapshot_view(
        snapshot(job(status="complete", finished_at=ended), sources_finished=4),
        ended + timedelta(hours=3),
    )
    assert view.elapsed_seconds == 125.0
    assert not view.active
    assert elapsed_seconds(snapshot(job()), CREATED - timedelta(seconds=5)) == 0.0


def test_a_job_with_nothing_to_do_is_complete() -> None:
    view = snapshot_view(snapshot(job(expected=0)), CREATED)
    assert view.stage("complete").percent == 100.0
    assert view.stage("complete").eta_seconds == 0.0


# --- formatting -------------------------------------------------------------------------------
def test_formatting() -> None:
    assert format_count(StageView("complete", 1234, 5000)) == "1,234/5,000"
    assert format_percent(None) == "-"
    assert format_percent(99.99) == "99%"  # never 100% before the end
    assert format_percent(100.0) == "100%"
    assert format_rate(None) == "-"
    assert format_rate(1.5, "files") == "1.5 files/s"
    assert format_rate(1234.4, "variants") == "1,234 variants/s"
    assert format_duration(None) == "-"
    assert format_duration(7) == "0:07"
    assert format_duration(59.6) == "1:00"
    assert format_duration(3725) == "1:02:05"
    assert format_eta(StageView("complete", 1, 5, rate=0.5)) == "0:08"
    assert format_eta(StageView("complete", 1, 5, rate=None)) == "-"
    assert format_bytes(999) == "999 B"
    assert format_bytes(1500) == "1.5 KB"
    assert format_bytes(2_500_000) == "2.5 MB"
    assert format_bytes(3 * 10**15) == "3000.0 TB"


def test_json_document() -> None:
    progress = snapshot(sources_registered=4, sources_finished=1, variants_expected=8)
    view = snapshot_view(progress, CREATED + timedelta(seconds=3))
    document = progress_document(progress, view)
    assert document["job"] == "job-1" and document["status"] == "running"
    assert document["stages"]["complete"] == {"count": 1, "total": 4, "percent": 25.0}
    assert document["stages"]["processing"] == {"count": 0, "total": 8, "percent": 0.0}
    assert document["counters"]["variants_expected"] == 8
    assert document["elapsed_seconds"] == 3.0
    assert set(view_to_dict(view)) <= set(document)


def test_rendering_shows_counts_percent_and_problems() -> None:
    tracker = ProgressTracker()
    tracker.update(snapshot(sources_registered=1, variants_expected=3), 0.0, CREATED)
    view = tracker.update(
        snapshot(
            sources_registered=4,
            sources_finished=3,
            variants_expected=12,
            variants_done=8,
            variants_failed=1,
        ),
        3.0,
        CREATED + timedelta(seconds=3),
    )
    console = Console(record=True, width=120, color_system=None)
    console.print(render_view(view, before=[StageView("uploading", 4, 4, rate=2.0)]))
    text = console.export_text()
    assert "Job job-1 (submit) running" in text
    assert "Uploading" in text and "4/4" in text
    assert "Complete" in text and "3/4" in text and "75%" in text
    assert "9/12" in text and "ETA 0:01" in text  # 8 variants in 3 s, 3 left
    assert "1 variant failed" in text
    assert "9/12 variants" in text and "8 done, 1 failed" in text


def bar_of(text: str, label: str) -> str:
    """The bar characters of the row of ``label`` in an exported display."""
    [row] = [line for line in text.splitlines() if line.startswith(label)]
    return "".join(ch for ch in row if ch in "█▓▒─")


def exported(view: JobView) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(render_view(view))
    return console.export_text()


def test_a_finished_job_shows_full_bars_of_done_failed_and_skipped() -> None:
    ended = CREATED + timedelta(seconds=7)
    progress = snapshot(
        job(status="complete_with_failures", expected=8, finished_at=ended),
        sources_registered=8,
        sources_loaded=7,  # one file could not be decoded
        sources_finished=8,
        sources_failed=1,
        variants_expected=24,
        variants_done=21,
        variants_failed=3,
    )
    view = snapshot_view(progress, ended)
    loading, saving = view.stage("loading"), view.stage("saving")
    assert (loading.done, loading.failed, loading.skipped, loading.total) == (7, 1, 0, 8)
    assert (saving.done, saving.failed, saving.skipped, saving.total) == (21, 3, 0, 24)
    assert all(stage.percent == 100.0 for stage in view.stages)
    text = exported(view)
    for label in ("Scanning", "Loading", "Processing", "Saving", "Complete"):
        bar = bar_of(text, label)
        assert len(bar) == BAR_WIDTH and "─" not in bar, (label, bar)  # full
    assert bar_of(text, "Loading").count("▓") >= 1 and "7 done, 1 failed" in text
    assert "21 done, 3 failed" in text and "87%" not in text
    assert "█ done  ▓ failed  ▒ skipped  ─ to do" in text  # the legend
    assert "1 source failed, 3 variants failed" in text  # each number with its unit


def test_a_cancelled_job_says_cancelled_not_complete() -> None:
    ended = CREATED + timedelta(seconds=7)
    record = replace(
        job(status="cancelled", expected=40, finished_at=ended),
        cancel_requested_at=(CREATED + timedelta(seconds=2)).isoformat(),
    )
    progress = snapshot(
        record,
        sources_registered=40,
        sources_loaded=12,
        sources_finished=40,
        sources_skipped=28,
        variants_expected=120,
        variants_done=36,
        variants_skipped=84,
    )
    view = snapshot_view(progress, ended)
    complete = view.stage("complete")
    assert (complete.done, complete.failed, complete.skipped) == (12, 0, 28)
    loading = view.stage("loading")
    assert (loading.done, loading.failed, loading.skipped) == (12, 0, 28)
    text = exported(view)
    [row] = [line for line in text.splitlines() if line.startswith("Complete")]
    assert "cancelled" in row and "100%" not in row and "12 done, 28 skipped" in row
    bar = bar_of(text, "Complete")
    assert bar.count("█") == 7 and bar.count("▒") == 17  # 12 and 28 of 40, in 24 cells


def test_a_running_job_shows_what_is_left() -> None:
    view = snapshot_view(
        snapshot(sources_registered=4, sources_finished=1, sources_loaded=2, variants_expected=12),
        CREATED,
    )
    bar = bar_of(exported(view), "Complete")
    assert bar == "█" * 6 + "─" * 18


@pytest.mark.parametrize(
    ("parts", "total", "cells"),
    [
        ((0, 0, 0), 10, [0, 0, 0]),
        ((10, 0, 0), 10, [24, 0, 0]),
        ((9, 0, 0), 10, [21, 0, 0]),  # floor: never full before the end
        ((999, 0, 0), 1000, [23, 0, 0]),
        ((7, 1, 0), 8, [21, 3, 0]),
        ((998, 1, 1), 1000, [22, 1, 1]),  # a failure always shows
        ((1, 1, 0), 1000, [0, 0, 0]),  # too little to draw
        ((0, 0, 5), 0, [0, 0, 0]),
    ],
)
def test_segment_widths(parts: tuple[int, int, int], total: int, cells: list[int]) -> None:
    widths = segment_widths(parts, total)
    assert widths == cells
    assert sum(widths) <= BAR_WIDTH


def test_no_color_is_respected() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, _environ={"NO_COLOR": "1"})
    view = snapshot_view(snapshot(sources_registered=4, variants_expected=8), CREATED)
    console.print(render_view(view))
    assert "\x1b[3" not in buffer.getvalue()  # no colour (bold is allowed)
    assert "─ to do" in buffer.getvalue()  # the segments differ by character, too

"""What a job's progress display shows, computed from successive progress snapshots.

Pure: a snapshot (:class:`prism.jobs.JobProgress`) and the time it was taken go in, the
figures of every stage come out (count, total, percent, rate, ETA). Rates are measured over
a sliding window of recent snapshots, so a burst at the start does not promise an ETA the
rest of the job cannot keep. Rendering them (rich) lives in :mod:`prism_cli.jobs.view`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from prism.jobs import ACTIVE_STATUSES, JobProgress

# The unit of each stage of :func:`stages`, and of those ``prism submit`` / ``backfill`` show
# while they feed the job (not job stages). A stage's label is its name, capitalised.
STAGE_UNITS = {
    "scanning": "sources",
    "loading": "sources",
    "processing": "variants",
    "saving": "variants",
    "complete": "sources",
    "uploading": "files",
    "enqueuing": "objects",
}
NOT_KNOWN = "-"
# Rates are measured over the snapshots of the last this many seconds.
DEFAULT_RATE_WINDOW = 30.0


@dataclass(frozen=True)
class StageView:
    name: str
    count: int
    total: int | None  # None: not known yet (the job is not sealed)
    rate: float | None = None  # per second; None until two snapshots are apart in time

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @property
    def unit(self) -> str:
        return STAGE_UNITS.get(self.name, "items")

    @property
    def percent(self) -> float | None:
        if self.total is None:
            return None
        if self.total <= 0:  # nothing to do is all done
            return 100.0
        return min(100.0, 100.0 * self.count / self.total)

    @property
    def remaining(self) -> int | None:
        return None if self.total is None else max(self.total - self.count, 0)

    @property
    def eta_seconds(self) -> float | None:
        remaining = self.remaining
        if remaining is None:
            return None
        if remaining == 0:
            return 0.0
        if not self.rate or self.rate <= 0:
            return None  # no progress measured: no promise
        return remaining / self.rate


@dataclass(frozen=True)
class JobView:
    job_id: str
    status: str
    kind: str
    stages: tuple[StageView, ...]
    elapsed_seconds: float | None
    bytes_in: int
    bytes_out: int
    variants_failed: int
    variants_skipped: int
    sources_failed: int
    expected_sources: int | None
    active: bool

    def stage(self, name: str) -> StageView:
        return next(stage for stage in self.stages if stage.name == name)


def stages(progress: JobProgress) -> dict[str, tuple[int, int | None]]:
    """The job's stages as (count, total); a total of None is not known yet.

    scanning: sources registered by the fan-out; loading: sources fetched and decoded;
    processing: variants finished (done, failed or skipped); saving: variants written;
    complete: sources with every variant accounted for."""
    c, sources = progress.counters, progress.expected_sources
    variants = c.variants_expected or None
    return {
        "scanning": (c.sources_registered, sources),
        "loading": (c.sources_loaded, sources),
        "processing": (c.variants_finished, variants),
        "saving": (c.variants_done, variants),
        "complete": (c.sources_finished, sources),
    }


def parse_time(text: str | None) -> datetime | None:
    """An ISO timestamp from a job item (UTC when it names no zone); None if absent or bad."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def elapsed_seconds(progress: JobProgress, wall_now: datetime) -> float | None:
    """Seconds from the job's creation to its end, or to ``wall_now`` while it runs."""
    created = parse_time(progress.job.created_at)
    if created is None:
        return None
    finished = parse_time(progress.job.finished_at)
    end = finished if finished is not None else wall_now
    return max(0.0, (end - created).total_seconds())


class RateMeter:
    """The rate of one growing count, over the samples of the last ``window`` seconds."""

    def __init__(self, window: float = DEFAULT_RATE_WINDOW) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, count: int, now: float) -> float | None:
        """Record ``count`` at ``now``; the rate per second, None before two samples."""
        self._samples.append((now, count))
        # Keep one sample at or before the window's start, so the window is always spanned.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self._window:
            self._samples.popleft()
        oldest_time, oldest_count = self._samples[0]
        span = now - oldest_time
        if span <= 0:
            return None
        return max(0, count - oldest_count) / span


class ProgressTracker:
    """Turns snapshots of one job, taken at increasing ``now`` (seconds, any monotonic
    clock), into :class:`JobView`s with rates and ETAs."""

    def __init__(self, window: float = DEFAULT_RATE_WINDOW) -> None:
        self._window = window
        self._meters: dict[str, RateMeter] = {}

    def stage(self, name: str, count: int, total: int | None, now: float) -> StageView:
        meter = self._meters.setdefault(name, RateMeter(self._window))
        return StageView(name=name, count=count, total=total, rate=meter.update(count, now))

    def update(self, progress: JobProgress, now: float, wall_now: datetime) -> JobView:
        views = tuple(
            self.stage(name, count, total, now) for name, (count, total) in stages(progress).items()
        )
        counters = progress.counters
        return JobView(
            job_id=progress.job.job_id,
            status=progress.job.status,
            kind=progress.job.kind,
            stages=views,
            elapsed_seconds=elapsed_seconds(progress, wall_now),
            bytes_in=counters.bytes_in,
            bytes_out=counters.bytes_out,
            variants_failed=counters.variants_failed,
            variants_skipped=counters.variants_skipped,
            sources_failed=counters.sources_failed,
            expected_sources=progress.expected_sources,
            active=progress.job.status in ACTIVE_STATUSES,
        )


def snapshot_view(progress: JobProgress, wall_now: datetime) -> JobView:
    """A view of a single snapshot: no rates, hence no ETAs."""
    return ProgressTracker().update(progress, 0.0, wall_now)


# --- formatting ----------------------------------------------------------------------------
def format_count(stage: StageView) -> str:
    total = "?" if stage.total is None else f"{stage.total:,}"
    return f"{stage.count:,}/{total}"


def format_percent(percent: float | None) -> str:
    if percent is None:
        return NOT_KNOWN
    # Never show 100% before the last item: floor, not round.
    return f"{int(percent)}%"


def format_rate(rate: float | None, unit: str = "") -> str:
    if rate is None:
        return NOT_KNOWN
    suffix = f" {unit}/s" if unit else "/s"
    if rate >= 10:
        return f"{rate:,.0f}{suffix}"
    return f"{rate:.1f}{suffix}"


def format_duration(seconds: float | None) -> str:
    """``0:07``, ``12:05``, ``1:02:03``; ``-`` when not known."""
    if seconds is None:
        return NOT_KNOWN
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_eta(stage: StageView) -> str:
    return format_duration(stage.eta_seconds)


def format_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def view_to_dict(view: JobView) -> dict[str, object]:
    """The machine-readable snapshot ``prism status --json`` prints."""
    return {
        "job": view.job_id,
        "status": view.status,
        "kind": view.kind,
        "active": view.active,
        "expected_sources": view.expected_sources,
        "elapsed_seconds": None if view.elapsed_seconds is None else round(view.elapsed_seconds, 3),
        "bytes_in": view.bytes_in,
        "bytes_out": view.bytes_out,
        "variants_failed": view.variants_failed,
        "variants_skipped": view.variants_skipped,
        "sources_failed": view.sources_failed,
        "stages": {
            stage.name: {
                "count": stage.count,
                "total": stage.total,
                "percent": None if stage.percent is None else round(stage.percent, 1),
            }
            for stage in view.stages
        },
    }

"""What a job's progress display shows, computed from successive progress snapshots.

Pure: a snapshot (:class:`prism.jobs.JobProgress`) and the time it was taken go in, the
figures of every stage come out (count, total, percent, rate, ETA). Rates are measured over
a sliding window of recent snapshots, so a burst at the start does not promise an ETA the
rest of the job cannot keep. Rendering them (rich) lives in :mod:`prism_cli.jobs.view`.

A stage's count is the items it has accounted for: done (they passed the stage), failed or
skipped (they ended without passing it: a file that could not be decoded never loads; a
cancelled job skips what had not started). The three add up to the stage's total once the
job has ended, so a finished job's stages are all full, whatever failed.
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
    count: int  # accounted for: done, failed or skipped
    total: int | None  # None: not known yet (the job is not sealed)
    rate: float | None = None  # per second; None until two snapshots are apart in time
    failed: int = 0  # of ``count``
    skipped: int = 0  # of ``count``

    @property
    def done(self) -> int:
        return max(self.count - self.failed - self.skipped, 0)

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


@dataclass(frozen=True)
class StageCounts:
    count: int  # accounted for: done, failed or skipped
    total: int | None
    failed: int = 0
    skipped: int = 0


def stage_counts(progress: JobProgress) -> dict[str, StageCounts]:
    """Each stage's items accounted for, of which failed and skipped (see the module doc).

    scanning: sources registered by the fan-out; loading: sources fetched and decoded;
    processing: variants finished; saving: variants written; complete: sources with every
    variant accounted for. The counters do not say at which stage a source ended, only
    that it did: a source stage's failed and skipped are the finished sources that never
    passed it, exact once every source has finished (a lower bound before)."""
    c, sources = progress.counters, progress.expected_sources
    variants = c.variants_expected or None

    def source_stage(passed: int) -> StageCounts:
        short = max(c.sources_finished - passed, 0)
        if progress.job.cancelled:  # what never got here was most likely skipped
            failed = min(short - min(short, c.sources_skipped), c.sources_failed)
        else:
            failed = min(short, c.sources_failed)
        return StageCounts(passed + short, sources, failed, short - failed)

    variant_stage = StageCounts(
        c.variants_finished, variants, c.variants_failed, c.variants_skipped
    )
    return {
        "scanning": source_stage(c.sources_registered),
        "loading": source_stage(c.sources_loaded),
        "processing": variant_stage,
        "saving": variant_stage,
        "complete": StageCounts(c.sources_finished, sources, c.sources_failed, c.sources_skipped),
    }


def stages(progress: JobProgress) -> dict[str, tuple[int, int | None]]:
    """The job's stages as (count, total); a total of None is not known yet (see
    :func:`stage_counts`)."""
    return {name: (part.count, part.total) for name, part in stage_counts(progress).items()}


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

    def stage(
        self,
        name: str,
        count: int,
        total: int | None,
        now: float,
        *,
        failed: int = 0,
        skipped: int = 0,
    ) -> StageView:
        meter = self._meters.setdefault(name, RateMeter(self._window))
        return StageView(
            name=name,
            count=count,
            total=total,
            rate=meter.update(count, now),
            failed=failed,
            skipped=skipped,
        )

    def update(self, progress: JobProgress, now: float, wall_now: datetime) -> JobView:
        views = tuple(
            self.stage(name, part.count, part.total, now, failed=part.failed, skipped=part.skipped)
            for name, part in stage_counts(progress).items()
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


def plural(count: int, unit: str) -> str:
    """``1 file``, ``3 files``, ``1,000 variants``: ``unit`` is the plural, ending in s."""
    return f"{count:,} {unit[:-1] if count == 1 and unit.endswith('s') else unit}"


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

"""Rendering a :class:`~prism_cli.jobs.display.JobView` with rich: a header line and one
progress bar per stage (an animated, indeterminate bar while the total is not known)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from prism.jobs import JobProgress
from prism_cli.jobs import display
from prism_cli.jobs.display import JobView, StageView

_STATUS_STYLES = {
    "running": "cyan",
    "cancelling": "yellow",
    "cancelled": "yellow",
    "complete": "green",
    "complete_with_failures": "red",
}
BAR_WIDTH = 24


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, "bold"))


def header(view: JobView) -> Text:
    return Text.assemble(
        ("Job ", "bold"),
        (view.job_id, "bold"),
        f" ({view.kind}) ",
        status_text(view.status),
        f"  elapsed {display.format_duration(view.elapsed_seconds)}",
        f"  in {display.format_bytes(view.bytes_in)}  out {display.format_bytes(view.bytes_out)}",
    )


def stage_table(stages: Sequence[StageView], *, active: bool = True) -> Table:
    """One row per stage; rates and ETAs only while the job runs and once they are known."""
    show_rates = active and any(stage.rate is not None for stage in stages)
    table = Table.grid(padding=(0, 2))
    table.add_column(min_width=10)
    table.add_column(width=BAR_WIDTH)
    table.add_column(justify="right")
    table.add_column(justify="right", min_width=4)
    if show_rates:
        table.add_column(justify="right", min_width=14)
        table.add_column(justify="left", min_width=9)
    for stage in stages:
        pulse = stage.total is None and active
        if stage.total is None:
            total, completed = (None if pulse else 1), 1
        elif stage.total == 0:
            total, completed = 1, 1  # nothing to do: full
        else:
            total, completed = stage.total, stage.count
        cells: list[RenderableType] = [
            stage.label,
            ProgressBar(total=total, completed=completed, width=BAR_WIDTH, pulse=pulse),
            display.format_count(stage),
            display.format_percent(stage.percent),
        ]
        if show_rates:
            cells.append(display.format_rate(stage.rate, stage.unit))
            cells.append(f"ETA {display.format_eta(stage)}" if stage.remaining else "")
        table.add_row(*cells)
    return table


def render_view(
    view: JobView, *, before: Sequence[StageView] = (), notes: Sequence[str] = ()
) -> RenderableType:
    """The whole display: header, ``before`` rows (e.g. uploading), the job's stages, notes."""
    parts: list[RenderableType] = [header(view)]
    parts.append(stage_table([*before, *view.stages], active=view.active))
    problems = []
    if view.variants_failed:
        problems.append(f"[red]{view.variants_failed:,} variants failed[/]")
    if view.variants_skipped:
        problems.append(f"{view.variants_skipped:,} skipped")
    if problems:
        parts.append(Text.from_markup("  " + ", ".join(problems)))
    parts.extend(Text.from_markup(note) for note in notes)
    return Group(*parts)


def progress_document(progress: JobProgress, view: JobView) -> dict[str, Any]:
    """``prism status --json``: the job record, its summed counters and the stages."""
    job = progress.job
    document = display.view_to_dict(view)
    document.update(
        {
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "cancel_requested_at": job.cancel_requested_at,
            "sealed": job.sealed,
            "description": job.description,
            "counters": asdict(progress.counters),
        }
    )
    return document


def failure_line(path: str, variant: str, detail: str) -> str:
    return f"  [red]failed[/]  {escape(path)} ({escape(variant)}): {escape(detail)}"

"""Rendering a :class:`~prism_cli.jobs.display.JobView` with rich: a header line and one
progress bar per stage (an animated, indeterminate bar while the total is not known).

Each bar shows the stage's done, failed and skipped items as segments of their own, in a
colour and a character each (told apart without colour too, ``NO_COLOR``), under a legend;
a finished job's bars are full. A cancelled job's stages say so rather than 100%."""

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


# The segments of a bar: (character, style), and the legend's word for each.
SEGMENTS = {
    "done": ("█", "green"),
    "failed": ("▓", "red"),
    "skipped": ("▒", "yellow"),
    "to do": ("─", "bright_black"),
}
_CANCELLED = {"cancelling", "cancelled"}


def segment_widths(parts: Sequence[int], total: int, width: int = BAR_WIDTH) -> list[int]:
    """The cells of each of ``parts`` (done, failed, skipped) in a bar of ``width`` for
    ``total`` items: all of it once they add up to ``total``, never all of it before; a part
    that is not zero gets a cell (taken from the largest) once the bar has some."""
    counted = sum(parts)
    if total <= 0 or counted <= 0:
        return [0] * len(parts)
    filled = width if counted >= total else min(width - 1, width * counted // total)
    shares = [filled * part / counted for part in parts]
    cells = [int(share) for share in shares]
    # The cells left over go to the largest remainders.
    by_remainder = sorted(range(len(parts)), key=lambda i: cells[i] - shares[i])
    for index in by_remainder[: filled - sum(cells)]:
        cells[index] += 1
    for index, part in enumerate(parts):
        if part and not cells[index]:
            largest = max(range(len(parts)), key=lambda i: cells[i])
            if cells[largest] > 1:
                cells[largest] -= 1
                cells[index] = 1
    return cells


def stage_bar(stage: StageView, *, active: bool, width: int = BAR_WIDTH) -> RenderableType:
    """The stage's bar: segments when its total is known; otherwise pulsing while the job
    runs, full once it has ended."""
    if stage.total is None:
        return ProgressBar(total=None if active else 1, completed=1, width=width, pulse=active)
    total = max(stage.total, 0)
    if total == 0:  # nothing to do: done
        return Text(SEGMENTS["done"][0] * width, style=SEGMENTS["done"][1])
    parts = [stage.done, min(stage.failed, stage.count), min(stage.skipped, stage.count)]
    cells = segment_widths(parts, total, width)
    bar = Text()
    for name, cell in zip(("done", "failed", "skipped"), cells, strict=True):
        character, style = SEGMENTS[name]
        bar.append(character * cell, style=style)
    character, style = SEGMENTS["to do"]
    bar.append(character * (width - sum(cells)), style=style)
    return bar


def legend() -> Text:
    text = Text()
    for index, (name, (character, style)) in enumerate(SEGMENTS.items()):
        text.append("  " if index else "")
        text.append(character, style=style)
        text.append(f" {name}")
    return text


def breakdown(stage: StageView) -> Text:
    """``7 done, 1 failed`` (nothing while all are done)."""
    if not stage.failed and not stage.skipped:
        return Text("")
    text = Text(f"{stage.done:,} done")
    if stage.failed:
        text.append(", ").append(f"{stage.failed:,} failed", style="red")
    if stage.skipped:
        text.append(", ").append(f"{stage.skipped:,} skipped", style="yellow")
    return text


def stage_table(
    stages: Sequence[StageView], *, active: bool = True, status: str | None = None
) -> Table:
    """One row per stage; rates and ETAs only while the job runs and once they are known."""
    show_rates = active and any(stage.rate is not None for stage in stages)
    table = Table.grid(padding=(0, 2))
    table.add_column(min_width=10)
    table.add_column(width=BAR_WIDTH)
    table.add_column(justify="right")
    table.add_column(justify="right", min_width=4)
    table.add_column(justify="left")
    if show_rates:
        table.add_column(justify="right", min_width=14)
        table.add_column(justify="left", min_width=9)
    for stage in stages:
        percent: RenderableType = display.format_percent(stage.percent)
        if status in _CANCELLED and stage.skipped:
            percent = status_text(status)
        cells: list[RenderableType] = [
            stage.label,
            stage_bar(stage, active=active),
            f"{display.format_count(stage)} {stage.unit}",
            percent,
            breakdown(stage),
        ]
        if show_rates:
            cells.append(display.format_rate(stage.rate, stage.unit))
            cells.append(f"ETA {display.format_eta(stage)}" if stage.remaining else "")
        table.add_row(*cells)
    return table


def problems(view: JobView) -> str:
    """``1 source failed, 3 variants failed, 2 variants skipped``: each number with its unit."""
    found = []
    if view.sources_failed:
        found.append(f"[red]{display.plural(view.sources_failed, 'sources')} failed[/]")
    if view.variants_failed:
        found.append(f"[red]{display.plural(view.variants_failed, 'variants')} failed[/]")
    if view.variants_skipped:
        found.append(f"[yellow]{display.plural(view.variants_skipped, 'variants')} skipped[/]")
    return ", ".join(found)


def render_view(
    view: JobView, *, before: Sequence[StageView] = (), notes: Sequence[str] = ()
) -> RenderableType:
    """The whole display: header, ``before`` rows (e.g. uploading), the job's stages, the
    bars' legend, problems, notes."""
    parts: list[RenderableType] = [header(view)]
    parts.append(stage_table([*before, *view.stages], active=view.active, status=view.status))
    parts.append(legend())
    found = problems(view)
    if found:
        parts.append(Text.from_markup("  " + found))
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

"""What ``prism run`` ends with: its result, and the summary printed from it.

Apart from the runner so that printing a run's summary needs no local stack (moto).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from prism_cli.jobs.display import plural
from prism_cli.jobs.log import partial_detail
from prism_cli.jobs.processing_log import ProcessingLog


@dataclass(frozen=True)
class RunResult:
    log: ProcessingLog
    log_path: Path
    exit_code: int
    # What the stack published (prism_cli.run.ready_events), oldest first.
    events: list[dict[str, Any]] = field(default_factory=list)


def print_summary(console: Console, result: RunResult, started: float) -> None:
    log, summary = result.log, result.log.summary
    status = "[yellow]interrupted[/]" if log.interrupted else "done"

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    # The same counts as the log's summary, each number named with its unit.
    say(
        f"Prism run {status} in {time.monotonic() - started:.1f} s: "
        f"{plural(summary.successful, 'files')} successful, "
        f"{plural(summary.partial, 'files')} partial, {plural(summary.failed, 'files')} failed, "
        f"{plural(summary.skipped, 'files')} skipped; "
        f"{plural(summary.variants_done, 'variants')} written to {escape(log.output)}, "
        f"{plural(summary.variants_failed, 'variants')} failed, "
        f"{plural(summary.variants_skipped, 'variants')} skipped"
    )
    shown = 10
    lines = [
        *(("[magenta]partial[/]", p.path, partial_detail(p)) for p in log.partial),
        *(("[red]failed[/] ", f.path, f.error) for f in log.failed),
        *(("[dim]skipped[/]", s.path, s.reason) for s in log.skipped),
    ]
    for label, path, detail in lines[:shown]:
        say(f"  {label} {escape(path)}: {escape(detail)}")
    if len(lines) > shown:
        say(f"  ... {len(lines) - shown} more in the log")
    say(f"Log: {escape(str(result.log_path))}")

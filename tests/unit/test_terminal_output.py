"""What reaches the terminal while a command draws on it: the functions' output goes to
their log (never over the live display), questions are asked when the process's ends are
a terminal, and the run's summary names the unit of each number."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.live import Live
from rich.text import Text

from prism_cli.interrupts import interactive
from prism_cli.jobs.processing_log import FailedFile, ProcessingLog
from prism_cli.local.function_log import function_output_to
from prism_cli.run.summary import RunResult, print_summary

EMF = json.dumps({"_aws": {"Timestamp": 1, "CloudWatchMetrics": []}, "Loaded": 1})


def handler_output(index: int) -> None:
    """What a handler thread prints: an EMF line (as Powertools' ``print``), a log line on
    stderr, in pieces."""
    print(EMF)
    sys.stderr.write(f"stderr line {index} ")
    sys.stderr.write("ends here\n")


def test_function_output_goes_to_the_log_not_over_a_live_display(tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    log = tmp_path / "functions.log"
    with function_output_to(log):
        live = Live(
            Text("progress"),
            console=console,
            redirect_stdout=False,
            redirect_stderr=False,
            auto_refresh=False,
        )
        live.start()
        try:
            threads = [threading.Thread(target=handler_output, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            live.refresh()
            console.print("a line of the command's own")
        finally:
            live.stop()
    assert "_aws" not in screen.getvalue() and "stderr line" not in screen.getvalue()
    assert "a line of the command's own" in screen.getvalue()
    lines = log.read_text().splitlines()
    # Every line whole, whichever thread wrote it and in how many pieces.
    assert sorted(lines) == sorted([EMF] * 8 + [f"stderr line {i} ends here" for i in range(8)])
    print("after the run")  # no longer logged
    assert "after the run" not in log.read_text()


def test_unfinished_lines_are_logged_at_the_end(tmp_path: Path) -> None:
    log = tmp_path / "functions.log"
    with function_output_to(log):
        sys.stdout.write("no newline")
    assert log.read_text() == "no newline\n"


@pytest.fixture
def terminal() -> Iterator[tuple[io.TextIOWrapper, io.TextIOWrapper]]:
    """Both ends of a pseudo-terminal's slave, as text files."""
    master, slave = os.openpty()
    reading = open(slave, encoding="utf-8", closefd=False)  # noqa: SIM115
    writing = open(slave, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    try:
        yield reading, writing
    finally:
        reading.close()
        writing.close()
        os.close(slave)
        os.close(master)


def test_interactive_looks_at_the_process_terminal_not_sys_stdout(
    monkeypatch: pytest.MonkeyPatch, terminal: tuple[io.TextIOWrapper, io.TextIOWrapper]
) -> None:
    reading, writing = terminal
    monkeypatch.setattr(sys, "stdin", reading)
    monkeypatch.setattr(sys, "__stdout__", writing)
    # sys.stdout replaced (the functions' log, rich's proxy): still a terminal to ask on.
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert interactive()
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # piped in: nobody to answer
    assert not interactive()
    monkeypatch.setattr(sys, "stdin", reading)
    monkeypatch.setattr(sys, "__stdout__", None)  # e.g. pythonw
    assert not interactive()


def test_the_summary_names_the_unit_of_every_number(tmp_path: Path) -> None:
    log = ProcessingLog(
        inputs=["photos"],
        output="out",
        config="default",
        successful=["photos/a.jpg", "photos/b.jpg"],
        failed=[FailedFile(path="photos/broken.jpg", error="decode_failed: not an image")],
    )
    result = RunResult(log=log, log_path=tmp_path / "processing_log.json", exit_code=0)
    console = Console(record=True, width=300, color_system=None)
    print_summary(console, result, time.monotonic())
    text = console.export_text()
    assert "2 files successful, 0 files partial, 1 file failed, 0 files skipped;" in text
    assert "0 variants written to out, 0 variants failed, 0 variants skipped" in text

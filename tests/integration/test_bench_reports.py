"""The benchmark scripts that run the handlers on their own local stack print a report, not
the handlers' logs: those go to the file the script names (no timings are asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_script(name: str, *args: str, cwd: Path) -> str:
    completed = subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Fanned out upload" not in completed.stderr
    return completed.stdout


def test_cost_prints_the_report_and_logs_the_handlers_to_a_file(tmp_path: Path) -> None:
    log = tmp_path / "functions.log"

    printed = run_script("cost.py", "--uploads", "2", "--function-log", str(log), cwd=tmp_path)

    assert "Requests per upload (2 uploads" in printed
    assert "Recommended worker memory:" in printed
    assert f"the functions' log is in {log}" in printed
    # Powertools' JSON log lines and EMF metrics start with "{": none reach the report.
    assert not [line for line in printed.splitlines() if line.lstrip().startswith("{")]
    logged = log.read_text()
    assert "Fanned out upload" in logged and '"CloudWatchMetrics"' in logged


def test_orchestration_cpu_prints_one_line_and_logs_the_handlers_to_a_file(
    tmp_path: Path,
) -> None:
    log = tmp_path / "functions.log"

    printed = run_script(
        "orchestration_cpu.py", "--sources", "2", "--function-log", str(log), cwd=tmp_path
    )

    assert printed.splitlines()[-1].startswith("6 variant messages in 1 batches:")
    assert not [line for line in printed.splitlines() if line.lstrip().startswith("{")]
    assert '"CloudWatchMetrics"' in log.read_text()

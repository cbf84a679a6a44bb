"""``prism demo`` (what ``make demo`` runs) ends by saying where its ``report.html`` is, and
the report tells the demo's broken and skipped files apart in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism_cli.report import REPORT_NAME, reason_words
from support.cli import prism

pytestmark = pytest.mark.integration


def test_demo_ends_with_the_report(tmp_path: Path) -> None:
    result = prism("demo", "--out", "demo-output", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == f"Log: {Path('demo-output', 'processing_log.json')}"
    assert lines[-1] == f"Report: {Path('demo-output', REPORT_NAME)}"
    page = (tmp_path / "demo-output" / REPORT_NAME).read_text(encoding="utf-8")
    assert reason_words("truncated") in page  # broken.jpg
    assert reason_words("unsupported_format") in page  # notes.txt
    assert page.count("<img ") == 21  # 7 good samples x 3 variants

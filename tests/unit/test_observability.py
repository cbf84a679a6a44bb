"""The metrics with a dimension of their own that the dashboard breaks down by, and what
X-Ray traces in Lambda."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prism.observability import count_failure, record_render_times


def emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    document: dict[str, object] = json.loads(line)
    return document


def test_failures_are_counted_by_reason(capsys: pytest.CaptureFixture[str]) -> None:
    count_failure("corrupt_image")
    document = emitted(capsys)
    (directive,) = document["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert directive["Namespace"] == "Prism"
    assert set(directive["Dimensions"][0]) == {"reason", "service"}
    assert directive["Metrics"] == [{"Name": "FailuresByReason", "Unit": "Count"}]
    assert (document["reason"], document["service"]) == ("corrupt_image", "prism")
    assert document["FailuresByReason"] in (1, 1.0, [1.0])


def test_render_times_are_recorded_by_variant_one_document_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    record_render_times({"web": [40.0, 42.5], "thumbnail": [12.5]})
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [d["variant"] for d in documents] == ["thumbnail", "web"]
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert set(directive["Dimensions"][0]) == {"variant", "service"}
        assert directive["Metrics"] == [{"Name": "RenderDurationByVariant", "Unit": "Milliseconds"}]
    assert documents[0]["RenderDurationByVariant"] in (12.5, [12.5])
    assert documents[1]["RenderDurationByVariant"] == [40.0, 42.5]


def test_more_render_times_than_a_document_takes_go_in_several(
    capsys: pytest.CaptureFixture[str],
) -> None:
    record_render_times({"web": [float(ms) for ms in range(150)]})
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [len(d["RenderDurationByVariant"]) for d in documents] == [100, 50]


def test_in_lambda_xray_traces_aiobotocore_alone(tmp_path: Path) -> None:
    # Outside Lambda Powertools switches tracing off (and patches nothing): set what Lambda
    # sets, in a fresh interpreter.
    probe = (
        "import sys, prism.observability\n"
        "from aws_xray_sdk.core import patcher\n"
        "print(sorted(patcher._PATCHED_MODULES), 'requests' in sys.modules)"
    )
    environment = {**os.environ, "LAMBDA_TASK_ROOT": str(tmp_path)}
    environment.pop("POWERTOOLS_TRACE_DISABLED", None)
    completed = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["['aiobotocore']", "False"]

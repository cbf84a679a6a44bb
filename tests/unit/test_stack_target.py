"""What the job commands take from a stack's parameters besides its Outputs."""

from __future__ import annotations

import pytest

from prism_cli.jobs.target import REQUIRED_OUTPUTS, StackTarget

OUTPUTS = {name: "x" for name in REQUIRED_OUTPUTS}


@pytest.mark.parametrize(
    ("parameters", "days"),
    [({}, 90), ({"RecordRetentionDays": "30"}, 30), ({"RecordRetentionDays": "0"}, 0)],
)
def test_a_job_the_cli_ends_is_kept_as_long_as_the_stack_keeps_its_records(
    parameters: dict[str, str], days: int
) -> None:
    assert StackTarget("s", OUTPUTS, parameters).record_retention_days == days


def test_an_unreadable_retention_falls_back_to_the_default() -> None:
    target = StackTarget("s", OUTPUTS, {"RecordRetentionDays": "many"})
    assert target.record_retention_days == 90

"""``prism pull``'s layout (the same as ``prism run``'s), the dry run's capped variant
names, and the examples every job command's ``--help`` ends with (project issue 11)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from prism.jobs import JobRecord
from prism.records import SourceRecord, VariantRecord
from prism_cli.jobs import pull
from prism_cli.jobs.downloads import local_output_path
from prism_cli.jobs.log import JobRecords
from prism_cli.jobs.processing_log import ProcessingLog


@pytest.mark.parametrize(
    ("key", "prefix", "expected"),
    [
        ("photos/a_web.webp", "", "photos/a_web.webp"),
        ("renditions/photos/trip/b_thumb.jpg", "renditions", "photos/trip/b_thumb.jpg"),
        ("renditions/photos/b.jpg", "/renditions/", "photos/b.jpg"),
        ("other/photos/b.jpg", "renditions", "other/photos/b.jpg"),
        ("../escape.jpg", "", None),
        ("renditions/", "renditions", None),
    ],
)
def test_pull_lays_outputs_out_as_prism_run_does(
    tmp_path: Path, key: str, prefix: str, expected: str | None
) -> None:
    # The layout both commands use (prism_cli.jobs.downloads).
    path = local_output_path(tmp_path, key, prefix)
    assert path == (None if expected is None else tmp_path / expected)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        chunk = (
            self.data[self.offset :] if size < 0 else self.data[self.offset : self.offset + size]
        )
        self.offset += len(chunk)
        return chunk

    def close(self) -> None:
        pass


class _S3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, _Body]:
        return {"Body": _Body(self.objects[Key])}


def test_pull_writes_the_jobs_done_outputs_and_a_log_relative_to_out(tmp_path: Path) -> None:
    from prism.config import default_config

    records = JobRecords()
    records.add(
        SourceRecord(
            bucket="in",
            key="uploads/a.jpg",
            job_id="j",
            run_id="r",
            status="complete_with_failures",
            expected=2,
            done=1,
            failed=1,
        )
    )
    records.add(
        VariantRecord(
            bucket="in",
            key="uploads/a.jpg",
            variant="web",
            run_id="r",
            status="done",
            output_key="a_web.webp",
        )
    )
    records.add(
        VariantRecord(
            bucket="in",
            key="uploads/a.jpg",
            variant="thumbnail",
            run_id="r",
            status="failed",
            reason="encode_failed",
        )
    )
    # A past run's output is not the job's current output: not fetched.
    records.add(
        VariantRecord(
            bucket="in",
            key="uploads/a.jpg",
            variant="web",
            run_id="old",
            status="done",
            output_key="old.webp",
        )
    )
    job = JobRecord(
        job_id="j",
        status="complete_with_failures",
        kind="submit",
        created_at="2026-01-01T00:00:00+00:00",
    )
    s3 = _S3({"a_web.webp": b"webp bytes", "old.webp": b"x"})

    result = pull.pull_job(
        s3,  # type: ignore[arg-type]
        job,
        records,
        output_bucket="out",
        out=tmp_path,
        output_prefix=default_config().output_prefix,
        config_text="variants: []\n",
    )

    assert (tmp_path / "a_web.webp").read_bytes() == b"webp bytes"
    assert not (tmp_path / "old.webp").exists()
    assert result.downloaded == 1 and result.failed_downloads == 0
    log = ProcessingLog.load(tmp_path / "processing_log.json")
    assert log.job == "j" and log.output == str(tmp_path) and log.config == "variants: []\n"
    [done] = [entry for entry in log.variants if entry.status == "done"]
    assert done.output == "a_web.webp" and done.path == "s3://in/uploads/a.jpg"
    assert [partial.path for partial in log.partial] == ["s3://in/uploads/a.jpg"]


def test_dry_run_names_at_most_ten_missing_variants_per_object() -> None:
    from prism_cli.jobs.commands import _capped

    assert _capped(["a", "b"]) == "a, b"
    names = [f"v{index}" for index in range(13)]
    assert _capped(names) == ", ".join(names[:10]) + ", … and 3 more"


def test_every_job_command_help_ends_with_examples() -> None:
    from prism_cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = ["submit", "status", "cancel", "log", "pull", "jobs", "backfill", "redrive"]
    for name in names:
        text = commands.choices[name].format_help()
        assert "examples:\n  prism " + name in text, name
    config = commands.choices["config"]
    config_commands = next(a for a in config._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("show", "set"):
        assert "examples:\n  prism config " + name in config_commands.choices[name].format_help()

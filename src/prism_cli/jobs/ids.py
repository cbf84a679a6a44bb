"""Job names (generated ones, and the rules for names people choose) and creating a job."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from prism.aws.job_table import JobTable
from prism.jobs import JobKind, JobRecord, JobStatus
from prism.records import utc_now
from prism_cli.errors import UserError

# Job ids end up in DynamoDB keys ("<id>#<shard>") and S3 metadata (ASCII only): keep them
# to letters, digits, '.', '_' and '-'.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def new_job_id(now: datetime | None = None) -> str:
    """``job-YYYYmmdd-HHMMSS-xxxx`` (UTC, four random hex digits)."""
    moment = now or datetime.now(UTC)
    return f"job-{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def check_job_id(text: str) -> str:
    if not _JOB_ID.fullmatch(text):
        raise UserError(
            f"invalid job name {text!r}: use up to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text


def new_job(job_id: str, kind: JobKind, *, shards: int, description: str | None) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        status=JobStatus.RUNNING.value,
        kind=kind.value,
        created_at=utc_now(),
        shards=shards,
        description=description,
    )


async def create_job(
    table: JobTable, job_id: str, kind: JobKind, description: str, *, shards: int
) -> None:
    """Create the job, or stop with a user error if the name is taken."""
    if not await table.create(new_job(job_id, kind, shards=shards, description=description)):
        raise UserError(f"a job named {job_id!r} exists already; pick another --job")

"""A variant task's outcome as the record the processing log keeps."""

from __future__ import annotations

from typing import Any

from prism.errors import PermanentError
from prism.jobs import utc_now
from prism.messages import VariantTask
from prism.records import VariantRecord, VariantStatus


def variant_record(task: VariantTask, *, status: VariantStatus, **fields: Any) -> VariantRecord:
    return VariantRecord(
        bucket=task.source.bucket,
        key=task.source.key,
        variant=task.variant.name,
        run_id=task.run_id,
        job_id=task.job_id,
        shard=task.shard,
        status=status.value,
        finished_at=utc_now(),
        **fields,
    )


def rejection_record(task: VariantTask, error: PermanentError) -> VariantRecord:
    status = VariantStatus.SKIPPED if error.skipped else VariantStatus.FAILED
    return variant_record(task, status=status, reason=error.reason.value, error=error.detail)

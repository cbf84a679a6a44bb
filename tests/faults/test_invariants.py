"""The invariant checker passes a clean run and catches each kind of damage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from prism.aws.schema import job_pk, shard_key, source_pk
from prism_cli.local.stack import LocalStack

from .harness import VARIANT_NAMES, JobUpload, run_functions, send, upload_job
from .invariants import InvariantReport, check_invariants

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def check(stack: LocalStack, upload: JobUpload) -> InvariantReport:
    return check_invariants(
        stack,
        job_ids=[upload.job_id],
        uploads=[(upload.bucket, key) for key in upload.keys],
        variant_names=VARIANT_NAMES,
    )


def table(stack: LocalStack) -> str:
    return stack.environment["PRISM_TABLE_NAME"]


def shard_keys(stack: LocalStack, job_id: str, shards: int = 16) -> list[dict[str, Any]]:
    """The keys of the job's shard items that exist."""
    keys = [shard_key(job_id, shard) for shard in range(shards)]
    return [
        key
        for key in keys
        if "Item"
        in stack.clients.dynamodb.get_item(TableName=table(stack), Key=key, ConsistentRead=True)
    ]


def bump_shard(stack: LocalStack, upload: JobUpload) -> None:
    stack.clients.dynamodb.update_item(
        TableName=table(stack),
        Key=shard_keys(stack, upload.job_id)[0],
        UpdateExpression="ADD variants_done :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def delete_variant(stack: LocalStack, upload: JobUpload) -> None:
    stack.clients.dynamodb.delete_item(
        TableName=table(stack),
        Key={
            "pk": {"S": source_pk(upload.bucket, upload.keys[0])},
            "sk": {"S": "VARIANT#medium"},
        },
    )


def delete_output(stack: LocalStack, upload: JobUpload) -> None:
    bucket = stack.bucket_name("OutputBucket")
    key = stack.clients.s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"]
    stack.clients.s3.delete_object(Bucket=bucket, Key=key)


def stray_output(stack: LocalStack, upload: JobUpload) -> None:
    stack.clients.s3.put_object(
        Bucket=stack.bucket_name("OutputBucket"),
        Key=f"{upload.job_id}/stray_small.jpg",
        Body=b"x",
        Metadata={"prism-run": "some-old-run"},
    )


def reopen_job(stack: LocalStack, upload: JobUpload) -> None:
    stack.clients.dynamodb.update_item(
        TableName=table(stack),
        Key={"pk": {"S": job_pk(upload.job_id)}, "sk": {"S": "JOB"}},
        UpdateExpression="SET #s = :running",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":running": {"S": "running"}},
    )


def leave_message(stack: LocalStack, upload: JobUpload) -> None:
    send(stack, "VariantsQueue", ["left behind"])


DAMAGE: dict[
    str, tuple[Callable[[LocalStack, JobUpload], None], Callable[[InvariantReport], int]]
] = {
    "double count": (bump_shard, lambda report: report.double_counted),
    "lost variant": (delete_variant, lambda report: report.lost),
    "missing output": (delete_output, lambda report: report.missing_outputs),
    "stale output": (stray_output, lambda report: report.stale_outputs),
    "job left running": (reopen_job, lambda report: report.jobs_running),
    "queue not drained": (leave_message, lambda report: len(report.violations)),
}


def test_the_checker_passes_a_clean_run_and_catches_damage(fault_stack: LocalStack) -> None:
    upload = upload_job(fault_stack, "clean", 2)
    run_functions(fault_stack)
    clean = check(fault_stack, upload)
    clean.assert_holds()
    assert (clean.done, clean.sources, clean.variants_expected) == (6, 2, 6)

    for name, (damage, measure) in DAMAGE.items():
        damage(fault_stack, upload)
        report = check(fault_stack, upload)
        assert measure(report) >= 1, name
        with pytest.raises(AssertionError):
            report.assert_holds()

"""Jobs on the moto server: exact progress under concurrency and duplicates, cancellation,
and backfill requests."""

from __future__ import annotations

import importlib

import pytest

from prism.config import parse_config
from prism.jobs import JobKind, JobStatus
from prism.keys import output_key
from prism.messages import JOB_METADATA_KEY, BackfillRequest, SourceRef
from prism_cli.jobs.display import stages
from prism_cli.local.lambda_emulator import FakeLambdaContext, forget_warm_state
from prism_cli.local.stack import LocalStack
from support.images import image_bytes
from support.pipeline import (
    THREE_VARIANTS,
    create_job,
    drain,
    job_progress,
    job_variants,
    output_keys,
    run_functions,
    with_jobs,
)

pytestmark = pytest.mark.integration


def upload_images(stack: LocalStack, job_id: str, count: int) -> list[str]:
    bucket = stack.bucket_name("InputBucket")
    keys = []
    for n in range(count):
        data = image_bytes((60 + n, 40), "JPEG", (n * 10 % 256, 90, 160))
        key = f"uploads/{job_id}/image-{n:02d}.jpg"
        stack.clients.s3.put_object(
            Bucket=bucket, Key=key, Body=data, Metadata={JOB_METADATA_KEY: job_id}
        )
        keys.append(key)
    return keys


def test_progress_is_exact_with_many_workers_and_duplicate_messages(
    local_stack: LocalStack,
) -> None:
    local_stack.put_pipeline_config(THREE_VARIANTS)
    create_job(local_stack, "exact")
    upload_images(local_stack, "exact", 8)
    with_jobs(local_stack, lambda jobs: jobs.seal("exact", 8))
    run_functions(local_stack, "FanoutFunction")

    # Every variant message delivered three times, to four concurrent workers.
    bodies = [message["Body"] for message in drain(local_stack, "VariantsQueue")]
    assert len(bodies) == 24
    sqs = local_stack.clients.sqs
    for body in bodies * 3:
        sqs.send_message(QueueUrl=local_stack.queue_url("VariantsQueue"), MessageBody=body)
    run_functions(local_stack, "WorkerFunction", workers=4)

    job = job_progress(local_stack, "exact")
    counters = job.counters
    assert job.job.status == JobStatus.COMPLETE
    assert (counters.sources_registered, counters.sources_loaded, counters.sources_finished) == (
        8,
        8,
        8,
    )
    assert (counters.variants_expected, counters.variants_done) == (24, 24)
    assert counters.variants_failed == counters.variants_skipped == 0
    assert counters.bytes_in > 0 and counters.bytes_out > 0
    assert stages(job)["complete"] == (8, 8)
    assert stages(job)["saving"] == (24, 24)
    assert len(job_variants(local_stack, "exact")) == 24


def test_cancelling_mid_job_skips_what_has_not_started(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(THREE_VARIANTS)
    create_job(local_stack, "halfway")
    upload_images(local_stack, "halfway", 10)
    with_jobs(local_stack, lambda jobs: jobs.seal("halfway", 10))
    run_functions(local_stack, "FanoutFunction")

    # One worker invocation renders the first batch; then the job is cancelled.
    sqs = local_stack.clients.sqs
    first = sqs.receive_message(
        QueueUrl=local_stack.queue_url("VariantsQueue"),
        MaxNumberOfMessages=6,
        AttributeNames=["All"],
    )["Messages"]
    worker = importlib.import_module("worker_handler").handler
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:prism-local-variants",
                "awsRegion": "us-east-1",
            }
            for m in first
        ]
    }
    context = FakeLambdaContext.for_function(local_stack.template.function("WorkerFunction"))
    assert worker(event, context) == {"batchItemFailures": []}
    for message in first:
        sqs.delete_message(
            QueueUrl=local_stack.queue_url("VariantsQueue"), ReceiptHandle=message["ReceiptHandle"]
        )
    assert with_jobs(local_stack, lambda jobs: jobs.request_cancel("halfway")).status == (
        "cancelling"
    )
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")

    job = job_progress(local_stack, "halfway")
    counters = job.counters
    assert job.job.status == JobStatus.CANCELLED
    assert counters.variants_done == 6
    assert counters.variants_skipped == 24
    assert (
        counters.variants_done + counters.variants_failed + counters.variants_skipped
        == counters.variants_expected
        == 30
    )
    assert counters.sources_finished == 10
    variants = job_variants(local_stack, "halfway")
    skipped = [v for v in variants if v.status == "skipped"]
    assert len(skipped) == 24 and {v.reason for v in skipped} == {"cancelled"}
    config = parse_config(THREE_VARIANTS)
    by_name = {variant.name: variant for variant in config.variants}
    for record in skipped:
        key = output_key(record.key, by_name[record.variant], upload_prefix="uploads/")
        assert key not in output_keys(local_stack)
    for record in (v for v in variants if v.status == "done"):
        assert record.output_key in output_keys(local_stack)


def test_uploads_to_a_cancelled_job_are_registered_skipped(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(THREE_VARIANTS)
    create_job(local_stack, "stopped")
    with_jobs(local_stack, lambda jobs: jobs.request_cancel("stopped"))
    upload_images(local_stack, "stopped", 2)
    with_jobs(local_stack, lambda jobs: jobs.seal("stopped", 2))

    run_functions(local_stack, "FanoutFunction", "WorkerFunction")

    job = with_jobs(local_stack, lambda jobs: jobs.finish_if_done("stopped"))
    assert job is not None
    assert job.job.status == JobStatus.CANCELLED
    assert (job.counters.variants_expected, job.counters.variants_skipped) == (6, 6)
    assert job.counters.sources_finished == 2
    assert drain(local_stack, "VariantsQueue") == []


def test_backfill_requests_render_only_what_is_missing(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(THREE_VARIANTS)
    keys = upload_images(local_stack, "library", 3)  # plain uploads: the day's job
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")
    assert "library/image-00_small.jpg" in output_keys(local_stack)

    # A new variant is added; a backfill with missing_only renders just that one.
    local_stack.put_pipeline_config(
        THREE_VARIANTS + "  - {name: square, transforms: [{op: resize, width: 20, height: 20}]}\n"
    )
    forget_warm_state()  # deployed functions pick a new config up within a minute
    create_job(local_stack, "fill", JobKind.BACKFILL)
    bucket = local_stack.bucket_name("InputBucket")
    for key in keys:
        head = local_stack.clients.s3.head_object(Bucket=bucket, Key=key)
        request = BackfillRequest(
            job_id="fill",
            source=SourceRef(bucket=bucket, key=key, etag=head["ETag"], size=head["ContentLength"]),
            missing_only=True,
        )
        local_stack.clients.sqs.send_message(
            QueueUrl=local_stack.queue_url("UploadsQueue"), MessageBody=request.model_dump_json()
        )
    with_jobs(local_stack, lambda jobs: jobs.seal("fill", 3))
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")

    job = job_progress(local_stack, "fill")
    assert job.job.status == JobStatus.COMPLETE
    assert (job.counters.variants_expected, job.counters.variants_done) == (3, 3)
    assert {v.variant for v in job_variants(local_stack, "fill")} == {"square"}
    assert "library/image-02_square.jpg" in output_keys(local_stack)


def test_a_run_superseded_by_a_new_upload_still_adds_up(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(THREE_VARIANTS)
    create_job(local_stack, "swap")
    (key,) = upload_images(local_stack, "swap", 1)
    run_functions(local_stack, "FanoutFunction")
    # Overwritten before any worker ran: the first run can never finish.
    bucket = local_stack.bucket_name("InputBucket")
    local_stack.clients.s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=image_bytes((70, 70), "JPEG", "navy"),
        Metadata={JOB_METADATA_KEY: "swap"},
    )
    with_jobs(local_stack, lambda jobs: jobs.seal("swap", 2))  # two uploads
    # The new upload is registered before any worker runs (run concurrently, a worker may
    # finish the first run before the fan-out sees the second: exact too, but not this case).
    run_functions(local_stack, "FanoutFunction")

    run_functions(local_stack, "WorkerFunction")

    job = job_progress(local_stack, "swap")
    counters = job.counters
    assert job.job.status == JobStatus.COMPLETE
    assert (counters.sources_registered, counters.sources_finished) == (2, 2)
    assert (counters.variants_expected, counters.variants_done, counters.variants_skipped) == (
        6,
        3,
        3,
    )


def test_a_days_uploads_job_cannot_be_sealed(local_stack: LocalStack) -> None:
    create_job(local_stack, "uploads-2026-12-02", JobKind.UPLOADS)
    create_job(local_stack, "batch", JobKind.SUBMIT)

    with pytest.raises(ValueError, match="never sealed"):
        with_jobs(local_stack, lambda jobs: jobs.seal("uploads-2026-12-02", 3))
    with_jobs(local_stack, lambda jobs: jobs.seal("batch", 3))

    uploads = with_jobs(local_stack, lambda jobs: jobs.require("uploads-2026-12-02"))
    batch = with_jobs(local_stack, lambda jobs: jobs.require("batch"))
    assert (uploads.sealed, batch.sealed, batch.expected_sources) == (False, True, 3)

"""Each sample event in events/ fed to its handler, as `sam local invoke -e` would."""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from prism.aws.schema import from_item, job_item, source_item
from prism.jobs import JobRecord
from prism.messages import VariantTask
from prism.records import SourceRecord
from prism_cli.local.lambda_emulator import FakeLambdaContext
from prism_cli.local.stack import LocalStack
from support.images import image_bytes

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events"
SOURCE_KEY = "uploads/holiday photos/beach (2).jpg"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def put_source(stack: LocalStack) -> str:
    bucket = stack.bucket_name("InputBucket")
    data = image_bytes((640, 480), "JPEG", "teal")
    stack.clients.s3.put_object(Bucket=bucket, Key=SOURCE_KEY, Body=data)
    return bucket


def context(stack: LocalStack, function: str) -> FakeLambdaContext:
    return FakeLambdaContext.for_function(stack.template.function(function))


def test_the_events_name_the_local_stacks_resources(local_stack: LocalStack) -> None:
    fanout_event = load_event("fanout-upload.json")
    worker_event = load_event("worker-variants.json")
    upload = json.loads(fanout_event["Records"][0]["body"])["Records"][0]
    assert upload["s3"]["bucket"]["name"] == local_stack.bucket_name("InputBucket")
    assert fanout_event["Records"][0]["eventSourceARN"].endswith(":prism-local-uploads")
    assert worker_event["Records"][0]["eventSourceARN"].endswith(":prism-local-variants")


def test_fanout_event(local_stack: LocalStack) -> None:
    bucket = put_source(local_stack)
    # The sample event describes an upload of this object: give it the object's real ETag.
    etag = local_stack.clients.s3.head_object(Bucket=bucket, Key=SOURCE_KEY)["ETag"].strip('"')
    event = load_event("fanout-upload.json")
    notification = json.loads(event["Records"][0]["body"])
    notification["Records"][0]["s3"]["object"]["eTag"] = etag
    event["Records"][0]["body"] = json.dumps(notification)
    handler = importlib.import_module("fanout_handler").handler

    response = handler(event, context(local_stack, "FanoutFunction"))

    assert response == {"batchItemFailures": []}
    sqs = local_stack.clients.sqs
    messages = sqs.receive_message(
        QueueUrl=local_stack.queue_url("VariantsQueue"), MaxNumberOfMessages=10
    ).get("Messages", [])
    tasks = [VariantTask.model_validate_json(message["Body"]) for message in messages]
    assert sorted(task.output_key for task in tasks) == [
        "holiday photos/beach (2)_large.jpg",
        "holiday photos/beach (2)_thumbnail.jpg",
        "holiday photos/beach (2)_web.webp",
    ]
    assert {task.source.key for task in tasks} == {SOURCE_KEY}
    item = local_stack.clients.dynamodb.get_item(
        TableName=local_stack.environment["PRISM_TABLE_NAME"],
        Key={"pk": {"S": f"SOURCE#{bucket}/{SOURCE_KEY}"}, "sk": {"S": "SOURCE"}},
    )["Item"]
    assert from_item(SourceRecord, item).expected == 3
    # A plain upload joins the day's default job.
    assert {task.job_id for task in tasks} == {"uploads-2026-11-27"}
    job = from_item(
        JobRecord,
        local_stack.clients.dynamodb.get_item(
            TableName=local_stack.environment["PRISM_TABLE_NAME"],
            Key={"pk": {"S": "JOB#uploads-2026-11-27"}, "sk": {"S": "JOB"}},
        )["Item"],
    )
    assert (job.kind, job.status, job.sealed) == ("uploads", "running", False)


def test_worker_event(local_stack: LocalStack) -> None:
    bucket = put_source(local_stack)
    event = load_event("worker-variants.json")
    task = VariantTask.model_validate_json(event["Records"][0]["body"])
    table = local_stack.environment["PRISM_TABLE_NAME"]
    dynamodb = local_stack.clients.dynamodb
    source = SourceRecord(
        bucket=bucket,
        key=SOURCE_KEY,
        job_id=task.job_id,
        run_id=task.run_id,
        status="processing",
        expected=2,
    )
    dynamodb.put_item(TableName=table, Item=source_item(source))
    # A sealed job (the sample's day's uploads job could never be sealed, nor end).
    job = JobRecord(
        job_id=task.job_id,
        status="running",
        kind="submit",
        created_at="2026-11-27T09:30:00Z",
        sealed=True,
        expected_sources=1,
    )
    dynamodb.put_item(TableName=table, Item=job_item(job))
    handler = importlib.import_module("worker_handler").handler

    response = handler(event, context(local_stack, "WorkerFunction"))

    assert response == {"batchItemFailures": []}
    s3 = local_stack.clients.s3
    output_bucket = local_stack.bucket_name("OutputBucket")
    thumbnail = s3.get_object(Bucket=output_bucket, Key="holiday photos/beach (2)_thumbnail.jpg")
    assert thumbnail["ContentType"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail["Body"].read())).size == (256, 192)
    web = s3.get_object(Bucket=output_bucket, Key="holiday photos/beach (2)_web.webp")
    assert Image.open(io.BytesIO(web["Body"].read())).format == "WEBP"
    record = from_item(
        SourceRecord,
        dynamodb.get_item(
            TableName=table,
            Key={"pk": {"S": f"SOURCE#{bucket}/{SOURCE_KEY}"}, "sk": {"S": "SOURCE"}},
            ConsistentRead=True,
        )["Item"],
    )
    assert (record.done, record.status) == (2, "complete")
    # The job had one source; its last variant finished the job.
    job_after = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": f"JOB#{task.job_id}"}, "sk": {"S": "JOB"}}
    )["Item"]
    assert from_item(JobRecord, job_after).status == "complete"


def test_fanout_delete_event(local_stack: LocalStack) -> None:
    """The sample deletion (a delete marker) of a rendered source takes its outputs."""
    bucket = put_source(local_stack)
    etag = local_stack.clients.s3.head_object(Bucket=bucket, Key=SOURCE_KEY)["ETag"].strip('"')
    upload = load_event("fanout-upload.json")
    notification = json.loads(upload["Records"][0]["body"])
    notification["Records"][0]["s3"]["object"]["eTag"] = etag
    upload["Records"][0]["body"] = json.dumps(notification)
    fanout = importlib.import_module("fanout_handler").handler
    assert fanout(upload, context(local_stack, "FanoutFunction")) == {"batchItemFailures": []}
    output = local_stack.bucket_name("OutputBucket")
    # An output of the upload, as its worker would have written it.
    local_stack.clients.s3.put_object(
        Bucket=output, Key="holiday photos/beach (2)_web.webp", Body=b"RIFF", Metadata={}
    )
    local_stack.clients.s3.delete_object(Bucket=bucket, Key=SOURCE_KEY)

    response = fanout(load_event("fanout-delete.json"), context(local_stack, "FanoutFunction"))

    assert response == {"batchItemFailures": []}
    assert "Contents" not in local_stack.clients.s3.list_objects_v2(Bucket=output)
    item = local_stack.clients.dynamodb.get_item(
        TableName=local_stack.environment["PRISM_TABLE_NAME"],
        Key={"pk": {"S": f"SOURCE#{bucket}/{SOURCE_KEY}"}, "sk": {"S": "SOURCE"}},
    )["Item"]
    assert from_item(SourceRecord, item).status == "deleted"

"""Driving the pipeline on the local stack, for the integration and fault suites: jobs and
records through Prism's own table adapters, the functions' event sources run until the
pipeline is idle, queues drained, and the output bucket read."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from PIL import Image

from prism.aws.clients import open_clients
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable
from prism.jobs import JobKind, JobProgress, JobRecord
from prism.records import VariantRecord, utc_now
from prism_cli.local.lambda_emulator import (
    Handler,
    SqsEventSourceEmulator,
    default_backoff,
    emulators_for,
    run_until_idle,
)
from prism_cli.local.stack import LocalStack

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

T = TypeVar("T")
# The manifest of a source sits next to its variants (prism.keys.manifest_key).
MANIFEST_SUFFIX = "_manifest.json"
Table = TypeVar("Table", JobTable, ProcessingTable)

THREE_VARIANTS = """
variants:
  - {name: small, transforms: [{op: thumbnail, width: 16, height: 16}], format: jpeg}
  - {name: medium, transforms: [{op: thumbnail, width: 32, height: 32}], format: png}
  - {name: large, transforms: [{op: thumbnail, width: 48, height: 48}], format: webp}
"""

# A failed message is delivered again at once (the emulator's default waits 2, 4, 8 s).
NO_BACKOFF: Callable[[int], int] = lambda receive_count: 0  # noqa: E731


# --- the tables, through Prism's adapters --------------------------------------------------
def _with_table(
    stack: LocalStack, adapter: Callable[[Any, str], Table], action: Callable[[Table], Awaitable[T]]
) -> T:
    async def run() -> T:
        async with open_clients() as clients:
            return await action(adapter(clients.dynamodb, stack.environment["PRISM_TABLE_NAME"]))

    return asyncio.run(run())


def with_jobs(stack: LocalStack, action: Callable[[JobTable], Awaitable[T]]) -> T:
    """What ``action`` returns for the stack's :class:`JobTable` (on fresh aioboto3 clients)."""
    return _with_table(stack, JobTable, action)


def with_processing(stack: LocalStack, action: Callable[[ProcessingTable], Awaitable[T]]) -> T:
    """What ``action`` returns for the stack's :class:`ProcessingTable`."""
    return _with_table(stack, ProcessingTable, action)


def create_job(
    stack: LocalStack, job_id: str, kind: JobKind = JobKind.SUBMIT, *, shards: int = 16
) -> None:
    job = JobRecord(
        job_id=job_id, status="running", kind=kind.value, created_at=utc_now(), shards=shards
    )
    assert with_jobs(stack, lambda jobs: jobs.create(job))


def job_progress(stack: LocalStack, job_id: str) -> JobProgress:
    return with_jobs(stack, lambda jobs: jobs.progress(job_id))


def job_variants(stack: LocalStack, job_id: str) -> list[VariantRecord]:
    async def collect(jobs: JobTable) -> list[VariantRecord]:
        job = await jobs.require(job_id)
        return [r async for r in jobs.records(job) if isinstance(r, VariantRecord)]

    return with_jobs(stack, collect)


# --- the functions -------------------------------------------------------------------------
def run_functions(
    stack: LocalStack,
    *names: str,
    workers: int = 2,
    fanouts: int = 1,
    handlers: Mapping[str, Handler] | None = None,
    retry_backoff: Callable[[int], int] = default_backoff,
    timeout: float = 120,
    failures_expected: bool = False,
) -> tuple[list[SqsEventSourceEmulator], float]:
    """Run the event sources of the functions named (of every function if none is) until the
    pipeline is idle, with ``workers`` worker and ``fanouts`` fan-out instances; the
    emulators and the wall time. Unless ``failures_expected``, no invocation may fail."""
    wanted = set(names) or {fn.logical_id for fn in stack.template.functions.values()}
    emulators = [
        emulator
        for emulator in emulators_for(
            stack.template,
            stack.clients.sqs,
            instances={"WorkerFunction": workers, "FanoutFunction": fanouts},
            handlers=handlers,
            batching_window=0,
            retry_backoff=retry_backoff,
        )
        if emulator.function.logical_id in wanted
    ]
    started = time.monotonic()
    run_until_idle(emulators, stack.clients.sqs, timeout=timeout, poll_seconds=0.2)
    wall = time.monotonic() - started
    if not failures_expected:
        for emulator in emulators:
            assert not emulator.errors, emulator.errors
    return emulators, wall


# --- queues and outputs --------------------------------------------------------------------
def drain(stack: LocalStack, queue: str) -> list[MessageTypeDef]:
    """Receive and delete every message of the queue ``queue`` (a logical id), with all of
    their attributes."""
    sqs = stack.clients.sqs
    url = stack.queue_url(queue)
    messages: list[MessageTypeDef] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
    ).get("Messages", []):
        messages.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def output_objects(stack: LocalStack) -> dict[str, datetime]:
    """The output bucket's objects: key -> LastModified."""
    found: dict[str, datetime] = {}
    pages = stack.clients.s3.get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=stack.bucket_name("OutputBucket")):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj["LastModified"]
    return found


def output_keys(stack: LocalStack) -> set[str]:
    """The variants in the output bucket (the sources' manifests aside: manifest_keys)."""
    return {key for key in output_objects(stack) if not key.endswith(MANIFEST_SUFFIX)}


def manifest_keys(stack: LocalStack) -> set[str]:
    return {key for key in output_objects(stack) if key.endswith(MANIFEST_SUFFIX)}


def output_json(stack: LocalStack, key: str) -> Any:
    body = stack.clients.s3.get_object(Bucket=stack.bucket_name("OutputBucket"), Key=key)["Body"]
    return json.loads(body.read())


def prism_events(stack: LocalStack) -> list[dict[str, Any]]:
    """The events published since the last call (EventBridge's rule routes them to the
    stack's events queue), oldest first."""
    events = [json.loads(message["Body"]) for message in drain(stack, "EventsQueue")]
    return sorted(events, key=lambda event: str(event["time"]))


def output_image(stack: LocalStack, key: str) -> Image.Image:
    body = stack.clients.s3.get_object(Bucket=stack.bucket_name("OutputBucket"), Key=key)["Body"]
    return Image.open(io.BytesIO(body.read()))

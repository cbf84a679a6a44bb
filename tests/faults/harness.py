"""Driving a job through the local stack: tiny images in, real handlers, emulated SQS
event sources; the handlers' endpoint optionally redirected (to the fault proxy)."""

from __future__ import annotations

import asyncio
import io
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from PIL import Image

from prism.aws.clients import open_clients
from prism.aws.job_table import JobTable
from prism.jobs import JobKind, JobRecord, utc_now
from prism.messages import JOB_METADATA_KEY
from prism_cli.lambda_emulator import (
    Handler,
    SqsEventSourceEmulator,
    emulators_for,
    forget_warm_state,
    run_until_idle,
)
from prism_cli.local_stack import LocalStack

T = TypeVar("T")

THREE_VARIANTS = """
variants:
  - {name: small, transforms: [{op: thumbnail, width: 16, height: 16}], format: jpeg}
  - {name: medium, transforms: [{op: thumbnail, width: 32, height: 32}], format: png}
  - {name: large, transforms: [{op: thumbnail, width: 48, height: 48}], format: webp}
"""
VARIANT_NAMES = ("small", "medium", "large")

# A failed message comes back after a second (the emulator's default waits 2, 4, 8 s),
# so the uploads queue's five receives fit in a few seconds.
FAST_BACKOFF: Callable[[int], int] = lambda receive_count: 1  # noqa: E731

_FORMATS = (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"))


def tiny_image(index: int, seed: int) -> tuple[bytes, str]:
    """A small generated image in one of four formats, and its file extension."""
    rng = random.Random(f"{seed}|{index}")
    fmt, extension = _FORMATS[index % len(_FORMATS)]
    size = (rng.randrange(20, 64), rng.randrange(20, 64))
    colour = tuple(rng.randrange(256) for _ in range(3))
    image = Image.new("RGB", size, colour)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue(), extension


def with_jobs(stack: LocalStack, action: Callable[[JobTable], Awaitable[T]]) -> T:
    async def run() -> T:
        async with open_clients() as clients:
            return await action(JobTable(clients.dynamodb, stack.environment["PRISM_TABLE_NAME"]))

    return asyncio.run(run())


@dataclass(frozen=True)
class JobUpload:
    job_id: str
    bucket: str
    keys: tuple[str, ...]


def upload_job(stack: LocalStack, job_id: str, count: int, *, seed: int = 0) -> JobUpload:
    """Create a job, upload ``count`` tiny images tagged with it, and seal it."""
    job = JobRecord(
        job_id=job_id, status="running", kind=JobKind.SUBMIT.value, created_at=utc_now()
    )
    assert with_jobs(stack, lambda jobs: jobs.create(job))
    bucket = stack.bucket_name("InputBucket")
    keys = []
    for index in range(count):
        data, extension = tiny_image(index, seed)
        key = f"uploads/{job_id}/image-{index:02d}.{extension}"
        stack.clients.s3.put_object(
            Bucket=bucket, Key=key, Body=data, Metadata={JOB_METADATA_KEY: job_id}
        )
        keys.append(key)
    with_jobs(stack, lambda jobs: jobs.seal(job_id, count))
    return JobUpload(job_id, bucket, tuple(keys))


@contextmanager
def handlers_endpoint(endpoint: str) -> Iterator[None]:
    """The functions' SDK clients talk to ``endpoint`` inside the block (the test's own
    clients have their endpoint fixed and are unaffected)."""
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    forget_warm_state()  # the SSM client is made again, for the new endpoint
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved
        forget_warm_state()


def run_functions(
    stack: LocalStack,
    *names: str,
    workers: int = 2,
    handlers: Mapping[str, Handler] | None = None,
    timeout: float = 150,
) -> tuple[list[SqsEventSourceEmulator], float]:
    """Run the named functions' event sources until the pipeline is idle; the emulators
    and the wall time."""
    wanted = set(names) or {fn.logical_id for fn in stack.template.functions.values()}
    emulators = [
        emulator
        for emulator in emulators_for(
            stack.template,
            stack.clients.sqs,
            instances={"WorkerFunction": workers, "FanoutFunction": 2},
            handlers=handlers,
            batching_window=0,
            retry_backoff=FAST_BACKOFF,
        )
        if emulator.function.logical_id in wanted
    ]
    started = time.monotonic()
    run_until_idle(emulators, stack.clients.sqs, timeout=timeout, poll_seconds=0.2)
    return emulators, time.monotonic() - started


def drain(stack: LocalStack, queue: str) -> list[str]:
    """Receive and delete every message of ``queue``; their bodies."""
    sqs = stack.clients.sqs
    url = stack.queue_url(queue)
    bodies: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def send(stack: LocalStack, queue: str, bodies: Sequence[str]) -> None:
    sqs = stack.clients.sqs
    url = stack.queue_url(queue)
    for start in range(0, len(bodies), 10):
        entries: list[Any] = [
            {"Id": str(index), "MessageBody": body}
            for index, body in enumerate(bodies[start : start + 10])
        ]
        result = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not result.get("Failed"), result.get("Failed")

"""Driving a job through the local stack: tiny images in, real handlers, emulated SQS
event sources; the handlers' endpoint optionally redirected (to the fault proxy)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prism.messages import JOB_METADATA_KEY
from prism_cli.local.lambda_emulator import Handler, SqsEventSourceEmulator, forget_warm_state
from prism_cli.local.stack import LocalStack
from support import pipeline
from support.images import image_bytes
from support.pipeline import create_job, with_jobs

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
    colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    return image_bytes(size, fmt, colour), extension


@dataclass(frozen=True)
class JobUpload:
    job_id: str
    bucket: str
    keys: tuple[str, ...]


def upload_job(stack: LocalStack, job_id: str, count: int, *, seed: int = 0) -> JobUpload:
    """Create a job, upload ``count`` tiny images tagged with it, and seal it."""
    create_job(stack, job_id)
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
) -> tuple[list[SqsEventSourceEmulator], float]:
    """Run the named functions' event sources (every function's if none is named) until the
    pipeline is idle, two fan-out instances and failures retried after a second; the
    emulators (their errors are the scenario's to judge) and the wall time."""
    return pipeline.run_functions(
        stack,
        *names,
        workers=workers,
        fanouts=2,
        handlers=handlers,
        retry_backoff=FAST_BACKOFF,
        timeout=150,
        failures_expected=True,
    )


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

"""The functions' log lines name the invocation that wrote them, though the local stack runs
every function instance as a thread of one process."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from integration.test_ordering import invoke_worker_in_thread
from prism.aws.storage import ObjectStore
from prism_cli.local.lambda_emulator import FakeLambdaContext
from prism_cli.local.stack import LocalStack
from support.images import image_bytes
from support.logs import logged_lines
from support.pipeline import drain, run_functions

pytestmark = pytest.mark.integration

ONE_VARIANT = """
variants:
  - {name: small, transforms: [{op: thumbnail, width: 16, height: 16}], format: jpeg}
"""


def upload(stack: LocalStack, key: str) -> None:
    stack.clients.s3.put_object(
        Bucket=stack.bucket_name("InputBucket"), Key=key, Body=image_bytes((60, 40), "PNG")
    )


def test_a_fan_out_during_a_worker_invocation_leaves_the_worker_its_own_context(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_stack.put_pipeline_config(ONE_VARIANT)
    upload(local_stack, "uploads/first.png")
    run_functions(local_stack, "FanoutFunction")

    # The worker invocation is held at its source read, after its Lambda context is set.
    reached, release = threading.Event(), threading.Event()
    read = ObjectStore.read

    async def held_read(store: ObjectStore, bucket: str, key: str, **kwargs: Any) -> bytes:
        if key == "uploads/first.png" and not reached.is_set():
            reached.set()
            await asyncio.to_thread(release.wait, 60)
        return await read(store, bucket, key, **kwargs)

    monkeypatch.setattr(ObjectStore, "read", held_read)
    tasks = drain(local_stack, "VariantsQueue")
    context = FakeLambdaContext.for_function(local_stack.template.function("WorkerFunction"))
    invocation = invoke_worker_in_thread(local_stack, tasks, context)

    with logged_lines() as lines:
        invocation.start()
        assert reached.wait(30)
        # Meanwhile the fan-out function is invoked for another upload, and logs.
        upload(local_stack, "uploads/second.png")
        run_functions(local_stack, "FanoutFunction")
        release.set()
        invocation.join(60)
        assert not invocation.is_alive()
        logged = lines()

    (fanned_out,) = logged["Fanned out upload"]
    assert fanned_out["function_name"].endswith("-FanoutFunction")
    (published,) = logged["Events published"]  # the worker's, after the fan-out's lines
    assert published["function_name"] == context.function_name
    assert published["function_request_id"] == context.aws_request_id
    assert published["correlation_id"] == tasks[0]["MessageId"]

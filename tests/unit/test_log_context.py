"""Emulated function instances are threads of one process, yet each logs with its own
invocation's Lambda context, as a Lambda instance (a process of its own) does."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from prism.observability import logger
from prism_cli.local.lambda_emulator import FakeLambdaContext
from prism_cli.local.log_context import log_context_per_instance
from support.logs import LogLines, logged_lines


@pytest.fixture
def logged() -> Iterator[LogLines]:
    with logged_lines() as lines:
        yield lines


def context(name: str) -> FakeLambdaContext:
    return FakeLambdaContext(
        function_name=name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        timeout_seconds=30,
        aws_request_id=f"request-of-{name}",
    )


def test_two_instances_running_at_once_each_log_their_own_context(
    logged: LogLines,
) -> None:
    log_context_per_instance()
    first_entered, second_done = threading.Event(), threading.Event()

    @logger.inject_lambda_context(correlation_id_path="id")
    def first(event: dict[str, Any], _: Any) -> None:
        first_entered.set()
        assert second_done.wait(10)  # the second invocation starts and logs meanwhile

        async def later() -> None:
            logger.info("first, in a task")
            await asyncio.to_thread(logger.info, "first, in a render thread")

        logger.info("first")
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(later())
        finally:
            loop.close()

    @logger.inject_lambda_context(correlation_id_path="id")
    def second(event: dict[str, Any], _: Any) -> None:
        logger.info("second")
        second_done.set()

    first_thread = threading.Thread(target=first, args=({"id": "message-1"}, context("fanout")))
    first_thread.start()
    assert first_entered.wait(10)
    second_thread = threading.Thread(target=second, args=({"id": "message-2"}, context("worker")))
    second_thread.start()
    second_thread.join(10)
    first_thread.join(10)
    assert not first_thread.is_alive() and not second_thread.is_alive()

    lines = logged()
    for message in ("first", "first, in a task", "first, in a render thread"):
        (line,) = lines[message]
        assert (line["function_name"], line["function_request_id"]) == (
            "fanout",
            "request-of-fanout",
        ), message
        assert line["correlation_id"] == "message-1", message
    (second_line,) = lines["second"]
    assert (second_line["function_name"], second_line["correlation_id"]) == ("worker", "message-2")

"""Adapting a whole-batch coroutine to Powertools' per-record batch handler.

Powertools' ``AsyncBatchProcessor`` calls a handler per record and builds the partial batch
response from which records raised. Our functions work on the batch as a whole (one set of
clients, a source decoded once for all its variants), so the first record to arrive starts
the batch's work and every record then waits for it and raises its own error, if any.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

# For each message id: None when it succeeded, else the error to report it failed with.
BatchResults = Mapping[str, BaseException | None]

K = TypeVar("K")
V = TypeVar("V")


def receive_count(record: SQSRecord) -> int:
    """How many times SQS has handed this message out, this time included."""
    return int(record.attributes.approximate_receive_count or 1)


class OncePerBatch(Generic[K, V]):
    """Each key's value computed once for the batch and shared by every record asking for
    it, even while the first computation is still running."""

    def __init__(self) -> None:
        self._futures: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        if key not in self._futures:
            future = asyncio.ensure_future(compute())
            # A failure is not remembered: the next record asking computes it again (one
            # transient error must not fail every record of the batch).
            future.add_done_callback(functools.partial(self._forget_failure, key))
            self._futures[key] = future
        return await asyncio.shield(self._futures[key])

    def _forget_failure(self, key: K, future: asyncio.Future[V]) -> None:
        if (future.cancelled() or future.exception() is not None) and self._futures.get(
            key
        ) is future:
            del self._futures[key]


class SharedBatch:
    def __init__(self, process: Callable[[], Awaitable[BatchResults]]) -> None:
        self._process = process
        self._task: asyncio.Future[BatchResults] | None = None

    async def handle_record(self, record: SQSRecord) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._process())
        results = await asyncio.shield(self._task)
        error = results.get(record.message_id)
        if error is not None:
            raise error


def process_sqs_batch(
    event: dict[str, Any],
    context: LambdaContext,
    process: Callable[[list[SQSRecord]], Awaitable[BatchResults]],
) -> dict[str, Any]:
    """Run ``process`` over the SQS event's records and answer Lambda with the partial
    batch response (``ReportBatchItemFailures``) that Powertools builds from its results.

    A processor per invocation: it holds the invocation's records and outcomes, and local
    runs call one handler from several threads."""
    records = list(SQSEvent(event).records)
    batch = SharedBatch(functools.partial(process, records))
    response = async_process_partial_response(
        event=event,
        record_handler=batch.handle_record,
        processor=AsyncBatchProcessor(event_type=EventType.SQS),
        context=context,
    )
    return dict(response)

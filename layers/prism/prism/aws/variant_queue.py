"""Sending variant tasks to the variants queue (the ``TaskQueue`` port)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from prism.errors import TransientError
from prism.messages import VariantTask, sqs_batches


class VariantQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    async def send(self, tasks: Sequence[VariantTask]) -> None:
        """Send a source's tasks together, so that one worker batch tends to hold all of
        them and decodes the source once. Batches of 10 go out concurrently."""
        await asyncio.gather(*(self._send_chunk(chunk) for chunk in sqs_batches(tasks)))

    async def _send_chunk(self, chunk: Sequence[VariantTask]) -> None:
        entries = [
            {"Id": str(index), "MessageBody": task.model_dump_json()}
            for index, task in enumerate(chunk)
        ]
        response = await self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        failed = response.get("Failed") or []
        if failed:
            # Raising makes SQS redeliver the upload; tasks already sent are deduplicated by
            # the worker, so sending them again is harmless.
            reasons = ", ".join(f"{item.get('Code')}: {item.get('Message')}" for item in failed)
            raise TransientError(f"{len(failed)} variant message(s) not sent: {reasons}")

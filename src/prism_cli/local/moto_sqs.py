"""Make moto's SQS backend safe under concurrent requests.

moto's server answers requests on many threads, but its SQS backend is not thread-safe.
``receive_message`` collects the messages that reached ``maxReceiveCount`` and then
moves them to the dead-letter queue with ``queue._messages.remove(message)``. Two pollers
that receive from one queue at the same moment both pick the same message, and the second
``remove`` raises ``ValueError: list.remove(x): x not in list``. That request fails with a
500 *after* the messages it had already taken were marked received, so they stay invisible
for the queue's whole visibility timeout (720 s for the variants queue): a local run
stalls for 12 minutes. ``delete_message`` likewise rebuilds the message list and can drop
a message that a concurrent send appended meanwhile.

Real SQS has no such races, so the local stack runs each of these operations under one
lock. A long poll waits for messages *outside* the lock (moto would otherwise hold it for
up to 20 s and block every send that could end the wait).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from prism_cli.local.moto_locking import applied_once, lock_methods

# Backend methods that read or change a queue's message list; they call each other
# (``send_message_batch`` -> ``send_message``), hence a re-entrant lock.
_OPERATIONS = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
    "get_queue_attributes",
)
_lock = threading.RLock()
# Longest single wait for a message during a long poll, between locked attempts.
_WAIT_SLICE_SECONDS = 1.0


@applied_once(_lock)
def serialise_sqs() -> None:
    """Run each SQS message operation of this process's moto backend under one lock
    (idempotent)."""
    from moto.sqs.models import SQSBackend

    lock_methods(SQSBackend, _OPERATIONS, _lock)
    SQSBackend.receive_message = _receive_locked(SQSBackend.receive_message)  # type: ignore[method-assign]


def _receive_locked(receive: Callable[..., Any]) -> Callable[..., Any]:
    """``receive_message`` whose attempts hold the lock and whose waits do not."""

    @functools.wraps(receive)
    def run(
        backend: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _lock:
                # A wait of 0: one pass over the queue, never blocking under the lock.
                result = receive(
                    backend, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            # Woken by a send (moto notifies the queue's condition), or after the slice.
            backend.get_queue(queue_name).wait_for_messages(min(remaining, _WAIT_SLICE_SECONDS))
            if time.monotonic() < deadline:
                # wait_for_messages returns at once while any message is visible but not
                # receivable (e.g. delayed by a FIFO group): do not spin on the lock.
                time.sleep(0.01)

    return run

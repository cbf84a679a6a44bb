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

moto's SQS also costs time in proportion to the queue's length on every message, which
makes a long local run quadratic. Three places are made cheaper, with the same results:

- every received message checks its retention period through ``get_queue_attributes``,
  which computes *all* of the queue's attributes three times, each a pass over every
  message (visible, delayed, in flight) that reads the clock twice per message. The check
  reads the queue's ``MessageRetentionPeriod`` directly here;
- ``get_queue_attributes`` (the local stack's idle check) computes the attributes once,
  and the message counts and the visible messages are taken with one clock reading per
  pass, not two per message;
- ``delete_message`` finds the one message with the receipt handle in one pass (moto
  makes two and builds a list of handles per message).
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterable
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
# Advanced by wake_receivers(): a long poll that started before returns at once.
_wakeups = 0
_waited_on: weakref.WeakSet[Any] = weakref.WeakSet()  # queues long polls have waited on


@applied_once(_lock)
def serialise_sqs() -> None:
    """Run each SQS message operation of this process's moto backend under one lock
    (idempotent)."""
    from moto.sqs.models import Queue, SQSBackend

    # Replaced before locking: the locked versions call these.
    SQSBackend.get_queue_attributes = _get_queue_attributes  # type: ignore[method-assign, assignment]
    SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign, assignment]
    Queue.delete_message = _delete_message  # type: ignore[method-assign, assignment]
    for name, count in _COUNTS.items():
        setattr(Queue, name, property(count))
    Queue.messages = property(_receivable)  # type: ignore[assignment,method-assign]
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
        wakeups = _wakeups
        while True:
            with _lock:
                # A wait of 0: one pass over the queue, never blocking under the lock.
                result = receive(
                    backend, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
                queue = backend.get_queue(queue_name)
                remaining = deadline - time.monotonic()
                if result or remaining <= 0 or _wakeups != wakeups:
                    return result
                _waited_on.add(queue)
            with queue._messages_lock:
                receivable = bool(queue.messages)
                if not receivable and _wakeups == wakeups:
                    # Woken by a send (moto notifies the queue's condition), by
                    # wake_receivers(), or after the slice.
                    queue._messages_lock.wait(min(remaining, _WAIT_SLICE_SECONDS))
            if receivable:
                # Visible but not receivable (e.g. held back by a FIFO group): do not spin
                # on the lock.
                time.sleep(0.01)

    return run


def wake_receivers() -> None:
    """End the long polls under way in this process's moto now, each with what it has
    received (nothing): a poller that is asked to stop need not wait out its wait."""
    global _wakeups
    with _lock:
        _wakeups += 1
        queues = list(_waited_on)
    for queue in queues:
        with queue._messages_lock:
            queue._messages_lock.notify_all()


def held_messages(account_id: str, region: str, queue_names: Iterable[str]) -> int:
    """How many messages this process's moto holds in the named queues: waiting, in
    flight or delayed (the sum of the three ``ApproximateNumberOf...`` attributes), read
    without a request."""
    from moto.sqs.models import sqs_backends

    queues = sqs_backends[account_id][region].queues
    return sum(len(queues[name]._messages) for name in queue_names if name in queues)


# --- the same answers as moto's, in one pass over the messages ----------------------------
def _now_millis() -> float:
    from moto.core.utils import unix_time_millis

    return unix_time_millis()


def _receivable(queue: Any) -> list[Any]:
    """``Queue.messages``: the visible messages that are not delayed, oldest first."""
    now = _now_millis()
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _delayed(queue: Any) -> int:
    now = _now_millis()
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _not_visible(queue: Any) -> int:
    now = _now_millis()
    return sum(1 for m in queue._messages if not now > m.visible_at)


def _visible(queue: Any) -> int:
    return len(_receivable(queue))


_COUNTS = {
    "approximate_number_of_messages_delayed": _delayed,
    "approximate_number_of_messages_not_visible": _not_visible,
    "approximate_number_of_messages": _visible,
}


def _get_queue_attributes(backend: Any, queue_name: str, attribute_names: list[str]) -> Any:
    """moto's ``get_queue_attributes``, computing the queue's attributes once."""
    from moto.sqs.exceptions import InvalidAttributeName

    queue = backend.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise InvalidAttributeName(invalid_name)
    attributes = queue.attributes
    if "All" in attribute_names:
        return attributes
    return {
        name: attributes[name]
        for name in attribute_names
        if name in attributes and attributes[name] is not None
    }


def _retained(backend: Any, queue_name: str, message: Any) -> bool:
    """Whether ``message`` is still within its queue's retention period."""
    from moto.core.utils import unix_time

    retention_period = backend.get_queue(queue_name).message_retention_period
    return bool(retention_period + message.sent_timestamp / 1000 > unix_time())


def _delete_message(queue: Any, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message``: deleting again is fine, an unknown handle is not."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    if receipt_handle in queue.deleted_messages:
        return
    messages = queue._messages
    index = next(
        (
            index
            for index, message in enumerate(messages)
            if message.receipt_handle == receipt_handle
            or receipt_handle in message._old_receipt_handles
        ),
        None,
    )
    if index is None:
        raise ReceiptHandleIsInvalid()
    message = messages[index]
    queue.pending_messages.discard(message)
    queue.deleted_messages.update(message.all_receipt_handles)
    # A new list, as moto makes: a reader iterating the old one is not disturbed.
    queue._messages = messages[:index] + messages[index + 1 :]

"""Run a function's handler the way Lambda's SQS event source mapping would.

Each emulated instance is a thread that polls the queue (``BatchSize`` messages, waiting up
to ``MaximumBatchingWindowInSeconds`` to fill a batch), builds the exact SQS event Lambda
sends, calls ``handler(event, context)`` and then applies ReportBatchItemFailures: the
messages not listed in ``batchItemFailures`` are deleted; if the handler raises (or runs
past the function's Timeout), none are.

One deliberate difference: Lambda leaves a failed message invisible for the rest of the
queue's VisibilityTimeout (minutes here), so a local run would stall. The emulator instead
makes it visible again after ``min(2 ** receive_count, 8)`` seconds (2, 4, 8, 8, ...).
Redelivery counting and the move to the dead-letter queue after ``maxReceiveCount`` are
left to SQS (moto enforces the queue's redrive policy).

Each instance thread is a warm Lambda container: it has one event loop of its own, in which
every invocation it makes runs (as Lambda runs every invocation of a container in one), so
the handlers' per-loop clients and their connections are opened once per instance, not per
invocation. ``LAMBDA_TASK_ROOT`` is set while handlers are imported and instances run, as
it is in Lambda: it is what makes Powertools' async batch processor reuse the thread's loop
(without it, Powertools calls ``asyncio.run`` per invocation). The loop is shut down, and
the clients closed, when the instance stops. Each instance logs with its own invocation's
Lambda context, as a process of its own would (``log_context``).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities import parameters

from prism.messages import SQS_BATCH_LIMIT, sqs_batches
from prism.settings import current_settings
from prism_cli.local.log_context import log_context_per_instance
from prism_cli.local.moto_sqs import wake_receivers
from prism_cli.local.template import FunctionSpec, QueueSpec, SqsEventSource, StackTemplate
from prism_cli.sqs_batches import receipt_entries

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handler = Callable[[dict[str, Any], Any], Any]

logger = logging.getLogger(__name__)

# Functions fed by a bucket notification (the fan-out) see one message per upload: a couple
# of instances keep up with them.
FANOUT_INSTANCES = 2
_import_lock = threading.Lock()


# Set while handlers are imported and emulated instances run: Lambda sets it, and
# Powertools and the X-Ray SDK read it (module doc, ``load_handler``).
TASK_ROOT_VARIABLE = "LAMBDA_TASK_ROOT"
_task_root_lock = threading.Lock()
_task_root_holders = 0  # instance threads running, and handler imports under way
_task_root_before: str | None = None


def default_backoff(receive_count: int) -> int:
    """Seconds a failed message stays invisible before its next delivery (see module doc)."""
    return min(1 << max(receive_count, 0), 8)  # 2 ** receive_count, capped


# --- the handler and its context --------------------------------------------------------
def load_handler(path: Path | str, function: str = "handler") -> Handler:
    """Import ``function`` from the Python file at ``path``, as Lambda imports a handler.

    The module is registered under its file name, so ``fanout_handler.py`` and a test that
    imports ``fanout_handler`` share one module (and its cold-start state). The file's
    folder goes on ``sys.path``, as Lambda's task root does, for sibling imports. Import
    only after the function's environment is set: settings are parsed at import time.
    ``LAMBDA_TASK_ROOT`` is set during the import, as in Lambda, for libraries that decide
    at import whether they run there (the X-Ray SDK would otherwise build a sampling client
    of its own, with its own copy of botocore's endpoint data: 15 MB and 0.1 s).
    """
    path = Path(path).resolve()
    name = path.stem
    with _import_lock:
        module = sys.modules.get(name)
        if module is not None:
            loaded_from = getattr(module, "__file__", None)
            if loaded_from is None or Path(loaded_from).resolve() != path:
                raise ImportError(f"a different module named {name!r} is already imported")
        else:
            if not path.is_file():
                raise ImportError(f"handler file not found: {path}")
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                with task_root(path.parent):
                    spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
    handler = getattr(module, function, None)
    if not callable(handler):
        raise ImportError(f"{path} has no callable {function!r}")
    log_context_per_instance()  # instances are threads here, not processes
    return handler  # type: ignore[no-any-return]


def load_function_handler(fn: FunctionSpec) -> Handler:
    """The handler named by the template's ``CodeUri`` and ``Handler``."""
    return load_handler(fn.handler_path, fn.handler_function)


@dataclass
class FakeLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))

    @classmethod
    def for_function(cls, fn: FunctionSpec) -> FakeLambdaContext:
        return cls(
            function_name=fn.name,
            memory_limit_in_mb=fn.memory_size,
            invoked_function_arn=fn.arn,
            timeout_seconds=fn.timeout,
        )


# --- events and responses ----------------------------------------------------------------
def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    # SQS API shape -> the camelCase shape of Lambda events; binary values as base64.
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": None if binary is None else b64(binary),
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [b64(item) for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }


def sqs_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of a Lambda SQS event for a message from ``ReceiveMessage``."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def sqs_event(messages: Iterable[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [sqs_record(message, queue_arn, region) for message in messages]}


class InvalidBatchResponse(ValueError):
    """A ReportBatchItemFailures response Lambda would treat as a failure of the whole batch."""


def failed_message_ids(response: Any, message_ids: Sequence[str]) -> set[str]:
    """The ids to retry, from a handler's response under ReportBatchItemFailures.

    ``None``, ``{}`` or an empty ``batchItemFailures`` mean every message succeeded. An
    identifier that is missing, empty or not in the batch makes the whole batch fail, as
    in Lambda.
    """
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        raise InvalidBatchResponse(f"response is a {type(response).__name__}, not an object")
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        raise InvalidBatchResponse("batchItemFailures is not a list")
    failed = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not identifier or identifier not in message_ids:
            raise InvalidBatchResponse(f"invalid itemIdentifier {identifier!r}")
        failed.add(identifier)
    return failed


# --- the container ----------------------------------------------------------------------
@contextmanager
def task_root(path: Path) -> Iterator[None]:
    """``LAMBDA_TASK_ROOT`` set to ``path`` for the duration, as it is in Lambda. The
    emulated functions share one process, so while several holders overlap the first one's
    value stays; the variable is restored when the last one is done."""
    global _task_root_holders, _task_root_before
    with _task_root_lock:
        if _task_root_holders == 0:
            _task_root_before = os.environ.get(TASK_ROOT_VARIABLE)
            os.environ[TASK_ROOT_VARIABLE] = str(path)
        _task_root_holders += 1
    try:
        yield
    finally:
        with _task_root_lock:
            _task_root_holders -= 1
            if _task_root_holders == 0:
                if _task_root_before is None:
                    os.environ.pop(TASK_ROOT_VARIABLE, None)
                else:
                    os.environ[TASK_ROOT_VARIABLE] = _task_root_before


@contextmanager
def warm_container(root: Path) -> Iterator[asyncio.AbstractEventLoop]:
    """This thread as a warm Lambda container for the duration: an event loop of its own
    that every invocation in it runs in, and ``LAMBDA_TASK_ROOT`` set to ``root``. On
    exit the loop's async generators (the handlers' per-loop clients) are closed, and the
    loop with them."""
    with task_root(root):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            yield loop
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            except Exception:  # closing clients must not hide why the instance ended
                logger.exception("closing an emulated container's event loop failed")
            finally:
                asyncio.set_event_loop(None)
                loop.close()


# --- the event source mapping ------------------------------------------------------------
@dataclass
class EmulatorStats:
    errors: int = 0  # invocations that raised, timed out or answered invalidly
    deleted: int = 0
    retried: int = 0  # messages made visible again for another delivery


@dataclass(frozen=True)
class InvocationError:
    function: str
    message_ids: tuple[str, ...]
    error: str


class SqsEventSourceEmulator:
    """Lambda's SQS poller for one (function, queue) pair, with ``instances`` threads."""

    def __init__(
        self,
        fn: FunctionSpec,
        event: SqsEventSource,
        queue: QueueSpec,
        sqs: SQSClient,
        *,
        region: str,
        handler: Handler | None = None,
        instances: int = 1,
        wait_time_seconds: int = 1,
        batching_window: float | None = None,
        retry_backoff: Callable[[int], int] = default_backoff,
        enforce_timeout: bool = True,
    ) -> None:
        if instances < 1:
            raise ValueError("instances must be at least 1")
        self.function = fn
        self.event = event
        self.queue = queue
        self.region = region
        self.instances = instances
        self.stats = EmulatorStats()
        self.errors: list[InvocationError] = []
        self._sqs = sqs
        self._handler = handler
        self._wait = wait_time_seconds
        self._window = event.maximum_batching_window if batching_window is None else batching_window
        self._backoff = retry_backoff
        self._enforce_timeout = enforce_timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        # Called (in the instance's thread) with the records of an invocation's messages
        # once they are deleted from the queue: done with, never delivered again.
        self.on_deleted: Callable[[Sequence[dict[str, Any]]], None] | None = None

    @property
    def handler(self) -> Handler:
        if self._handler is None:  # imported lazily: the environment must be set first
            self._handler = load_function_handler(self.function)
        return self._handler

    @property
    def in_flight(self) -> int:
        """Messages received and not yet deleted or returned to the queue."""
        with self._lock:
            return self._in_flight

    # --- threads --------------------------------------------------------------------------
    def start(self) -> None:
        # Import here, once, rather than in the instance threads racing each other.
        self.handler  # noqa: B018
        for index in range(self.instances):
            thread = threading.Thread(
                target=self._run, name=f"{self.function.logical_id}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Stop polling; invocations under way still finish."""
        self._stop.set()
        wake_receivers()  # a long poll under way returns now, not when its wait is over

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def stop(self) -> None:
        self.request_stop()
        self.join()

    def _run(self) -> None:
        with warm_container(self.function.handler_path.parent):
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except Exception:  # an SQS hiccup must not end the instance
                    logger.exception(
                        "%s: polling %s failed", self.function.logical_id, self.queue.name
                    )
                    self._stop.wait(1)

    # --- one batch ------------------------------------------------------------------------
    def poll_once(self) -> int:
        """Receive one batch and invoke the handler with it; the number of messages."""
        messages = self._receive_batch()
        if not messages:
            return 0
        try:
            self._invoke(messages)
        finally:
            with self._lock:
                self._in_flight -= len(messages)
        return len(messages)

    def _receive(self, count: int, wait: int) -> list[MessageTypeDef]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=min(count, SQS_BATCH_LIMIT),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if messages:
            with self._lock:
                self._in_flight += len(messages)
        return messages

    def _receive_batch(self) -> list[MessageTypeDef]:
        batch_size = self.event.batch_size
        messages = self._receive(batch_size, self._wait)
        if not messages:
            return messages
        # Like Lambda, wait up to the batching window for a full batch.
        deadline = time.monotonic() + self._window
        while len(messages) < batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = self._receive(batch_size - len(messages), 1 if remaining >= 1 else 0)
            if not more and remaining < 1:
                time.sleep(min(remaining, 0.1))
            messages.extend(more)
        return messages

    def _invoke(self, messages: list[MessageTypeDef]) -> None:
        ids = [message["MessageId"] for message in messages]
        event = sqs_event(messages, self.queue.arn, self.region)
        records = {record["messageId"]: record for record in event["Records"]}
        context = FakeLambdaContext.for_function(self.function)
        failed: set[str]
        try:
            response = self.handler(event, context)
            if self._enforce_timeout and context.get_remaining_time_in_millis() <= 0:
                raise TimeoutError(f"ran longer than the function's {self.function.timeout} s")
            if self.event.reports_batch_item_failures:
                failed = failed_message_ids(response, ids)
            else:
                failed = set()
        except Exception as exc:
            logger.exception("%s invocation failed", self.function.logical_id)
            failed = set(ids)
            with self._lock:
                self.stats.errors += 1
                self.errors.append(
                    InvocationError(
                        self.function.logical_id, tuple(ids), f"{type(exc).__name__}: {exc}"
                    )
                )
        deleted = self._settle(messages, failed)
        if deleted and self.on_deleted is not None:
            try:
                self.on_deleted([records[message_id] for message_id in deleted])
            except Exception:  # an observer's failure is not the function's
                logger.exception("%s: on_deleted failed", self.function.logical_id)

    def _settle(self, messages: list[MessageTypeDef], failed: set[str]) -> list[str]:
        """Delete the messages that succeeded and retry the others; the ids deleted."""
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        deleted_ids: list[str] = []
        deleted = self._batches(
            "delete", self._sqs.delete_message_batch, done, succeeded=deleted_ids
        )
        retried = self._batches(
            "change visibility",
            self._sqs.change_message_visibility_batch,
            retry,
            lambda m: {"VisibilityTimeout": self._backoff(_receive_count(m))},
        )
        with self._lock:
            self.stats.deleted += deleted
            self.stats.retried += retried
        return deleted_ids

    def _batches(
        self,
        action: str,
        call: Callable[..., Any],
        messages: Sequence[MessageTypeDef],
        fields: Callable[[MessageTypeDef], dict[str, Any]] = lambda m: {},
        *,
        succeeded: list[str] | None = None,
    ) -> int:
        """``call`` (a batch action on received messages) for ``messages``, 10 at a time;
        how many succeeded (their message ids are added to ``succeeded``). Failures are
        logged."""
        count = 0
        for chunk in sqs_batches(messages):
            entries = receipt_entries(chunk, fields)
            result = call(QueueUrl=self.queue.url, Entries=entries)
            successful = result.get("Successful", [])
            count += len(successful)
            if succeeded is not None:
                ids = {
                    entry["Id"]: message["MessageId"]
                    for entry, message in zip(entries, chunk, strict=True)
                }
                succeeded.extend(ids[entry["Id"]] for entry in successful if entry["Id"] in ids)
            for failure in result.get("Failed", []):
                logger.warning(
                    "%s: %s failed for a message: %s",
                    self.function.logical_id,
                    action,
                    failure.get("Message", failure.get("Code")),
                )
        return count


def _receive_count(message: MessageTypeDef) -> int:
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


# The queue attributes that count its messages: waiting, in flight (received, not yet
# deleted), delayed.
MESSAGE_COUNTS: tuple[QueueAttributeFilterType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def pipeline_idle(emulators: Sequence[SqsEventSourceEmulator], sqs: SQSClient) -> bool:
    """No invocation under way and no message waiting, in flight or delayed in any queue."""
    if any(emulator.in_flight for emulator in emulators):
        return False
    # Read after ``in_flight``: a message received in between shows as not visible here.
    for url in {emulator.queue.url for emulator in emulators}:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(MESSAGE_COUNTS))
        if any(int(count) for count in attributes["Attributes"].values()):
            return False
    return True


def batch_capacity(emulators: Sequence[SqsEventSourceEmulator]) -> int:
    """How many messages the emulators' instances take in one round of batches."""
    return sum(emulator.instances * emulator.event.batch_size for emulator in emulators)


def run_until_idle(
    emulators: Sequence[SqsEventSourceEmulator],
    sqs: SQSClient,
    *,
    timeout: float = 120,
    settle_polls: int = 3,
    poll_seconds: float = 0.5,
) -> None:
    """Start ``emulators``, wait until the pipeline is idle ``settle_polls`` polls in a row,
    then stop them (TimeoutError after ``timeout`` seconds)."""
    with running(emulators):
        deadline = time.monotonic() + timeout
        settled = idle_for(settle_polls, emulators, sqs)
        while not settled():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pipeline was still busy after {timeout} s")
            time.sleep(poll_seconds)


def idle_for(
    polls: int, emulators: Sequence[SqsEventSourceEmulator], sqs: SQSClient
) -> Callable[[], bool]:
    """A check that is True once the pipeline has been idle (:func:`pipeline_idle`)
    ``polls`` checks in a row."""
    in_a_row = 0

    def check() -> bool:
        nonlocal in_a_row
        in_a_row = in_a_row + 1 if pipeline_idle(emulators, sqs) else 0
        return in_a_row >= polls

    return check


@contextmanager
def running(
    emulators: Sequence[SqsEventSourceEmulator], *, join_timeout: float | None = None
) -> Iterator[Sequence[SqsEventSourceEmulator]]:
    """``emulators`` polling for the duration; on exit they stop polling, and the
    invocations under way finish (each instance waited for up to ``join_timeout``)."""
    for emulator in emulators:
        emulator.start()
    try:
        yield emulators
    finally:
        for emulator in emulators:
            emulator.request_stop()
        for emulator in emulators:
            emulator.join(join_timeout)


def forget_warm_state() -> None:
    """Drop what a warm Lambda environment caches, as a new stack's functions would start
    cold: Powertools' parameter cache and the handlers' settings (queue URLs, names)."""
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # untyped in Powertools
    current_settings.cache_clear()


def function_instances(
    template: StackTemplate, workers: int | None = None, *, within_concurrency: bool = False
) -> dict[str, int]:
    """The local stack's instances per function: :data:`FANOUT_INSTANCES` for those a
    bucket notification feeds; for the rest (the workers) ``workers`` (capped by the event
    source's MaximumConcurrency if ``within_concurrency``) or, by default, that
    MaximumConcurrency capped at two per core."""
    notified = {n.queue for b in template.buckets.values() for n in b.queue_notifications}
    cap = 2 * (os.cpu_count() or 1)

    def instances(event: SqsEventSource) -> int:
        if event.queue in notified:
            return FANOUT_INSTANCES
        if workers is None:
            return min(event.maximum_concurrency or cap, cap)
        return min(workers, event.maximum_concurrency or workers) if within_concurrency else workers

    return {fn.logical_id: instances(event) for fn, event in template.sqs_consumers()}


def emulators_for(
    template: StackTemplate,
    sqs: SQSClient,
    *,
    instances: Mapping[str, int] | None = None,
    handlers: Mapping[str, Handler] | None = None,
    **options: Any,
) -> list[SqsEventSourceEmulator]:
    """One emulator per SQS event source in the template.

    ``instances`` and ``handlers`` are keyed by function logical id (default: one instance,
    the template's handler); ``options`` go to every :class:`SqsEventSourceEmulator`.
    """
    instances = instances or {}
    handlers = handlers or {}
    return [
        SqsEventSourceEmulator(
            fn,
            event,
            template.queue(event.queue),
            sqs,
            region=template.context.region,
            handler=handlers.get(fn.logical_id),
            instances=instances.get(fn.logical_id, 1),
            **options,
        )
        for fn, event in template.sqs_consumers()
        if event.enabled
    ]

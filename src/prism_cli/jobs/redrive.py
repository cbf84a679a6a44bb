"""``prism redrive``: move messages from the dead-letter queues back to their queues.

After an outage (a throttled table, a bad deploy), messages that exhausted their retries
wait in the DLQs; once the cause is fixed, an operator sends them round again. Each
queue's DLQ is read from the queue's own ``RedrivePolicy`` attribute, so a deployed stack
needs no Outputs beyond its queue URLs.

SQS moves messages itself with ``StartMessageMoveTask``; moto (the local stack) does not
implement it, so locally, or where an endpoint does not know the action, a bounded copy
loop does the same: receive up to 10, send them to the queue with their attributes, and
delete from the DLQ only those the queue accepted.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from prism.aws.errors import error_code
from prism.messages import SQS_BATCH_LIMIT
from prism_cli.errors import UserError
from prism_cli.jobs.target import StackTarget
from prism_cli.sqs_batches import receipt_entries

# Which queue a name means: the stack Output holding its URL.
QUEUE_OUTPUTS = {"uploads": "UploadsQueueUrl", "variants": "VariantsQueueUrl"}
QUEUE_CHOICES = (*QUEUE_OUTPUTS, "all")
# A received message stays hidden this long: long enough to send and delete it, and a
# message the queue refused is not received again by the same redrive.
_VISIBILITY_SECONDS = 120
# Error codes meaning "this endpoint does not know StartMessageMoveTask".
_UNSUPPORTED = frozenset({"InvalidAction", "NotImplemented", "UnknownOperationException"})
_MOVE_TASK_POLL_SECONDS = 2.0
_MOVE_TASK_WAIT_SECONDS = 900.0
_MOVE_TASK_DONE = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
# What SendMessageBatch accepts of a received message attribute.
_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


@dataclass(frozen=True)
class RedrivePair:
    name: str  # uploads | variants
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str

    @property
    def dlq_name(self) -> str:
        return self.dlq_arn.rsplit(":", 1)[-1]

    @property
    def queue_name(self) -> str:
        return self.queue_arn.rsplit(":", 1)[-1]


@dataclass
class RedriveResult:
    pair: RedrivePair
    moved: int = 0
    # Received but not accepted by the queue (left in the DLQ), with the first reason.
    refused: int = 0
    refusal: str = ""
    # Sent, but could not be deleted from the DLQ: they may arrive twice.
    undeleted: int = 0
    # A move task that was still running when we stopped waiting (it carries on in SQS).
    still_moving: bool = False


def queue_names(choice: str) -> list[str]:
    return list(QUEUE_OUTPUTS) if choice == "all" else [choice]


async def redrive_pairs(sqs: Any, target: StackTarget, names: list[str]) -> list[RedrivePair]:
    """Each named queue with its dead-letter queue (from the queue's RedrivePolicy)."""
    pairs = []
    for name in names:
        output = QUEUE_OUTPUTS[name]
        url = target.outputs.get(output)
        if not url:
            raise UserError(f"{target.label} has no output {output}; cannot find the {name} queue")
        attributes = (
            await sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"]
            )
        )["Attributes"]
        try:
            dlq_arn = json.loads(attributes.get("RedrivePolicy") or "{}")["deadLetterTargetArn"]
        except (ValueError, KeyError, TypeError):
            raise UserError(
                f"the {name} queue of {target.label} has no dead-letter queue"
            ) from None
        account, dlq_name = dlq_arn.split(":")[4], dlq_arn.rsplit(":", 1)[-1]
        dlq_url = (await sqs.get_queue_url(QueueName=dlq_name, QueueOwnerAWSAccountId=account))[
            "QueueUrl"
        ]
        pairs.append(RedrivePair(name, url, attributes["QueueArn"], dlq_url, dlq_arn))
    return pairs


async def redrive(sqs: Any, pair: RedrivePair, *, move_task: bool, wait: int) -> RedriveResult:
    """Move ``pair``'s dead letters back: by an SQS move task if ``move_task`` (falling
    back to copying if the endpoint does not know the action), else by copying."""
    if move_task:
        try:
            return await _move_task(sqs, pair)
        except ClientError as exc:
            if error_code(exc) not in _UNSUPPORTED:
                raise
    return await _copy_back(sqs, pair, wait=wait)


async def _waiting(sqs: Any, url: str) -> int:
    attributes = (
        await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0))


async def _move_task(sqs: Any, pair: RedrivePair) -> RedriveResult:
    result = RedriveResult(pair)
    if not await _waiting(sqs, pair.dlq_url):
        return result
    await sqs.start_message_move_task(SourceArn=pair.dlq_arn, DestinationArn=pair.queue_arn)
    deadline = time.monotonic() + _MOVE_TASK_WAIT_SECONDS
    while True:
        tasks = (await sqs.list_message_move_tasks(SourceArn=pair.dlq_arn, MaxResults=1))["Results"]
        task = tasks[0] if tasks else {}
        result.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        if task.get("Status") in _MOVE_TASK_DONE:
            if task.get("Status") != "COMPLETED":
                result.refusal = str(task.get("FailureReason") or task.get("Status"))
            return result
        if time.monotonic() > deadline:
            result.still_moving = True
            return result
        await asyncio.sleep(_MOVE_TASK_POLL_SECONDS)


async def _copy_back(sqs: Any, pair: RedrivePair, *, wait: int) -> RedriveResult:
    """Copy loop, bounded by the number of messages waiting when it starts: messages that
    fail again and return to the DLQ meanwhile are left for the next redrive."""
    result = RedriveResult(pair)
    bound = await _waiting(sqs, pair.dlq_url)
    while result.moved + result.refused < bound:
        messages = (
            await sqs.receive_message(
                QueueUrl=pair.dlq_url,
                MaxNumberOfMessages=min(SQS_BATCH_LIMIT, bound - result.moved - result.refused),
                WaitTimeSeconds=wait,
                VisibilityTimeout=_VISIBILITY_SECONDS,
                MessageAttributeNames=["All"],
            )
        ).get("Messages", [])
        if not messages:
            break
        accepted = await _send(sqs, pair.queue_url, messages, result)
        await _delete(sqs, pair.dlq_url, accepted, result)
        result.moved += len(accepted)
    return result


async def _send(
    sqs: Any, url: str, messages: list[dict[str, Any]], result: RedriveResult
) -> list[dict[str, Any]]:
    """Send ``messages`` to ``url``; those the queue accepted."""
    entries = [
        {"Id": str(index), "MessageBody": message["Body"], **_attributes(message)}
        for index, message in enumerate(messages)
    ]
    response = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
    failed = response.get("Failed", [])
    if failed:
        result.refused += len(failed)
        result.refusal = result.refusal or str(failed[0].get("Message") or failed[0].get("Code"))
    return [messages[int(success["Id"])] for success in response.get("Successful", [])]


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    attributes = {
        name: {field: value[field] for field in _ATTRIBUTE_FIELDS if field in value}
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {"MessageAttributes": attributes} if attributes else {}


async def _delete(
    sqs: Any, url: str, messages: list[dict[str, Any]], result: RedriveResult
) -> None:
    if not messages:
        return
    response = await sqs.delete_message_batch(QueueUrl=url, Entries=receipt_entries(messages))
    result.undeleted += len(response.get("Failed", []))

"""The local stack's moto SQS under concurrent pollers (see prism_cli.local.moto_sqs).

Several threads receive from one queue whose messages go to a dead-letter queue after one
receive. Unpatched moto fails some of those receives with a 500 (``list.remove(x): x not
in list`` while moving a message to the DLQ), and the messages that receive had taken stay
invisible for the queue's visibility timeout. The session's moto server is a
:class:`prism_cli.local.stack.MotoServer`, which serialises them.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config

from prism_cli.local.stack import MotoServer

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration

MESSAGES = 120
POLLERS = 8


def sqs_client(endpoint: str) -> SQSClient:
    # No retries: a failed receive must show, not be hidden by botocore's retries.
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def queues(moto_server: MotoServer) -> Iterator[tuple[str, str]]:
    """(queue, dead-letter queue): a message received once goes to the DLQ on the next
    receive; received messages stay invisible for 720 s, as in the variants queue."""
    sqs = sqs_client(moto_server.endpoint)
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"race-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=f"race-{suffix}",
        Attributes={
            "VisibilityTimeout": "720",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}),
        },
    )["QueueUrl"]
    yield queue, dlq
    for url in (queue, dlq):
        sqs.delete_queue(QueueUrl=url)


def test_concurrent_receives_strand_nothing_and_lose_nothing(
    moto_server: MotoServer, queues: tuple[str, str]
) -> None:
    queue, dlq = queues
    sqs = sqs_client(moto_server.endpoint)
    for start in range(0, MESSAGES, 10):
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)],
        )
    # Half the messages have had their one receive (and are visible again): every poller's
    # next receive moves those to the DLQ while it takes fresh ones.
    for _ in range(MESSAGES // 2 // 10):
        sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
    delivered: list[str] = []
    errors: list[str] = []
    start_together = threading.Barrier(POLLERS)
    deadline = time.monotonic() + 30

    def poll() -> None:
        client = sqs_client(moto_server.endpoint)
        start_together.wait()
        while time.monotonic() < deadline:
            try:
                messages = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
                    "Messages", []
                )
                if not messages:
                    return
                client.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                        for i, message in enumerate(messages)
                    ],
                )
                delivered.extend(message["Body"] for message in messages)
            except Exception as exc:  # what a poller would see
                errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the server's threads often
    try:
        pollers = [threading.Thread(target=poll) for _ in range(POLLERS)]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()
    finally:
        sys.setswitchinterval(previous)

    assert errors == []
    left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    # Nothing taken by a failed receive and left invisible for the visibility timeout.
    assert (left["ApproximateNumberOfMessages"], left["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "0",
    )
    dead: list[str] = []
    while received := sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=60
    ).get("Messages", []):
        dead.extend(message["Body"] for message in received)
    assert sorted(dead) == sorted(f"m{i}" for i in range(MESSAGES // 2))
    assert sorted(delivered) == sorted(f"m{i}" for i in range(MESSAGES // 2, MESSAGES))


def test_a_long_poll_is_woken_by_a_send_while_others_keep_working(
    moto_server: MotoServer, queues: tuple[str, str]
) -> None:
    queue, _ = queues
    sqs = sqs_client(moto_server.endpoint)
    received: list[str] = []

    def long_poll() -> None:
        messages = (
            sqs_client(moto_server.endpoint)
            .receive_message(QueueUrl=queue, WaitTimeSeconds=10)
            .get("Messages", [])
        )
        received.extend(message["Body"] for message in messages)

    waiter = threading.Thread(target=long_poll)
    started = time.monotonic()
    waiter.start()
    time.sleep(0.5)
    # The waiting poll must not hold the lock: this send goes through at once.
    sqs.send_message(QueueUrl=queue, MessageBody="wake up")
    sent_after = time.monotonic() - started
    waiter.join()
    assert sent_after < 2
    assert received == ["wake up"]
    assert time.monotonic() - started < 5

"""The local stack's moto SQS answers as moto does, more cheaply (see
prism_cli.local.moto_sqs): the three message counts, deletes by receipt handle (repeated,
unknown, superseded), the retention check on receive, ``held_messages`` (the counts read
without a request) and ``wake_receivers`` (long polls ended on request).

The session's moto server is a :class:`prism_cli.local.stack.MotoServer` in this process, so
its SQS backend is this test's ``moto.sqs.models.sqs_backends``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from prism_cli.aws_env import DUMMY_CREDENTIALS
from prism_cli.local import moto_sqs
from prism_cli.local.lambda_emulator import MESSAGE_COUNTS
from prism_cli.local.moto_sqs import held_messages, wake_receivers
from prism_cli.local.stack import MotoServer
from prism_cli.local.template import DEFAULT_REGION

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

pytestmark = pytest.mark.integration

IN_FLIGHT_SECONDS = 600


def sqs_client(endpoint: str) -> SQSClient:
    # No retries: a failed request must show, not be hidden by botocore's retries.
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
    )


@dataclass(frozen=True)
class Queue:
    name: str
    url: str
    account_id: str

    def model(self) -> Any:
        """moto's queue object (the server runs in this process)."""
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account_id][DEFAULT_REGION].queues[self.name]

    def held(self) -> int:
        return held_messages(self.account_id, DEFAULT_REGION, [self.name])


@pytest.fixture(scope="module")
def sqs(moto_server: MotoServer) -> SQSClient:
    return sqs_client(moto_server.endpoint)


def make_queue(sqs: SQSClient, retention_seconds: int | None = None) -> Queue:
    name = f"counts-{uuid.uuid4().hex[:12]}"
    attributes: dict[QueueAttributeNameType, str] = {}
    if retention_seconds is not None:
        attributes["MessageRetentionPeriod"] = str(retention_seconds)
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    account_id = url.rstrip("/").split("/")[-2]  # .../{account}/{name}
    return Queue(name, url, account_id)


@pytest.fixture
def queue(sqs: SQSClient) -> Iterator[Queue]:
    made = make_queue(sqs)
    yield made
    sqs.delete_queue(QueueUrl=made.url)


def counts(sqs: SQSClient, queue: Queue) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=list(MESSAGE_COUNTS))
    return {name: int(value) for name, value in attributes["Attributes"].items()}


def expected_counts(visible: int, in_flight: int, delayed: int) -> dict[str, int]:
    return {
        "ApproximateNumberOfMessages": visible,
        "ApproximateNumberOfMessagesNotVisible": in_flight,
        "ApproximateNumberOfMessagesDelayed": delayed,
    }


def send(sqs: SQSClient, queue: Queue, bodies: list[str], delay: int = 0) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=queue.url, MessageBody=body, DelaySeconds=delay)


def receive(
    sqs: SQSClient, queue: Queue, count: int = 10, visibility: int = IN_FLIGHT_SECONDS
) -> list[Any]:
    return list(
        sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=count, VisibilityTimeout=visibility
        ).get("Messages", [])
    )


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


# --- counts -------------------------------------------------------------------------------
def test_counts_of_visible_in_flight_and_delayed_messages(sqs: SQSClient, queue: Queue) -> None:
    assert counts(sqs, queue) == expected_counts(0, 0, 0)
    assert queue.held() == 0
    send(sqs, queue, [f"visible-{i}" for i in range(5)])
    send(sqs, queue, ["delayed-0", "delayed-1"], delay=60)
    assert counts(sqs, queue) == expected_counts(5, 0, 2)

    taken = receive(sqs, queue, count=2)
    assert len(taken) == 2
    assert all(message["Body"].startswith("visible-") for message in taken)
    assert counts(sqs, queue) == expected_counts(3, 2, 2)
    # The same three from "All", as strings.
    all_attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])
    everything: dict[str, str] = dict(all_attributes["Attributes"].items())
    assert {name: everything[name] for name in MESSAGE_COUNTS} == {
        "ApproximateNumberOfMessages": "3",
        "ApproximateNumberOfMessagesNotVisible": "2",
        "ApproximateNumberOfMessagesDelayed": "2",
    }
    assert queue.held() == sum(counts(sqs, queue).values()) == 7

    # Delayed messages are not received; the in-flight ones are not received again.
    rest = receive(sqs, queue)
    assert sorted(message["Body"] for message in rest) == ["visible-2", "visible-3", "visible-4"]
    assert counts(sqs, queue) == expected_counts(0, 5, 2)

    sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=taken[0]["ReceiptHandle"])
    assert counts(sqs, queue) == expected_counts(0, 4, 2)
    assert queue.held() == 6
    # Visible again at once: back among the waiting ones.
    sqs.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=taken[1]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert counts(sqs, queue) == expected_counts(1, 3, 2)
    assert queue.held() == sum(counts(sqs, queue).values()) == 6


def test_held_messages_adds_up_the_named_queues(sqs: SQSClient, queue: Queue) -> None:
    other = make_queue(sqs)
    try:
        send(sqs, queue, ["a", "b"])
        send(sqs, queue, ["c"], delay=60)
        send(sqs, other, ["d"])
        receive(sqs, other)
        assert held_messages(queue.account_id, DEFAULT_REGION, [queue.name]) == 3
        assert held_messages(queue.account_id, DEFAULT_REGION, [other.name]) == 1
        assert held_messages(queue.account_id, DEFAULT_REGION, [queue.name, other.name]) == 4
        # A queue that does not exist holds nothing.
        assert held_messages(queue.account_id, DEFAULT_REGION, [queue.name, "no-such-q"]) == 3
        total = sum(counts(sqs, queue).values()) + sum(counts(sqs, other).values())
        assert total == 4
    finally:
        sqs.delete_queue(QueueUrl=other.url)


def test_queue_attributes_asked_for_by_name(sqs: SQSClient, queue: Queue) -> None:
    send(sqs, queue, ["one"])
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "VisibilityTimeout", "Policy"],
    )["Attributes"]
    # Policy is unset: left out, as moto leaves it out.
    assert attributes == {"ApproximateNumberOfMessages": "1", "VisibilityTimeout": "30"}
    everything = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    assert everything["QueueArn"].endswith(f":{queue.name}")
    assert everything["MessageRetentionPeriod"] == str(4 * 86400)
    assert "Policy" not in everything
    with pytest.raises(ClientError) as error:
        sqs.get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "NoSuchAttribute"],  # type: ignore[list-item]
        )
    assert error_code(error) == "InvalidAttributeName"


# --- deletes by receipt handle ------------------------------------------------------------------
def test_deleting_twice_with_one_receipt_handle_is_fine(sqs: SQSClient, queue: Queue) -> None:
    send(sqs, queue, ["first", "second"])
    messages = receive(sqs, queue)
    assert len(messages) == 2
    handle = messages[0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=handle)
    sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=handle)
    result = sqs.delete_message_batch(
        QueueUrl=queue.url, Entries=[{"Id": "again", "ReceiptHandle": handle}]
    )
    assert [entry["Id"] for entry in result["Successful"]] == ["again"]
    assert result.get("Failed", []) == []
    # Only that one message went.
    assert counts(sqs, queue) == expected_counts(0, 1, 0)


def test_a_made_up_receipt_handle_is_invalid(sqs: SQSClient, queue: Queue) -> None:
    send(sqs, queue, ["kept"])
    (message,) = receive(sqs, queue)
    with pytest.raises(ClientError) as error:
        sqs.delete_message(QueueUrl=queue.url, ReceiptHandle="made-up-" + uuid.uuid4().hex)
    assert error_code(error) == "ReceiptHandleIsInvalid"
    result = sqs.delete_message_batch(
        QueueUrl=queue.url,
        Entries=[
            {"Id": "bad", "ReceiptHandle": "made-up"},
            {"Id": "good", "ReceiptHandle": message["ReceiptHandle"]},
        ],
    )
    assert [entry["Id"] for entry in result["Successful"]] == ["good"]
    assert [(entry["Id"], entry["Code"]) for entry in result["Failed"]] == [
        ("bad", "ReceiptHandleIsInvalid")
    ]
    assert queue.held() == 0


def test_an_old_receipt_handle_deletes_a_message_received_again(
    sqs: SQSClient, queue: Queue
) -> None:
    send(sqs, queue, ["again", "bystander"])
    sqs.send_message(QueueUrl=queue.url, MessageBody="bystander-delayed", DelaySeconds=60)
    # Received with no visibility timeout: visible again at once, and received again.
    first = receive(sqs, queue, count=1, visibility=0)
    second = receive(sqs, queue, count=1, visibility=IN_FLIGHT_SECONDS)
    assert [m["Body"] for m in first] == [m["Body"] for m in second] == ["again"]
    assert first[0]["MessageId"] == second[0]["MessageId"]
    assert first[0]["ReceiptHandle"] != second[0]["ReceiptHandle"]
    assert counts(sqs, queue) == expected_counts(1, 1, 1)
    sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=first[0]["ReceiptHandle"])
    assert counts(sqs, queue) == expected_counts(1, 0, 1)
    # And the newer handle is one of a deleted message now: deleting with it is fine.
    sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=second[0]["ReceiptHandle"])
    assert [m["Body"] for m in receive(sqs, queue)] == ["bystander"]


def test_an_old_receipt_handle_still_deletes_after_a_visibility_change(
    sqs: SQSClient, queue: Queue
) -> None:
    send(sqs, queue, ["changed"])
    (first,) = receive(sqs, queue)
    sqs.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    (second,) = receive(sqs, queue)
    assert second["MessageId"] == first["MessageId"]
    assert counts(sqs, queue) == expected_counts(0, 1, 0)
    sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=first["ReceiptHandle"])
    assert counts(sqs, queue) == expected_counts(0, 0, 0)
    assert queue.held() == 0


# --- retention --------------------------------------------------------------------------------
def test_a_message_within_its_retention_period_is_received(sqs: SQSClient) -> None:
    short = make_queue(sqs, retention_seconds=60)
    try:
        send(sqs, short, ["fresh"])
        assert [m["Body"] for m in receive(sqs, short)] == ["fresh"]
    finally:
        sqs.delete_queue(QueueUrl=short.url)


def age(queue: Queue, seconds: int) -> None:
    """Make every message of ``queue`` look ``seconds`` older (moto keeps milliseconds)."""
    for message in queue.model()._messages:
        message.sent_timestamp -= seconds * 1000


def test_a_message_past_its_retention_period_is_not_received(sqs: SQSClient) -> None:
    short = make_queue(sqs, retention_seconds=60)
    try:
        send(sqs, short, ["expired"])
        age(short, 61)
        assert receive(sqs, short) == []
    finally:
        sqs.delete_queue(QueueUrl=short.url)


def test_the_retention_period_is_the_queues_own(sqs: SQSClient, queue: Queue) -> None:
    send(sqs, queue, ["a minute old"])
    age(queue, 61)  # past 60 s, well within the default four days
    assert [m["Body"] for m in receive(sqs, queue)] == ["a minute old"]


# --- long polls -------------------------------------------------------------------------------
def test_wake_receivers_ends_a_long_poll_at_once(
    moto_server: MotoServer, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The poll would otherwise wait out the whole 20 s without a look: only the wake-up
    # itself can end it early.
    monkeypatch.setattr(moto_sqs, "_WAIT_SLICE_SECONDS", 60.0)
    received: list[Any] = []
    errors: list[BaseException] = []

    def long_poll() -> None:
        try:
            response = sqs_client(moto_server.endpoint).receive_message(
                QueueUrl=queue.url, WaitTimeSeconds=20
            )
            received.extend(response.get("Messages", []))
        except BaseException as exc:
            errors.append(exc)

    poller = threading.Thread(target=long_poll, daemon=True)
    started = time.monotonic()
    poller.start()
    model = queue.model()
    while model not in moto_sqs._waited_on:  # the poll has started waiting on the queue
        assert time.monotonic() - started < 10, "the long poll never started waiting"
        time.sleep(0.01)
    time.sleep(0.2)
    assert poller.is_alive()
    woken = time.monotonic()
    wake_receivers()
    poller.join(timeout=10)
    assert not poller.is_alive()
    assert time.monotonic() - woken < 2
    assert errors == []
    assert received == []


def test_a_long_poll_started_after_a_wake_up_waits(
    moto_server: MotoServer, sqs: SQSClient, queue: Queue
) -> None:
    wake_receivers()
    started = time.monotonic()
    assert sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1).get("Messages", []) == []
    assert time.monotonic() - started >= 0.9


def test_a_woken_poller_can_still_receive(sqs: SQSClient, queue: Queue) -> None:
    wake_receivers()
    send(sqs, queue, ["after the wake-up"])
    messages = sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=5).get("Messages", [])
    assert [m["Body"] for m in messages] == ["after the wake-up"]

"""moto's model instance lists hold weak references (see prism_cli.local.moto_instances):
what a backend still holds stays listed, what it dropped is freed.

:class:`WeakInstances` on its own first (it imports nothing of moto, but lives here: the
unit suite runs without moto's patches, see tests/unit/test_unit_suite_imports.py), then
moto's own models in the session's moto server, which runs in this process (a
:class:`prism_cli.local.stack.MotoServer` thread), so its classes are this test's.
"""

from __future__ import annotations

import gc
import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from prism_cli.local.moto_instances import WeakInstances
from prism_cli.local.stack import MotoServer, StackClients

pytestmark = pytest.mark.integration

OBJECTS = 200


class Model:
    """An ordinary object: weakly referenceable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.me: Model | None = None


class Slotted:
    """No ``__weakref__`` slot: cannot be weakly referenced."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def names(instances: WeakInstances) -> list[str]:
    return sorted(instance.name for instance in instances)


# --- WeakInstances ----------------------------------------------------------------------------
def test_weak_instances_list_what_was_appended() -> None:
    a, b, c = Model("a"), Model("b"), Model("c")
    instances = WeakInstances([a])
    instances.append(b)
    instances.append(c)
    assert len(instances) == 3
    assert names(instances) == ["a", "b", "c"]
    assert sorted(map(id, instances)) == sorted(map(id, [a, b, c]))  # the objects themselves
    assert names(instances) == ["a", "b", "c"]  # iterating twice: the same
    assert len(WeakInstances()) == 0
    assert list(WeakInstances()) == []


def test_freed_objects_drop_out() -> None:
    kept, freed, cyclic = Model("kept"), Model("freed"), Model("cyclic")
    cyclic.me = cyclic  # freed only by the cycle collector
    instances = WeakInstances([kept, freed, cyclic])
    del freed
    assert names(instances) == ["cyclic", "kept"]
    assert len(instances) == 2
    del cyclic
    gc.collect()
    assert names(instances) == ["kept"]
    assert len(instances) == 1
    assert list(instances) == [kept]


def test_a_new_object_at_a_freed_ones_address_is_listed() -> None:
    instances = WeakInstances()
    for round_ in range(50):
        # CPython reuses a freed object's memory at once: the new object often has its id.
        instances.append(Model(f"gone-{round_}"))
        replacement = Model(f"new-{round_}")
        instances.append(replacement)
        assert names(instances) == [f"new-{round_}"]
        assert len(instances) == 1
        del replacement
        assert len(instances) == 0


def test_an_object_that_cannot_be_weakly_referenced_is_kept() -> None:
    instances = WeakInstances([Slotted("slotted")])
    instances.append(Model("weak"))  # freed at once: nothing else holds it
    instances.append(Slotted("another"))
    gc.collect()
    assert names(instances) == ["another", "slotted"]
    assert len(instances) == 2


def test_objects_appended_twice_are_listed_once() -> None:
    model = Model("twice")
    instances = WeakInstances([model])
    instances.append(model)
    assert list(instances) == [model]
    del model
    assert len(instances) == 0


# --- moto's models in the session's server ----------------------------------------------------
def instances_tracked(model: Any) -> Any:
    """moto's list of ``model``'s instances (each model class has its own)."""
    return model.instances_tracked


def tracked(model: Any, keep: Any) -> list[Any]:
    """The instances of ``model`` that moto tracks and ``keep`` accepts, after a full
    collection."""
    gc.collect()
    return [instance for instance in instances_tracked(model) if keep(instance)]


@pytest.fixture(scope="module")
def clients(moto_server: MotoServer) -> StackClients:
    return StackClients(moto_server.endpoint)


@pytest.fixture
def bucket(clients: StackClients) -> Iterator[str]:
    s3 = clients.s3
    name = f"weak-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield name
    for listed in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=listed["Key"])
    s3.delete_bucket(Bucket=name)


def test_deleted_s3_objects_are_freed(clients: StackClients, bucket: str) -> None:
    from moto.s3.models import FakeKey

    s3 = clients.s3
    for index in range(OBJECTS):
        s3.put_object(Bucket=bucket, Key=f"object-{index}", Body=b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="object-0", Body=b"replaced")  # the first one replaced

    def ours(key: Any) -> bool:
        return bool(key.bucket_name == bucket)

    assert isinstance(instances_tracked(FakeKey), WeakInstances)
    # What the bucket holds is tracked (the replaced object is not).
    live = tracked(FakeKey, ours)
    assert len(live) == OBJECTS
    assert sorted(key.name for key in live) == sorted(f"object-{i}" for i in range(OBJECTS))
    assert next(key for key in live if key.name == "object-0").value == b"replaced"
    del live

    for start in range(0, OBJECTS, 100):
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": f"object-{i}"} for i in range(start, start + 100)]},
        )
    assert tracked(FakeKey, ours) == []
    s3.put_object(Bucket=bucket, Key="after", Body=b"still tracked")
    assert [key.name for key in tracked(FakeKey, ours)] == ["after"]


def test_sqs_messages_are_freed_once_deleted(clients: StackClients) -> None:
    from moto.sqs.models import Message

    sqs = clients.sqs
    prefix = f"weak-{uuid.uuid4().hex[:10]}-"
    url = sqs.create_queue(QueueName=prefix + "queue")["QueueUrl"]

    def ours(message: Any) -> bool:
        return isinstance(message.body, str) and message.body.startswith(prefix)

    try:
        for start in range(0, OBJECTS, 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "MessageBody": f"{prefix}{start + i}"} for i in range(10)],
            )
        assert isinstance(instances_tracked(Message), WeakInstances)
        assert len(tracked(Message, ours)) == OBJECTS
        received = 0
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            received += len(messages)
            result = sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                    for i, message in enumerate(messages)
                ],
            )
            assert len(result["Successful"]) == len(messages)
        assert received == OBJECTS
        # Neither the messages nor the copies each receive handed out stay.
        assert tracked(Message, ours) == []
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_the_dashboard_lists_the_live_objects(
    moto_server: MotoServer, clients: StackClients, bucket: str
) -> None:
    s3 = clients.s3
    s3.put_object(Bucket=bucket, Key="listed", Body=b"1")
    s3.put_object(Bucket=bucket, Key="deleted", Body=b"2")
    s3.delete_object(Bucket=bucket, Key="deleted")
    gc.collect()
    with urllib.request.urlopen(f"{moto_server.endpoint}/moto-api/data.json", timeout=10) as r:
        data = json.load(r)
    keys = [key for key in data["s3"]["FakeKey"] if key.get("bucket_name") == bucket]
    assert [key["name"] for key in keys] == ["listed"]
    buckets = [entry["name"] for entry in data["s3"]["FakeBucket"]]
    assert bucket in buckets

"""moto's DynamoDB answers with plain JSON (see prism_cli.local.moto_dynamodb, "plain JSON
responses"): every item operation gives back exactly what was written, whatever the
attribute types; errors, pagination and consumed capacity come back as before.

boto3 parses the responses by botocore's model (base64 for binary values, the CRC32 of the
body checked), so a value written wrongly on the wire fails here. Each read also checks
that its answer took the plain JSON path (a spy on the patch's encoder), so the tests are
about that path and not about moto's serialiser, which answers errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from prism_cli.aws_env import DUMMY_CREDENTIALS
from prism_cli.local import moto_dynamodb
from prism_cli.local.stack import MotoServer
from prism_cli.local.template import DEFAULT_REGION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = [pytest.mark.faults, pytest.mark.integration]

INDEX = "by-kind"
Item = dict[str, Any]


@pytest.fixture(scope="module")
def db(moto_server: MotoServer) -> DynamoDBClient:
    client: DynamoDBClient = boto3.client(
        "dynamodb",
        endpoint_url=moto_server.endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return client


@pytest.fixture
def table(db: DynamoDBClient) -> Iterator[str]:
    """A table of this test's own: hash key ``pk`` (S), range key ``sk`` (N), and an index
    on ``kind``."""
    name = f"wire-{uuid.uuid4().hex[:12]}"
    db.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "kind", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [
                    {"AttributeName": "kind", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    yield name
    db.delete_table(TableName=name)


class PlainSpy:
    """Counts the plain JSON encoder's calls (it calls itself for every nested value)."""

    def __init__(self, encode: Callable[[Any], Any]) -> None:
        self._encode = encode
        self._calls = 0

    def __call__(self, value: Any) -> Any:
        self._calls += 1
        return self._encode(value)

    def used(self) -> bool:
        """Whether a response was encoded since the last look."""
        used, self._calls = self._calls > 0, 0
        return used


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> PlainSpy:
    spy = PlainSpy(moto_dynamodb._wire)
    monkeypatch.setattr(moto_dynamodb, "_wire", spy)
    return spy


# --- items of every type --------------------------------------------------------------------
def key(pk: str, sk: int) -> Item:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def full_item(pk: str = "every-type", sk: int = 1, kind: str = "full") -> Item:
    """An item with every attribute type, empty values and awkward strings and numbers."""
    return {
        **key(pk, sk),
        "kind": {"S": kind},
        "text": {"S": "plain text"},
        "empty": {"S": ""},
        "unicode": {"S": 'héllo ✓ 日本語 🎉 "quoted" \\ back\nslash\ttab \u0001'},
        "integer": {"N": "42"},
        "negative": {"N": "-17"},
        "decimal": {"N": "3.14159265358979323846264338327950288"},
        "small": {"N": "0.000000000000000000000000000000001"},
        "large_int": {"N": "12345678901234567890123456789012345678"},
        "exponent": {"N": "1.5E+100"},
        "binary": {"B": bytes(range(256))},
        "empty_binary": {"B": b""},
        "strings": {"SS": ["a", "b", "ünï", "z z"]},
        "numbers": {"NS": ["1", "-2.5", "1000", "98765432109876543210987654321098765432"]},
        "binaries": {"BS": [b"\x00", b"\xff\xfe\xfd", b"plain"]},
        "map": {
            "M": {
                "nested": {
                    "M": {
                        "deeper": {
                            "L": [{"S": "x"}, {"B": b"\x01\x02"}, {"M": {"n": {"N": "-0.5"}}}]
                        }
                    }
                },
                "bin": {"B": b"\x00\x01\x02"},
                "set": {"SS": ["only"]},
                "bins": {"BS": [b"\x10", b"\x20"]},
                "null": {"NULL": True},
                "ünïcode key": {"BOOL": False},
                "empty map": {"M": {}},
            }
        },
        "list": {
            "L": [
                {"N": "1"},
                {"S": ""},
                {"NULL": True},
                {"BOOL": True},
                {"L": []},
                {"M": {}},
                {"BS": [b"q"]},
                {"NS": ["0"]},
                {"L": [{"B": b"\xff"}]},
            ]
        },
        "true": {"BOOL": True},
        "false": {"BOOL": False},
        "null": {"NULL": True},
        "empty_list": {"L": []},
        "empty_map": {"M": {}},
    }


def without_binary(item: Item) -> Item:
    """``item`` without its binary values (B and BS, at any depth)."""

    def keep(value: dict[str, Any]) -> bool:
        return not value.keys() & {"B", "BS"}

    def strip(value: dict[str, Any]) -> dict[str, Any]:
        ((kind, inner),) = value.items()
        if kind == "M":
            return {"M": {name: strip(v) for name, v in inner.items() if keep(v)}}
        if kind == "L":
            return {"L": [strip(v) for v in inner if keep(v)]}
        return value

    return {name: strip(value) for name, value in item.items() if keep(value)}


def canonical(value: dict[str, Any]) -> tuple[str, Any]:
    """An attribute value, its type kept, comparable: numbers as decimals, sets sorted,
    binary as bytes."""
    ((kind, inner),) = value.items()
    if kind == "N":
        return kind, Decimal(inner)
    if kind == "B":
        assert isinstance(inner, bytes), f"binary value not bytes: {inner!r}"
        return kind, inner
    if kind == "SS":
        return kind, sorted(inner)
    if kind == "NS":
        return kind, sorted(Decimal(number) for number in inner)
    if kind == "BS":
        assert all(isinstance(part, bytes) for part in inner), inner
        return kind, sorted(inner)
    if kind == "M":
        return kind, {name: canonical(member) for name, member in inner.items()}
    if kind == "L":
        return kind, [canonical(member) for member in inner]
    assert kind in ("S", "BOOL", "NULL"), kind
    return kind, inner


def same(item: Item | None) -> dict[str, tuple[str, Any]]:
    assert item is not None
    return {name: canonical(value) for name, value in item.items()}


def assert_items(actual: list[Item] | None, expected: list[Item]) -> None:
    assert actual is not None

    def order(item: dict[str, tuple[str, Any]]) -> tuple[str, Decimal]:
        return item["pk"][1], item["sk"][1]

    assert sorted(map(same, actual), key=order) == sorted(map(same, expected), key=order)


def test_the_item_spy_compares_types_and_values() -> None:
    # What the tests below rely on: a change of type or value shows.
    item = full_item()
    assert same(item) == same(full_item())
    assert same(item) != same({**item, "true": {"N": "1"}})
    assert same(item) != same({**item, "binary": {"B": bytes(range(255))}})
    assert same(item) != same({**item, "empty": {"NULL": True}})
    assert same(item) != same({**item, "strings": {"L": [{"S": s} for s in ("a", "b")]}})
    with pytest.raises(AssertionError):
        same({**item, "binary": {"B": "AAEC"}})


# --- reads --------------------------------------------------------------------------------
def test_every_type_reads_back_through_every_read(
    db: DynamoDBClient, table: str, plain: PlainSpy
) -> None:
    item = full_item()
    written = db.put_item(TableName=table, Item=item)
    assert "Attributes" not in written
    assert plain.used()

    got = db.get_item(TableName=table, Key=key("every-type", 1))
    assert same(got.get("Item")) == same(item)
    assert plain.used()
    got = db.get_item(TableName=table, Key=key("every-type", 1), ConsistentRead=True)
    assert same(got.get("Item")) == same(item)
    assert plain.used()

    queried = db.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "every-type"}},
    )
    assert_items(queried["Items"], [item])
    assert (queried["Count"], queried["ScannedCount"]) == (1, 1)
    assert plain.used()

    by_index = db.query(
        TableName=table,
        IndexName=INDEX,
        KeyConditionExpression="kind = :kind",
        ExpressionAttributeValues={":kind": {"S": "full"}},
    )
    assert_items(by_index["Items"], [item])
    assert plain.used()

    scanned = db.scan(TableName=table)
    assert_items(scanned["Items"], [item])
    assert scanned["Count"] == 1
    assert plain.used()
    filtered = db.scan(
        TableName=table,
        FilterExpression="#b = :b",
        ExpressionAttributeNames={"#b": "binary"},
        ExpressionAttributeValues={":b": {"B": bytes(range(256))}},
    )
    assert_items(filtered["Items"], [item])
    assert plain.used()

    batch = db.batch_get_item(RequestItems={table: {"Keys": [key("every-type", 1)]}})
    assert_items(batch["Responses"][table], [item])
    assert batch["UnprocessedKeys"] == {}
    assert plain.used()

    transact = db.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": table, "Key": key("every-type", 1)}},
            {"Get": {"TableName": table, "Key": key("absent", 1)}},
        ]
    )
    responses = transact["Responses"]
    assert len(responses) == 2
    assert same(responses[0].get("Item")) == same(item)
    assert "Item" not in responses[1]
    assert plain.used()


def test_projections_of_binary_and_nested_values(
    db: DynamoDBClient, table: str, plain: PlainSpy
) -> None:
    item = full_item()
    db.put_item(TableName=table, Item=item)
    projected = db.get_item(
        TableName=table,
        Key=key("every-type", 1),
        ProjectionExpression="#b, binaries, #m.bin, #m.bins, #m.nested, #u",
        ExpressionAttributeNames={"#b": "binary", "#m": "map", "#u": "unicode"},
    )
    members = item["map"]["M"]
    assert same(projected.get("Item")) == same(
        {
            "binary": item["binary"],
            "binaries": item["binaries"],
            "unicode": item["unicode"],
            "map": {
                "M": {
                    "bin": members["bin"],
                    "bins": members["bins"],
                    "nested": members["nested"],
                }
            },
        }
    )
    assert plain.used()
    queried = db.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "every-type"}},
        ProjectionExpression="sk, empty_binary, #l",
        ExpressionAttributeNames={"#l": "list"},
    )
    assert_items(
        [{"pk": {"S": "every-type"}, **found} for found in queried["Items"]],
        [
            {
                "pk": {"S": "every-type"},
                "sk": item["sk"],
                "empty_binary": item["empty_binary"],
                "list": item["list"],
            }
        ],
    )
    assert plain.used()


# --- writes that return items ---------------------------------------------------------------
def test_writes_return_the_items_they_replace_or_make(
    db: DynamoDBClient, table: str, plain: PlainSpy
) -> None:
    first = full_item(kind="first")
    db.put_item(TableName=table, Item=first)
    second = full_item(kind="second")
    replaced = db.put_item(TableName=table, Item=second, ReturnValues="ALL_OLD")
    assert same(replaced.get("Attributes")) == same(first)
    assert plain.used()

    added = {"M": {"blob": {"B": b"\x00new"}, "tags": {"SS": ["x", "y"]}, "n": {"N": "0.1"}}}
    updated = db.update_item(
        TableName=table,
        Key=key("every-type", 1),
        UpdateExpression="SET added = :added, #t = :text REMOVE #n",
        ExpressionAttributeNames={"#t": "text", "#n": "null"},
        ExpressionAttributeValues={":added": added, ":text": {"S": "changed ✓"}},
        ReturnValues="ALL_NEW",
    )
    after = {**second, "added": added, "text": {"S": "changed ✓"}}
    del after["null"]
    assert same(updated.get("Attributes")) == same(after)
    assert plain.used()
    assert same(db.get_item(TableName=table, Key=key("every-type", 1)).get("Item")) == same(after)

    old_values = db.update_item(
        TableName=table,
        Key=key("every-type", 1),
        UpdateExpression="SET #b = :b",
        ExpressionAttributeNames={"#b": "binary"},
        ExpressionAttributeValues={":b": {"B": b"\xffreplaced"}},
        ReturnValues="UPDATED_OLD",
    )
    assert same(old_values.get("Attributes")) == same({"binary": second["binary"]})
    new_values = db.update_item(
        TableName=table,
        Key=key("every-type", 1),
        UpdateExpression="SET #b = :b",
        ExpressionAttributeNames={"#b": "binary"},
        ExpressionAttributeValues={":b": {"B": b"\x00again"}},
        ReturnValues="UPDATED_NEW",
    )
    assert same(new_values.get("Attributes")) == same({"binary": {"B": b"\x00again"}})
    assert plain.used()

    deleted = db.delete_item(TableName=table, Key=key("every-type", 1), ReturnValues="ALL_OLD")
    assert same(deleted.get("Attributes")) == same({**after, "binary": {"B": b"\x00again"}})
    assert plain.used()
    assert "Item" not in db.get_item(TableName=table, Key=key("every-type", 1))
    missing = db.delete_item(TableName=table, Key=key("every-type", 1), ReturnValues="ALL_OLD")
    assert "Attributes" not in missing


def test_batch_and_transaction_writes_store_every_type(
    db: DynamoDBClient, table: str, plain: PlainSpy
) -> None:
    items = [full_item("batch", sk, kind=f"batch-{sk}") for sk in range(30)]
    for start in range(0, len(items), 25):
        written = db.batch_write_item(
            RequestItems={
                table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            }
        )
        assert written["UnprocessedItems"] == {}
        assert plain.used()
    keys = [key("batch", sk) for sk in range(30)]
    read: list[Item] = []
    for start in range(0, len(keys), 25):
        batch = db.batch_get_item(RequestItems={table: {"Keys": keys[start : start + 25]}})
        assert batch["UnprocessedKeys"] == {}
        read.extend(batch["Responses"][table])
    assert_items(read, items)

    removed = db.batch_write_item(
        RequestItems={table: [{"DeleteRequest": {"Key": key("batch", sk)}} for sk in range(10)]}
    )
    assert removed["UnprocessedItems"] == {}
    assert plain.used()
    assert_items(db.scan(TableName=table)["Items"], items[10:])

    # TransactWriteItems with every type but binary (see the next test).
    made = without_binary(full_item("transaction", 7, kind="transaction"))
    committed = db.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": made}},
            {
                "Update": {
                    "TableName": table,
                    "Key": key("batch", 10),
                    "UpdateExpression": "SET extra = :extra",
                    "ExpressionAttributeValues": {":extra": {"NS": ["1", "2.5"]}},
                }
            },
            {"Delete": {"TableName": table, "Key": key("batch", 11)}},
        ]
    )
    assert committed.get("ConsumedCapacity", []) == []
    assert plain.used()
    got = db.batch_get_item(
        RequestItems={table: {"Keys": [key("transaction", 7), key("batch", 10), key("batch", 11)]}}
    )["Responses"][table]
    assert_items(got, [made, {**items[10], "extra": {"NS": ["1", "2.5"]}}])


def test_a_transaction_writing_binary_values_commits(moto_server: MotoServer, table: str) -> None:
    # No retries: botocore would retry the 500 for some 25 s.
    db: DynamoDBClient = boto3.client(
        "dynamodb",
        endpoint_url=moto_server.endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}),
    )
    item = {**key("binary", 1), "blob": {"B": b"\x00\x01"}}
    # Its client request token is fingerprinted with the items, binary values included.
    db.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": item}}])
    assert same(db.get_item(TableName=table, Key=key("binary", 1)).get("Item")) == same(item)


# --- errors ---------------------------------------------------------------------------------
def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_failed_conditions_are_client_errors(
    db: DynamoDBClient, table: str, plain: PlainSpy
) -> None:
    item = full_item()
    db.put_item(TableName=table, Item=item)
    plain.used()
    with pytest.raises(ClientError) as error:
        db.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    assert error_code(error) == "ConditionalCheckFailedException"
    with pytest.raises(ClientError) as error:
        db.put_item(
            TableName=table,
            Item=full_item(kind="other"),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert error_code(error) == "ConditionalCheckFailedException"
    assert same(error.value.response.get("Item")) == same(item)  # type: ignore[arg-type]
    with pytest.raises(ClientError) as error:
        db.update_item(
            TableName=table,
            Key=key("every-type", 1),
            UpdateExpression="SET #t = :t",
            ConditionExpression="#t = :other",
            ExpressionAttributeNames={"#t": "text"},
            ExpressionAttributeValues={":t": {"S": "new"}, ":other": {"S": "not it"}},
        )
    assert error_code(error) == "ConditionalCheckFailedException"
    with pytest.raises(ClientError) as error:
        db.delete_item(
            TableName=table, Key=key("every-type", 1), ConditionExpression="attribute_exists(nope)"
        )
    assert error_code(error) == "ConditionalCheckFailedException"
    # Nothing changed, and errors are moto's serialiser's answers.
    assert not plain.used()
    assert same(db.get_item(TableName=table, Key=key("every-type", 1)).get("Item")) == same(item)


def test_a_cancelled_transaction_gives_its_reasons(db: DynamoDBClient, table: str) -> None:
    item = full_item()
    db.put_item(TableName=table, Item=item)
    with pytest.raises(ClientError) as error:
        db.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": without_binary(full_item("new", 2))}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key("every-type", 1),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert error_code(error) == "TransactionCanceledException"
    response: Any = error.value.response
    reasons: list[dict[str, Any]] = list(response["CancellationReasons"])
    assert [reason["Code"] for reason in reasons] == ["None", "ConditionalCheckFailed"]
    assert "Item" not in db.get_item(TableName=table, Key=key("new", 2))


def test_missing_tables_and_bad_keys_are_client_errors(db: DynamoDBClient, table: str) -> None:
    absent = f"absent-{uuid.uuid4().hex[:8]}"
    calls: list[Callable[[], object]] = [
        lambda: db.get_item(TableName=absent, Key=key("x", 1)),
        lambda: db.put_item(TableName=absent, Item=key("x", 1)),
        lambda: db.query(
            TableName=absent,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "x"}},
        ),
        lambda: db.scan(TableName=absent),
        lambda: db.batch_get_item(RequestItems={absent: {"Keys": [key("x", 1)]}}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as error:
            call()
        assert error_code(error) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        db.get_item(TableName=table, Key={"pk": {"S": "no range key"}})
    assert error_code(error) == "ValidationException"
    with pytest.raises(ClientError) as error:
        db.put_item(TableName=table, Item={**key("x", 1), "sk": {"S": "not a number"}})
    assert error_code(error) == "ValidationException"


# --- pagination and capacity ----------------------------------------------------------------
def test_query_and_scan_pages_follow_last_evaluated_key(
    db: DynamoDBClient, table: str, plain: PlainSpy
) -> None:
    items = [full_item("paged", sk, kind="paged") for sk in range(7)]
    items.append(full_item("elsewhere", 0, kind="paged"))
    for item in items:
        db.put_item(TableName=table, Item=item)

    def query_pages(forward: bool) -> tuple[list[int], list[Any]]:
        found: list[int] = []
        starts: list[Any] = []
        arguments: dict[str, Any] = {}
        while True:
            page = db.query(
                TableName=table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "paged"}},
                Limit=3,
                ScanIndexForward=forward,
                **arguments,
            )
            assert plain.used()
            assert page["Count"] == len(page["Items"]) <= 3
            found.extend(int(item["sk"]["N"]) for item in page["Items"])
            assert_items(page["Items"], [items[int(item["sk"]["N"])] for item in page["Items"]])
            if "LastEvaluatedKey" not in page:
                return found, starts
            starts.append(page["LastEvaluatedKey"])
            arguments = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    forward, starts = query_pages(True)
    assert forward == list(range(7))
    assert starts[:2] == [key("paged", 2), key("paged", 5)]
    backward, starts = query_pages(False)
    assert backward == list(reversed(range(7)))
    assert starts[:2] == [key("paged", 4), key("paged", 1)]

    paginator = db.get_paginator("query")
    pages = list(
        paginator.paginate(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "paged"}},
            PaginationConfig={"PageSize": 2},
        )
    )
    assert [int(item["sk"]["N"]) for page in pages for item in page["Items"]] == list(range(7))

    scanned: list[Item] = []
    start: dict[str, Any] = {}
    while True:
        page = db.scan(TableName=table, Limit=3, **start)
        assert plain.used()
        scanned.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert_items(scanned, items)
    counted = db.scan(TableName=table, Select="COUNT")
    assert (counted["Count"], "Items" in counted) == (8, False)


def test_binary_keys_page_and_read_back(db: DynamoDBClient, plain: PlainSpy) -> None:
    name = f"wire-binary-{uuid.uuid4().hex[:8]}"
    db.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "B"},
            {"AttributeName": "sk", "AttributeType": "B"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    try:
        partition = {"B": b"\x00\xffpartition"}
        sort_keys = [bytes([value, 0xFE]) for value in (1, 2, 3, 200, 255)]
        for sort_key in sort_keys:
            db.put_item(
                TableName=name,
                Item={"pk": partition, "sk": {"B": sort_key}, "tags": {"BS": [sort_key, b"x"]}},
            )
        found: list[bytes] = []
        start: dict[str, Any] = {}
        while True:
            page = db.query(
                TableName=name,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": partition},
                Limit=2,
                **start,
            )
            assert plain.used()
            for item in page["Items"]:
                assert same(item) == same(
                    {"pk": partition, "sk": item["sk"], "tags": {"BS": [item["sk"]["B"], b"x"]}}
                )
                found.append(item["sk"]["B"])
            if "LastEvaluatedKey" not in page:
                break
            last = page["LastEvaluatedKey"]
            assert same(last) == same({"pk": partition, "sk": {"B": found[-1]}})
            start = {"ExclusiveStartKey": last}
        assert found == sort_keys  # in byte order
        got = db.get_item(TableName=name, Key={"pk": partition, "sk": {"B": sort_keys[3]}})
        assert same(got.get("Item")) == same(
            {"pk": partition, "sk": {"B": sort_keys[3]}, "tags": {"BS": [sort_keys[3], b"x"]}}
        )
        added = db.update_item(
            TableName=name,
            Key={"pk": partition, "sk": {"B": sort_keys[0]}},
            UpdateExpression="ADD tags :more",
            ExpressionAttributeValues={":more": {"BS": [b"\x00added"]}},
            ReturnValues="UPDATED_NEW",
        )
        assert same(added.get("Attributes")) == same(
            {"tags": {"BS": [sort_keys[0], b"x", b"\x00added"]}}
        )
        assert plain.used()
    finally:
        db.delete_table(TableName=name)


def test_consumed_capacity_is_reported(db: DynamoDBClient, table: str, plain: PlainSpy) -> None:
    item = full_item()

    def total(consumed: Any) -> float:
        assert consumed["TableName"] == table
        units = float(consumed["CapacityUnits"])
        assert units > 0
        return units

    put = db.put_item(TableName=table, Item=item, ReturnConsumedCapacity="TOTAL")
    total(put["ConsumedCapacity"])
    got = db.get_item(TableName=table, Key=key("every-type", 1), ReturnConsumedCapacity="TOTAL")
    total(got["ConsumedCapacity"])
    assert same(got.get("Item")) == same(item)
    assert plain.used()
    queried = db.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "every-type"}},
        ReturnConsumedCapacity="TOTAL",
    )
    total(queried["ConsumedCapacity"])
    total(db.scan(TableName=table, ReturnConsumedCapacity="TOTAL")["ConsumedCapacity"])
    updated = db.update_item(
        TableName=table,
        Key=key("every-type", 1),
        UpdateExpression="SET x = :x",
        ExpressionAttributeValues={":x": {"N": "1"}},
        ReturnConsumedCapacity="TOTAL",
    )
    total(updated["ConsumedCapacity"])
    batch = db.batch_get_item(
        RequestItems={table: {"Keys": [key("every-type", 1)]}}, ReturnConsumedCapacity="TOTAL"
    )
    (consumed,) = batch["ConsumedCapacity"]
    total(consumed)
    written = db.batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": full_item("more", 1)}}]},
        ReturnConsumedCapacity="TOTAL",
    )
    (consumed,) = written["ConsumedCapacity"]
    total(consumed)
    transact = db.transact_get_items(
        TransactItems=[{"Get": {"TableName": table, "Key": key("every-type", 1)}}],
        ReturnConsumedCapacity="TOTAL",
    )
    (consumed,) = transact["ConsumedCapacity"]
    total(consumed)
    deleted = db.delete_item(
        TableName=table, Key=key("every-type", 1), ReturnConsumedCapacity="TOTAL"
    )
    total(deleted["ConsumedCapacity"])
    assert plain.used()
    # Not asked for: not given.
    assert "ConsumedCapacity" not in db.get_item(TableName=table, Key=key("more", 1))

"""The local stack's moto server (see prism_cli.local.moto_server): HTTP/1.1 connections
are kept open between requests, a request body the application leaves unread is drained
before the next request is read, a chunked body still closes the connection, and the
backend found for a host is remembered without mixing services up.

The session's moto server is a :class:`prism_cli.local.stack.MotoServer`. Requests are made
with ``http.client`` on one connection whose socket is checked after every response (the
client would silently open a new one if the server had closed it). moto checks no
signatures, so a SigV4 ``Authorization`` header with only a credential scope routes a
request to its service.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from prism_cli.local import moto_server as moto_server_module
from prism_cli.local.stack import MotoServer, StackClients
from prism_cli.local.template import DEFAULT_REGION

pytestmark = pytest.mark.integration

OBJECT_BODY = b"0123456789"


def authorization(service: str) -> str:
    """A SigV4 header naming ``service`` (moto routes by its credential scope)."""
    return (
        f"AWS4-HMAC-SHA256 Credential=testing/20240101/{DEFAULT_REGION}/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )


def host_and_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


@dataclass(frozen=True)
class Resources:
    bucket: str
    key: str
    table: str
    queue: str
    queue_url: str


@pytest.fixture(scope="module")
def resources(moto_server: MotoServer) -> Iterator[Resources]:
    """A bucket with one object, a table and a queue, with names of this test's own."""
    name = f"keepalive-{uuid.uuid4().hex[:10]}"
    clients = StackClients(moto_server.endpoint)
    s3, dynamodb, sqs = clients.s3, clients.dynamodb, clients.sqs
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="object.bin", Body=OBJECT_BODY)
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    made = Resources(bucket=name, key="object.bin", table=name, queue=name, queue_url=url)
    yield made
    with contextlib.suppress(Exception):  # a test may have reset moto
        for listed in s3.list_objects_v2(Bucket=made.bucket).get("Contents", []):
            s3.delete_object(Bucket=made.bucket, Key=listed["Key"])
        s3.delete_bucket(Bucket=made.bucket)
    with contextlib.suppress(Exception):
        dynamodb.delete_table(TableName=made.table)
    with contextlib.suppress(Exception):
        sqs.delete_queue(QueueUrl=url)


class KeptConnection:
    """One ``http.client`` connection; every exchange checks that the server kept it open."""

    def __init__(self, endpoint: str) -> None:
        host, port = host_and_port(endpoint)
        self.connection = http.client.HTTPConnection(host, port, timeout=5)
        self._socket: socket.socket | None = None
        self._local_address: Any = None

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        data = response.read()
        assert response.getheader("Connection") is None, f"{method} {path}: closed"
        assert not response.will_close, f"{method} {path}: the connection is to be closed"
        sock = self.connection.sock
        assert sock is not None and sock.fileno() != -1
        if self._socket is None:
            self._socket, self._local_address = sock, sock.getsockname()
        # The same socket, still bound to the same local port: no reconnection.
        assert sock is self._socket
        assert sock.getsockname() == self._local_address
        return response.status, data

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def kept(moto_server: MotoServer) -> Iterator[KeptConnection]:
    connection = KeptConnection(moto_server.endpoint)
    yield connection
    connection.close()


def json_request(target: str, service: str, body: dict[str, Any]) -> dict[str, Any]:
    """``http.client`` request arguments for a JSON-protocol operation."""
    return {
        "method": "POST",
        "path": "/",
        "body": json.dumps(body).encode(),
        "headers": {
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": authorization(service),
        },
    }


def s3_headers() -> dict[str, str]:
    return {"Authorization": authorization("s3"), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}


def assert_answers_from_each_service(kept: KeptConnection, made: Resources) -> None:
    """One request to each of S3 (HEAD and GET), DynamoDB, SQS and moto's API, each
    answered by its own backend."""
    status, data = kept.exchange("HEAD", f"/{made.bucket}/{made.key}", headers=s3_headers())
    assert (status, data) == (200, b"")
    status, data = kept.exchange("GET", f"/{made.bucket}/{made.key}", headers=s3_headers())
    assert (status, data) == (200, OBJECT_BODY)
    status, data = kept.exchange(
        **json_request("DynamoDB_20120810.DescribeTable", "dynamodb", {"TableName": made.table})
    )
    assert status == 200
    assert json.loads(data)["Table"]["TableName"] == made.table
    status, data = kept.exchange(
        **json_request("AmazonSQS.GetQueueUrl", "sqs", {"QueueName": made.queue})
    )
    assert status == 200
    assert json.loads(data)["QueueUrl"].endswith(f"/{made.queue}")
    status, data = kept.exchange("GET", "/moto-api/reset-auth")  # moto's API, no auth
    assert status == 400
    assert json.loads(data) == {"Error": "Need to POST to reset Moto Auth"}


def test_requests_to_several_services_share_one_kept_open_connection(
    kept: KeptConnection, resources: Resources
) -> None:
    for _ in range(4):
        assert_answers_from_each_service(kept, resources)
    # An unsigned GET / is S3's ListBuckets.
    status, data = kept.exchange("GET", "/")
    assert status == 200
    assert f"<Name>{resources.bucket}</Name>".encode() in data


def read_response(stream: Any) -> tuple[int, dict[str, str], bytes]:
    """One response of known length from a buffered socket file (status, headers, body)."""
    status_line = stream.readline().decode("latin-1")
    assert status_line.startswith("HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := stream.readline().decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def test_pipelined_requests_are_each_answered_in_order(
    moto_server: MotoServer, resources: Resources
) -> None:
    """Requests sent together, before any answer: none is swallowed by a drain that reads
    past the end of the request before it."""
    host, port = host_and_port(moto_server.endpoint)
    table = json.dumps({"TableName": resources.table})
    requests = [
        f"GET /{resources.bucket}/{resources.key} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: {authorization('s3')}\r\n\r\n",
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "X-Amz-Target: DynamoDB_20120810.DescribeTable\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        f"Authorization: {authorization('dynamodb')}\r\n"
        f"Content-Length: {len(table)}\r\n\r\n{table}",
        # A body moto's API does not read, then one more request behind it.
        f"GET /moto-api/reset-auth HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Length: 5000\r\n\r\n" + "x" * 5000,
        f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n",
    ]
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall("".join(requests).encode())
        stream = sock.makefile("rb")
        answers = [read_response(stream) for _ in requests]
        stream.close()
    assert [status for status, _, _ in answers] == [200, 200, 400, 200]
    assert all("connection" not in headers for _, headers, _ in answers)
    assert answers[0][2] == OBJECT_BODY
    assert json.loads(answers[1][2])["Table"]["TableName"] == resources.table
    assert json.loads(answers[2][2]) == {"Error": "Need to POST to reset Moto Auth"}
    assert f"<Name>{resources.bucket}</Name>".encode() in answers[3][2]


def test_a_failed_request_keeps_the_connection_open(
    kept: KeptConnection, resources: Resources
) -> None:
    status, data = kept.exchange("GET", f"/{resources.bucket}/missing", headers=s3_headers())
    assert status == 404
    assert b"<Code>NoSuchKey</Code>" in data
    status, data = kept.exchange(
        **json_request("DynamoDB_20120810.DescribeTable", "dynamodb", {"TableName": "absent"})
    )
    assert status == 400
    assert "ResourceNotFoundException" in json.loads(data)["__type"]
    assert_answers_from_each_service(kept, resources)


@pytest.mark.parametrize("size", [1, 100_000, 3_000_000], ids=["1B", "100kB", "3MB"])
def test_an_unread_request_body_is_drained_before_the_next_request(
    kept: KeptConnection,
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    left_unread: list[int] = []
    drain = moto_server_module._Body.drain

    def recording_drain(body: Any) -> bool:
        left_unread.append(body._left)
        return drain(body)

    monkeypatch.setattr(moto_server_module._Body, "drain", recording_drain)
    # moto's API answers a GET without reading its body.
    status, data = kept.exchange(
        "GET",
        "/moto-api/reset-auth",
        body=b"x" * size,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 400
    assert json.loads(data) == {"Error": "Need to POST to reset Moto Auth"}
    assert_answers_from_each_service(kept, resources)
    # The server drained the whole body (after sending its response, so this is checked
    # once the next answers came); the application read every other request's body. (The
    # spy may also see the drain of an earlier test's last request: nothing left either.)
    assert [left for left in left_unread if left] == [size]


def test_a_read_request_body_is_used_and_the_connection_kept(
    kept: KeptConnection, resources: Resources, moto_server: MotoServer
) -> None:
    payload = bytes(range(256)) * 1000
    status, _ = kept.exchange(
        "PUT", f"/{resources.bucket}/uploaded", body=payload, headers=s3_headers()
    )
    assert status == 200
    status, data = kept.exchange("GET", f"/{resources.bucket}/uploaded", headers=s3_headers())
    assert (status, data) == (200, payload)
    s3 = StackClients(moto_server.endpoint).s3
    assert s3.get_object(Bucket=resources.bucket, Key="uploaded")["Body"].read() == payload
    assert_answers_from_each_service(kept, resources)


def raw_exchange(endpoint: str, request: bytes) -> tuple[http.client.HTTPResponse, bytes, bytes]:
    """Send ``request`` on a new socket: the response, its body, and what the socket reads
    after it (b"" when the server closed the connection)."""
    sock = socket.create_connection(host_and_port(endpoint), timeout=3)
    try:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        try:
            after = sock.recv(1)
        except TimeoutError:
            after = b"<still open>"
        return response, body, after
    finally:
        sock.close()


def test_a_chunked_request_body_is_read_and_then_the_connection_closed(
    moto_server: MotoServer, resources: Resources
) -> None:
    host, port = host_and_port(moto_server.endpoint)
    started = time.monotonic()
    response, body, after = raw_exchange(
        moto_server.endpoint,
        (
            f"PUT /{resources.bucket}/chunked HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            f"Authorization: {authorization('s3')}\r\n"
            "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n"
            "5\r\nhello\r\n"
            "6\r\n world\r\n"
            "0\r\n\r\n"
        ).encode(),
    )
    assert response.status == 200, body
    assert response.getheader("Connection") == "close"
    assert after == b""  # closed by the server, not left waiting
    assert time.monotonic() - started < 2
    s3 = StackClients(moto_server.endpoint).s3
    assert s3.get_object(Bucket=resources.bucket, Key="chunked")["Body"].read() == b"hello world"


@pytest.mark.parametrize(
    ("version", "connection_header"),
    [("HTTP/1.1", "Connection: close\r\n"), ("HTTP/1.0", "")],
    ids=["asked-to-close", "http-1.0"],
)
def test_a_connection_the_client_does_not_keep_is_closed(
    moto_server: MotoServer, version: str, connection_header: str
) -> None:
    host, port = host_and_port(moto_server.endpoint)
    response, body, after = raw_exchange(
        moto_server.endpoint,
        (
            f"GET /moto-api/reset-auth {version}\r\nHost: {host}:{port}\r\n{connection_header}\r\n"
        ).encode(),
    )
    assert response.status == 400
    assert json.loads(body) == {"Error": "Need to POST to reset Moto Auth"}
    assert after == b""


def test_sdk_clients_of_several_services_are_each_routed_to_their_backend(
    moto_server: MotoServer, resources: Resources
) -> None:
    clients = StackClients(moto_server.endpoint)
    s3, dynamodb, sqs = clients.s3, clients.dynamodb, clients.sqs
    for round_ in range(5):
        head = s3.head_object(Bucket=resources.bucket, Key=resources.key)
        assert head["ContentLength"] == len(OBJECT_BODY)
        assert resources.table in dynamodb.list_tables()["TableNames"]
        assert dynamodb.describe_table(TableName=resources.table)["Table"]["TableName"] == (
            resources.table
        )
        assert sqs.get_queue_url(QueueName=resources.queue)["QueueUrl"] == resources.queue_url
        key = {"pk": {"S": f"round-{round_}"}}
        dynamodb.put_item(TableName=resources.table, Item=key)
        assert dynamodb.get_item(TableName=resources.table, Key=key)["Item"] == key
        sqs.send_message(QueueUrl=resources.queue_url, MessageBody=f"round-{round_}")
        s3.put_object(Bucket=resources.bucket, Key=f"round-{round_}", Body=b"r")
        listed = s3.list_objects_v2(Bucket=resources.bucket, Prefix="round-")["Contents"]
        assert {entry["Key"] for entry in listed} == {f"round-{i}" for i in range(round_ + 1)}
    assert dynamodb.scan(TableName=resources.table)["Count"] == 5
    counts = sqs.get_queue_attributes(
        QueueUrl=resources.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "5"}


def test_the_backend_remembered_for_a_host_is_that_hosts_own(moto_server: MotoServer) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # The patched lookup (MotoServer applies it); the original is what it remembers.
    assert hasattr(DomainDispatcherApplication.get_backend_for_host, "__wrapped__")
    expected: dict[str | None, str | None] = {
        f"s3.{DEFAULT_REGION}.amazonaws.com": "s3",
        "dynamodb": "dynamodb",
        f"sqs.{DEFAULT_REGION}.amazonaws.com": "sqs",
        f"ssm.{DEFAULT_REGION}.amazonaws.com": "ssm",
        "moto_api": "moto_api",
        "unknown.example": None,
        None: None,
    }
    dispatchers = [DomainDispatcherApplication(create_backend_app) for _ in range(2)]
    for _ in range(3):
        for dispatcher in dispatchers:
            for host, backend in expected.items():
                assert dispatcher.get_backend_for_host(host) == backend, host
            for host, backend in reversed(expected.items()):
                assert dispatcher.get_backend_for_host(host) == backend, host

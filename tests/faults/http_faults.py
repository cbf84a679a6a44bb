"""An HTTP proxy in front of the moto server that injects the faults a real AWS endpoint has.

The functions' ``AWS_ENDPOINT_URL`` points at the proxy; the test's own clients keep talking
to moto directly. Per request, a seeded policy picks one of:

- ``reset``: the connection is reset (RST) before the request is forwarded;
- ``close``: the connection is closed without an answer, the request not forwarded;
- ``lost_response``: the request is forwarded (it takes effect), then the connection is
  dropped without an answer;
- ``server_error``: HTTP 500 or 503 with the service's own error body, not forwarded;
- ``throttle``: the service's throttling error, not forwarded (S3: 503 ``SlowDown``;
  DynamoDB: 400 ``ProvisionedThroughputExceededException`` or ``ThrottlingException``;
  SQS, which botocore 1.40 speaks JSON to: 400 ``ThrottlingException`` with its
  ``x-amzn-query-error`` header; SSM: 400 ``ThrottlingException``).

Decisions are deterministic: the n-th request of each (service, action) gets the decision
``Random(f"{seed}|{service}|{action}|{n}")`` draws, so a run with the same seed and the same
order of calls per action sees the same faults. moto's own API (``/moto-api``) is never
faulted.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import struct
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit


class HttpFault(StrEnum):
    RESET = "reset"
    CLOSE = "close"
    LOST_RESPONSE = "lost_response"
    SERVER_ERROR = "server_error"
    THROTTLE = "throttle"


FAULTED_SERVICES = frozenset({"s3", "sqs", "dynamodb", "ssm"})


@dataclass(frozen=True)
class HttpFaultPolicy:
    rate: float
    seed: int
    kinds: tuple[HttpFault, ...] = tuple(HttpFault)
    services: frozenset[str] = FAULTED_SERVICES

    def decide(self, service: str, action: str, index: int) -> HttpFault | None:
        if service not in self.services:
            return None
        rng = random.Random(f"{self.seed}|{service}|{action}|{index}")
        if rng.random() >= self.rate:
            return None
        return rng.choice(self.kinds)


@dataclass(frozen=True)
class InjectedHttpFault:
    service: str
    action: str
    index: int
    kind: HttpFault


@dataclass
class ErrorResponse:
    status: int
    headers: dict[str, str]
    body: bytes


# --- error bodies ------------------------------------------------------------------------------
def _s3_error(status: int, code: str, message: str) -> ErrorResponse:
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
    ).encode()
    return ErrorResponse(
        status,
        {"Content-Type": "application/xml", "x-amz-request-id": request_id},
        body,
    )


def _json_error(
    status: int, error_type: str, message: str, content_type: str, query_error: str | None = None
) -> ErrorResponse:
    headers = {"Content-Type": content_type, "x-amzn-RequestId": str(uuid.uuid4())}
    if query_error:
        headers["x-amzn-query-error"] = query_error
    return ErrorResponse(
        status, headers, json.dumps({"__type": error_type, "message": message}).encode()
    )


_DYNAMODB = "com.amazonaws.dynamodb.v20120810#"
_JSON_10 = "application/x-amz-json-1.0"
_JSON_11 = "application/x-amz-json-1.1"


def error_response(service: str, kind: HttpFault, rng: random.Random) -> ErrorResponse:
    """The error the real service answers with for a throttled or failed request."""
    throttle = kind is HttpFault.THROTTLE
    if service == "s3":
        if throttle:
            return _s3_error(503, "SlowDown", "Please reduce your request rate.")
        if rng.random() < 0.5:
            return _s3_error(
                500, "InternalError", "We encountered an internal error. Please try again."
            )
        return _s3_error(503, "ServiceUnavailable", "Service is unable to handle request.")
    if service == "dynamodb":
        if throttle and rng.random() < 0.5:
            return _json_error(
                400,
                _DYNAMODB + "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
                _JSON_10,
            )
        if throttle:
            return _json_error(
                400,
                "com.amazon.coral.availability#ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
                _JSON_10,
            )
        if rng.random() < 0.5:
            return _json_error(
                500, _DYNAMODB + "InternalServerError", "Internal server error", _JSON_10
            )
        return _json_error(503, _DYNAMODB + "ServiceUnavailable", "Service unavailable", _JSON_10)
    if service == "sqs":
        if throttle:
            return _json_error(
                400,
                "com.amazonaws.sqs#ThrottlingException",
                "Rate exceeded",
                _JSON_10,
                "ThrottlingException;Sender",
            )
        return _json_error(
            500,
            "com.amazonaws.sqs#InternalError",
            "We encountered an internal error. Please try again.",
            _JSON_10,
            "InternalError;Receiver",
        )
    # ssm and anything else speaking JSON 1.1
    if throttle:
        return _json_error(400, "ThrottlingException", "Rate exceeded", _JSON_11)
    return _json_error(500, "InternalServerError", "Internal server error", _JSON_11)


# --- reading requests --------------------------------------------------------------------------
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)


def request_service(authorization: str | None) -> str:
    """The service a SigV4-signed request is for (its credential scope)."""
    match = _CREDENTIAL_SCOPE.search(authorization or "")
    return match.group(1) if match else "unknown"


def request_action(service: str, method: str, path: str, target: str | None) -> str:
    if target:  # JSON protocols: X-Amz-Target "DynamoDB_20120810.TransactWriteItems"
        return target.rsplit(".", 1)[-1]
    if service == "s3":
        parts = urlsplit(path).path.lstrip("/").split("/", 1)
        return f"{method} {'object' if len(parts) == 2 and parts[1] else 'bucket'}"
    return method


# --- the proxy ---------------------------------------------------------------------------------
class FaultProxy:
    """``with FaultProxy(moto_endpoint, policy) as proxy:`` serves on ``proxy.endpoint``."""

    def __init__(self, upstream: str, policy: HttpFaultPolicy | None = None) -> None:
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream needs a host and port: {upstream}")
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port
        self.policy = policy
        self.injected: list[InjectedHttpFault] = []
        self.requests: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fault-proxy", daemon=True
        )
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def decide(self, service: str, action: str) -> tuple[HttpFault, random.Random] | None:
        """The fault for the next request of ``action``, and a generator for its details."""
        with self._lock:
            index = self.requests[(service, action)]
            self.requests[(service, action)] += 1
            if self.policy is None:
                return None
            fault = self.policy.decide(service, action, index)
            if fault is None:
                return None
            self.injected.append(InjectedHttpFault(service, action, index, fault))
            details = random.Random(f"{self.policy.seed}|{service}|{action}|{index}|details")
        return fault, details

    def fault_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(fault.kind.value for fault in self.injected)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    proxy: FaultProxy


@dataclass
class _Forwarded:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection's thread ends after this
    wbufsize = 64 * 1024  # one write per answer (flushed after each request)
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle_expect_100(self) -> bool:
        # The interim answer must leave now: the client waits for it before the body.
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self._read_body()
        service = request_service(self.headers.get("Authorization"))
        decision = None
        if not self.path.startswith("/moto-api"):
            target = self.headers.get("X-Amz-Target")
            action = request_action(service, self.command, self.path, target)
            decision = self.server.proxy.decide(service, action)
        fault = decision[0] if decision else None
        if fault in (HttpFault.RESET, HttpFault.CLOSE):
            self._drop(reset=fault is HttpFault.RESET)
            return
        if decision and fault in (HttpFault.SERVER_ERROR, HttpFault.THROTTLE):
            self._answer_error(error_response(service, decision[0], decision[1]))
            return
        forwarded = self._forward(body)
        if fault is HttpFault.LOST_RESPONSE:
            self._drop(reset=False)
            return
        self._answer(forwarded)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> _Forwarded:
        proxy = self.server.proxy
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP
        }
        headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=120
        )
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return _Forwarded(response.status, response.getheaders(), data)
        finally:
            connection.close()

    def _answer(self, forwarded: _Forwarded) -> None:
        self.send_response_only(forwarded.status)
        has_length = False
        for name, value in forwarded.headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP:
                continue
            if lowered == "content-length":
                if self.command != "HEAD":
                    continue
                has_length = True
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(forwarded.body)))
        elif not has_length:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(forwarded.body)

    def _answer_error(self, error: ErrorResponse) -> None:
        self.send_response_only(error.status)
        for name, value in error.headers.items():
            self.send_header(name, value)
        body = b"" if self.command == "HEAD" else error.body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self, *, reset: bool) -> None:
        """End the connection without an answer (RST with ``reset``, else FIN)."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

"""The fault tools themselves: the proxy forwards faithfully and its faults look to botocore
like the real services' (so the functions' retry policy sees what it would in AWS), the
adapter faults happen before or after the real call, and decisions are reproducible."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from botocore.retries.standard import ThrottledRetryableChecker

from prism.aws.clients import open_clients
from prism_cli.aws_env import DUMMY_CREDENTIALS
from prism_cli.local.stack import MotoServer, reset_moto

from .adapter_faults import AdapterFaults, Timing, patched_session
from .harness import handlers_endpoint
from .http_faults import FaultProxy, HttpFault, HttpFaultPolicy

BUCKET = "proxied"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5)
# The codes botocore's standard retry mode treats as throttling.
THROTTLING_CODES: set[str] = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)  # type: ignore[attr-defined]


@pytest.fixture
def moto(moto_server: MotoServer) -> Iterator[str]:
    reset_moto(moto_server.endpoint)
    direct = client("s3", moto_server.endpoint)
    direct.create_bucket(Bucket=BUCKET)
    yield moto_server.endpoint
    reset_moto(moto_server.endpoint)


def client(service: str, endpoint: str, config: Config | None = None) -> Any:
    make: Any = boto3.client  # typed per service name; the tests pick names at run time
    return make(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


def exists(endpoint: str, key: str) -> bool:
    listing = client("s3", endpoint).list_objects_v2(Bucket=BUCKET, Prefix=key)
    return any(entry["Key"] == key for entry in listing.get("Contents", []))


def only(kind: HttpFault, service: str) -> HttpFaultPolicy:
    return HttpFaultPolicy(rate=1.0, seed=1, kinds=(kind,), services=frozenset({service}))


def test_without_faults_the_proxy_is_transparent(moto: str) -> None:
    with FaultProxy(moto) as proxy:
        s3 = client("s3", proxy.endpoint)
        body = bytes(range(256)) * 300
        s3.put_object(Bucket=BUCKET, Key="a b+c.bin", Body=body, Metadata={"prism-run": "r1"})
        assert s3.get_object(Bucket=BUCKET, Key="a b+c.bin")["Body"].read() == body
        head = s3.head_object(Bucket=BUCKET, Key="a b+c.bin")
        assert (head["ContentLength"], head["Metadata"]) == (len(body), {"prism-run": "r1"})
        with pytest.raises(ClientError) as missing:
            s3.head_object(Bucket=BUCKET, Key="nothing")
        assert missing.value.response["Error"]["Code"] == "404"
        sqs = client("sqs", proxy.endpoint)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "hello"
        assert proxy.requests[("s3", "PUT object")] == 1
        assert proxy.requests[("sqs", "SendMessage")] == 1
        assert not proxy.injected


@pytest.mark.parametrize(
    ("service", "kind", "codes", "statuses"),
    [
        ("s3", HttpFault.THROTTLE, {"SlowDown"}, {503}),
        ("s3", HttpFault.SERVER_ERROR, {"InternalError", "ServiceUnavailable"}, {500, 503}),
        (
            "dynamodb",
            HttpFault.THROTTLE,
            {"ProvisionedThroughputExceededException", "ThrottlingException"},
            {400},
        ),
        (
            "dynamodb",
            HttpFault.SERVER_ERROR,
            {"InternalServerError", "ServiceUnavailable"},
            {500, 503},
        ),
        ("sqs", HttpFault.THROTTLE, {"ThrottlingException"}, {400}),
        ("sqs", HttpFault.SERVER_ERROR, {"InternalError"}, {500}),
    ],
)
def test_injected_errors_parse_as_the_services_own(
    moto: str, service: str, kind: HttpFault, codes: set[str], statuses: set[int]
) -> None:
    calls = {
        "s3": lambda c: c.put_object(Bucket=BUCKET, Key="refused", Body=b"x"),
        "dynamodb": lambda c: c.list_tables(),
        "sqs": lambda c: c.list_queues(),
    }
    seen = set()
    with FaultProxy(moto, only(kind, service)) as proxy:
        faulted = client(service, proxy.endpoint, NO_RETRIES)
        for _ in range(8):  # the details (500 or 503, which throttling code) vary per request
            with pytest.raises(ClientError) as raised:
                calls[service](faulted)
            error = raised.value.response
            assert error["Error"]["Code"] in codes
            assert error["ResponseMetadata"]["HTTPStatusCode"] in statuses
            seen.add(error["Error"]["Code"])
    if kind is HttpFault.THROTTLE:
        assert seen <= THROTTLING_CODES  # botocore retries them as throttling
    assert not exists(moto, "refused")  # answered without forwarding


def test_a_lost_response_takes_effect(moto: str) -> None:
    with FaultProxy(moto, only(HttpFault.LOST_RESPONSE, "s3")) as proxy:
        faulted = client("s3", proxy.endpoint, NO_RETRIES)
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            faulted.put_object(Bucket=BUCKET, Key="landed", Body=b"x")
    assert exists(moto, "landed")


@pytest.mark.parametrize("kind", [HttpFault.RESET, HttpFault.CLOSE])
def test_a_dropped_connection_does_not_forward(moto: str, kind: HttpFault) -> None:
    with FaultProxy(moto, only(kind, "s3")) as proxy:
        faulted = client("s3", proxy.endpoint, NO_RETRIES)
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            faulted.put_object(Bucket=BUCKET, Key="dropped", Body=b"x")
    assert not exists(moto, "dropped")


def test_motos_own_api_is_never_faulted(moto: str) -> None:
    with FaultProxy(moto, HttpFaultPolicy(rate=1.0, seed=1)) as proxy:
        with urllib.request.urlopen(f"{proxy.endpoint}/moto-api/data.json", timeout=10) as answer:
            assert answer.status == 200
        assert not proxy.injected


def test_decisions_are_reproducible_and_near_the_rate() -> None:
    def decisions(seed: int) -> list[HttpFault | None]:
        policy = HttpFaultPolicy(rate=0.2, seed=seed)
        return [policy.decide("dynamodb", "GetItem", n) for n in range(3000)]

    first = decisions(7)
    assert first == decisions(7)
    assert first != decisions(8)
    faulted = [kind for kind in first if kind is not None]
    assert 0.17 < len(faulted) / len(first) < 0.23
    assert set(faulted) == set(HttpFault)


def test_aioboto3_clients_ride_out_faults_with_their_retries(moto: str) -> None:
    """The functions' clients (standard retries, 5 attempts) through a proxy that fails half
    of all requests: sequential calls, so the seeded faults are the same every run."""

    async def round_trip() -> bytes:
        async with open_clients() as clients:
            for n in range(6):
                await clients.s3.put_object(Bucket=BUCKET, Key=f"k{n}", Body=b"v%d" % n)
            response = await clients.s3.get_object(Bucket=BUCKET, Key="k5")
            async with response["Body"] as body:
                data: bytes = await body.read()
            return data

    with (
        FaultProxy(moto, HttpFaultPolicy(rate=0.5, seed=3)) as proxy,
        handlers_endpoint(proxy.endpoint),
    ):
        assert asyncio.run(round_trip()) == b"v5"
    assert len(proxy.fault_counts()) >= 3, proxy.fault_counts()


@pytest.mark.parametrize("timing", [Timing.BEFORE, Timing.AFTER])
def test_adapter_faults_fail_before_or_after_the_real_call(
    moto: str, timing: Timing, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = AdapterFaults(rate=1.0, seed=1, timings=(timing,), services=frozenset({"s3"}))

    async def put() -> None:
        async with open_clients() as clients:
            await clients.s3.put_object(Bucket=BUCKET, Key="adapter", Body=b"x")

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    errors = (ClientError, EndpointConnectionError, ConnectionClosedError)
    with patched_session(faults), pytest.raises(errors):
        asyncio.run(put())
    assert exists(moto, "adapter") is (timing is Timing.AFTER)
    assert [fault.timing for fault in faults.injected] == [timing]

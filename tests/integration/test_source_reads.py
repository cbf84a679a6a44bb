"""Reading a source on the moto server: one GET, its first bytes vetted before the rest is
downloaded, and a refusal that ends the download without spoiling the client."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from prism.aws.clients import open_clients
from prism.aws.storage import ObjectStore
from prism.errors import PermanentError, Reason
from prism.ports import Vet
from prism_cli.local.stack import LocalStack

pytestmark = pytest.mark.integration

FIRST = 64 * 1024


class Refused(Exception):
    pass


def read_with(
    stack: LocalStack, objects: dict[str, bytes], reads: list[tuple[str, Vet | None]]
) -> tuple[list[bytes | BaseException], int]:
    """Each read's bytes (or what it raised), and the number of GETs made."""
    bucket = stack.bucket_name("InputBucket")
    for key, data in objects.items():
        stack.clients.s3.put_object(Bucket=bucket, Key=key, Body=data)

    async def run() -> tuple[list[bytes | BaseException], int]:
        gets = 0

        def count(**_: Any) -> None:
            nonlocal gets
            gets += 1

        async with open_clients() as clients:
            clients.s3.meta.events.register("before-call.s3.GetObject", count)
            store = ObjectStore(clients.s3)
            results: list[bytes | BaseException] = []
            for key, vet in reads:
                try:
                    results.append(await store.read(bucket, key, vet=vet))
                except Exception as exc:
                    results.append(exc)
        return results, gets

    return asyncio.run(run())


def test_a_large_source_is_vetted_and_read_in_one_get(local_stack: LocalStack) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    seen: list[bytes] = []
    vet = Vet(FIRST, seen.append)

    results, gets = read_with(local_stack, {"uploads/big.bin": data}, [("uploads/big.bin", vet)])

    assert results == [data]
    assert seen == [data[:FIRST]]
    assert gets == 1


def test_a_source_smaller_than_the_vetted_bytes_is_vetted_whole(local_stack: LocalStack) -> None:
    data = os.urandom(1000)
    seen: list[bytes] = []

    results, _ = read_with(
        local_stack, {"uploads/small.bin": data}, [("uploads/small.bin", Vet(FIRST, seen.append))]
    )

    assert results == [data] and seen == [data]


def test_a_refusal_ends_the_read_and_the_next_read_still_works(local_stack: LocalStack) -> None:
    big, other = os.urandom(8 * 1024 * 1024), os.urandom(200_000)

    def refuse(first: bytes) -> None:
        raise Refused(len(first))

    results, gets = read_with(
        local_stack,
        {"uploads/bomb.bin": big, "uploads/next.bin": other},
        [("uploads/bomb.bin", Vet(FIRST, refuse)), ("uploads/next.bin", Vet(FIRST, len))],
    )

    assert isinstance(results[0], Refused) and results[0].args == (FIRST,)
    assert results[1] == other
    assert gets == 2


def test_a_missing_source_is_a_permanent_failure(local_stack: LocalStack) -> None:
    results, _ = read_with(local_stack, {}, [("uploads/none.bin", Vet(FIRST, len))])

    assert isinstance(results[0], PermanentError)
    assert results[0].reason is Reason.SOURCE_MISSING

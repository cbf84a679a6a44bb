"""Writing an output in order on the moto server when its key changes between the read
and the write: each interleaving forced deliberately, at the moment after the read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from prism.aws.clients import open_clients
from prism.aws.storage import RUN_METADATA_KEY, RUN_ORDER_METADATA_KEY, ObjectStore
from prism.ports import ObjectHead, WriteResult
from prism_cli.local.stack import LocalStack

pytestmark = pytest.mark.integration

KEY = "photo_web.webp"
EARLIER_OUTPUT = b"run 1's output"


class ChangedAfterRead(ObjectStore):
    """An object store whose first read of ``key`` is followed, before anything else, by
    ``meanwhile`` (what another run does between this run's read and its write)."""

    def __init__(self, s3: Any, key: str, meanwhile: Callable[[], None]) -> None:
        super().__init__(s3)
        self._key = key
        self._meanwhile: Callable[[], None] | None = meanwhile

    async def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectHead | None:
        seen = await super().head(bucket, key, version_id)
        if key == self._key and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            await asyncio.to_thread(meanwhile)
        return seen


def put_earlier_output(stack: LocalStack, bucket: str) -> None:
    stack.clients.s3.put_object(
        Bucket=bucket,
        Key=KEY,
        Body=EARLIER_OUTPUT,
        Metadata={RUN_METADATA_KEY: "run-1", RUN_ORDER_METADATA_KEY: "1"},
    )


def written_by(stack: LocalStack, bucket: str) -> tuple[bytes, dict[str, str]]:
    got = stack.clients.s3.get_object(Bucket=bucket, Key=KEY)
    return got["Body"].read(), got["Metadata"]


def test_an_output_removed_between_the_read_and_the_write_is_written(
    local_stack: LocalStack,
) -> None:
    """Run 1 renders, finds itself superseded and removes its output just after run 2 has
    read it: run 2's ``If-Match`` write meets no object (S3's 404) and writes again."""
    bucket = local_stack.bucket_name("OutputBucket")
    put_earlier_output(local_stack, bucket)

    def remove() -> None:
        local_stack.clients.s3.delete_object(Bucket=bucket, Key=KEY)

    async def write() -> tuple[WriteResult, str | None]:
        async with open_clients() as clients:
            store = ChangedAfterRead(clients.s3, KEY, remove)
            return await store.write_in_order(
                bucket, KEY, b"run 2's output", content_type="image/webp",
                run_id="run-2", order=2, metadata={},
            )  # fmt: skip

    result, etag = asyncio.run(write())

    assert result is WriteResult.WRITTEN and etag
    body, metadata = written_by(local_stack, bucket)
    assert body == b"run 2's output"
    assert metadata[RUN_METADATA_KEY] == "run-2"


@pytest.mark.parametrize("source_removed", [False, True], ids=["source-kept", "source-removed"])
def test_a_copy_whose_destination_is_removed_after_the_read_copies_or_says_it_cannot(
    local_stack: LocalStack, source_removed: bool
) -> None:
    """The same interleaving for a server-side copy: written if its source is still there,
    and None (render instead) if the source went too."""
    bucket = local_stack.bucket_name("OutputBucket")
    put_earlier_output(local_stack, bucket)
    source = local_stack.clients.s3.put_object(
        Bucket=bucket, Key="other_web.webp", Body=b"identical render"
    )

    def remove() -> None:
        local_stack.clients.s3.delete_object(Bucket=bucket, Key=KEY)
        if source_removed:
            local_stack.clients.s3.delete_object(Bucket=bucket, Key="other_web.webp")

    async def copy() -> tuple[WriteResult, str | None] | None:
        async with open_clients() as clients:
            store = ChangedAfterRead(clients.s3, KEY, remove)
            return await store.copy_in_order(
                bucket, "other_web.webp", source["ETag"], KEY, content_type="image/webp",
                run_id="run-2", order=2, metadata={},
            )  # fmt: skip

    copied = asyncio.run(copy())

    if source_removed:
        assert copied is None
        return
    assert copied is not None and copied[0] is WriteResult.WRITTEN
    body, metadata = written_by(local_stack, bucket)
    assert body == b"identical render"
    assert metadata[RUN_METADATA_KEY] == "run-2"


def test_a_later_run_written_between_the_read_and_the_write_is_kept(
    local_stack: LocalStack,
) -> None:
    """Run 3 writes just after run 2 has read run 1's output: run 2's ``If-Match`` fails,
    it reads again, finds the later run and writes nothing."""
    bucket = local_stack.bucket_name("OutputBucket")
    put_earlier_output(local_stack, bucket)

    def later_run_writes() -> None:
        local_stack.clients.s3.put_object(
            Bucket=bucket,
            Key=KEY,
            Body=b"run 3's output",
            Metadata={RUN_METADATA_KEY: "run-3", RUN_ORDER_METADATA_KEY: "3"},
        )

    async def write() -> tuple[WriteResult, str | None]:
        async with open_clients() as clients:
            store = ChangedAfterRead(clients.s3, KEY, later_run_writes)
            return await store.write_in_order(
                bucket, KEY, b"run 2's output", content_type="image/webp",
                run_id="run-2", order=2, metadata={},
            )  # fmt: skip

    assert asyncio.run(write()) == (WriteResult.NEWER_EXISTS, None)
    assert written_by(local_stack, bucket)[0] == b"run 3's output"

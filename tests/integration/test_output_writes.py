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


def put_output(stack: LocalStack, bucket: str, run: int, body: bytes) -> None:
    """``body`` at the key as run ``run`` (also its order) writes an output."""
    stack.clients.s3.put_object(
        Bucket=bucket,
        Key=KEY,
        Body=body,
        Metadata={RUN_METADATA_KEY: f"run-{run}", RUN_ORDER_METADATA_KEY: str(run)},
    )


def write_as_run_two(bucket: str, meanwhile: Callable[[], None]) -> tuple[WriteResult, str | None]:
    """Run 2 writes its output at the key, ``meanwhile`` happening just after its read."""

    async def write() -> tuple[WriteResult, str | None]:
        async with open_clients() as clients:
            store = ChangedAfterRead(clients.s3, KEY, meanwhile)
            return await store.write_in_order(
                bucket, KEY, b"run 2's output", content_type="image/webp",
                run_id="run-2", order=2, metadata={},
            )  # fmt: skip

    return asyncio.run(write())


def written_by(stack: LocalStack, bucket: str) -> tuple[bytes, dict[str, str]]:
    got = stack.clients.s3.get_object(Bucket=bucket, Key=KEY)
    return got["Body"].read(), got["Metadata"]


def test_an_output_removed_between_the_read_and_the_write_is_written(
    local_stack: LocalStack,
) -> None:
    """Run 1 renders, finds itself superseded and removes its output just after run 2 has
    read it: run 2's ``If-Match`` write meets no object (S3's 404) and writes again."""
    bucket = local_stack.bucket_name("OutputBucket")
    put_output(local_stack, bucket, 1, b"run 1's output")

    def remove() -> None:
        local_stack.clients.s3.delete_object(Bucket=bucket, Key=KEY)

    result, etag = write_as_run_two(bucket, remove)

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
    put_output(local_stack, bucket, 1, b"run 1's output")
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
    put_output(local_stack, bucket, 1, b"run 1's output")

    def later_run_writes() -> None:
        put_output(local_stack, bucket, 3, b"run 3's output")

    assert write_as_run_two(bucket, later_run_writes) == (WriteResult.NEWER_EXISTS, None)
    assert written_by(local_stack, bucket)[0] == b"run 3's output"

"""How a job's progress is read (prism.aws.job_table): the job item and its counter shards
in one BatchGetItem once the reader knows the job's shard count, with the same answers
as a reader that does not; a job that is not sealed still has only its item read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from prism.aws import schema
from prism.aws.clients import open_clients
from prism.aws.job_table import JobTable
from prism.jobs import JobCounters, JobNotFound, JobStatus
from prism_cli.local.stack import LocalStack
from support.pipeline import create_job

pytestmark = pytest.mark.integration

SHARDS = 4


def _run(stack: LocalStack, test: Callable[[Any, str, list[str]], Awaitable[None]]) -> None:
    """``test(dynamodb, table_name, calls)``; ``calls`` lists the client's DynamoDB calls."""

    async def run() -> None:
        async with open_clients() as clients:
            calls: list[str] = []
            clients.dynamodb.meta.events.register(
                "before-call.dynamodb", lambda model, **_: calls.append(model.name)
            )
            await test(clients.dynamodb, stack.environment["PRISM_TABLE_NAME"], calls)

    asyncio.run(run())


async def _count(dynamodb: Any, table: str, job_id: str, shard: int, **counts: int) -> None:
    """Add ``counts`` to one of the job's shards, as the functions' writes do."""
    deltas = schema.counter_deltas(JobCounters(**counts))
    await dynamodb.update_item(
        TableName=table,
        Key=schema.shard_key(job_id, shard),
        **schema.add_expression(deltas),
    )


def test_progress_reads_job_and_shards_in_one_request_once_it_knows_the_shards(
    local_stack: LocalStack,
) -> None:
    create_job(local_stack, "reads", shards=SHARDS)

    async def test(dynamodb: Any, table: str, calls: list[str]) -> None:
        jobs = JobTable(dynamodb, table)
        await _count(dynamodb, table, "reads", 0, sources_registered=2, variants_done=3)
        first = await jobs.progress("reads")
        assert calls[-2:] == ["GetItem", "BatchGetItem"]
        await _count(dynamodb, table, "reads", 3, sources_registered=1, variants_failed=1)
        calls.clear()
        second = await jobs.progress("reads")
        assert calls == ["BatchGetItem"]
        fresh = await JobTable(dynamodb, table).progress("reads")
        assert second == fresh  # the same answer as a reader that reads the job first
        assert first.counters.sources_registered == 2
        assert second.counters.sources_registered == 3
        assert second.counters.variants_failed == 1
        assert second.job.job_id == "reads" and second.job.shards == SHARDS

    _run(local_stack, test)


def test_finishing_reads_shards_only_for_a_sealed_job(local_stack: LocalStack) -> None:
    create_job(local_stack, "sealing", shards=SHARDS)

    async def test(dynamodb: Any, table: str, calls: list[str]) -> None:
        jobs = JobTable(dynamodb, table)
        await jobs.progress("sealing")  # the reader now knows the job's shard count
        calls.clear()
        assert await jobs.finish_if_done("sealing") is None  # not sealed: only its item
        assert calls == ["GetItem"]
        await jobs.seal("sealing", 1)
        await _count(dynamodb, table, "sealing", 2, sources_registered=1, variants_expected=1)
        calls.clear()
        running = await jobs.finish_if_done("sealing")  # learns that it is sealed
        assert running is not None and not running.finished
        assert calls == ["GetItem", "BatchGetItem"]
        await _count(dynamodb, table, "sealing", 1, sources_finished=1, variants_done=1)
        calls.clear()
        done = await jobs.finish_if_done("sealing")
        # The job and its shards at once, its final status, and the progress read again.
        assert calls == ["BatchGetItem", "UpdateItem", "BatchGetItem"], calls
        assert done is not None and done.job.status == JobStatus.COMPLETE.value
        assert (await JobTable(dynamodb, table).require("sealing")).status == "complete"

    _run(local_stack, test)


def test_a_job_gone_since_it_was_read_is_not_found(local_stack: LocalStack) -> None:
    create_job(local_stack, "gone", shards=SHARDS)

    async def test(dynamodb: Any, table: str, calls: list[str]) -> None:
        jobs = JobTable(dynamodb, table)
        await jobs.seal("gone", 1)
        assert await jobs.finish_if_done("gone") is not None  # sealed, shards known
        await dynamodb.delete_item(TableName=table, Key=schema.job_key("gone"))
        calls.clear()
        with pytest.raises(JobNotFound):
            await jobs.progress("gone")
        assert await jobs.finish_if_done("gone") is None
        assert calls == ["BatchGetItem", "BatchGetItem"]

    _run(local_stack, test)

"""Plugging the AWS adapters into the services, once per invocation.

The handlers call these; nothing else builds adapters. Clients are opened per invocation
(see ``prism.aws.clients``), so the services are too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from prism.aws.clients import open_clients
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable
from prism.aws.storage import ObjectStore
from prism.aws.variant_queue import VariantQueue
from prism.batch import BatchResults
from prism.config import PipelineConfig
from prism.fanout import FanOut
from prism.settings import Settings
from prism.worker import Worker


@asynccontextmanager
async def _adapters(
    settings: Settings,
) -> AsyncIterator[tuple[ObjectStore, ProcessingTable, JobTable, Any]]:
    """The objects, processing-log and jobs adapters, and the SQS client, for one invocation."""
    async with open_clients() as clients:
        table = settings.table_name
        yield (
            ObjectStore(clients.s3),
            ProcessingTable(clients.dynamodb, table),
            JobTable(clients.dynamodb, table),
            clients.sqs,
        )


async def fan_out_batch(
    records: Sequence[SQSRecord], settings: Settings, config: PipelineConfig
) -> BatchResults:
    async with _adapters(settings) as (objects, log, jobs, sqs):
        queue = VariantQueue(sqs, settings.variants_queue_url)
        return await FanOut(objects, log, jobs, queue, settings, config).process(records)


async def render_batch(
    records: Sequence[SQSRecord],
    settings: Settings,
    remaining_ms: Callable[[], int] | None = None,
) -> BatchResults:
    async with _adapters(settings) as (objects, log, jobs, _):
        return await Worker(objects, log, jobs, settings, remaining_ms).process(records)

"""Plugging the AWS adapters into the services, once per invocation.

The handlers call these; nothing else builds adapters. The services and adapters are
cheap and made per invocation; the clients under them are kept per event loop (see
``prism.aws.clients``), so a warm Lambda container reuses its connections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from prism.aws.clients import Clients, loop_clients
from prism.aws.event_bus import EventBus
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable
from prism.aws.storage import ObjectStore
from prism.aws.variant_queue import VariantQueue
from prism.batch import BatchResults
from prism.config import PipelineConfig
from prism.fanout import FanOut
from prism.settings import Settings
from prism.worker import Worker


async def fan_out_batch(
    records: Sequence[SQSRecord], settings: Settings, config: PipelineConfig
) -> BatchResults:
    clients = await loop_clients()
    fan_out = FanOut(
        ObjectStore(clients.s3),
        ProcessingTable(
            clients.dynamodb, settings.table_name, retention_days=settings.record_retention_days
        ),
        JobTable(
            clients.dynamodb, settings.table_name, retention_days=settings.record_retention_days
        ),
        VariantQueue(clients.sqs, settings.variants_queue_url),
        settings,
        config,
        event_bus(clients, settings),
    )
    return await fan_out.process(records)


async def render_batch(
    records: Sequence[SQSRecord],
    settings: Settings,
    remaining_ms: Callable[[], int] | None = None,
) -> BatchResults:
    clients = await loop_clients()
    worker = Worker(
        ObjectStore(clients.s3),
        ProcessingTable(
            clients.dynamodb, settings.table_name, retention_days=settings.record_retention_days
        ),
        JobTable(
            clients.dynamodb, settings.table_name, retention_days=settings.record_retention_days
        ),
        settings,
        remaining_ms,
        event_bus(clients, settings),
    )
    return await worker.process(records)


def event_bus(clients: Clients, settings: Settings) -> EventBus | None:
    return EventBus(clients.events, settings.event_bus) if settings.event_bus else None

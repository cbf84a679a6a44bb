"""Fan-out: turn each uploaded object into one variant task per configured variant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from prism.aws.clients import Clients, open_clients
from prism.aws.processing_table import ProcessingTable, utc_now
from prism.aws.variant_queue import VariantQueue
from prism.batch import BatchResults
from prism.config import PipelineConfig
from prism.keys import output_key
from prism.messages import SourceRef, VariantTask
from prism.observability import logger, metrics
from prism.records import SourceRecord, SourceStatus
from prism.settings import Settings

_RUN_NAMESPACE = uuid.UUID("6f1c2a4e-8b1d-4f0a-9d43-2b7f0c6e5a10")


@dataclass(frozen=True)
class Upload:
    """An object-created notification, with its key decoded."""

    source: SourceRef
    event_time: str
    sequencer: str

    @property
    def run_id(self) -> str:
        # The same notification delivered twice yields the same run (so it is registered
        # once); a new upload of the same key yields a new run.
        identity = "|".join(
            [
                self.source.id,
                self.source.etag or "",
                self.source.version_id or "",
                self.sequencer,
                self.event_time,
            ]
        )
        return str(uuid.uuid5(_RUN_NAMESPACE, identity))

    @property
    def job_id(self) -> str:
        # A plain upload belongs to the day's default job.
        return f"uploads-{self.event_time[:10] or 'unknown'}"


def uploads_in(record: SQSRecord) -> list[Upload]:
    """The object-created uploads an uploads-queue message announces (none for S3's test event)."""
    body = record.json_body
    if not isinstance(body, dict) or body.get("Event") == "s3:TestEvent" or "Records" not in body:
        return []
    uploads = []
    for s3_record in record.decoded_nested_s3_event.records:
        if not s3_record.event_name.startswith("ObjectCreated:"):
            continue
        obj = s3_record.s3.get_object
        source = SourceRef(
            bucket=s3_record.s3.bucket.name,
            # Keys arrive URL-encoded with '+' for spaces; decode exactly once, here.
            key=unquote_plus(obj.key),
            etag=obj.etag or None,
            size=obj.get("size"),
            version_id=obj.version_id,
        )
        uploads.append(
            Upload(
                source=source, event_time=s3_record.event_time, sequencer=obj.get("sequencer") or ""
            )
        )
    return uploads


def plan_tasks(upload: Upload, config: PipelineConfig, settings: Settings) -> list[VariantTask]:
    return [
        VariantTask(
            run_id=upload.run_id,
            job_id=upload.job_id,
            source=upload.source,
            variant=variant,
            watermark=config.effective_watermark(variant),
            output_key=output_key(
                upload.source.key,
                variant,
                upload_prefix=settings.upload_prefix,
                output_prefix=config.output_prefix,
            ),
            limits=config.limits,
        )
        for variant in config.variants
    ]


class FanOut:
    def __init__(self, clients: Clients, settings: Settings, config: PipelineConfig) -> None:
        self._table = ProcessingTable(clients.dynamodb, settings.table_name)
        self._queue = VariantQueue(clients.sqs, settings.variants_queue_url)
        self._settings = settings
        self._config = config

    async def process(self, records: Sequence[SQSRecord]) -> BatchResults:
        outcomes = await asyncio.gather(
            *(self._process_record(record) for record in records), return_exceptions=True
        )
        return {
            record.message_id: outcome if isinstance(outcome, BaseException) else None
            for record, outcome in zip(records, outcomes, strict=True)
        }

    async def _process_record(self, record: SQSRecord) -> None:
        uploads = uploads_in(record)
        if not uploads:
            logger.info("Ignoring a message that announces no upload", message_id=record.message_id)
        await asyncio.gather(*(self._fan_out(upload) for upload in uploads))

    async def _fan_out(self, upload: Upload) -> None:
        tasks = plan_tasks(upload, self._config, self._settings)
        registered = await self._table.register_source(
            SourceRecord(
                bucket=upload.source.bucket,
                key=upload.source.key,
                job_id=upload.job_id,
                run_id=upload.run_id,
                status=SourceStatus.PROCESSING.value,
                expected=len(tasks),
                etag=upload.source.etag,
                size=upload.source.size,
                registered_at=utc_now(),
            )
        )
        # Send even when this run was registered before: the earlier attempt may have died
        # before sending, and the worker ignores tasks it has already recorded.
        await self._queue.send(tasks)
        metrics.add_metric(name="UploadsFannedOut", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="VariantTasksSent", unit=MetricUnit.Count, value=len(tasks))
        logger.info(
            "Fanned out upload",
            source=upload.source.id,
            variants=len(tasks),
            run_id=upload.run_id,
            redelivered=not registered,
        )


async def fan_out_batch(
    records: Sequence[SQSRecord], settings: Settings, config: PipelineConfig
) -> BatchResults:
    async with open_clients() as clients:
        return await FanOut(clients, settings, config).process(records)

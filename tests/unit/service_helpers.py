"""Building the services on in-memory ports, and the SQS records they are fed."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from fakes import FakeObjects, FakeQueue, FakeTable
from PIL import Image

import prism.worker
from prism.config import PipelineConfig, default_config
from prism.fanout import FanOut
from prism.imaging import decode_source
from prism.jobs import JobKind, JobRecord, JobStatus
from prism.messages import VariantTask
from prism.ports import Event
from prism.settings import Settings
from prism.worker import Worker

INPUT = "in-bucket"
OUTPUT = "out-bucket"
SETTINGS = Settings(
    input_bucket=INPUT,
    output_bucket=OUTPUT,
    table_name="table",
    variants_queue_url="queue",
    config_parameter="param",
    upload_prefix="uploads/",
    image_threads=2,
    time_reserve_seconds=30,
)


def jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def sqs_record(body: Any, receive_count: int = 1) -> SQSRecord:
    return SQSRecord(
        {
            "messageId": str(uuid.uuid4()),
            "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receive_count)},
        }
    )


def s3_event(key: str, *, etag: str, size: int, version_id: str, sequencer: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-12-01T10:00:00.000Z",
                "s3": {
                    "bucket": {"name": INPUT},
                    "object": {
                        "key": key.replace(" ", "+"),
                        "size": size,
                        "eTag": etag,
                        "versionId": version_id,
                        "sequencer": sequencer,
                    },
                },
            }
        ]
    }


@dataclass
class PublishedEvents:
    """An event bus that keeps what it is sent, in order."""

    events: list[Event] = field(default_factory=list)

    async def publish(self, events: Sequence[Event]) -> list[BaseException | None]:
        self.events.extend(events)
        return [None] * len(events)

    def seen(self) -> list[tuple[str, str]]:
        """Each event's detail type and its source key (job id for a job's)."""
        return [
            (event.detail_type, str(event.detail.get("key") or event.detail.get("job_id")))
            for event in self.events
        ]


@dataclass
class Ports:
    """One stack's worth of in-memory ports, and services built on them."""

    objects: FakeObjects = field(default_factory=FakeObjects)
    table: FakeTable = field(default_factory=FakeTable)
    queue: FakeQueue = field(default_factory=FakeQueue)
    events: PublishedEvents = field(default_factory=PublishedEvents)
    settings: Settings = SETTINGS

    def fan_out(self, config: PipelineConfig | None = None) -> FanOut:
        return FanOut(
            self.objects,
            self.table,
            self.table,
            self.queue,
            self.settings,
            config or default_config(),
        )

    def worker(self, remaining_ms: Any = None) -> Worker:
        return Worker(
            self.objects, self.table, self.table, self.settings, remaining_ms, self.events
        )

    def job(self, job_id: str = "job-1", *, expected_sources: int | None = 1) -> JobRecord:
        job = JobRecord(
            job_id,
            JobStatus.RUNNING.value,
            JobKind.SUBMIT.value,
            "2026-12-01T10:00:00Z",
            shards=4,
            sealed=expected_sources is not None,
            expected_sources=expected_sources,
        )
        self.table.jobs[job_id] = job
        return job

    def upload(
        self, key: str, data: bytes, *, job_id: str | None = "job-1", sequencer: str = "0A"
    ) -> SQSRecord:
        """Put ``data`` at ``key`` in the input bucket; its S3 notification as a record."""
        metadata = {"prism-job": job_id} if job_id else {}
        version = self.objects.put(INPUT, key, data, metadata)
        stored = self.objects.current[(INPUT, key)]
        event = s3_event(
            key, etag=stored.etag, size=len(data), version_id=version, sequencer=sequencer
        )
        return sqs_record(event)

    async def fanned_out(self, key: str, data: bytes, **kwargs: Any) -> list[VariantTask]:
        """Upload and fan out ``key``; the tasks sent for it."""
        before = len(self.queue.sent)
        results = await self.fan_out().process([self.upload(key, data, **kwargs)])
        assert all(error is None for error in results.values()), results
        return self.queue.sent[before:]


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets an entry for every source the worker decodes from now on."""
    calls: list[int] = []

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return decode_source(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prism.worker, "decode_source", counting)
    return calls

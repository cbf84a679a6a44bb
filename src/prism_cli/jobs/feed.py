"""Feeding a job: uploading files into it (``prism submit``, ``prism run``) or enqueuing
existing objects for it (``prism backfill``), then sealing it with the number fed.

A feeder stops early when asked to (the job was cancelled): it then seals the job with the
number actually fed, so the job can still end. If feeding fails, the job is cancelled and
sealed the same way before the error is raised: no job is left waiting forever.

An upload feeder can be paced (``pace``, awaited before each upload): ``prism run`` keeps
its uploads only a little ahead of the local stack's functions, so that what the stack
holds at once (queued messages, objects not yet rendered) does not grow with the folder.
Files are streamed from disk, never read whole into memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prism.aws.job_table import JobTable
from prism.keys import bare_etag
from prism.messages import JOB_METADATA_KEY, SQS_BATCH_LIMIT, BackfillRequest, SourceRef
from prism_cli.errors import UserError
from prism_cli.jobs.display import ProgressTracker, StageView
from prism_cli.jobs.s3_urls import S3Location

UPLOAD_CONCURRENCY = 16
SEND_CONCURRENCY = 8
SEND_ATTEMPTS = 5  # for entries a batch reports as failed (botocore retries whole calls)


class Feeder:
    stage = "feeding"

    def __init__(self, table: JobTable, job_id: str) -> None:
        self.table = table
        self.job_id = job_id
        self.sent = 0
        self.total: int | None = None
        self.sealed = False
        self.stopped = False  # stopped early (cancelled)
        self.failures: list[tuple[str, str]] = []  # (item, why) not fed, feeding went on
        self._stop = asyncio.Event()
        self._tracker = ProgressTracker()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def rows(self, now: float) -> Sequence[StageView]:
        return (self._tracker.stage(self.stage, self.sent, self.total, now),)

    async def run(self) -> int:
        """Feed the job, then seal it; the number fed."""
        try:
            await self.feed()
        except BaseException:
            # Neither half-fed nor waiting forever: cancel it, and say how many it has. The
            # original error is the one to report, even if this fails too.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._seal(cancel=True))
            raise
        await self._seal(cancel=False)
        return self.sent

    async def _seal(self, *, cancel: bool) -> None:
        self.stopped = cancel or self._stop.is_set()
        self.total = self.sent
        if cancel:
            await self.table.request_cancel(self.job_id)
        await self.table.seal(self.job_id, self.sent)
        self.sealed = True
        await self.table.finish_if_done(self.job_id)

    async def feed(self) -> None:
        raise NotImplementedError


# --- uploads ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadItem:
    key: str
    path: Path
    display: str
    # Uploaded only once ``ready`` says so (prism run: a duplicate waits for its original).
    after: str | None = None


class UploadFeeder(Feeder):
    """Uploads files into the input bucket with the job in their metadata."""

    stage = "uploading"

    def __init__(
        self,
        table: JobTable,
        job_id: str,
        s3: Any,
        bucket: str,
        items: Sequence[UploadItem],
        *,
        concurrency: int = UPLOAD_CONCURRENCY,
        pace: Callable[[], Awaitable[None]] | None = None,
        ready: Callable[[UploadItem], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(table, job_id)
        self.s3 = s3
        self.bucket = bucket
        self.items = list(items)
        self.total = len(self.items)
        self.concurrency = concurrency
        self._pace = pace
        self._ready = ready

    async def feed(self) -> None:
        pending = iter(self.items)

        async def uploader() -> None:
            for item in pending:  # shared: every item is taken once
                if item.after is not None and self._ready is not None:
                    await self._until_stopped(functools.partial(self._ready, item))
                await self._paced()
                if self.stopping:
                    return
                try:
                    body = await asyncio.to_thread(item.path.open, "rb")
                except OSError as exc:
                    self.failures.append((item.display, f"unreadable: {exc.strerror}"))
                    continue
                try:
                    # Streamed from the file (botocore reads it for the checksum, then
                    # aiohttp sends it in chunks).
                    await self.s3.put_object(
                        Bucket=self.bucket,
                        Key=item.key,
                        Body=body,
                        Metadata={JOB_METADATA_KEY: self.job_id},
                    )
                finally:
                    body.close()
                self.sent += 1

        await asyncio.gather(*(uploader() for _ in range(max(1, self.concurrency))))

    async def _paced(self) -> None:
        """Wait until ``pace`` lets the next upload go, or until asked to stop."""
        if self._pace is not None:
            await self._until_stopped(self._pace)

    async def _until_stopped(self, wait: Callable[[], Awaitable[None]]) -> None:
        """Wait for ``wait()``, or until asked to stop."""
        if self.stopping:
            return
        pacing = asyncio.ensure_future(wait())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((pacing, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (pacing, stopping):
                waiter.cancel()
        if pacing.done() and not pacing.cancelled():
            pacing.result()  # raises what ``pace`` raised


# --- backfill -----------------------------------------------------------------------------------
async def list_sources(s3: Any, location: S3Location) -> AsyncIterator[SourceRef]:
    """The objects under ``location``, page by page (never the whole listing in memory).

    "Folders" (keys ending in ``/``) and empty objects are left out; whether the rest are
    images is for the worker to judge from their content."""
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/") or not obj.get("Size"):
                continue
            yield SourceRef(
                bucket=location.bucket,
                key=key,
                etag=bare_etag(obj.get("ETag")),
                size=int(obj["Size"]),
            )


class BackfillFeeder(Feeder):
    """Sends a BackfillRequest per existing object to the uploads queue."""

    stage = "enqueuing"

    def __init__(
        self,
        table: JobTable,
        job_id: str,
        s3: Any,
        sqs: Any,
        queue_url: str,
        locations: Sequence[S3Location],
        *,
        variants: list[str] | None = None,
        missing_only: bool = False,
        concurrency: int = SEND_CONCURRENCY,
    ) -> None:
        super().__init__(table, job_id)
        self.s3 = s3
        self.sqs = sqs
        self.queue_url = queue_url
        self.locations = list(locations)
        self.variants = variants
        self.missing_only = missing_only
        self._slots = asyncio.Semaphore(concurrency)
        self._sends: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []

    async def feed(self) -> None:
        try:
            await asyncio.gather(*(self._list(location) for location in self.locations))
        finally:
            if self._sends:
                await asyncio.gather(*self._sends, return_exceptions=True)
        if self._errors:
            raise self._errors[0]

    async def _list(self, location: S3Location) -> None:
        batch: list[BackfillRequest] = []
        async for source in list_sources(self.s3, location):
            if self.stopping or self._errors:
                return
            batch.append(
                BackfillRequest(
                    job_id=self.job_id,
                    source=source,
                    variants=self.variants,
                    missing_only=self.missing_only,
                )
            )
            if len(batch) == SQS_BATCH_LIMIT:
                await self._send(batch)
                batch = []
        if batch and not self.stopping:
            await self._send(batch)

    async def _send(self, batch: list[BackfillRequest]) -> None:
        # Waiting for a free slot keeps the listing from running ahead of the sending.
        await self._slots.acquire()
        task = asyncio.create_task(self._send_batch(batch))
        self._sends.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            self._errors.append(task.exception())  # type: ignore[arg-type]

    async def _send_batch(self, batch: list[BackfillRequest]) -> None:
        entries = {str(i): request.model_dump_json() for i, request in enumerate(batch)}
        for attempt in range(SEND_ATTEMPTS):
            response = await self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": id_, "MessageBody": body} for id_, body in entries.items()],
            )
            for success in response.get("Successful", []):
                entries.pop(success["Id"], None)
                self.sent += 1
            failed = response.get("Failed", [])
            if not entries:
                return
            if any(failure.get("SenderFault") for failure in failed):
                reason = failed[0].get("Message") or failed[0].get("Code")
                raise UserError(f"the uploads queue refused a backfill request: {reason}")
            await asyncio.sleep(random.uniform(0, 0.1 * 2**attempt))
        raise RuntimeError(f"{len(entries)} backfill requests not accepted after retries")

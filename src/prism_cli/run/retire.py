"""Releasing what a local run's stack holds for a source as soon as the source is finished.

moto keeps every object in the process's memory (objects over ~5 MB in a temporary file
each), and the input bucket is versioned, so a run that kept every upload and every output
until the end would grow with the folder. Instead, once a source is finished (every
variant recorded), its outputs are downloaded into ``--out`` and removed from the output
bucket, and its upload (exactly that version) is removed from the input bucket. The log at
the end is still built from the job's records (:mod:`prism_cli.run.run_log`); it only
skips the downloads done here.

Its records go too (moto keeps each item as a few kilobytes of Python objects): once it is
also announced, the source's item and its variants' items are read into ``records`` and
deleted from the local table, so the table holds only what is under way (and the small
output claims, which keep two sources from writing one output key). The log at the end
takes them from ``records``.

When a source may be released:

- its upload's notification has been deleted from the uploads queue, so the fan-out will
  never see it again (a redelivered notification of an upload that is gone would count as
  a missing source);
- its record says it is finished. Nothing that is still to come for a finished source
  reads its upload or its outputs: a redelivered variant task of a recorded outcome is
  acknowledged without fetching anything.

A source is looked at (one query of its records) once its notification and a task of
each of the pipeline's variants have been deleted, whichever comes last; a source with
fewer tasks (its fan-out rejected some or all of them) or whose last task went to a
dead-letter queue is simply left for the end, as everything is when the run stops early.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from prism.aws import schema
from prism.aws.processing_table import ProcessingTable
from prism.messages import VariantTask
from prism.records import SourceRecord, VariantRecord, VariantStatus
from prism.uploads import uploads_in
from prism_cli.jobs.downloads import Download, download_all, local_output_path
from prism_cli.jobs.log import JobRecords
from prism_cli.local.moto_s3 import silence_removal
from prism_cli.run.periodic import every
from prism_cli.run.run_log import RunPlace

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

RETIRE_SECONDS = 0.25  # how often finished sources are looked for
_LOOKUPS = 8  # source queries at once
_DELETE_BATCH = 1000  # S3's limit for DeleteObjects
_WRITE_BATCH = 25  # DynamoDB's limit for BatchWriteItem


@dataclass(frozen=True)
class _Finished:
    key: str
    version_id: str | None
    downloads: tuple[Download, ...]
    # Its records, to take out of the table once released (None: leave them there).
    records: tuple[SourceRecord, list[VariantRecord]] | None = None


# Removes a released source's records from the local table (see ``table_forgetter``).
Forget = Callable[[SourceRecord, Sequence[VariantRecord]], Awaitable[None]]


def table_forgetter(dynamodb: Any, table_name: str) -> Forget:
    """Deletes a source's item and its variants' items from the table (aioboto3 client)."""

    async def forget(source: SourceRecord, variants: Sequence[VariantRecord]) -> None:
        pk = schema.source_pk(source.bucket, source.key)
        keys = [schema.source_key(source.bucket, source.key)] + [
            schema.to_attributes({"pk": pk, "sk": schema.variant_sk(v.variant)}) for v in variants
        ]
        for start in range(0, len(keys), _WRITE_BATCH):
            chunk = keys[start : start + _WRITE_BATCH]
            await dynamodb.batch_write_item(
                RequestItems={table_name: [{"DeleteRequest": {"Key": key}} for key in chunk]}
            )

    return forget


class Retirement:
    """Finished sources of one local run, released as they finish (see the module doc).

    ``uploads_settled`` and ``tasks_settled`` are the fan-out's and the workers' emulated
    event sources' ``on_deleted`` observers (called from their threads); ``run`` looks
    for finished sources until ``stop``. ``downloaded`` is what became of each output
    downloaded so far (None: written)."""

    def __init__(
        self,
        table: ProcessingTable,
        s3: S3Client,
        place: RunPlace,
        keys: Iterable[str],
        forget: Forget | None = None,
    ) -> None:
        self._table = table
        self._forget = forget
        self._s3 = s3
        self._place = place
        self._keys = frozenset(keys)
        self._lock = threading.Lock()
        self._versions: dict[str, str | None] = {}  # notification deleted: key -> version
        self._due: dict[str, None] = {}  # keys to look at, in order
        self._variants = len(place.config.variants)
        self._settled: dict[str, set[str]] = {}  # key -> variants whose task was deleted
        self._done: set[str] = set()
        self._stop = asyncio.Event()
        self.downloaded: dict[Download, str | None] = {}
        self.released = 0  # sources
        # The records of released sources that ``forget`` removed from the table.
        self.records = JobRecords()

    # --- observers (emulator threads) -----------------------------------------------------
    def uploads_settled(self, records: Sequence[dict[str, Any]]) -> None:
        bucket = self._place.input_bucket
        for record in records:
            try:
                uploads = uploads_in(SQSRecord(record))
            except (ValueError, ValidationError):  # not an upload notification
                continue
            with self._lock:
                for upload in uploads:
                    key = upload.source.key
                    if upload.source.bucket == bucket and key in self._keys:
                        self._versions[key] = upload.source.version_id
                        self._mark_if_due(key)

    def tasks_settled(self, records: Sequence[dict[str, Any]]) -> None:
        bucket = self._place.input_bucket
        for record in records:
            try:
                task = VariantTask.model_validate_json(record["body"])
            except (KeyError, ValidationError):
                continue
            source, task_variant = task.source, task.variant.name
            if source.bucket != bucket or source.key not in self._keys:
                continue
            with self._lock:
                self._settled.setdefault(source.key, set()).add(task_variant)
                self._mark_if_due(source.key)

    def _mark_if_due(self, key: str) -> None:
        """(Under the lock.) Look at ``key`` next if everything of it may be finished."""
        if key in self._done or key not in self._versions:
            return
        if len(self._settled.get(key, ())) >= self._variants:
            self._due[key] = None
            self._settled.pop(key, None)

    # --- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        """Release finished sources until :meth:`stop` (then return once a release under
        way has ended: nothing is downloaded after that)."""
        # Memory only: the log at the end has every output anyway.
        await every(RETIRE_SECONDS, self._stop, self.release_due, "releasing finished sources")

    def stop(self) -> None:
        self._stop.set()

    async def release_due(self) -> None:
        with self._lock:
            due = list(self._due)
            self._due.clear()
        if not due:
            return
        lookups = asyncio.Semaphore(_LOOKUPS)

        async def look(key: str) -> _Finished | None:
            async with lookups:
                return await self._finished(key)

        found = await asyncio.gather(*(look(key) for key in due))
        finished = [source for source in found if source is not None]
        if finished:
            await asyncio.to_thread(self._release, finished)
        forget = self._forget
        if forget is None:
            return
        for released in finished:
            if released.records is None:
                continue
            source, variants = released.records
            # Kept here first: a record is never in neither place (one left in both is read
            # from the table at the end).
            self.records.add(source)
            for variant in variants:
                self.records.add(variant)
            try:
                await forget(source, variants)
            except Exception:  # memory only: the log reads what is left in the table
                logger.exception("removing the records of %s failed", source.key)

    async def _finished(self, key: str) -> _Finished | None:
        with self._lock:
            if key in self._done:  # released already
                return None
        source, variants = await self._table.source_state(self._place.input_bucket, key)
        if source is None or source.archived or not source.finished:
            return None
        downloads = []
        for variant in variants.values():
            if variant.run_id != source.run_id or variant.status != VariantStatus.DONE:
                continue
            if not variant.output_key:
                continue
            destination = local_output_path(
                self._place.out, variant.output_key, self._place.config.output_prefix
            )
            if destination is not None:  # the log says why it is not downloaded
                downloads.append(Download(variant.output_key, destination))
        if downloads and source.manifest_key and source.announced_at:  # it has one
            destination = local_output_path(
                self._place.out, source.manifest_key, self._place.config.output_prefix
            )
            if destination is not None:
                downloads.append(Download(source.manifest_key, destination))
        with self._lock:
            self._done.add(key)
            version = self._versions.get(key)
        # Announced: nothing will write its records again (the announcement was the last).
        records = (source, list(variants.values())) if source.announced_at else None
        return _Finished(key, version, tuple(downloads), records)

    # --- releasing (a worker thread) --------------------------------------------------------
    def _release(self, finished: Sequence[_Finished]) -> None:
        downloads = [download for source in finished for download in source.downloads]
        failures = download_all(self._s3, self._place.output_bucket, downloads)
        self.downloaded.update((download, failures.get(download)) for download in downloads)
        self._delete(self._place.output_bucket, [{"Key": d.key} for d in downloads])
        uploads = []
        for source in finished:
            upload: dict[str, Any] = {"Key": source.key}
            if source.version_id:  # exactly that version: no delete marker left behind
                upload["VersionId"] = source.version_id
            uploads.append(upload)
            # Releasing memory, not a user's delete: the source's records and outputs must
            # not be marked deleted (the stack would announce an ObjectRemoved event).
            silence_removal(self._place.input_bucket, source.key, source.version_id)
        self._delete(self._place.input_bucket, uploads)
        self.released += len(finished)

    def _delete(self, bucket: str, objects: list[dict[str, Any]]) -> None:
        for start in range(0, len(objects), _DELETE_BATCH):
            chunk: Any = objects[start : start + _DELETE_BATCH]
            try:
                response = self._s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": chunk, "Quiet": True}
                )
            except Exception:
                logger.exception("removing %d objects from %s failed", len(chunk), bucket)
                continue
            for error in response.get("Errors", []):
                logger.warning("removing %s from %s failed: %s", error.get("Key"), bucket, error)

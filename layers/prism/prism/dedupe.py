"""Dedupe (``dedupe: true``): which renders are the same render.

Two tasks are the same render when their sources' bytes are identical (SHA-256 of the
content, not the ETag, which differs for multipart uploads) and their variant specs are
too: everything that decides the output's pixels and encoding (transforms, format,
quality, effort, metadata kept, animation, background, watermark), not its name or HTTP
headers, which the copy sets afresh. A watermark logo is named by its key, so a logo
replaced at the same key is not noticed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prism.messages import VariantTask
from prism.outcomes import superseded_record, variant_record
from prism.output_formats import FORMATS, canonical_name
from prism.ports import Objects, ProcessingLog, WriteResult
from prism.records import RenderRef, SourceFacts, VariantRecord, VariantStatus

# What only names or labels an output: not part of its spec.
_NOT_SPEC = {"name", "cache_control", "content_disposition", "user_metadata"}


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec_digest(task: VariantTask) -> str:
    spec = {
        "variant": task.variant.model_dump(mode="json", exclude=_NOT_SPEC),
        "watermark": task.watermark.model_dump(mode="json") if task.watermark else None,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Reused:
    """A variant copied from an earlier identical render: its outcome, not yet recorded."""

    task: VariantTask
    record: VariantRecord
    # None: a later run's output is at its key already, and nothing was copied.
    etag: str | None


class Reuses:
    """Finds earlier renders of a source's bytes and copies them to this run's keys."""

    def __init__(
        self, objects: Objects, log: ProcessingLog, output_bucket: str, io: asyncio.Semaphore
    ) -> None:
        self._objects = objects
        self._log = log
        self._output_bucket = output_bucket
        self._io = io

    async def reuse(
        self, tasks: Sequence[VariantTask], content: str
    ) -> tuple[dict[str, Reused], SourceFacts | None]:
        """The tasks (by variant name) whose render could be copied, and the source's facts
        as recorded with those renders."""
        specs = {task.variant.name: spec_digest(task) for task in tasks}
        async with self._io:
            found = await self._log.find_renders(content, list(specs.values()))
        candidates = [
            (task, found[specs[task.variant.name]])
            for task in tasks
            if specs[task.variant.name] in found
        ]
        copies = await asyncio.gather(*(self._copy(task, ref) for task, ref in candidates))
        reused = {
            task.variant.name: copy
            for (task, _), copy in zip(candidates, copies, strict=True)
            if copy is not None
        }
        original = next((ref.original for _, ref in candidates if ref.original), None)
        return reused, original

    async def remember(
        self,
        content: str,
        done: Sequence[tuple[VariantTask, VariantRecord, str]],
        original: SourceFacts | None,
    ) -> None:
        """Keep each rendered output (task, record, ETag) for later identical uploads."""
        await asyncio.gather(*(self._remember(content, *item, original) for item in done))

    async def _remember(
        self,
        content: str,
        task: VariantTask,
        record: VariantRecord,
        etag: str,
        original: SourceFacts | None,
    ) -> None:
        assert record.output_key and record.format and record.width and record.height
        ref = RenderRef(
            output_key=record.output_key,
            etag=etag,
            content_type=FORMATS[canonical_name(record.format)].content_type,
            format=record.format,
            width=record.width,
            height=record.height,
            bytes=record.bytes or 0,
            source=task.source.id,
            frames=record.frames,
            stripped=record.stripped,
            original=original,
        )
        async with self._io:
            await self._log.remember_render(content, spec_digest(task), ref)

    async def _copy(self, task: VariantTask, ref: RenderRef) -> Reused | None:
        started = time.perf_counter()
        async with self._io:
            copied = await self._objects.copy_in_order(
                self._output_bucket,
                ref.output_key,
                ref.etag,
                task.output_key,
                content_type=ref.content_type,
                run_id=task.run_id,
                order=task.run_order,
                metadata=task.output_metadata,
                cache_control=task.variant.cache_control,
                content_disposition=task.variant.content_disposition,
            )
        if copied is None:
            return None  # the earlier output changed or is gone: render it
        written, etag = copied
        if written is WriteResult.NEWER_EXISTS:
            return Reused(task, superseded_record(task), None)
        record = variant_record(
            task,
            status=VariantStatus.DONE,
            output_key=task.output_key,
            format=ref.format,
            width=ref.width,
            height=ref.height,
            bytes=ref.bytes,
            duration_ms=round((time.perf_counter() - started) * 1000),
            frames=ref.frames,
            stripped=ref.stripped,
            reused_from=ref.source,
        )
        return Reused(task, record, etag)

"""Deleting a source's outputs when the source is deleted (``s3:ObjectRemoved:*``).

A deletion is registered like an upload, as the key's newest run (status ``deleted``,
nothing expected), so every render of an earlier run still in flight is stale from then
on: a worker that writes after this removes its own output again when its outcome is
refused, and a task not yet started renders nothing and removes what an earlier attempt
of it wrote (``prism.worker``). Then every output the source owns is removed, its manifest
included, and its records are marked ``deleted``: kept for the audit trail, without
their outputs, until ``PRISM_DELETED_RETENTION_DAYS`` have passed.

A removal that is not the key's last word is ignored: in a versioned bucket, deleting a
version that is not the current one, or a delete that a newer upload of the key has
already followed (the key exists; S3's sequencer orders the two when their notifications
arrive out of order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aws_lambda_powertools.metrics import MetricUnit

from prism.announce import Announcer
from prism.config import PipelineConfig
from prism.jobs import JobCounters
from prism.observability import logger, metrics
from prism.ports import Objects, ProcessingLog, Registration
from prism.records import SourceRecord, SourceStatus, VariantRecord, expiry, utc_now
from prism.settings import Settings
from prism.uploads import Removal


class Deletions:
    def __init__(
        self,
        objects: Objects,
        log: ProcessingLog,
        settings: Settings,
        config: PipelineConfig,
        announcer: Announcer,
    ) -> None:
        self._objects = objects
        self._log = log
        self._settings = settings
        self._config = config
        self._announcer = announcer

    async def delete(self, removal: Removal) -> None:
        bucket, key = removal.source.bucket, removal.source.key
        if await self._objects.head(bucket, key) is not None:
            logger.info(
                "Removal of a version that is not the current one, or of an upload since "
                "replaced: its outputs stay",
                source=removal.source.id,
                version_id=removal.source.version_id,
            )
            return
        deleted_at = utc_now()
        _, recorded = await self._log.source_state(bucket, key)
        retention = self._settings.deleted_retention_days
        registration, deletion = await self._log.register_source(
            SourceRecord(
                bucket=bucket,
                key=key,
                job_id="",
                run_id=removal.run_id,
                status=SourceStatus.DELETED.value,
                expected=0,
                registered_at=deleted_at,
                finished_at=deleted_at,
                deleted_at=deleted_at,
                sequencer=removal.sequencer,
            ),
            JobCounters(),
            expires_at=expiry(deleted_at, retention),
        )
        if registration is Registration.OUTDATED:
            logger.info(
                "Removal older than the key's current upload ignored", source=removal.source.id
            )
            return
        removed = await self._remove_outputs(removal, deletion, recorded.values())
        marked = await self._log.mark_deleted(
            bucket, key, deletion.deleted_at or deleted_at, expiry(deletion.deleted_at, retention)
        )
        metrics.add_metric(name="SourcesDeleted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="OutputsDeleted", unit=MetricUnit.Count, value=len(removed))
        logger.info(
            "Source deleted",
            source=removal.source.id,
            outputs_removed=len(removed),
            records_marked=marked,
            redelivered=registration is Registration.ALREADY,
        )
        await self._announcer.source_deleted(deletion, removed)

    async def _remove_outputs(
        self, removal: Removal, deletion: SourceRecord, recorded: Iterable[VariantRecord]
    ) -> list[str]:
        """Remove every output of the source written before ``deletion``; the keys removed.

        The candidates are what its records name and what the current config would name;
        only keys claimed for this source are touched, so another source's output at a
        key this one was refused (an output conflict) stays."""
        key, output_bucket = removal.source.key, self._settings.output_bucket
        prefix = self._settings.upload_prefix
        candidates = {v.output_key for v in recorded if v.output_key}
        candidates |= {
            self._config.output_key_for(key, variant, prefix) for variant in self._config.variants
        }
        manifest = self._config.manifest_key_for(key, prefix)
        if manifest:
            candidates.add(manifest)
        owners = await self._log.claim_owners(output_bucket, sorted(candidates))
        own = sorted(k for k in candidates if owners.get(k) == removal.source.id)
        results = await asyncio.gather(
            *(
                self._objects.remove_outputs_up_to(output_bucket, k, deletion.generation)
                for k in own
            )
        )
        return [k for k, removed in zip(own, results, strict=True) if removed]

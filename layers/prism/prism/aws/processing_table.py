"""The processing-log table (the ``ProcessingLog`` port): registering sources, claiming
output keys and recording outcomes exactly once.

Exactness under duplicate deliveries comes from one transaction per event: the variant
item is written only if this run has not written it yet, the source's counter is
incremented only if the source still belongs to this run, and the job's counter shard is
incremented in the same transaction. A redelivered message therefore finds its variant
item already there and counts nothing; a message from a superseded run (the object was
uploaded again) finds a different run on the source and counts nothing.

Each output key is claimed for the one source that claims it first (a conditional put), so
of two sources that map to one output key (``cat.jpg`` and ``cat.png`` under ``{stem}``)
exactly one wins, and the other's variant is refused instead of silently overwriting.

Finished records get ``expires_at``, ``retention_days`` after they finished, in the write
that records them: a variant item with its outcome, a ``RUN#`` item (a past run) when it is
written. The source item (``SOURCE``, the current run) and output claims never expire:
the source item holds the key's ``generation``, the run order every output in S3 carries,
and a key whose source item was gone would start again at generation 1, its new outputs
refused as older than the ones there (``WriteResult.NEWER_EXISTS``). One source item per
key is kept, as one claim per output key is.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from botocore.exceptions import ClientError

from prism.aws import schema
from prism.aws.errors import CONDITION_FAILED as CONDITION_FAILED_EXCEPTION
from prism.aws.errors import error_code
from prism.aws.schema import SOURCE_COUNTERS, to_attributes
from prism.aws.table_calls import batch_get, partition_items, update_if
from prism.errors import Reason
from prism.jobs import JobCounters, past_run_counters, source_counters, variant_counters
from prism.ports import RecordResult, Registration, Settlement
from prism.records import (
    RenderRef,
    SourceFacts,
    SourceRecord,
    SourceStatus,
    VariantRecord,
    VariantStatus,
    expiry,
    final_source_status,
    utc_now,
)

TRANSACTION_ATTEMPTS = 6
# A transaction's cancellation reason for an item whose condition failed.
CONDITION_FAILED = "ConditionalCheckFailed"


class TransactionConflict(Exception):
    """Another transaction was writing the same item at the same moment."""


class ProcessingTable:
    """``retention_days``: how long a finished record is kept before DynamoDB's TTL removes
    it; 0 keeps it."""

    def __init__(self, dynamodb: Any, table_name: str, *, retention_days: int = 0) -> None:
        self._db = dynamodb
        self._table = table_name
        self._retention_days = retention_days

    def _expiry(self, finished_at: str | None) -> int | None:
        return expiry(finished_at, self._retention_days)

    async def register_source(
        self, record: SourceRecord, counters: JobCounters, *, expires_at: int | None = None
    ) -> tuple[Registration, SourceRecord]:
        """Start a run for a source and add it to its job.

        The run before it (if any) is kept as a ``RUN#`` item for its job's log. If it was
        still in progress it is superseded: what it has not finished is counted as skipped in
        its job, in the same transaction, so that job's counts still add up (its late
        outcomes are then stale and count nothing). An upload whose S3 sequencer is older
        than the registered run's is OUTDATED and not registered. Returns the registration
        and the source's current record (with the run's generation).

        A deletion registers this way too (a run of status ``deleted`` that expects nothing,
        ``expires_at`` its TTL): later outcomes of the runs before it are then stale.
        """
        for _ in range(TRANSACTION_ATTEMPTS):
            current, exhausted = await self._current_and_exhausted(record)
            if current is not None and current.run_id == record.run_id:
                return Registration.ALREADY, current
            if current is not None and _older(record.sequencer, current.sequencer):
                return Registration.OUTDATED, current
            new = replace(
                record,
                generation=(current.generation if current else 0) + 1,
                # A backfill has no event of its own: it keeps the upload's place in order.
                sequencer=record.sequencer or (current.sequencer if current else None),
            )
            # One update per shard item: a transaction may touch an item only once.
            shard_counters = {(new.job_id, new.shard): counters}
            items = [self._put_replacing(new, current, expires_at)]
            if exhausted is not None:
                # Redriven after its upload was given up: it counts once, as this run.
                shard = (exhausted.job_id, exhausted.shard)
                shard_counters[shard] = shard_counters.get(shard, JobCounters()) - (
                    past_run_counters(exhausted)
                )
                items.append(self._undo_exhausted(exhausted))
            if current is not None:
                past = current
                if current.status == SourceStatus.PROCESSING:
                    skipped = current.skipped + current.unfinished
                    past = replace(
                        current,
                        status=final_source_status(current.done, current.failed, skipped).value,
                        skipped=skipped,
                        reason=Reason.SUPERSEDED.value,
                        finished_at=utc_now(),
                    )
                    superseded = source_counters(past.status) + JobCounters(
                        variants_skipped=current.unfinished
                    )
                    shard = (current.job_id, current.shard)
                    shard_counters[shard] = shard_counters.get(shard, JobCounters()) + superseded
                archive = schema.source_item(
                    replace(past, archived=True), self._expiry(past.finished_at)
                )
                items.append({"Put": {"TableName": self._table, "Item": archive}})
            items += [
                self._shard_update(job_id, shard_number, shard_delta)
                for (job_id, shard_number), shard_delta in shard_counters.items()
                if not shard_delta.empty
            ]
            if not await self._transact(*items):
                return Registration.REGISTERED, new
            # The source changed between reading and writing it: look again.
        raise TransactionConflict(f"could not register {record.bucket}/{record.key}")

    async def record_past_run(self, record: SourceRecord) -> bool:
        """Account in its job for a run that never became the source's current one (the
        object was gone or overwritten before its fan-out, or its upload exhausted its
        retries); False if recorded before."""
        reasons = await self._transact(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": schema.source_item(
                        replace(record, archived=True), self._expiry(record.finished_at)
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._shard_update(record.job_id, record.shard, past_run_counters(record)),
        )
        return not reasons

    async def _current_and_exhausted(
        self, record: SourceRecord
    ) -> tuple[SourceRecord | None, SourceRecord | None]:
        """The source's current record, and this run's record as an upload that exhausted
        its retries if it is one: both items in one consistent BatchGetItem."""
        current_key, run_key = schema.source_key(record.bucket, record.key), schema.run_key(record)
        current = exhausted = None
        for item in await batch_get(self._db, self._table, [current_key, run_key]):
            found = schema.from_item(SourceRecord, item)
            if item["sk"] == current_key["sk"]:
                current = found
            elif found.reason == Reason.RETRIES_EXHAUSTED:
                exhausted = found
        return current, exhausted

    def _undo_exhausted(self, past: SourceRecord) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self._table,
                "Key": schema.run_key(past),
                "ConditionExpression": "reason = :exhausted",
                "ExpressionAttributeValues": to_attributes(
                    {":exhausted": Reason.RETRIES_EXHAUSTED.value}
                ),
            }
        }

    def _put_replacing(
        self, record: SourceRecord, current: SourceRecord | None, expires_at: int | None = None
    ) -> dict[str, Any]:
        """A put that succeeds only if the source item is still as ``current`` says."""
        if current is None:
            condition, values = "attribute_not_exists(pk)", {}
        else:
            # Every field a concurrent outcome or completion changes: a supersede computed
            # from a stale read must not commit (it would count the old run finished twice).
            condition = (
                "run_id = :run AND #status = :status AND done = :done AND failed = :failed"
                " AND skipped = :skipped"
            )
            values = {
                ":run": current.run_id,
                ":status": current.status,
                ":done": current.done,
                ":failed": current.failed,
                ":skipped": current.skipped,
            }
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": schema.source_item(record, expires_at),
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = to_attributes(values)
            put["ExpressionAttributeNames"] = {"#status": "status"}
        return {"Put": put}

    async def record_variant(self, record: VariantRecord) -> RecordResult:
        """Record a variant's outcome for its run, once.

        A ``retries_exhausted`` failure is the one outcome that can be replaced: a message
        redriven from the dead-letter queue that then succeeds turns it into its real
        outcome, with the counters moved over exactly."""
        counted = await self._record_first(record)
        if counted is not RecordResult.DUPLICATE or record.reason == Reason.RETRIES_EXHAUSTED:
            return counted
        return await self._replace_exhausted(record)

    async def record_variants(
        self,
        records: Sequence[VariantRecord],
        seen: SourceRecord,
        original: SourceFacts | None = None,
    ) -> SourceRecord | None:
        """Record first outcomes of one source's run in one transaction, given the source
        as read before they were rendered (``seen``); the source as it is now, or None,
        having written nothing, when anything differs from what ``seen`` and the records
        say (a variant recorded before, the run superseded, another outcome or a loaded
        mark since): the caller then records them one by one.

        The same write marks the source loaded if ``seen`` has no mark yet, and settles it
        (its final status) if these are all the variants it still expected, so a source
        rendered in one batch costs one transaction instead of one per step. ``original``
        (what the upload decoded to) is kept on the source for its manifest."""
        deltas: dict[str, int] = {}
        counters = JobCounters()
        for record in records:
            name = SOURCE_COUNTERS[VariantStatus(record.status)]
            deltas[name] = deltas.get(name, 0) + 1
            counters = counters + variant_counters(record.status, record.bytes or 0)
        now = replace(
            seen,
            done=seen.done + deltas.get("done", 0),
            failed=seen.failed + deltas.get("failed", 0),
            skipped=seen.skipped + deltas.get("skipped", 0),
            loaded_at=seen.loaded_at or utc_now(),
            original=original or seen.original,
        )
        if seen.loaded_at is None:
            counters = counters + JobCounters(sources_loaded=1)
        if now.finished:
            final = final_source_status(now.done, now.failed, now.skipped).value
            counters = counters + source_counters(final) - source_counters(seen.status)
            now = replace(now, status=final, finished_at=utc_now())
        run = to_attributes({":run": seen.run_id})
        puts = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": schema.variant_item(record, self._expiry(record.finished_at)),
                    "ConditionExpression": "attribute_not_exists(pk) OR run_id <> :run",
                    "ExpressionAttributeValues": run,
                }
            }
            for record in records
        ]
        reasons = await self._transact(
            *puts,
            self._source_update_from(seen, now, deltas),
            self._shard_update(seen.job_id, seen.shard, counters),
        )
        return None if reasons else now

    def _source_update_from(
        self, seen: SourceRecord, now: SourceRecord, deltas: dict[str, int]
    ) -> dict[str, Any]:
        """The source item from ``seen`` to ``now``, conditional on it still being ``seen``."""
        add = schema.add_expression(deltas)
        sets = {
            "loaded_at": now.loaded_at,
            "#status": now.status,
            "finished_at": now.finished_at,
            "original": now.original,
        }
        changed = {
            name: asdict(value) if isinstance(value, SourceFacts) else value
            for name, value in sets.items()
            if value is not None and value != getattr(seen, name.lstrip("#"))
        }
        values = {f":s{i}": value for i, value in enumerate(changed.values())}
        set_clause = ", ".join(f"{name} = :s{i}" for i, name in enumerate(changed))
        condition = (
            "run_id = :run AND #status = :seen_status AND done = :seen_done"
            " AND failed = :seen_failed AND skipped = :seen_skipped"
            + ("" if seen.loaded_at else " AND attribute_not_exists(loaded_at)")
        )
        seen_values = {
            ":run": seen.run_id,
            ":seen_status": seen.status,
            ":seen_done": seen.done,
            ":seen_failed": seen.failed,
            ":seen_skipped": seen.skipped,
        }
        return {
            "Update": {
                "TableName": self._table,
                "Key": schema.source_key(seen.bucket, seen.key),
                "UpdateExpression": (f"SET {set_clause} " if set_clause else "")
                + add["UpdateExpression"],
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {
                    **add["ExpressionAttributeNames"],
                    "#status": "status",
                },
                "ExpressionAttributeValues": {
                    **add["ExpressionAttributeValues"],
                    **to_attributes({**values, **seen_values}),
                },
            }
        }

    async def _record_first(self, record: VariantRecord) -> RecordResult:
        run = to_attributes({":run": record.run_id})
        reasons = await self._transact(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": schema.variant_item(record, self._expiry(record.finished_at)),
                    "ConditionExpression": "attribute_not_exists(pk) OR run_id <> :run",
                    "ExpressionAttributeValues": run,
                }
            },
            self._source_counter_update(record, {SOURCE_COUNTERS[VariantStatus(record.status)]: 1}),
            self._shard_update(
                record.job_id, record.shard, variant_counters(record.status, record.bytes or 0)
            ),
        )
        if not reasons:
            return RecordResult.COUNTED
        if reasons[0] == CONDITION_FAILED:
            return RecordResult.DUPLICATE
        return RecordResult.STALE

    async def _replace_exhausted(self, record: VariantRecord) -> RecordResult:
        failed, now = (
            SOURCE_COUNTERS[VariantStatus.FAILED],
            SOURCE_COUNTERS[VariantStatus(record.status)],
        )
        deltas = {failed: -1}
        deltas[now] = deltas.get(now, 0) + 1
        moved = variant_counters(record.status, record.bytes or 0) - variant_counters(
            VariantStatus.FAILED
        )
        reasons = await self._transact(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": schema.variant_item(record, self._expiry(record.finished_at)),
                    "ConditionExpression": "run_id = :run AND reason = :exhausted",
                    "ExpressionAttributeValues": to_attributes(
                        {":run": record.run_id, ":exhausted": Reason.RETRIES_EXHAUSTED.value}
                    ),
                }
            },
            self._source_counter_update(record, deltas),
            self._shard_update(record.job_id, record.shard, moved),
        )
        if not reasons:
            return RecordResult.COUNTED
        return RecordResult.DUPLICATE if reasons[0] == CONDITION_FAILED else RecordResult.STALE

    def _source_counter_update(
        self, record: VariantRecord, deltas: dict[str, int]
    ) -> dict[str, Any]:
        """Add ``deltas`` to the source's counters if the source is still on this run."""
        check: dict[str, Any] = {
            "TableName": self._table,
            "Key": schema.source_key(record.bucket, record.key),
            "ConditionExpression": "run_id = :run",
        }
        run = to_attributes({":run": record.run_id})
        if not any(deltas.values()):
            return {"ConditionCheck": {**check, "ExpressionAttributeValues": run}}
        add = schema.add_expression(deltas)
        add["ExpressionAttributeValues"] |= run
        return {"Update": {**check, **add}}

    async def mark_loaded(
        self,
        bucket: str,
        key: str,
        run_id: str,
        job_id: str,
        shard: int,
        original: SourceFacts | None = None,
    ) -> None:
        """Count the source as loaded (fetched and decoded) in its job, once per run, and
        keep ``original`` (what it decoded to) on it."""
        values = {
            ":now": utc_now(),
            ":run": run_id,
            ":original": asdict(original) if original else None,
        }
        await self._transact(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": schema.source_key(bucket, key),
                    "UpdateExpression": "SET loaded_at = :now"
                    + (", original = :original" if original else ""),
                    "ConditionExpression": "run_id = :run AND attribute_not_exists(loaded_at)",
                    "ExpressionAttributeValues": to_attributes(values),
                }
            },
            self._shard_update(job_id, shard, JobCounters(sources_loaded=1)),
        )

    async def settle_source(self, bucket: str, key: str, run_id: str) -> Settlement:
        """Give the source the status its counts call for, once every variant is accounted
        for (again, when a redriven variant changed its outcome).

        ``SETTLED`` when this call's write did so, ``WAS_SETTLED`` when an earlier write had
        (whose caller announces the run, or, if that caller died, the redelivery of its
        messages: see ``Outcomes.settle_run``). Called after every outcome, duplicates
        included, so a worker that died between counting and settling is made good by the
        redelivery."""
        for _ in range(TRANSACTION_ATTEMPTS):
            source = await self.get_source(bucket, key)
            if source is None or source.run_id != run_id or not source.finished:
                return Settlement.PENDING
            status = final_source_status(source.done, source.failed, source.skipped).value
            if status == source.status:
                return Settlement.WAS_SETTLED
            delta = source_counters(status) - source_counters(source.status)
            reasons = await self._transact(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": schema.source_key(bucket, key),
                        "UpdateExpression": "SET #status = :final, finished_at = :now",
                        "ConditionExpression": (
                            "#status = :seen AND run_id = :run AND done = :done"
                            " AND failed = :failed AND skipped = :skipped"
                        ),
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": to_attributes(
                            {
                                ":final": status,
                                ":now": utc_now(),
                                ":seen": source.status,
                                ":run": run_id,
                                ":done": source.done,
                                ":failed": source.failed,
                                ":skipped": source.skipped,
                            }
                        ),
                    }
                },
                *([] if delta.empty else [self._shard_update(source.job_id, source.shard, delta)]),
            )
            if not reasons:
                return Settlement.SETTLED
        raise TransactionConflict(f"could not settle {bucket}/{key}")

    async def source_state(
        self, bucket: str, key: str
    ) -> tuple[SourceRecord | None, dict[str, VariantRecord]]:
        """The source's current record and its variants' records (any run), in one query."""
        source: SourceRecord | None = None
        variants: dict[str, VariantRecord] = {}
        for item in await partition_items(self._db, self._table, schema.source_pk(bucket, key)):
            sort_key = item["sk"]["S"]
            if sort_key == schema.SOURCE_SK:
                source = schema.from_item(SourceRecord, item)
            elif sort_key.startswith(schema.VARIANT_SK_PREFIX):
                variant = schema.from_item(VariantRecord, item)
                variants[variant.variant] = variant
        return source, variants

    async def get_source(self, bucket: str, key: str) -> SourceRecord | None:
        response = await self._db.get_item(
            TableName=self._table, Key=schema.source_key(bucket, key), ConsistentRead=True
        )
        item = response.get("Item")
        return schema.from_item(SourceRecord, item) if item else None

    async def claim_output(self, bucket: str, key: str, source_id: str) -> str:
        """Claim ``bucket/key`` for ``source_id``; the owner afterwards (``source_id`` when
        the claim is, or already was, this source's). Re-uploads keep their claim."""
        try:
            await self._db.put_item(
                TableName=self._table,
                Item={**schema.claim_key(bucket, key), **to_attributes({"source": source_id})},
                ConditionExpression="attribute_not_exists(pk) OR #source = :source",
                ExpressionAttributeNames={"#source": "source"},
                ExpressionAttributeValues=to_attributes({":source": source_id}),
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED_EXCEPTION:
                raise
            response = await self._db.get_item(
                TableName=self._table, Key=schema.claim_key(bucket, key), ConsistentRead=True
            )
            return str(schema.from_attributes(response["Item"])["source"])
        return source_id

    async def claim_owners(self, bucket: str, keys: Sequence[str]) -> dict[str, str]:
        """The owning source of each of ``keys`` that has been claimed."""
        unique = list(dict.fromkeys(keys))
        items = await batch_get(
            self._db, self._table, [schema.claim_key(bucket, k) for k in unique]
        )
        prefix = schema.claim_pk(bucket, "")
        return {
            str(values["pk"]).removeprefix(prefix): str(values["source"])
            for values in map(schema.from_attributes, items)
        }

    async def find_renders(self, content: str, specs: Sequence[str]) -> dict[str, RenderRef]:
        """Renders of this source content with these variant specs, by spec digest."""
        keys = [schema.render_key(content, spec) for spec in dict.fromkeys(specs)]
        return {
            item["sk"]["S"].removeprefix(schema.SPEC_SK_PREFIX): schema.render_from_item(item)
            for item in await batch_get(self._db, self._table, keys)
        }

    async def remember_render(self, content: str, spec: str, render: RenderRef) -> None:
        """Keep ``render`` for later uploads of the same content and spec (the latest wins)."""
        await self._db.put_item(
            TableName=self._table,
            Item={
                **schema.render_key(content, spec),
                **to_attributes(
                    {**asdict(render), schema.EXPIRES_AT: expiry(None, self._retention_days)}
                ),
            },
        )

    async def get_past_run(self, bucket: str, key: str, run_id: str) -> SourceRecord | None:
        """A run kept as a ``RUN#`` item (one that is not the source's current run)."""
        response = await self._db.get_item(
            TableName=self._table,
            Key=to_attributes({"pk": schema.source_pk(bucket, key), "sk": schema.run_sk(run_id)}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return schema.from_item(SourceRecord, item) if item else None

    async def mark_announced(
        self, bucket: str, key: str, run_id: str, at: str, *, past: bool = False
    ) -> bool:
        """Mark the run's events published (on its ``RUN#`` item if ``past``, else on the
        source item); False if the run is not the item's (any more) or is marked already."""
        sort_key = schema.run_sk(run_id) if past else schema.SOURCE_SK
        return await update_if(
            self._db,
            self._table,
            to_attributes({"pk": schema.source_pk(bucket, key), "sk": sort_key}),
            "SET announced_at = :at",
            "run_id = :run AND attribute_not_exists(announced_at)",
            {":at": at, ":run": run_id},
        )

    async def mark_deleted(
        self, bucket: str, key: str, deleted_at: str, expires_at: int | None
    ) -> int:
        """Mark the source's variant and past-run items deleted (kept for the audit trail
        until ``expires_at``, or their own expiry if sooner); how many were marked. Only
        items finished before the deletion: a later upload's records are left alone."""
        items = await partition_items(self._db, self._table, schema.source_pk(bucket, key))
        marks = []
        for item in items:
            values = schema.from_attributes(item)
            if str(values["sk"]) == schema.SOURCE_SK or values.get("deleted_at"):
                continue
            if values.get("finished_at") and str(values["finished_at"]) > deleted_at:
                continue
            current = values.get(schema.EXPIRES_AT)
            expiry = min(e for e in (current, expires_at) if e) if current or expires_at else None
            marks.append(
                update_if(
                    self._db,
                    self._table,
                    {"pk": item["pk"], "sk": item["sk"]},
                    "SET deleted_at = :deleted"
                    + (f", {schema.EXPIRES_AT} = :expires" if expiry else ""),
                    # Not an item a later upload's run replaced it with meanwhile.
                    "attribute_exists(pk) AND attribute_not_exists(deleted_at)"
                    " AND (attribute_not_exists(finished_at) OR finished_at <= :deleted)",
                    {":deleted": deleted_at, ":expires": expiry},
                )
            )
        return sum(await asyncio.gather(*marks))

    def _shard_update(self, job_id: str, shard: int, counters: JobCounters) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": schema.shard_key(job_id, shard),
                **schema.add_expression(schema.counter_deltas(counters)),
            }
        }

    async def _transact(self, *items: dict[str, Any]) -> list[str]:
        """Run a transaction; [] when it committed, else each item's cancellation code.

        Items of one source finish together and update the same source and shard items,
        so their transactions conflict now and then; DynamoDB's advice is to retry them."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                await self._db.transact_write_items(TransactItems=list(items))
                return []
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                if CONDITION_FAILED in reasons:
                    return reasons
                if attempt == TRANSACTION_ATTEMPTS - 1 or not _is_conflict(exc, reasons):
                    raise
            await asyncio.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")


def _older(sequencer: str | None, than: str | None) -> bool:
    return bool(sequencer and than and sequencer < than)


def _cancellation_reasons(exc: ClientError) -> list[str]:
    if error_code(exc) != "TransactionCanceledException":
        return []
    return [
        str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])
    ]


def _is_conflict(exc: ClientError, reasons: list[str]) -> bool:
    code = error_code(exc)
    return code == "TransactionConflictException" or "TransactionConflict" in reasons

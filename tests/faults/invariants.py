"""What must hold after any scenario, however it was disturbed, once the pipeline is idle.

:func:`check_invariants` reads the whole processing table, both dead-letter queues, the main
queues and the output bucket through the test's own (unfaulted) clients and checks:

1. every uploaded source is registered, or accounted for as a past run (gone, overwritten,
   retries exhausted), or its upload message sits in the uploads DLQ;
2. every variant of every registered source is recorded for the source's current run, or
   its task sits in the variants DLQ, or its source's upload does (nothing lost); a
   source's done/failed/skipped counters equal its recorded variants (nothing counted
   twice, nothing uncounted); a source whose variants are all counted has the final status
   its counts call for; no run is both a source's current and a past run;
3. every job's counters (summed over its ``JOB#<id>#SHARD#<nnn>`` items) equal what its
   records add up to (``bytes_in`` excepted);
4. every ``done`` variant's output object exists, and every output object belongs to a
   ``done`` record of its source's current run (its ``prism-run`` metadata is that run);
5. no sealed job is left ``running`` or ``cancelling``, and a job that ended accounts for
   all of its sources and variants;
6. the main queues are empty, and every dead letter is accounted for: a task of a known
   source, an upload of a known key, or one of the poison messages the scenario sent.

Item layout (``prism.records``, ``prism.jobs``): ``SOURCE#<bucket>/<key>`` partitions hold
``SOURCE`` (the current run), ``VARIANT#<name>`` items and, for runs no longer current,
``RUN#<run id>`` items; ``JOB#<id>`` partitions hold ``JOB``, and each counter shard is a
partition ``JOB#<id>#SHARD#<nnn>`` of its own, with one ``SHARD`` item. A past
run's unfinished variants count as skipped in its job. Other items (output key claims,
``OUTPUT#<bucket>/<key>`` ``CLAIM``) and unknown attributes are ignored, so additions to
the layout (e.g. ``prism-run-order`` metadata) do not break the check.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from prism.aws.schema import (
    JOB_SK,
    RUN_SK_PREFIX,
    SHARD_SK,
    SOURCE_SK,
    VARIANT_SK_PREFIX,
    counters_from_item,
    from_attributes,
    from_item,
    parse_shard_pk,
    source_pk,
)
from prism.jobs import JobCounters, JobRecord, JobStatus
from prism.messages import BackfillRequest, VariantTask
from prism.records import (
    SourceRecord,
    SourceStatus,
    VariantRecord,
    VariantStatus,
    final_source_status,
)
from prism_cli.local.stack import LocalStack

MAIN_QUEUES = ("UploadsQueue", "VariantsQueue")
UPLOADS_DLQ = "UploadsDeadLetterQueue"
VARIANTS_DLQ = "VariantsDeadLetterQueue"
_EMPTY_QUEUE_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
# Job counters derived from the records (bytes_in is left out: it depends on how a source
# was registered, not on anything recorded per item).
_DERIVED_COUNTERS = tuple(f.name for f in fields(JobCounters) if f.name != "bytes_in")


@dataclass
class InvariantReport:
    scenario: str = ""
    sources: int = 0
    variants_expected: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    dead_lettered_variants: int = 0  # distinct tasks in the variants DLQ
    dead_lettered_unrecorded: int = 0  # ... of which no outcome was recorded
    dead_lettered_uploads: int = 0
    unrecorded_with_upload_in_dlq: int = 0  # variants of a registered source whose upload gave up
    poison: int = 0
    lost: int = 0
    double_counted: int = 0
    uncounted: int = 0
    stale_outputs: int = 0
    missing_outputs: int = 0
    jobs_running: int = 0
    unannounced: int = 0  # finished source runs and ended jobs never marked announced
    wall_seconds: float | None = None
    faults: str = ""
    violations: list[str] = field(default_factory=list)

    def violate(self, message: str) -> None:
        self.violations.append(message)

    def summary(self) -> str:
        wall = f", {self.wall_seconds:.1f} s" if self.wall_seconds is not None else ""
        faults = f" [{self.faults}]" if self.faults else ""
        return (
            f"{self.sources} sources / {self.variants_expected} variants: "
            f"{self.done} done, {self.failed} failed, {self.skipped} skipped, "
            f"DLQ {self.dead_lettered_variants} variants ({self.dead_lettered_unrecorded} "
            f"unrecorded) + {self.dead_lettered_uploads} uploads"
            + (
                f" ({self.unrecorded_with_upload_in_dlq} variants unrecorded)"
                if self.unrecorded_with_upload_in_dlq
                else ""
            )
            + f" + {self.poison} poison; "
            f"lost {self.lost}, double-counted {self.double_counted}, uncounted "
            f"{self.uncounted}, stale outputs {self.stale_outputs}, missing outputs "
            f"{self.missing_outputs}, jobs left running {self.jobs_running}, unannounced "
            f"{self.unannounced}{wall}{faults}"
            + (f"; {len(self.violations)} violations" if self.violations else "")
        )

    def assert_holds(self) -> None:
        if self.violations:
            shown = "\n  ".join(self.violations[:40])
            more = len(self.violations) - 40
            raise AssertionError(
                f"{self.scenario}: {self.summary()}\n  {shown}"
                + (f"\n  ... and {more} more" if more > 0 else "")
            )


@dataclass
class _Table:
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    shards: dict[str, JobCounters] = field(default_factory=dict)
    # Registrations: the current run (sk SOURCE) and past runs (sk RUN#...), per source pk.
    sources: dict[str, SourceRecord] = field(default_factory=dict)
    past_runs: dict[str, list[SourceRecord]] = field(default_factory=lambda: defaultdict(list))
    loaded: set[tuple[str, str]] = field(default_factory=set)  # (pk, run id) with loaded_at
    variants: dict[str, list[VariantRecord]] = field(default_factory=lambda: defaultdict(list))
    # Other items (e.g. output key claims, OUTPUT#<bucket>/<key> CLAIM): not checked here.
    other: Counter[str] = field(default_factory=Counter)


def _read_table(stack: LocalStack) -> _Table:
    db = stack.clients.dynamodb
    table = _Table()
    kwargs: dict[str, Any] = {
        "TableName": stack.environment["PRISM_TABLE_NAME"],
        "ConsistentRead": True,
    }
    while True:
        response = db.scan(**kwargs)
        for item in response.get("Items", []):
            _classify(table, item)
        if "LastEvaluatedKey" not in response:
            return table
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _classify(table: _Table, item: Mapping[str, Any]) -> None:
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    shard = parse_shard_pk(pk) if sk == SHARD_SK else None
    if shard is not None:
        job_id = shard[0]
        table.shards[job_id] = table.shards.get(job_id, JobCounters()) + counters_from_item(
            dict(item)
        )
        return
    if pk.startswith("JOB#"):
        if sk == JOB_SK:
            table.jobs[pk[len("JOB#") :]] = from_item(JobRecord, dict(item))
        else:
            table.other[sk.split("#", 1)[0]] += 1
        return
    if sk == SOURCE_SK or sk.startswith(RUN_SK_PREFIX):
        record = from_item(SourceRecord, dict(item))
        if sk == SOURCE_SK:
            table.sources[pk] = record
        else:
            table.past_runs[pk].append(record)
        if from_attributes(dict(item)).get("loaded_at"):
            table.loaded.add((pk, record.run_id))
    elif sk.startswith(VARIANT_SK_PREFIX):
        table.variants[pk].append(from_item(VariantRecord, dict(item)))
    else:
        table.other[sk.split("#", 1)[0]] += 1


@dataclass
class _DeadLetters:
    # (bucket, key, run id) -> variant names
    tasks: dict[tuple[str, str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    uploads: Counter[tuple[str, str]] = field(default_factory=Counter)
    poison: Counter[str] = field(default_factory=Counter)  # queue logical id -> count


def _receive_all(stack: LocalStack, queue: str) -> list[str]:
    """Every message of ``queue`` (hidden for ten minutes, so each is seen once)."""
    sqs = stack.clients.sqs
    url = stack.queue_url(queue)
    bodies: list[str] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600
    ).get("Messages", []):
        bodies.extend(message["Body"] for message in batch)
    return bodies


def _read_dead_letters(stack: LocalStack) -> _DeadLetters:
    dead = _DeadLetters()
    for body in _receive_all(stack, VARIANTS_DLQ):
        try:
            task = VariantTask.model_validate_json(body)
        except ValidationError:
            dead.poison[VARIANTS_DLQ] += 1
            continue
        dead.tasks[(task.source.bucket, task.source.key, task.run_id)].add(task.variant.name)
    for body in _receive_all(stack, UPLOADS_DLQ):
        keys = _uploads_in(body)
        if keys is None:
            dead.poison[UPLOADS_DLQ] += 1
        for bucket_key in keys or []:
            dead.uploads[bucket_key] += 1
    return dead


def _uploads_in(body: str) -> list[tuple[str, str]] | None:
    """The (bucket, key)s an uploads-queue message is about; None if it is not one."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if document.get("kind") == "prism.backfill":
        try:
            request = BackfillRequest.model_validate(document)
        except ValidationError:
            return None
        return [(request.source.bucket, request.source.key)]
    try:
        return [
            (record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"]))
            for record in document["Records"]
        ]
    except (KeyError, TypeError):
        return None


def _check_queues(stack: LocalStack, report: InvariantReport) -> None:
    sqs = stack.clients.sqs
    for queue in MAIN_QUEUES:
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.queue_url(queue),
            AttributeNames=list(_EMPTY_QUEUE_ATTRIBUTES),  # type: ignore[arg-type]
        )["Attributes"]
        waiting = {name: int(count) for name, count in attributes.items() if int(count)}
        if waiting:
            report.violate(f"queue {queue} is not empty: {waiting}")


def _list_outputs(stack: LocalStack) -> dict[str, dict[str, str]]:
    """Every output object's key and user metadata."""
    s3 = stack.clients.s3
    bucket = stack.bucket_name("OutputBucket")
    outputs: dict[str, dict[str, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            head = s3.head_object(Bucket=bucket, Key=entry["Key"])
            outputs[entry["Key"]] = dict(head.get("Metadata") or {})
    return outputs


def _counted(records: Iterable[VariantRecord]) -> Counter[str]:
    return Counter(record.status for record in records)


def check_invariants(
    stack: LocalStack,
    *,
    job_ids: Sequence[str],
    uploads: Sequence[tuple[str, str]],
    variant_names: Sequence[str],
    poison: Mapping[str, int] | None = None,
    scenario: str = "",
    wall_seconds: float | None = None,
    faults: str = "",
) -> InvariantReport:
    """Check everything the module doc lists; the report holds the counts and violations.

    ``uploads`` are the (bucket, key)s uploaded into the jobs ``job_ids``; every source is
    expected to render ``variant_names``; ``poison`` is how many malformed messages the
    scenario sent per queue (by the logical id of the DLQ they should end in)."""
    report = InvariantReport(scenario=scenario, wall_seconds=wall_seconds, faults=faults)
    table = _read_table(stack)
    dead = _read_dead_letters(stack)
    _check_queues(stack, report)
    report.sources = len(uploads)
    report.variants_expected = len(uploads) * len(variant_names)

    done_outputs: dict[str, VariantRecord] = {}
    derived: dict[str, Counter[str]] = defaultdict(Counter)
    for bucket, key in uploads:
        _check_source(table, dead, report, bucket, key, variant_names, done_outputs)
    for pk, source in table.sources.items():
        _derive(derived[source.job_id], source, table.variants.get(pk, []), past=False, table=table)
    for pk, runs in table.past_runs.items():
        for run in runs:
            _derive(derived[run.job_id], run, table.variants.get(pk, []), past=True, table=table)

    _check_jobs(table, derived, job_ids, report)
    _check_outputs(stack, table, done_outputs, report)
    _check_dead_letters(dead, uploads, report, dict(poison or {}))
    return report


def _check_source(
    table: _Table,
    dead: _DeadLetters,
    report: InvariantReport,
    bucket: str,
    key: str,
    variant_names: Sequence[str],
    done_outputs: dict[str, VariantRecord],
) -> None:
    pk = source_pk(bucket, key)
    source = table.sources.get(pk)
    if dead.uploads[(bucket, key)]:
        report.dead_lettered_uploads += 1
    if source is None:
        # Never the current run: a past run records why (gone, overwritten, or retries
        # exhausted, with the upload in the DLQ), or at least the upload is in the DLQ.
        if not table.past_runs.get(pk) and not dead.uploads[(bucket, key)]:
            report.lost += 1
            report.violate(f"{key}: never registered, and its upload is not in the DLQ")
        return
    current = [v for v in table.variants.get(pk, []) if v.run_id == source.run_id]
    by_name = {record.variant: record for record in current}
    in_dlq = dead.tasks.get((bucket, key, source.run_id), set())
    report.dead_lettered_variants += len(in_dlq)
    report.dead_lettered_unrecorded += len(in_dlq - set(by_name))
    # A source registered with nothing to render (cancelled, gone) has no variant items.
    rendered = source.reason is None and source.expected > 0
    if source.reason is None and source.expected != len(variant_names):
        report.violate(f"{key}: expects {source.expected} variants, not {len(variant_names)}")
    for past in table.past_runs.get(pk, []):
        if past.run_id == source.run_id:
            report.violate(f"{key}: run {source.run_id} is both the current and a past run")
    if rendered:
        for name in variant_names:
            if name in by_name or name in in_dlq:
                continue
            if dead.uploads[(bucket, key)]:
                # The upload gave up after registering: its message is in the uploads DLQ.
                report.unrecorded_with_upload_in_dlq += 1
                continue
            report.lost += 1
            report.violate(f"{key}: variant {name} neither recorded nor in the DLQ")
    statuses = _counted(current)
    report.done += statuses[VariantStatus.DONE]
    report.failed += statuses[VariantStatus.FAILED]
    report.skipped += statuses[VariantStatus.SKIPPED]
    for status in VariantStatus:
        counter = getattr(source, status.value)
        difference = counter - statuses[status]
        if rendered and difference > 0:
            report.double_counted += difference
            report.violate(f"{key}: {status.value} is {counter}, {statuses[status]} recorded")
        elif rendered and difference < 0:
            report.uncounted -= difference
            report.violate(f"{key}: {status.value} is {counter}, {statuses[status]} recorded")
    finished = source.done + source.failed + source.skipped >= source.expected
    if finished and source.status == SourceStatus.PROCESSING:
        report.violate(f"{key}: every variant counted but the source is still processing")
    if finished and source.expected and source.status != SourceStatus.PROCESSING:
        final = final_source_status(source.done, source.failed, source.skipped)
        if source.status != final:
            report.violate(f"{key}: status {source.status}, its counts say {final}")
    if not finished and source.status != SourceStatus.PROCESSING:
        report.violate(f"{key}: status {source.status} with variants unaccounted for")
    # Every run that ended is announced (its event published, then marked), whatever
    # failed on the way; only a run given up on with its messages in a DLQ may not be.
    ended = finished and source.status not in (SourceStatus.PROCESSING, SourceStatus.DELETED)
    if ended and not source.announced_at and not in_dlq and not dead.uploads[(bucket, key)]:
        report.unannounced += 1
        report.violate(f"{key}: run {source.run_id} ended ({source.status}), never announced")
    if statuses[VariantStatus.DONE] and (pk, source.run_id) not in table.loaded:
        report.violate(f"{key}: variants done but the source was never counted as loaded")
    for record in current:
        if record.status == VariantStatus.DONE:
            if record.output_key:
                done_outputs[record.output_key] = record
            else:
                report.violate(f"{key}: variant {record.variant} is done without an output key")


def _derive(
    counts: Counter[str],
    run: SourceRecord,
    variants: Sequence[VariantRecord],
    *,
    past: bool,
    table: _Table,
) -> None:
    """Add what one registration contributes to its job's counters."""
    pk = source_pk(run.bucket, run.key)
    counts["sources_registered"] += 1
    counts["variants_expected"] += run.expected
    counts["variants_done"] += run.done
    counts["variants_failed"] += run.failed
    counts["variants_skipped"] += run.skipped
    if (pk, run.run_id) in table.loaded:
        counts["sources_loaded"] += 1
    if run.status != SourceStatus.PROCESSING:
        counts["sources_finished"] += 1
        counts["sources_failed"] += int(run.status == SourceStatus.COMPLETE_WITH_FAILURES)
        counts["sources_skipped"] += int(run.status == SourceStatus.SKIPPED)
    if past:  # superseded: what it had not finished counts as skipped
        counts["variants_skipped"] += max(run.expected - run.done - run.failed - run.skipped, 0)
        counts["past_runs_with_outputs"] += int(run.done > 0)
    counts["bytes_out"] += sum(
        v.bytes or 0 for v in variants if v.run_id == run.run_id and v.status == VariantStatus.DONE
    )


def _check_jobs(
    table: _Table,
    derived: Mapping[str, Counter[str]],
    job_ids: Sequence[str],
    report: InvariantReport,
) -> None:
    for job_id in job_ids:
        job = table.jobs.get(job_id)
        if job is None:
            report.violate(f"job {job_id} does not exist")
            continue
        shards = table.shards.get(job_id, JobCounters())
        expected = derived.get(job_id, Counter())
        for name in _DERIVED_COUNTERS:
            if name == "bytes_out" and expected["past_runs_with_outputs"]:
                continue  # a superseded run's variant items were replaced by the new run's
            counted, should = getattr(shards, name), expected[name]
            if counted > should:
                if name.startswith("variants_") and name != "variants_expected":
                    report.double_counted += counted - should
                report.violate(f"job {job_id}: {name} is {counted}, its records say {should}")
            elif counted < should:
                if name.startswith("variants_") and name != "variants_expected":
                    report.uncounted += should - counted
                report.violate(f"job {job_id}: {name} is {counted}, its records say {should}")
        if job.sealed and job.status in (JobStatus.RUNNING, JobStatus.CANCELLING):
            report.jobs_running += 1
            report.violate(
                f"job {job_id} is still {job.status} with {shards.sources_finished} of "
                f"{job.expected_sources} sources finished"
            )
        elif job.status in (JobStatus.COMPLETE, JobStatus.COMPLETE_WITH_FAILURES):
            if shards.sources_finished != job.expected_sources:
                report.violate(
                    f"job {job_id} is {job.status} with {shards.sources_finished} of "
                    f"{job.expected_sources} sources finished"
                )
            if shards.variants_finished != shards.variants_expected:
                report.violate(
                    f"job {job_id} is {job.status} with {shards.variants_finished} of "
                    f"{shards.variants_expected} variants accounted for"
                )
            if not job.announced_at:
                report.unannounced += 1
                report.violate(f"job {job_id} is {job.status}, never announced")
            failures = bool(shards.variants_failed or shards.sources_failed)
            if failures != (job.status == JobStatus.COMPLETE_WITH_FAILURES):
                report.violate(f"job {job_id} is {job.status} but its failures are {failures}")


def _check_outputs(
    stack: LocalStack,
    table: _Table,
    done_outputs: Mapping[str, VariantRecord],
    report: InvariantReport,
) -> None:
    outputs = _list_outputs(stack)
    for output_key, record in done_outputs.items():
        if output_key not in outputs:
            report.missing_outputs += 1
            report.violate(f"{record.key}: variant {record.variant} is done, {output_key} missing")
    # A source's manifest: only its current run's, once that run is announced with a done
    # variant (a run that ended all failed has none).
    manifests = {
        source.manifest_key: source
        for source in table.sources.values()
        if source.manifest_key and source.announced_at
    }
    for output_key, metadata in outputs.items():
        owner = done_outputs.get(output_key)
        run = metadata.get("prism-run")
        if output_key in manifests:
            if run != manifests[output_key].run_id:
                report.stale_outputs += 1
                report.violate(f"manifest {output_key} is from run {run}, not the source's")
            continue
        if owner is None:
            report.stale_outputs += 1
            report.violate(f"output {output_key} (run {run}) has no done record")
            continue
        current = table.sources[source_pk(owner.bucket, owner.key)].run_id
        if run != current:
            report.stale_outputs += 1
            report.violate(f"output {output_key} is from run {run}, the source's run is {current}")


def _check_dead_letters(
    dead: _DeadLetters,
    uploads: Sequence[tuple[str, str]],
    report: InvariantReport,
    poison: dict[str, int],
) -> None:
    known = set(uploads)
    for (bucket, key, _run), names in dead.tasks.items():
        if (bucket, key) not in known:
            report.violate(f"variants DLQ: tasks {sorted(names)} of unknown {bucket}/{key}")
    for bucket_key in dead.uploads:
        if bucket_key not in known:
            report.violate(f"uploads DLQ: an upload of unknown {bucket_key}")
    report.poison = sum(dead.poison.values())
    for queue in (UPLOADS_DLQ, VARIANTS_DLQ):
        if dead.poison[queue] != poison.get(queue, 0):
            report.violate(
                f"{queue} holds {dead.poison[queue]} malformed messages, "
                f"{poison.get(queue, 0)} were sent"
            )

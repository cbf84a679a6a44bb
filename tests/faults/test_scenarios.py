"""Fault scenarios on the local stack: real handlers, emulated SQS event sources, moto.

Each scenario uploads a small job (tiny images, three variants each), disturbs the run,
waits until the pipeline is idle and then checks every invariant of
:mod:`tests.faults.invariants`. Fault decisions are seeded (``PRISM_FAULT_SEED``) and the
seed is part of every failure message.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from prism.aws.schema import parse_shard_pk
from prism_cli.local.lambda_emulator import SqsEventSourceEmulator, load_function_handler
from prism_cli.local.stack import LocalStack
from support.pipeline import drain

from .adapter_faults import (
    AdapterFaults,
    Call,
    FailOnce,
    KillAfterOutputWrite,
    Timing,
    dying_handler,
    patched_session,
)
from .harness import VARIANT_NAMES, JobUpload, handlers_endpoint, run_functions, send, upload_job
from .http_faults import FaultProxy, HttpFaultPolicy
from .invariants import UPLOADS_DLQ, VARIANTS_DLQ, InvariantReport, check_invariants

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SEED = int(os.environ.get("PRISM_FAULT_SEED", "20261129"))
# More sources for a measurement run (the suite keeps 8 to stay within a few minutes).
SOURCES = int(os.environ.get("PRISM_FAULT_SOURCES", "8"))

Record = Callable[[InvariantReport], None]


def check(
    stack: LocalStack,
    upload: JobUpload,
    scenario: str,
    wall: float,
    faults: str,
    **options: Any,
) -> InvariantReport:
    return check_invariants(
        stack,
        job_ids=[upload.job_id],
        uploads=[(upload.bucket, key) for key in upload.keys],
        variant_names=VARIANT_NAMES,
        scenario=scenario,
        wall_seconds=wall,
        faults=faults,
        **options,
    )


def invocation_errors(emulators: list[SqsEventSourceEmulator]) -> int:
    return sum(emulator.stats.errors for emulator in emulators)


def test_http_faults_at_20_percent(fault_stack: LocalStack, record_report: Record) -> None:
    upload = upload_job(fault_stack, "http-faults", SOURCES, seed=SEED)
    policy = HttpFaultPolicy(rate=0.2, seed=SEED)

    with FaultProxy(fault_stack.endpoint, policy) as proxy, handlers_endpoint(proxy.endpoint):
        _, wall = run_functions(fault_stack)

    counts = proxy.fault_counts()
    faults = f"seed {SEED}, {sum(proxy.requests.values())} requests, faults {dict(counts)}"
    report = check(fault_stack, upload, "http 20%", wall, faults)
    record_report(report)
    assert len(counts) == 5, f"every kind of fault should have happened: {counts}"
    report.assert_holds()


@pytest.mark.parametrize("rate", [0.03, 0.10], ids=["3%", "10%"])
def test_adapter_faults(fault_stack: LocalStack, record_report: Record, rate: float) -> None:
    upload = upload_job(fault_stack, f"adapter-{round(rate * 100)}", SOURCES, seed=SEED)
    faults = AdapterFaults(rate=rate, seed=SEED)

    with patched_session(faults):
        _, wall = run_functions(fault_stack)

    described = f"seed {SEED}, {sum(faults.calls.values())} calls, faults {dict(faults.counts())}"
    report = check(fault_stack, upload, f"adapter {rate:.0%}", wall, described)
    record_report(report)
    assert faults.injected, "no fault was injected"
    report.assert_holds()


def test_a_worker_killed_between_its_output_and_its_record(
    fault_stack: LocalStack, record_report: Record
) -> None:
    upload = upload_job(fault_stack, "killed", SOURCES, seed=SEED)
    kills = KillAfterOutputWrite(fault_stack.bucket_name("OutputBucket"))
    worker = load_function_handler(fault_stack.template.function("WorkerFunction"))

    with patched_session(kills):
        emulators, wall = run_functions(
            fault_stack, handlers={"WorkerFunction": dying_handler(worker, kills)}
        )

    faults = f"{len(kills.killed)} kills, {invocation_errors(emulators)} failed invocations"
    report = check(fault_stack, upload, "killed worker", wall, faults)
    record_report(report)
    assert len(kills.killed) >= SOURCES, "about half of the 24 outputs should have been killed"
    report.assert_holds()
    assert report.done == SOURCES * len(VARIANT_NAMES)


def test_every_message_delivered_three_times(
    fault_stack: LocalStack, record_report: Record
) -> None:
    upload = upload_job(fault_stack, "thrice", SOURCES, seed=SEED)
    rng = random.Random(SEED)
    # Every upload notification three times, to two fan-out instances at once...
    uploads = [message["Body"] for message in drain(fault_stack, "UploadsQueue")]
    notifications = [body for body in uploads if "Records" in body]
    assert len(notifications) == SOURCES
    copies = notifications * 3
    rng.shuffle(copies)
    send(fault_stack, "UploadsQueue", copies)
    fanned_out, fanout_wall = run_functions(fault_stack, "FanoutFunction")
    # ...so each delivery sends every task again: each task is there three times.
    tasks = [message["Body"] for message in drain(fault_stack, "VariantsQueue")]
    assert len(tasks) == 3 * SOURCES * len(VARIANT_NAMES)
    assert len(set(tasks)) == SOURCES * len(VARIANT_NAMES)
    rng.shuffle(tasks)
    send(fault_stack, "VariantsQueue", tasks)
    rendered, worker_wall = run_functions(fault_stack, "WorkerFunction", workers=4)

    report = check(
        fault_stack,
        upload,
        "3x delivery",
        fanout_wall + worker_wall,
        f"{len(copies)} upload and {len(tasks)} variant deliveries",
    )
    record_report(report)
    report.assert_holds()
    assert report.done == SOURCES * len(VARIANT_NAMES)
    assert invocation_errors(fanned_out + rendered) == 0


def test_a_poison_message_on_each_queue_ends_in_its_dlq(
    fault_stack: LocalStack, record_report: Record
) -> None:
    upload = upload_job(fault_stack, "poison", SOURCES, seed=SEED)
    send(fault_stack, "UploadsQueue", ["{not json"])
    send(fault_stack, "VariantsQueue", ['{"run_id": "no such task"}'])

    emulators, wall = run_functions(fault_stack)

    report = check(
        fault_stack,
        upload,
        "poison",
        wall,
        f"{invocation_errors(emulators)} failed invocations",
        poison={UPLOADS_DLQ: 1, VARIANTS_DLQ: 1},
    )
    record_report(report)
    report.assert_holds()
    assert report.poison == 2
    assert report.done == SOURCES * len(VARIANT_NAMES)


def _job_progress_read(job_id: str) -> Callable[[Call], bool]:
    """The read of the job's counter shards (one BatchGetItem for up to 100 of them)."""

    def matches(call: Call) -> bool:
        if call.operation != "batch_get_item":
            return False
        requests = call.kwargs["RequestItems"].values()
        keys = [key["pk"]["S"] for request in requests for key in request["Keys"]]
        return job_id in {shard[0] for pk in keys if (shard := parse_shard_pk(pk))}

    return matches


def _source_completion(call: Call) -> bool:
    """A transaction that gives a source its final status (on its own, or together with
    the source's last outcomes)."""
    if call.operation != "transact_write_items":
        return False
    return any(
        "#status = :" in item.get("Update", {}).get("UpdateExpression", "").partition(" ADD ")[0]
        for item in call.kwargs.get("TransactItems", [])
    )


@pytest.mark.parametrize(
    ("interruption", "timing"),
    [("progress-read", Timing.BEFORE), ("completion-write", Timing.AFTER)],
)
def test_a_job_ends_when_its_last_completion_is_interrupted(
    fault_stack: LocalStack, record_report: Record, interruption: str, timing: Timing
) -> None:
    """The worker that completes the job's last source fails once on the way: reading the
    job's progress (before it could end the job), or after its completion transaction
    committed (the response was lost). The redelivered message must still end the job."""
    job_id = f"last-{interruption}"
    upload = upload_job(fault_stack, job_id, 1, seed=SEED)
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "BatchGetItem"
    )
    matches = _job_progress_read(job_id) if timing is Timing.BEFORE else _source_completion
    fail = FailOnce(matches, throttled, timing)

    with patched_session(fail):
        _, wall = run_functions(fault_stack)

    report = check(fault_stack, upload, f"interrupted {interruption}", wall, "1 fault")
    record_report(report)
    assert fail.failed, "the interruption did not happen"
    report.assert_holds()

"""Each function's IAM role allows exactly what its code calls, on exactly those resources.

moto does not enforce IAM, so a missing permission would only show on AWS. Here every AWS
call the handlers make (aiobotocore and botocore alike) is recorded with the function that
made it while they run the main paths on the local stack: renders, an image watermark, a
corrupt upload, an overwrite that removes old outputs, a backfill of missing variants. Then:

- every call is allowed by a statement of that function's role (action and resource ARN);
- every statement of the role allows at least one call that was made, or is one the Lambda
  platform needs (logs, traces, the SQS poller on the function's own queue).

So a role cannot lose a permission the code needs, nor gain one it does not use.
"""

from __future__ import annotations

import contextvars
import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiobotocore.client
import botocore.client
import pytest

from prism.jobs import JobKind, JobStatus
from prism.messages import JOB_METADATA_KEY, BackfillRequest, SourceRef
from prism_cli.local.lambda_emulator import (
    Handler,
    emulators_for,
    forget_warm_state,
    load_function_handler,
    run_until_idle,
)
from prism_cli.local.stack import LocalStack
from prism_cli.local.template import FunctionSpec, RoleSpec, StackTemplate
from support.images import image_bytes
from support.pipeline import NO_BACKOFF, create_job, job_progress, with_jobs, with_processing

pytestmark = pytest.mark.integration

CONFIG = """
dedupe: true
variants:
  - {name: small, transforms: [{op: thumbnail, width: 16, height: 16}], format: jpeg}
  - name: marked
    transforms: [{op: thumbnail, width: 64, height: 64}]
    format: webp
    watermark: {image: assets/logo.png, scale: 0.3, opacity: 1}
"""
# What Lambda itself does with a function's role (not the handler's code).
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
TRACE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
POLLER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}

# Granted for code paths this scenario does not reach (a redrive after exhausted retries),
# each with the code that makes the call: the test fails if that code is gone.
ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "prism" / "prism"
PROCESSING_TABLE = LAYER / "aws" / "processing_table.py"
RARE_CALLS = {
    # A redriven upload that had exhausted its retries takes back its RUN# record.
    ("FanoutFunction", "dynamodb:DeleteItem"): (PROCESSING_TABLE, "def _undo_exhausted"),
    # A redriven variant that fails again: its source's counters do not change.
    ("FanoutFunction", "dynamodb:ConditionCheckItem"): (PROCESSING_TABLE, "def _replace_exhausted"),
    ("WorkerFunction", "dynamodb:ConditionCheckItem"): (PROCESSING_TABLE, "def _replace_exhausted"),
    # The fan-out writes a manifest when its own rejection is a source's last outcome.
    ("FanoutFunction", "s3:PutObject"): (LAYER / "announce.py", "def _write_manifest"),
}

_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)


@dataclass(frozen=True)
class Call:
    function: str
    action: str  # the IAM action the call needs
    resource: str  # the ARN it needs it on


class Recorder:
    """The AWS calls made while a function's handler runs, as IAM (action, resource)."""

    def __init__(self, template: StackTemplate) -> None:
        self.calls: set[Call] = set()
        self._region = template.context.region
        self._account = template.context.account_id
        self._partition = template.context.partition

    def record(self, client: Any, operation: str, params: dict[str, Any]) -> None:
        function = _function.get()
        if function is None:  # the test's own calls, or the emulated event source's
            return
        service = client.meta.service_model.service_name
        for action, resource in self._needs(service, operation, params):
            self.calls.add(Call(function, action, resource))

    def _needs(
        self, service: str, operation: str, params: dict[str, Any]
    ) -> Iterator[tuple[str, str]]:
        if service == "s3":
            bucket = f"arn:{self._partition}:s3:::{params['Bucket']}"
            if "Key" not in params:
                yield f"s3:{operation}", bucket
                return
            if operation == "CopyObject":  # IAM: read the source, write the destination
                source = params["CopySource"]
                yield (
                    "s3:GetObject",
                    f"arn:{self._partition}:s3:::{source['Bucket']}/{source['Key']}",
                )
                yield "s3:PutObject", f"{bucket}/{params['Key']}"
                return
            versioned = "VersionId" in params
            action = {
                "HeadObject": "s3:GetObjectVersion" if versioned else "s3:GetObject",
                "GetObject": "s3:GetObjectVersion" if versioned else "s3:GetObject",
                "DeleteObject": "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject",
            }.get(operation, f"s3:{operation}")
            yield action, f"{bucket}/{params['Key']}"
            if action.startswith("s3:GetObject"):
                # Without ListBucket a missing key answers 403, not 404: the code tells
                # "gone" from "denied" by the 404.
                yield "s3:ListBucket", bucket
        elif service == "dynamodb":
            if operation == "TransactWriteItems":
                for item in params["TransactItems"]:
                    ((kind, body),) = item.items()
                    action = "ConditionCheckItem" if kind == "ConditionCheck" else f"{kind}Item"
                    yield f"dynamodb:{action}", self._table(body["TableName"])
            elif operation in ("BatchGetItem", "BatchWriteItem"):
                for table in params["RequestItems"]:
                    yield f"dynamodb:{operation}", self._table(table)
            else:
                yield (
                    f"dynamodb:{operation}",
                    self._table(params["TableName"], params.get("IndexName")),
                )
        elif service == "sqs":
            action = operation.removesuffix("Batch")
            name = params["QueueUrl"].rstrip("/").rsplit("/", 1)[1]
            yield f"sqs:{action}", self._arn("sqs", name)
        elif service == "ssm":
            yield f"ssm:{operation}", self._arn("ssm", f"parameter/{params['Name'].lstrip('/')}")
        elif service == "events":
            for entry in params["Entries"]:
                yield (
                    f"events:{operation}",
                    self._arn("events", f"event-bus/{entry['EventBusName']}"),
                )
        else:
            yield f"{service}:{operation}", "*"

    def _table(self, name: str, index: str | None = None) -> str:
        arn = self._arn("dynamodb", f"table/{name}")
        return f"{arn}/index/{index}" if index else arn

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{self._partition}:{service}:{self._region}:{self._account}:{resource}"


def allows(statement: Any, action: str, resource: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    actions = (
        statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    )
    resources = (
        statement["Resource"]
        if isinstance(statement["Resource"], list)
        else [statement["Resource"]]
    )
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions) and any(
        fnmatch.fnmatchcase(resource, r) for r in resources
    )


def platform_calls(template: StackTemplate, function: FunctionSpec, role: RoleSpec) -> set[Call]:
    """What Lambda does with the role: logs to the function's log group, traces, and polls
    the function's own event source queues."""
    log_groups = {
        r
        for statement in role.statements
        for r in (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        if ":log-group:" in r
    }
    assert len(log_groups) == 1, f"{function.logical_id}: one log group, got {log_groups}"
    (log_group,) = log_groups
    assert log_group.endswith(f"-{function.logical_id.removesuffix('Function').lower()}:*")
    calls = {Call(function.logical_id, action, log_group) for action in LOG_ACTIONS}
    calls |= {Call(function.logical_id, action, "*") for action in TRACE_ACTIONS}
    for (name, action), (path, where) in RARE_CALLS.items():
        if name == function.logical_id:
            assert where in path.read_text(), f"{action} is granted for {where}, which is gone"
            if action.startswith("s3:"):
                resource = f"{template.bucket('OutputBucket').arn}/any/key_manifest.json"
            else:
                resource = template.table("ProcessingTable").arn
            calls.add(Call(name, action, resource))
    for event in function.sqs_events:
        queue = template.queue(event.queue).arn
        calls |= {Call(function.logical_id, action, queue) for action in POLLER_ACTIONS}
    return calls


@pytest.fixture
def recorder(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder(local_stack.template)
    sync_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
    async_call = aiobotocore.client.AioBaseClient._make_api_call

    def recorded_sync(client: Any, operation: str, params: dict[str, Any]) -> Any:
        recorder.record(client, operation, params)
        return sync_call(client, operation, params)

    async def recorded_async(client: Any, operation: str, params: dict[str, Any]) -> Any:
        recorder.record(client, operation, params)
        return await async_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded_sync)
    monkeypatch.setattr(aiobotocore.client.AioBaseClient, "_make_api_call", recorded_async)
    return recorder


def recorded(name: str, real: Handler) -> Handler:
    """``real``, with the calls made while it runs recorded as ``name``'s."""

    def handler(event: Any, context: Any) -> Any:
        token = _function.set(name)
        try:
            return real(event, context)
        finally:
            _function.reset(token)

    return handler


def run_recorded(stack: LocalStack) -> None:
    handlers = {
        function.logical_id: recorded(function.logical_id, load_function_handler(function))
        for function in stack.template.functions.values()
    }
    emulators = emulators_for(
        stack.template,
        stack.clients.sqs,
        instances={"WorkerFunction": 2, "FanoutFunction": 1},
        handlers=handlers,
        batching_window=0,
        retry_backoff=NO_BACKOFF,
    )
    run_until_idle(emulators, stack.clients.sqs, timeout=90, poll_seconds=0.2)
    for emulator in emulators:
        assert not emulator.errors, emulator.errors


def test_each_role_allows_exactly_the_calls_its_function_makes(
    local_stack: LocalStack, recorder: Recorder
) -> None:
    stack, s3 = local_stack, local_stack.clients.s3
    stack.put_pipeline_config(CONFIG)
    bucket = stack.bucket_name("InputBucket")
    s3.put_object(Bucket=bucket, Key="assets/logo.png", Body=image_bytes((40, 20), "PNG"))
    s3.put_object(Bucket=bucket, Key="uploads/a.jpg", Body=image_bytes((120, 90)))
    s3.put_object(Bucket=bucket, Key="uploads/b.jpg", Body=image_bytes((90, 120)))
    s3.put_object(Bucket=bucket, Key="uploads/corrupt.jpg", Body=b"\xff\xd8 not a jpeg")
    run_recorded(stack)
    # A duplicate of a rendered upload: its variants are copied (dedupe).
    s3.put_object(Bucket=bucket, Key="uploads/a-again.jpg", Body=image_bytes((120, 90)))
    # A submitted job, sealed: the worker that settles its last source ends it.
    create_job(stack, "sealed")
    s3.put_object(
        Bucket=bucket,
        Key="uploads/job/d.jpg",
        Body=image_bytes((70, 50)),
        Metadata={JOB_METADATA_KEY: "sealed"},
    )
    with_jobs(stack, lambda jobs: jobs.seal("sealed", 1))
    # Overwritten before its fan-out: the first upload's job is read from its own version.
    s3.put_object(Bucket=bucket, Key="uploads/c.jpg", Body=image_bytes((50, 50)))
    s3.put_object(Bucket=bucket, Key="uploads/c.jpg", Body=image_bytes((60, 50)))
    run_recorded(stack)
    # An overwrite that cannot be rendered: the old outputs are removed.
    s3.put_object(Bucket=bucket, Key="uploads/a.jpg", Body=b"\xff\xd8 broken now")
    run_recorded(stack)
    # A backfill of what is missing: the fan-out looks at the outputs first.
    forget_warm_state()
    create_job(stack, "fill", JobKind.BACKFILL)
    head = s3.head_object(Bucket=bucket, Key="uploads/b.jpg")
    request = BackfillRequest(
        job_id="fill",
        source=SourceRef(
            bucket=bucket, key="uploads/b.jpg", etag=head["ETag"], size=head["ContentLength"]
        ),
        missing_only=True,
    )
    stack.clients.sqs.send_message(
        QueueUrl=stack.queue_url("UploadsQueue"), MessageBody=request.model_dump_json()
    )
    with_jobs(stack, lambda jobs: jobs.seal("fill", 1))
    run_recorded(stack)
    # A deleted source: the fan-out removes its outputs and marks its records.
    s3.delete_object(Bucket=bucket, Key="uploads/c.jpg")
    run_recorded(stack)
    for job_id in ("sealed", "fill"):
        assert job_progress(stack, job_id).job.status == JobStatus.COMPLETE, job_id
    _, again = with_processing(stack, lambda t: t.source_state(bucket, "uploads/a-again.jpg"))
    assert again["small"].reused_from == f"{bucket}/uploads/a.jpg"  # copied, so covered

    template = stack.template
    for function in template.functions.values():
        assert function.role is not None, f"{function.logical_id} has no role of its own"
        role = template.roles[function.role]
        assert not role.managed_policy_arns, f"{function.role}: managed policies grant more"
        made = {call for call in recorder.calls if call.function == function.logical_id}
        assert made, f"no calls recorded for {function.logical_id}"
        needed = made | platform_calls(template, function, role)
        denied = sorted(
            f"{c.action} on {c.resource}"
            for c in needed
            if not any(allows(s, c.action, c.resource) for s in role.statements)
        )
        assert not denied, (
            f"{function.role} does not allow what {function.logical_id} calls: {denied}"
        )
        for statement in role.statements:
            used = [c for c in needed if allows(statement, c.action, c.resource)]
            assert used, f"{function.role}: {statement.get('Sid')} allows nothing that is called"
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            for action in actions:
                assert any(
                    allows({**statement, "Action": action}, c.action, c.resource) for c in used
                ), f"{function.role}: {statement.get('Sid')} grants {action}, never called"

"""Ready-to-invoke Lambda events for real objects of the running local stack.

- :func:`upload_event`: the SQS event the fan-out receives for an upload, wrapping the S3
  ``ObjectCreated:Put`` notification of the object as it is now (its real ETag, size and
  version id, and the sequencer right after the one the key has registered, so that the
  fan-out takes it for a new upload rather than an outdated one).
- :func:`variant_event`: the SQS event the worker receives for variants of an upload the
  fan-out has registered, with the tasks planned by the fan-out's own
  :func:`prism.fanout.plan_tasks` for the registered run (its run id, job, counter shard
  and run order) and the stack's pipeline config.
- :func:`new_run_variant_event`: the same for a new run of the object, registered by the
  fan-out service itself (:class:`prism.fanout.FanOut`) from :func:`upload_event`'s event,
  with a task queue that hands the selected variants' tasks to the event instead of the
  variants queue (the others go to the queue, for the stack's worker). The worker then
  renders them: nothing has recorded them yet.

All of them name the stack's real queue ARNs, bucket and region, from the resolved template.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from prism.aws.clients import open_clients
from prism.aws.job_table import JobTable
from prism.aws.processing_table import ProcessingTable
from prism.aws.schema import from_item, source_key, source_pk
from prism.aws.storage import ObjectStore
from prism.aws.variant_queue import VariantQueue
from prism.config import PipelineConfig
from prism.fanout import FanOut, plan_tasks
from prism.messages import SourceRef, VariantTask
from prism.observability import logger
from prism.pipeline_source import config_from_parameter
from prism.records import SourceRecord, VariantRecord
from prism.settings import Settings
from prism.uploads import Upload
from prism_cli.errors import UserError
from prism_cli.local.lambda_emulator import sqs_event
from prism_cli.local.template import FunctionSpec, StackTemplate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs.type_defs import MessageTypeDef
    from mypy_boto3_ssm import SSMClient

FANOUT_FUNCTION = "FanoutFunction"
WORKER_FUNCTION = "WorkerFunction"
# S3's own notifications carry the configuration's id; the template names none.
_CONFIGURATION_ID = "prism-uploads"
_SEQUENCER_DIGITS = 16  # as the local stack's notifications


@dataclass(frozen=True)
class GeneratedEvent:
    event: dict[str, Any]
    # Things the user should know before invoking it (printed on stderr).
    warnings: list[str] = field(default_factory=list)


def _settings(fn: FunctionSpec) -> Settings:
    return Settings.from_env(fn.environment)


def _queue_arn(template: StackTemplate, fn: FunctionSpec) -> str:
    if not fn.sqs_events:
        raise UserError(f"{fn.logical_id} has no SQS event source in the template")
    return template.queue(fn.sqs_events[0].queue).arn


def _head(s3: S3Client, bucket: str, key: str) -> dict[str, Any]:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise UserError(f"no object s3://{bucket}/{key} in the local stack") from None
        raise


def _registered(dynamodb: DynamoDBClient, table: str, bucket: str, key: str) -> SourceRecord | None:
    item = dynamodb.get_item(TableName=table, Key=source_key(bucket, key), ConsistentRead=True).get(
        "Item"
    )
    return None if item is None else from_item(SourceRecord, dict(item))


def _message(body: str, now: datetime) -> MessageTypeDef:
    message_id = str(uuid.uuid4())
    millis = str(int(now.timestamp() * 1000))
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"AQEB{message_id}",
        "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "Body": body,
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": millis,
            "SenderId": "AIDAPRISMLOCAL",
            "ApproximateFirstReceiveTimestamp": millis,
        },
    }


def next_sequencer(registered: str | None) -> str:
    """The sequencer right after ``registered`` (the key's registered one, if any).

    Just after it, not from the clock: the local stack's own notifications count up from 1
    (:mod:`prism_cli.local.moto_s3`), and a sequencer far ahead would make every later real
    upload of the key look older than this one (outdated, never rendered).
    """
    return f"{int(registered or '0', 16) + 1:0{_SEQUENCER_DIGITS}X}"


def upload_event(
    template: StackTemplate,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    key: str,
    now: datetime | None = None,
) -> GeneratedEvent:
    """The fan-out's SQS event for an upload of ``key`` to the input bucket, as it is now."""
    now = now or datetime.now(UTC)
    fn = template.function(FANOUT_FUNCTION)
    settings = _settings(fn)
    bucket = settings.input_bucket
    head = _head(s3, bucket, key)
    registered = _registered(dynamodb, settings.table_name, bucket, key)
    warnings = []
    if not key.startswith(settings.upload_prefix):
        warnings.append(
            f"{key} is not under the upload prefix {settings.upload_prefix!r}: S3 would not "
            "notify the fan-out of it"
        )
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),  # as S3 sends it
        "size": head["ContentLength"],
        "eTag": str(head["ETag"]).strip('"'),
        "sequencer": next_sequencer(registered.sequencer if registered else None),
    }
    if head.get("VersionId") and head["VersionId"] != "null":
        obj["versionId"] = head["VersionId"]
    region = template.context.region
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAPRISMLOCAL"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": uuid.uuid4().hex,
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": _CONFIGURATION_ID,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3PRISMLOCAL"},
                        "arn": f"arn:{template.context.partition}:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }
    message = _message(json.dumps(notification), now)
    return GeneratedEvent(sqs_event([message], _queue_arn(template, fn), region), warnings)


def _recorded(
    dynamodb: DynamoDBClient, table: str, bucket: str, key: str
) -> dict[str, VariantRecord]:
    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :variant)",
        ExpressionAttributeValues={
            ":pk": {"S": source_pk(bucket, key)},
            ":variant": {"S": "VARIANT#"},
        },
        ConsistentRead=True,
    ).get("Items", [])
    records = [from_item(VariantRecord, dict(item)) for item in items]
    return {record.variant: record for record in records}


def variant_tasks(
    template: StackTemplate,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    ssm: SSMClient,
    key: str,
    variants: Sequence[str] | None = None,
) -> tuple[list[VariantTask], list[str]]:
    """The tasks the fan-out sent (or would send) for the registered run of ``key``, and
    warnings; ``variants`` selects some by name (None: every variant of the config)."""
    fn = template.function(WORKER_FUNCTION)
    settings = _settings(fn)
    bucket = settings.input_bucket
    head = _head(s3, bucket, key)
    source = _registered(dynamodb, settings.table_name, bucket, key)
    if source is None:
        raise UserError(
            f"s3://{bucket}/{key} is not registered: the worker only renders a registered "
            "upload's variants. Let the local stack fan it out (upload it under the upload "
            "prefix), or invoke the fan-out first with the event of `prism event upload`"
        )
    etag = str(head["ETag"]).strip('"')
    warnings = []
    if source.etag and source.etag != etag:
        warnings.append(
            f"the registered run of {key} is of an earlier upload (ETag {source.etag}, now "
            f"{etag}): its tasks read the current object"
        )
    config = _pipeline_config(ssm, settings)
    version = head.get("VersionId")
    upload = Upload(
        source=SourceRef(
            bucket=bucket,
            key=key,
            etag=source.etag or etag,
            size=source.size if source.size is not None else head["ContentLength"],
            version_id=version if version and version != "null" else None,
        ),
        occurrence="",
    )
    planned = plan_tasks(
        upload, config, settings, source.job_id, source.shard, run_order=source.generation
    )
    # The run id is the registered run's (the fan-out derives it from the notification).
    tasks = [task.model_copy(update={"run_id": source.run_id}) for task in planned]
    if variants is not None:
        _check_variants(config, variants)
        tasks = [task for task in tasks if task.variant.name in set(variants)]
    recorded = _recorded(dynamodb, settings.table_name, bucket, key)
    done = sorted(
        task.variant.name
        for task in tasks
        if task.variant.name in recorded and recorded[task.variant.name].run_id == source.run_id
    )
    if done:
        warnings.append(
            f"this run has recorded {', '.join(done)} already (`prism stack up` renders "
            "uploads itself): the worker acknowledges those tasks as redeliveries without "
            "rendering them; `--new-run` registers a new run of the upload to render"
        )
    return tasks, warnings


def _pipeline_config(ssm: SSMClient, settings: Settings) -> PipelineConfig:
    text = ssm.get_parameter(Name=settings.config_parameter)["Parameter"].get("Value", "")
    return config_from_parameter(text, f"SSM parameter {settings.config_parameter}")


def _check_variants(config: PipelineConfig, variants: Sequence[str]) -> None:
    names = {variant.name for variant in config.variants}
    unknown = [name for name in variants if name not in names]
    if unknown:
        raise UserError(
            f"no variant {', '.join(unknown)} in the pipeline config "
            f"(it has {', '.join(sorted(names)) or 'none'})"
        )


def variant_event(
    template: StackTemplate,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    ssm: SSMClient,
    key: str,
    variants: Sequence[str] | None = None,
    now: datetime | None = None,
) -> GeneratedEvent:
    """The worker's SQS event with one message per selected variant of ``key``."""
    now = now or datetime.now(UTC)
    tasks, warnings = variant_tasks(template, s3, dynamodb, ssm, key, variants)
    fn = template.function(WORKER_FUNCTION)
    messages = [_message(task.model_dump_json(), now) for task in tasks]
    return GeneratedEvent(
        sqs_event(messages, _queue_arn(template, fn), template.context.region), warnings
    )


class _HandOver:
    """The fan-out's task queue: the selected variants' tasks are kept for the event, the
    others sent on to the variants queue."""

    def __init__(self, queue: VariantQueue, variants: Sequence[str] | None) -> None:
        self._queue = queue
        self._variants = None if variants is None else set(variants)
        self.kept: list[VariantTask] = []

    async def send(self, tasks: Sequence[VariantTask]) -> None:
        wanted = self._variants
        self.kept.extend(t for t in tasks if wanted is None or t.variant.name in wanted)
        others = [t for t in tasks if wanted is not None and t.variant.name not in wanted]
        if others:
            await self._queue.send(others)


@contextmanager
def _function_output_on_stderr() -> Iterator[None]:
    """The fan-out's logs (and any EMF metrics) on stderr: stdout may carry the event."""
    handler = logger.registered_handler
    stream = getattr(handler, "stream", None)
    if stream is not None:
        handler.stream = sys.stderr  # type: ignore[attr-defined]
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        if stream is not None:
            handler.stream = stream  # type: ignore[attr-defined]


async def _fan_out(
    event: dict[str, Any],
    settings: Settings,
    config: PipelineConfig,
    variants: Sequence[str] | None,
) -> list[VariantTask]:
    async with open_clients() as clients:
        queue = _HandOver(VariantQueue(clients.sqs, settings.variants_queue_url), variants)
        retention = settings.record_retention_days
        fan_out = FanOut(
            ObjectStore(clients.s3),
            ProcessingTable(clients.dynamodb, settings.table_name, retention_days=retention),
            JobTable(clients.dynamodb, settings.table_name, retention_days=retention),
            queue,
            settings,
            config,
        )
        results = await fan_out.process([SQSRecord(record) for record in event["Records"]])
    errors = [error for error in results.values() if error is not None]
    if errors:
        raise UserError(f"the fan-out failed: {errors[0]!r}")
    return queue.kept


def new_run_variant_event(
    template: StackTemplate,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    ssm: SSMClient,
    key: str,
    variants: Sequence[str] | None = None,
    now: datetime | None = None,
) -> GeneratedEvent:
    """Register a new run of ``key`` with the fan-out service, as a new upload's
    notification would, and return the worker's event for its selected variants.

    The SDK clients of the fan-out come from the environment (``AWS_ENDPOINT_URL``): apply
    the local stack's (:func:`prism_cli.aws_env.endpoint_environment`) around this call.
    """
    now = now or datetime.now(UTC)
    fanout = template.function(FANOUT_FUNCTION)
    settings = _settings(fanout)
    config = _pipeline_config(ssm, settings)
    if variants is not None:
        _check_variants(config, variants)
    upload = upload_event(template, s3, dynamodb, key, now)
    with _function_output_on_stderr():
        tasks = asyncio.run(_fan_out(upload.event, settings, config, variants))
    if not tasks:
        raise UserError(
            f"the fan-out registered no task to render for {key} (superseded, cancelled, "
            "or every output rejected: see its log above)"
        )
    worker = template.function(WORKER_FUNCTION)
    messages = [_message(task.model_dump_json(), now) for task in tasks]
    warnings = [
        *upload.warnings,
        f"registered run {tasks[0].run_id} of {key}: its job waits for these tasks until "
        "the worker is invoked with this event",
    ]
    return GeneratedEvent(
        sqs_event(messages, _queue_arn(template, worker), template.context.region), warnings
    )

"""A local copy of the stack: an embedded moto server holding the template's resources.

Everything is derived from ``template.yaml`` (see :mod:`prism_cli.local.template`): the names,
queue attributes, redrive policies, table keys, the input bucket's notification and the
environment each function gets. The handlers find moto through ``AWS_ENDPOINT_URL`` like
any SDK client would; nothing in the pipeline knows it is running locally.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from prism_cli.aws_env import DUMMY_CREDENTIALS, applied_environment, endpoint_environment
from prism_cli.errors import TemplateError
from prism_cli.local.lambda_emulator import (
    MESSAGE_COUNTS,
    SqsEventSourceEmulator,
    emulators_for,
    forget_warm_state,
    running,
)
from prism_cli.local.moto_dynamodb import serialise_dynamodb
from prism_cli.local.moto_instances import track_weakly
from prism_cli.local.moto_s3 import emulate_s3_ordering
from prism_cli.local.moto_server import route_requests_once, threaded_server
from prism_cli.local.moto_sqs import held_messages, serialise_sqs
from prism_cli.local.moto_ssm import defer_ec2_import
from prism_cli.local.sdk_models import share_sdk_models
from prism_cli.local.template import (
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    BucketSpec,
    SsmParameterSpec,
    StackContext,
    StackTemplate,
    load_template,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

# Settings' variable naming the SSM parameter that holds the pipeline config.
CONFIG_PARAMETER_VARIABLE = "PRISM_CONFIG_PARAMETER"


# --- the moto server ---------------------------------------------------------------------
class PortInUse(OSError):
    """The loopback port asked for is taken."""


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """PortInUse unless ``port`` can be bound: moto's server thread would hang on it."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As the HTTP server does, so that a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise PortInUse(f"port {port} on {host} is in use ({exc.strerror})") from None
    finally:
        probe.close()


class MotoServer:
    """moto in server mode on loopback (async clients need a real endpoint).

    ``port=0`` picks a free port; a fixed port must be free (PortInUse otherwise).
    """

    def __init__(self, port: int = 0) -> None:
        # Werkzeug logs every request at INFO even with verbose=False.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        if port:
            check_port_free(port)
        serialise_dynamodb()  # moto's DynamoDB loses writes under concurrency otherwise
        serialise_sqs()  # and its SQS strands messages when pollers race to the DLQ
        emulate_s3_ordering()  # atomic conditional writes, and events with a sequencer
        route_requests_once()  # and its server finds a request's backend once per host
        track_weakly()  # and moto frees the objects its backends no longer hold
        defer_ec2_import()  # and its SSM does not import EC2 for a parameter
        share_sdk_models()  # and every SDK session here reads the models once
        self._server = threaded_server("127.0.0.1", port)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def reset_moto(endpoint: str) -> None:
    """Forget every resource in the server (moto's own reset API)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


# --- clients -----------------------------------------------------------------------------
class StackClients:
    """Sync boto3 clients bound to the local endpoint (for setup, polling and downloads)."""

    def __init__(self, endpoint: str, region: str = DEFAULT_REGION) -> None:
        share_sdk_models()  # this process's other sessions have read the models already
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=region,
        )
        self.s3: S3Client = session.client("s3", endpoint_url=endpoint)
        self.sqs: SQSClient = session.client("sqs", endpoint_url=endpoint)
        self.dynamodb: DynamoDBClient = session.client("dynamodb", endpoint_url=endpoint)
        self.ssm: SSMClient = session.client("ssm", endpoint_url=endpoint)
        self.events: EventBridgeClient = session.client("events", endpoint_url=endpoint)


# --- creating the resources ------------------------------------------------------------
# The clients are used untyped here: the stubs' literal types cannot know that a string of
# the template is a valid enum value.
def _given(**fields: Any) -> dict[str, Any]:
    """The ``fields`` that are set (an empty value means the API's default)."""
    return {name: value for name, value in fields.items() if value}


def create_stack(template: StackTemplate, endpoint: str) -> None:
    """Create the template's parameters, queues, tables and buckets in moto."""
    clients = StackClients(endpoint, template.context.region)
    for parameter in template.ssm_parameters.values():
        put_parameter(clients.ssm, parameter.name, parameter.value, parameter)

    sqs: Any = clients.sqs
    for queue in template.queue_creation_order():  # dead-letter queues first
        url = sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes())["QueueUrl"]
        if url != queue.url:
            raise TemplateError(f"queue {queue.logical_id}: moto made {url}, not {queue.url}")

    dynamodb: Any = clients.dynamodb
    for table in template.tables.values():
        dynamodb.create_table(
            TableName=table.name,
            KeySchema=list(table.key_schema),
            AttributeDefinitions=list(table.attribute_definitions),
            BillingMode=table.billing_mode,
            **_given(
                GlobalSecondaryIndexes=list(table.global_secondary_indexes),
                ProvisionedThroughput=dict(table.provisioned_throughput or {}),
                SSESpecification={"Enabled": True} if table.sse_enabled else None,
            ),
        )
        if table.point_in_time_recovery:
            dynamodb.update_continuous_backups(
                TableName=table.name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )

    for bucket in template.buckets.values():
        _create_bucket(clients.s3, bucket, template.context.region)

    events: Any = clients.events
    for rule in template.event_rules.values():
        # moto's EventBridge then delivers each matching PutEvents entry to the targets.
        events.put_rule(
            Name=rule.name,
            EventBusName=rule.bus,
            EventPattern=json.dumps(dict(rule.pattern)),
            State="ENABLED",
        )
        events.put_targets(
            Rule=rule.name,
            EventBusName=rule.bus,
            Targets=[{"Id": target_id, "Arn": arn} for target_id, arn in rule.targets],
        )


def put_parameter(ssm: Any, name: str, value: str, spec: SsmParameterSpec | None = None) -> None:
    """Create or replace the parameter ``name``, with the type and tier ``spec`` gives it."""
    ssm.put_parameter(
        Name=name,
        Value=value,
        Type=spec.type if spec else "String",
        Overwrite=True,
        **(_given(Tier=spec.tier, Description=spec.description) if spec else {}),
    )


def _create_bucket(s3: Any, bucket: BucketSpec, region: str) -> None:
    # us-east-1 rejects an explicit location constraint.
    location = {"LocationConstraint": region} if region != "us-east-1" else None
    s3.create_bucket(Bucket=bucket.name, **_given(CreateBucketConfiguration=location))
    if bucket.versioning:
        s3.put_bucket_versioning(
            Bucket=bucket.name, VersioningConfiguration={"Status": bucket.versioning}
        )
    if bucket.encryption:
        # CloudFormation's shape -> the S3 API's shape.
        rules = []
        for rule in bucket.encryption["ServerSideEncryptionConfiguration"]:
            api_rule = {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            if "BucketKeyEnabled" in rule:
                api_rule["BucketKeyEnabled"] = rule["BucketKeyEnabled"]
            rules.append(api_rule)
        s3.put_bucket_encryption(
            Bucket=bucket.name, ServerSideEncryptionConfiguration={"Rules": rules}
        )
    if bucket.public_access_block:
        s3.put_public_access_block(
            Bucket=bucket.name, PublicAccessBlockConfiguration=dict(bucket.public_access_block)
        )
    if bucket.queue_notifications:
        configurations = []
        for notification in bucket.queue_notifications:
            filters = (("prefix", notification.prefix), ("suffix", notification.suffix))
            # An empty prefix (UploadPrefix "") means the whole bucket: no rule at all.
            filter_rules = [{"Name": name, "Value": value} for name, value in filters if value]
            key_filter = {"Key": {"FilterRules": filter_rules}} if filter_rules else None
            configurations.append(
                {
                    "QueueArn": notification.queue_arn,
                    "Events": [notification.event],
                    **_given(Filter=key_filter),
                }
            )
        # moto then delivers S3 events to the queue, starting with one s3:TestEvent.
        s3.put_bucket_notification_configuration(
            Bucket=bucket.name, NotificationConfiguration={"QueueConfigurations": configurations}
        )


# --- environment -------------------------------------------------------------------------
def local_environment(template: StackTemplate, endpoint: str) -> dict[str, str]:
    """Process environment for running the handlers in this process against moto.

    Every function's variables are included: the emulated functions share one process, so
    two functions setting the same variable differently cannot both be honoured, and that
    is reported instead of picking one.
    """
    environment = endpoint_environment(endpoint, template.context.region)
    environment["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon locally
    owners: dict[str, str] = {}
    for fn in template.functions.values():
        for name, value in fn.environment.items():
            if name in owners and environment[name] != value:
                raise TemplateError(
                    f"{owners[name]} and {fn.logical_id} set {name} to different values; "
                    "local runs share one process environment"
                )
            environment[name] = value
            owners[name] = fn.logical_id
    return environment


# --- all of it ---------------------------------------------------------------------------
class LocalStack:
    """The stack in moto, with this process's environment set for the handlers.

    ``with LocalStack("template.yaml") as stack:`` starts a moto server, creates every
    resource, sets the environment, and undoes all three on exit. Pass ``endpoint`` to use
    a running server instead (it is then neither reset nor stopped), and
    ``set_environment=False`` to leave ``os.environ`` alone.

    moto keeps its resources per process, shared by all its servers: one stack per process
    at a time (starting a server of its own resets moto).
    """

    def __init__(
        self,
        template_path: Path | str,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = DEFAULT_REGION,
        parameters: Mapping[str, str] | None = None,
        endpoint: str | None = None,
        set_environment: bool = True,
    ) -> None:
        self._template_path = Path(template_path)
        self._stack_name = stack_name
        self._region = region
        self._parameters = dict(parameters or {})
        self._endpoint = endpoint
        self._set_environment = set_environment
        self._server: MotoServer | None = None
        self._restore = ExitStack()
        self._template: StackTemplate | None = None

    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("LocalStack is not started")
        return self._endpoint

    @property
    def template(self) -> StackTemplate:
        if self._template is None:
            raise RuntimeError("LocalStack is not started")
        return self._template

    @cached_property
    def clients(self) -> StackClients:
        return StackClients(self.endpoint, self._region)

    @cached_property
    def environment(self) -> dict[str, str]:
        return local_environment(self.template, self.endpoint)

    def start(self) -> LocalStack:
        try:
            if self._endpoint is None:
                self._server = MotoServer()
                self._endpoint = self._server.endpoint
                # moto keeps its state per process, not per server: start from nothing.
                reset_moto(self._endpoint)
            context = StackContext(
                stack_name=self._stack_name,
                region=self._region,
                sqs_endpoint=self._endpoint,
                parameters=self._parameters,
            )
            self._template = load_template(self._template_path, context)
            create_stack(self._template, self._endpoint)
            if self._set_environment:
                self._restore.enter_context(applied_environment(self.environment))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        self._restore.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def running_functions(
        self,
        instances: Mapping[str, int],
        *,
        join_timeout: float | None = None,
        batching_window: float | None = None,
    ) -> Iterator[Sequence[SqsEventSourceEmulator]]:
        """The template's functions polling their queues for the duration (see
        :func:`~prism_cli.local.lambda_emulator.running`), started cold as a new stack's are.
        ``batching_window`` replaces the event sources' MaximumBatchingWindowInSeconds."""
        forget_warm_state()
        emulators = emulators_for(
            self.template, self.clients.sqs, instances=instances, batching_window=batching_window
        )
        with running(emulators, join_timeout=join_timeout):
            yield emulators

    def messages_held(self, queue_names: Iterable[str]) -> int:
        """The messages in the named queues: waiting, in flight or delayed. Read from moto
        directly when the stack's server is this process's own (no request), else asked."""
        names = set(queue_names)
        if self._server is not None:
            return held_messages(self.template.context.account_id, self._region, names)
        total = 0
        for queue in self.template.queues.values():
            if queue.name in names:
                counts = self.clients.sqs.get_queue_attributes(
                    QueueUrl=queue.url, AttributeNames=list(MESSAGE_COUNTS)
                )["Attributes"]
                total += sum(int(count) for count in counts.values())
        return total

    # --- conveniences ---------------------------------------------------------------------
    def queue_url(self, logical_id: str) -> str:
        return self.template.queue(logical_id).url

    def bucket_name(self, logical_id: str) -> str:
        return self.template.bucket(logical_id).name

    def put_pipeline_config(self, text: str) -> None:
        """Store ``text`` in the SSM parameter the handlers read their config from."""
        names = {
            fn.environment[CONFIG_PARAMETER_VARIABLE]
            for fn in self.template.functions.values()
            if CONFIG_PARAMETER_VARIABLE in fn.environment
        }
        if len(names) != 1:
            raise TemplateError(f"the functions must agree on one {CONFIG_PARAMETER_VARIABLE}")
        (name,) = names
        spec = next((p for p in self.template.ssm_parameters.values() if p.name == name), None)
        put_parameter(self.clients.ssm, name, text, spec)

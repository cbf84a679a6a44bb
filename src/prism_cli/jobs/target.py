"""Which stack a job command talks to: the local one of ``prism stack up``, or a deployed one.

Both are described the same way, by the stack's Outputs (and its UploadPrefix,
JobCounterShards and RecordRetentionDays parameters): a deployed stack's from
CloudFormation, the local stack's resolved from ``template.yaml`` and written to a
connection file by ``prism stack up``.

Precedence: ``--stack NAME`` > ``--local`` > ``$PRISM_STACK`` > a connection file in the
current folder or one above it > an error. A local target also sets ``AWS_ENDPOINT_URL``
(and dummy credentials) for this process, from the connection file; nothing else in the
CLI names an endpoint.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from prism.jobs import JobRecord
from prism.settings import Settings
from prism_cli.aws_env import applied_environment, endpoint_environment
from prism_cli.connection import CONNECTION_FILE, find_connection_file, read_connection_document
from prism_cli.errors import UserError

STACK_VARIABLE = "PRISM_STACK"

# Parameters of template.yaml the CLI reads (the Outputs it needs are StackTarget's _Outputs).
UPLOAD_PREFIX = "UploadPrefix"
JOB_COUNTER_SHARDS = "JobCounterShards"
RECORD_RETENTION_DAYS = "RecordRetentionDays"

NO_STACK = "no stack: run `prism stack up` (in this folder) or pass --stack NAME"


class _Output:
    """An Output of template.yaml the CLI needs, as an attribute of :class:`StackTarget`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, target: StackTarget, owner: type | None = None) -> str:
        return target.outputs[self.name]


@dataclass(frozen=True)
class StackTarget:
    stack_name: str
    outputs: Mapping[str, str]
    parameters: Mapping[str, str] = field(default_factory=dict)
    # The local moto server (None for a deployed stack) and its region.
    endpoint: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        missing = [name for name in REQUIRED_OUTPUTS if not self.outputs.get(name)]
        if missing:
            raise UserError(
                f"{self.label} has no output {', '.join(missing)} "
                "(was it deployed from an older template?)"
            )

    @property
    def local(self) -> bool:
        return self.endpoint is not None

    @property
    def label(self) -> str:
        if self.endpoint is not None:
            return f"the local stack at {self.endpoint}"
        return f"stack {self.stack_name}"

    input_bucket = _Output("InputBucketName")
    output_bucket = _Output("OutputBucketName")
    table_name = _Output("ProcessingTableName")
    uploads_queue_url = _Output("UploadsQueueUrl")
    config_parameter = _Output("PipelineConfigParameterName")

    @property
    def upload_prefix(self) -> str:
        # An Output wins over the parameter if a template ever exports it.
        return self.outputs.get(UPLOAD_PREFIX, self.parameters.get(UPLOAD_PREFIX, ""))

    @property
    def job_counter_shards(self) -> int:
        raw = self.outputs.get(JOB_COUNTER_SHARDS, self.parameters.get(JOB_COUNTER_SHARDS))
        try:
            return max(1, int(raw)) if raw else JobRecord.shards
        except ValueError:
            return JobRecord.shards

    @property
    def record_retention_days(self) -> int:
        """How long a job the CLI ends (a job's last reader may set its final status) is
        kept: the stack's, as the functions keep theirs; 0 keeps it."""
        raw = self.outputs.get(RECORD_RETENTION_DAYS, self.parameters.get(RECORD_RETENTION_DAYS))
        try:
            return max(0, int(raw)) if raw else Settings.record_retention_days
        except ValueError:
            return Settings.record_retention_days

    @contextmanager
    def applied(self) -> Iterator[None]:
        """A local stack's endpoint and dummy credentials in ``os.environ`` for the duration
        (restored after); a deployed stack uses the environment as it is."""
        if self.endpoint is None:
            yield
            return
        with applied_environment(endpoint_environment(self.endpoint, self.region or "us-east-1")):
            yield


REQUIRED_OUTPUTS = tuple(v.name for v in vars(StackTarget).values() if isinstance(v, _Output))


# --- the connection file -------------------------------------------------------------------
def read_connection_file(path: Path) -> StackTarget:
    document = read_connection_document(path)
    try:
        target = StackTarget(
            stack_name=str(document["stack_name"]),
            outputs={str(k): str(v) for k, v in document["outputs"].items()},
            parameters={str(k): str(v) for k, v in document.get("parameters", {}).items()},
            endpoint=str(document["endpoint"]),
            region=str(document.get("region") or "us-east-1"),
        )
    except (KeyError, AttributeError, TypeError):
        raise UserError(f"{path} is incomplete; run `prism stack up` again") from None
    _check_answers(target)
    return target


def _check_answers(target: StackTarget, timeout: float = 3.0) -> None:
    """Fail fast, not after the SDK's retries, when the local server is not listening."""
    address = urlsplit(target.endpoint or "")
    try:
        with socket.create_connection((address.hostname or "", address.port or 80), timeout):
            pass
    except (OSError, ValueError):
        raise UserError(
            f"{target.label} does not answer; is `prism stack up` still running?"
        ) from None


# --- a deployed stack --------------------------------------------------------------------------
def describe_deployed(stack_name: str) -> StackTarget:
    """Outputs and parameters of the CloudFormation stack ``stack_name``."""
    try:
        cloudformation = boto3.client("cloudformation")
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (NoRegionError, NoCredentialsError):
        raise  # main says what is missing
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", exc))
        if "does not exist" in message:
            raise UserError(f"no stack named {stack_name!r} in this account and region") from None
        raise UserError(f"cannot describe stack {stack_name!r}: {message}") from None
    except BotoCoreError as exc:
        raise UserError(f"cannot describe stack {stack_name!r}: {exc}") from None
    if not stacks:
        raise UserError(f"no stack named {stack_name!r} in this account and region")
    stack = stacks[0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    parameters = {
        p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
        for p in stack.get("Parameters", [])
    }
    return StackTarget(stack_name=stack_name, outputs=outputs, parameters=parameters)


# --- choosing ------------------------------------------------------------------------------
def resolve_target(
    stack: str | None = None,
    *,
    local: bool = False,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> StackTarget:
    env = os.environ if environ is None else environ
    if stack and local:
        raise UserError("pass either --stack or --local, not both")
    if stack:
        return describe_deployed(stack)
    if not local and env.get(STACK_VARIABLE, "").strip():
        return describe_deployed(env[STACK_VARIABLE].strip())
    path = find_connection_file(cwd)
    if path is None:
        if local:
            raise UserError(
                f"no local stack: {CONNECTION_FILE} not found here or above; "
                "run `prism stack up` first"
            )
        raise UserError(NO_STACK)
    return read_connection_file(path)

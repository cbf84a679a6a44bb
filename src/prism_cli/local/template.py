"""Read ``template.yaml`` into a typed, resolved description of the stack.

Local runs and tests build their resources from this description, so a change to a name,
a timeout or an environment variable in the template is followed without touching Python.
Only the intrinsics the template uses are resolved (``Ref``, ``Fn::Sub``, ``Fn::GetAtt``,
``Fn::Join``); anything else is a :class:`TemplateError` rather than a silent guess.
Physical names of resources without an explicit name are ``<stack>-<LogicalId>``:
CloudFormation would add a random suffix, which a local stack does not need.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from prism_cli.errors import TemplateError, UserError
from prism_cli.local.bundled import bundled_template
from prism_cli.local.template_yaml import load_template_document

DEFAULT_STACK_NAME = "prism-local"
DEFAULT_REGION = "us-east-1"
# moto's default account: ARNs built here match the ones moto builds.
DEFAULT_ACCOUNT_ID = "123456789012"

# Lambda's defaults when neither the function nor Globals sets them.
_LAMBDA_DEFAULT_TIMEOUT = 3
_LAMBDA_DEFAULT_MEMORY = 128

_T = TypeVar("_T")
_CONDITION_FUNCTIONS = frozenset({"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"})
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class StackContext:
    """What CloudFormation would supply: pseudo parameters and parameter overrides."""

    stack_name: str = DEFAULT_STACK_NAME
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    partition: str = "aws"
    # Base URL of queue URLs (the moto endpoint locally); None gives AWS's own form.
    sqs_endpoint: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)


# --- the typed description ---------------------------------------------------------------
@dataclass(frozen=True)
class Redrive:
    dead_letter_queue: str  # logical id of the DLQ
    dead_letter_arn: str
    max_receive_count: int


@dataclass(frozen=True)
class ResourceSpec:
    logical_id: str
    name: str  # the physical name
    arn: str


@dataclass(frozen=True)
class QueueSpec(ResourceSpec):
    url: str
    visibility_timeout: int | None = None
    message_retention_period: int | None = None
    redrive: Redrive | None = None
    # Other queue attributes set by the template, already in SQS API form (strings).
    extra_attributes: Mapping[str, str] = field(default_factory=dict)

    def attributes(self) -> dict[str, str]:
        """The ``Attributes`` of SQS ``CreateQueue`` for this queue."""
        attributes = dict(self.extra_attributes)
        if self.visibility_timeout is not None:
            attributes["VisibilityTimeout"] = str(self.visibility_timeout)
        if self.message_retention_period is not None:
            attributes["MessageRetentionPeriod"] = str(self.message_retention_period)
        if self.redrive is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": self.redrive.dead_letter_arn,
                    "maxReceiveCount": self.redrive.max_receive_count,
                }
            )
        return attributes


@dataclass(frozen=True)
class QueueNotification:
    event: str
    queue: str  # logical id
    queue_arn: str
    prefix: str | None = None
    suffix: str | None = None


@dataclass(frozen=True)
class BucketSpec(ResourceSpec):
    queue_notifications: tuple[QueueNotification, ...] = ()
    # CloudFormation shapes, resolved: BucketEncryption and PublicAccessBlockConfiguration.
    encryption: Mapping[str, Any] | None = None
    public_access_block: Mapping[str, Any] | None = None
    # VersioningConfiguration's Status ("Enabled" / "Suspended"), if the template sets one.
    versioning: str | None = None


@dataclass(frozen=True)
class TableSpec(ResourceSpec):
    key_schema: tuple[Mapping[str, str], ...]
    attribute_definitions: tuple[Mapping[str, str], ...]
    billing_mode: str = "PROVISIONED"
    global_secondary_indexes: tuple[Mapping[str, Any], ...] = ()
    provisioned_throughput: Mapping[str, int] | None = None
    sse_enabled: bool = False
    point_in_time_recovery: bool = False


@dataclass(frozen=True)
class SsmParameterSpec:
    logical_id: str
    name: str
    value: str
    type: str = "String"
    tier: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class SqsEventSource:
    name: str
    queue: str  # logical id
    batch_size: int = 10
    maximum_batching_window: int = 0
    function_response_types: tuple[str, ...] = ()
    maximum_concurrency: int | None = None
    enabled: bool = True

    @property
    def reports_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types


@dataclass(frozen=True)
class FunctionSpec(ResourceSpec):
    code_uri: Path  # absolute
    handler: str  # "module.function"
    timeout: int
    memory_size: int
    environment: Mapping[str, str]
    sqs_events: tuple[SqsEventSource, ...] = ()
    role: str | None = None  # the logical id of its AWS::IAM::Role, if the template has one

    @property
    def handler_module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def handler_function(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def handler_path(self) -> Path:
        """The file Lambda would import the handler module from."""
        return self.code_uri.joinpath(*self.handler_module.split(".")).with_suffix(".py")


@dataclass(frozen=True)
class RoleSpec(ResourceSpec):
    # Every statement of the role's inline policies, resolved; and its managed policies.
    statements: tuple[Mapping[str, Any], ...] = ()
    managed_policy_arns: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventRuleSpec(ResourceSpec):
    """An EventBridge rule: the events of ``bus`` that match ``pattern`` go to ``targets``
    (queue ARNs, as ``(target id, arn)``)."""

    bus: str
    pattern: Mapping[str, Any]
    targets: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StackTemplate:
    path: Path
    context: StackContext
    parameters: Mapping[str, str]
    buckets: Mapping[str, BucketSpec]
    queues: Mapping[str, QueueSpec]
    tables: Mapping[str, TableSpec]
    ssm_parameters: Mapping[str, SsmParameterSpec]
    functions: Mapping[str, FunctionSpec]
    # The stack's Outputs, resolved: what ``aws cloudformation describe-stacks`` would list.
    outputs: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, RoleSpec] = field(default_factory=dict)
    event_rules: Mapping[str, EventRuleSpec] = field(default_factory=dict)

    def queue(self, logical_id: str) -> QueueSpec:
        return _lookup(self.queues, logical_id, "queue")

    def bucket(self, logical_id: str) -> BucketSpec:
        return _lookup(self.buckets, logical_id, "bucket")

    def table(self, logical_id: str) -> TableSpec:
        return _lookup(self.tables, logical_id, "table")

    def function(self, logical_id: str) -> FunctionSpec:
        return _lookup(self.functions, logical_id, "function")

    def queue_creation_order(self) -> list[QueueSpec]:
        """Queues ordered so that every dead-letter queue comes before its users."""
        ordered: list[QueueSpec] = []
        visiting: set[str] = set()

        def visit(queue: QueueSpec) -> None:
            if queue in ordered:
                return
            if queue.logical_id in visiting:
                raise TemplateError(f"redrive cycle through queue {queue.logical_id}")
            visiting.add(queue.logical_id)
            if queue.redrive is not None:
                visit(self.queue(queue.redrive.dead_letter_queue))
            visiting.discard(queue.logical_id)
            ordered.append(queue)

        for queue in self.queues.values():
            visit(queue)
        return ordered

    def dead_letter_queues(self) -> list[QueueSpec]:
        return [self.queue(q.redrive.dead_letter_queue) for q in self.queues.values() if q.redrive]

    def sqs_consumers(self) -> list[tuple[FunctionSpec, SqsEventSource]]:
        """Every (function, SQS event source) pair, in template order."""
        return [(fn, event) for fn in self.functions.values() for event in fn.sqs_events]


def _lookup(mapping: Mapping[str, _T], logical_id: str, kind: str) -> _T:
    try:
        return mapping[logical_id]
    except KeyError:
        raise TemplateError(f"template has no {kind} {logical_id!r}") from None


# --- loading -----------------------------------------------------------------------------
def find_template(explicit: Path | None = None) -> Path:
    """The SAM template a local stack is built from.

    In order: ``--template``; a checkout (``template.yaml`` beside ``functions/``) in the
    working directory or above it, for developers; the copy an installed build carries
    (:mod:`prism_cli.local.bundled`); the checkout an editable install lives in.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise UserError(f"template not found: {explicit}")
        return explicit
    cwd = Path.cwd()
    found = _checkout_template([cwd, *cwd.parents])
    if found is None:
        found = bundled_template()
    if found is None:
        found = _checkout_template(Path(__file__).resolve().parents)
    if found is None:
        raise UserError("cannot find Prism's template.yaml; pass --template")
    return found


def _checkout_template(folders: Iterable[Path]) -> Path | None:
    """The first ``template.yaml`` of ``folders`` that has a ``functions/`` folder beside it."""
    for folder in folders:
        candidate = folder / "template.yaml"
        if candidate.is_file() and (folder / "functions").is_dir():
            return candidate
    return None


def load_template(path: Path | str, context: StackContext | None = None) -> StackTemplate:
    """Parse ``path`` (CloudFormation/SAM YAML or JSON) and resolve it for ``context``."""
    path = Path(path).resolve()
    context = context or StackContext()
    try:
        document = _plain(load_template_document(path))
    except FileNotFoundError:
        raise TemplateError(f"template not found: {path}") from None
    # ValueError: text that is not UTF-8, or a scalar YAML cannot read (a 13th month).
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot parse {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path}: no Resources section")
    return _Builder(path, document, context).build()


def _plain(value: Any) -> Any:
    """The document with string keys, and scalars YAML reads as dates (and so on) as
    strings, as CloudFormation reads them."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def _as_str(value: Any) -> str:
    # CloudFormation turns scalars into strings the same way for env vars and Subs.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TemplateError(f"{what} must be a number, got {value!r}") from None


class _Builder:
    def __init__(self, path: Path, document: dict[str, Any], context: StackContext) -> None:
        self.path = path
        self.context = context
        self.resources: dict[str, dict[str, Any]] = document["Resources"]
        self.globals: dict[str, Any] = document.get("Globals", {}).get("Function", {})
        self.parameters = self._parameters(document.get("Parameters", {}))
        self.outputs_section: dict[str, Any] = document.get("Outputs", {})
        self.conditions_section: dict[str, Any] = document.get("Conditions", {})
        self._conditions: dict[str, bool] = {}

    def _parameters(self, declared: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.context.parameters) - set(declared)
        if unknown:
            raise TemplateError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in self.context.parameters:
                values[name] = self.context.parameters[name]
            elif "Default" in spec:
                values[name] = spec["Default"]
            else:
                raise TemplateError(f"template parameter {name} has no Default and no value")
        return values

    # --- intrinsics ------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return self.ref(argument)
            if name == "Fn::GetAtt":
                parts = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(parts[0], parts[1])
            if name == "Fn::Sub":
                return self.sub(argument)
            if name == "Fn::Join":
                separator, items = argument
                return separator.join(_as_str(item) for item in self.resolve(items))
            if name == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false)
            if name in _CONDITION_FUNCTIONS or name == "Condition":
                return self._evaluate(value)
            if name.startswith("Fn::"):
                raise TemplateError(f"{self.path.name}: intrinsic {name} is not supported locally")
        # A property set to AWS::NoValue (directly or through Fn::If) is left out.
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not None}

    # --- conditions -------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        """The value of the template's condition ``name``."""
        if name not in self._conditions:
            if name not in self.conditions_section:
                raise TemplateError(f"{self.path.name}: unknown condition {name!r}")
            self._conditions[name] = bool(self._evaluate(self.conditions_section[name]))
        return self._conditions[name]

    def _evaluate(self, expression: Any) -> Any:
        if not (isinstance(expression, dict) and len(expression) == 1):
            return self.resolve(expression)
        ((name, argument),) = expression.items()
        if name == "Condition":
            return self.condition(argument)
        if name == "Fn::Equals":
            left, right = (_as_str(self._evaluate(item)) for item in argument)
            return left == right
        if name == "Fn::Not":
            return not self._evaluate(argument[0])
        if name == "Fn::And":
            return all(self._evaluate(item) for item in argument)
        if name == "Fn::Or":
            return any(self._evaluate(item) for item in argument)
        return self.resolve(expression)

    def _exists(self, logical_id: str) -> bool:
        """Whether the resource is created: it has no Condition, or its condition holds."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::StackName": self.context.stack_name,
            "AWS::Region": self.context.region,
            "AWS::AccountId": self.context.account_id,
            "AWS::Partition": self.context.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self._resource(name)
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            return self._queue_url(name)
        if kind == "AWS::Serverless::LayerVersion":
            layer = self._property(name, "LayerName") or self._default_name(name)
            return self._arn("lambda", f"layer:{layer}:1")
        return self._physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self._resource(logical_id)["Type"]
        name = self._physical_name(logical_id)
        attributes: dict[str, dict[str, Any]] = {
            "AWS::SQS::Queue": {
                "Arn": self._arn("sqs", name),
                "QueueName": name,
                "QueueUrl": self._queue_url(logical_id),
            },
            "AWS::S3::Bucket": {
                "Arn": f"arn:{self.context.partition}:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self.context.region}.amazonaws.com",
            },
            "AWS::DynamoDB::Table": {"Arn": self._arn("dynamodb", f"table/{name}")},
            "AWS::SSM::Parameter": {
                "Type": self._property(logical_id, "Type"),
                "Value": self._property(logical_id, "Value"),
            },
            "AWS::Serverless::Function": {"Arn": self._arn("lambda", f"function:{name}")},
            "AWS::IAM::Role": {
                "Arn": f"arn:{self.context.partition}:iam::{self.context.account_id}:role/{name}"
            },
            "AWS::Logs::LogGroup": {"Arn": self._arn("logs", f"log-group:{name}:*")},
            "AWS::SNS::Topic": {"TopicArn": self._arn("sns", name)},
            "AWS::Lambda::Function": {"Arn": self._arn("lambda", f"function:{name}")},
            "AWS::Events::Rule": {"Arn": self._event_rule_arn(logical_id, name)},
            # Not emulated (EnableCdn): a name for the outputs that refer to it.
            "AWS::CloudFront::Distribution": {"DomainName": f"{name.lower()}.cloudfront.net"},
        }
        try:
            return attributes[kind][attribute]
        except KeyError:
            raise TemplateError(
                f"Fn::GetAtt {logical_id}.{attribute} is not supported locally"
            ) from None

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):  # ${!Literal} stands for the text ${Literal}
                return "${" + expression[1:] + "}"
            if expression in variables:
                return _as_str(self.resolve(variables[expression]))
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return _as_str(self.get_att(logical_id, attribute))
            return _as_str(self.ref(expression))

        return _SUB_VARIABLE.sub(replace, text)

    # --- names ------------------------------------------------------------------------------
    def _resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(
                f"reference to unknown resource or parameter {logical_id!r}"
            ) from None

    def _property(self, logical_id: str, name: str) -> Any:
        properties = self._resource(logical_id).get("Properties", {})
        return self.resolve(properties[name]) if name in properties else None

    def _default_name(self, logical_id: str) -> str:
        return f"{self.context.stack_name}-{logical_id}"

    def _physical_name(self, logical_id: str) -> str:
        kind = self._resource(logical_id)["Type"]
        explicit = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::SSM::Parameter": "Name",
            "AWS::Serverless::Function": "FunctionName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::IAM::Role": "RoleName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::Events::Rule": "Name",
        }.get(kind)
        name = self._property(logical_id, explicit) if explicit else None
        if name:
            return _as_str(name)
        name = self._default_name(logical_id)
        if kind == "AWS::S3::Bucket":
            return name.lower()
        if kind == "AWS::SQS::Queue" and self._property(logical_id, "FifoQueue"):
            return f"{name}.fifo"
        return name

    def _arn(self, service: str, resource: str) -> str:
        context = self.context
        return f"arn:{context.partition}:{service}:{context.region}:{context.account_id}:{resource}"

    def _queue_url(self, logical_id: str) -> str:
        name = self._physical_name(logical_id)
        base = self.context.sqs_endpoint or f"https://sqs.{self.context.region}.amazonaws.com"
        return f"{base.rstrip('/')}/{self.context.account_id}/{name}"

    def _identity(self, logical_id: str) -> dict[str, Any]:
        """The fields of a :class:`ResourceSpec`."""
        name, arn = self._physical_name(logical_id), self.get_att(logical_id, "Arn")
        return {"logical_id": logical_id, "name": name, "arn": arn}

    def _of_type(self, *kinds: str) -> list[str]:
        """The resources of these types that the stack creates (their conditions hold)."""
        return [
            lid
            for lid, resource in self.resources.items()
            if resource.get("Type") in kinds and self._exists(lid)
        ]

    def _queue_logical_id(self, raw: Any, where: str) -> str:
        """The logical id of a queue given as ``!GetAtt Q.Arn``, ``!Ref Q`` or an ARN/URL."""
        if isinstance(raw, dict) and "Fn::GetAtt" in raw:
            target = raw["Fn::GetAtt"]
            logical_id = target.split(".", 1)[0] if isinstance(target, str) else target[0]
        elif isinstance(raw, dict) and "Ref" in raw:
            logical_id = raw["Ref"]
        else:
            resolved = self.resolve(raw)
            matches = [
                lid
                for lid in self._of_type("AWS::SQS::Queue")
                if resolved in {self.get_att(lid, "Arn"), self._queue_url(lid)}
            ]
            if not matches:
                raise TemplateError(f"{where}: {resolved!r} is not a queue of this template")
            logical_id = matches[0]
        if self.resources.get(logical_id, {}).get("Type") != "AWS::SQS::Queue":
            raise TemplateError(f"{where}: {logical_id!r} is not an SQS queue of this template")
        return logical_id

    # --- resources --------------------------------------------------------------------------
    def build(self) -> StackTemplate:
        return StackTemplate(
            path=self.path,
            context=self.context,
            parameters={name: _as_str(value) for name, value in self.parameters.items()},
            buckets={lid: self._bucket(lid) for lid in self._of_type("AWS::S3::Bucket")},
            queues={lid: self._queue(lid) for lid in self._of_type("AWS::SQS::Queue")},
            tables={lid: self._table(lid) for lid in self._of_type("AWS::DynamoDB::Table")},
            ssm_parameters={lid: self._ssm(lid) for lid in self._of_type("AWS::SSM::Parameter")},
            functions={
                lid: self._function(lid) for lid in self._of_type("AWS::Serverless::Function")
            },
            outputs={
                name: _as_str(self.resolve(output["Value"]))
                for name, output in self.outputs_section.items()
                if "Condition" not in output or self.condition(output["Condition"])
            },
            roles={lid: self._role(lid) for lid in self._of_type("AWS::IAM::Role")},
            event_rules={lid: self._event_rule(lid) for lid in self._of_type("AWS::Events::Rule")},
        )

    def _event_rule_arn(self, logical_id: str, name: str) -> str:
        bus = _as_str(self._property(logical_id, "EventBusName") or "default")
        return self._arn("events", f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}")

    def _event_rule(self, logical_id: str) -> EventRuleSpec:
        targets = tuple(
            (_as_str(target["Id"]), _as_str(target["Arn"]))
            for target in self._property(logical_id, "Targets") or []
        )
        return EventRuleSpec(
            **self._identity(logical_id),
            bus=_as_str(self._property(logical_id, "EventBusName") or "default"),
            pattern=self._property(logical_id, "EventPattern") or {},
            targets=targets,
        )

    def _role(self, logical_id: str) -> RoleSpec:
        properties = self._resource(logical_id).get("Properties", {})
        statements = [
            statement
            for policy in self.resolve(properties.get("Policies", []))
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        return RoleSpec(
            **self._identity(logical_id),
            statements=tuple(statements),
            managed_policy_arns=tuple(self.resolve(properties.get("ManagedPolicyArns", []))),
        )

    def _queue(self, logical_id: str) -> QueueSpec:
        properties = self._resource(logical_id).get("Properties", {})
        redrive = None
        if "RedrivePolicy" in properties:
            raw = properties["RedrivePolicy"]
            dlq = self._queue_logical_id(raw["deadLetterTargetArn"], f"{logical_id}.RedrivePolicy")
            redrive = Redrive(
                dead_letter_queue=dlq,
                dead_letter_arn=self.get_att(dlq, "Arn"),
                max_receive_count=_as_int(self.resolve(raw["maxReceiveCount"]), "maxReceiveCount"),
            )
        extra = {
            attribute: _as_str(self.resolve(properties[attribute]))
            for attribute in (
                "DelaySeconds",
                "MaximumMessageSize",
                "ReceiveMessageWaitTimeSeconds",
                "FifoQueue",
                "ContentBasedDeduplication",
                "SqsManagedSseEnabled",
                "KmsMasterKeyId",
            )
            if attribute in properties
        }

        def optional_int(name: str) -> int | None:
            value = self._property(logical_id, name)
            return None if value is None else _as_int(value, f"{logical_id}.{name}")

        return QueueSpec(
            **self._identity(logical_id),
            url=self._queue_url(logical_id),
            visibility_timeout=optional_int("VisibilityTimeout"),
            message_retention_period=optional_int("MessageRetentionPeriod"),
            redrive=redrive,
            extra_attributes=extra,
        )

    def _bucket(self, logical_id: str) -> BucketSpec:
        properties = self._resource(logical_id).get("Properties", {})
        notifications = []
        for entry in properties.get("NotificationConfiguration", {}).get("QueueConfigurations", []):
            queue = self._queue_logical_id(
                entry["Queue"], f"{logical_id}.NotificationConfiguration"
            )
            rules = {
                rule["Name"].lower(): _as_str(self.resolve(rule["Value"]))
                for rule in entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            }
            notifications.append(
                QueueNotification(
                    event=_as_str(self.resolve(entry["Event"])),
                    queue=queue,
                    queue_arn=self.get_att(queue, "Arn"),
                    prefix=rules.get("prefix"),
                    suffix=rules.get("suffix"),
                )
            )
        return BucketSpec(
            **self._identity(logical_id),
            queue_notifications=tuple(notifications),
            encryption=self._property(logical_id, "BucketEncryption"),
            public_access_block=self._property(logical_id, "PublicAccessBlockConfiguration"),
            versioning=(self._property(logical_id, "VersioningConfiguration") or {}).get("Status"),
        )

    def _table(self, logical_id: str) -> TableSpec:
        def get(name: str, default: Any = None) -> Any:
            value = self._property(logical_id, name)
            return default if value is None else value

        throughput = get("ProvisionedThroughput")
        return TableSpec(
            **self._identity(logical_id),
            key_schema=tuple(get("KeySchema", [])),
            attribute_definitions=tuple(get("AttributeDefinitions", [])),
            billing_mode=_as_str(get("BillingMode", "PROVISIONED")),
            global_secondary_indexes=tuple(get("GlobalSecondaryIndexes", [])),
            provisioned_throughput=(
                {key: _as_int(value, key) for key, value in throughput.items()}
                if throughput
                else None
            ),
            sse_enabled=bool(get("SSESpecification", {}).get("SSEEnabled", False)),
            point_in_time_recovery=bool(
                get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
            ),
        )

    def _ssm(self, logical_id: str) -> SsmParameterSpec:
        tier = self._property(logical_id, "Tier")
        description = self._property(logical_id, "Description")
        return SsmParameterSpec(
            logical_id=logical_id,
            name=self._physical_name(logical_id),
            value=_as_str(self._property(logical_id, "Value")),
            type=_as_str(self._property(logical_id, "Type") or "String"),
            tier=None if tier is None else _as_str(tier),
            description=None if description is None else _as_str(description),
        )

    def _function(self, logical_id: str) -> FunctionSpec:
        properties = self._resource(logical_id).get("Properties", {})

        def setting(name: str, default: Any = None) -> Any:
            raw = properties.get(name, self.globals.get(name, default))
            return self.resolve(raw)

        role = properties.get("Role", self.globals.get("Role"))
        role_id = None
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            target = role["Fn::GetAtt"]
            role_id = target.split(".", 1)[0] if isinstance(target, str) else target[0]
        code_uri = setting("CodeUri")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}.CodeUri must be a local folder to run locally")
        handler = setting("Handler")
        if not isinstance(handler, str) or "." not in handler:
            raise TemplateError(f"{logical_id}.Handler must look like 'module.function'")

        environment: dict[str, str] = {}
        for scope in (self.globals, properties):
            variables = self.resolve(scope.get("Environment", {}).get("Variables", {}))
            environment.update({name: _as_str(value) for name, value in variables.items()})

        events = []
        for event_name, event in properties.get("Events", {}).items():
            if event.get("Type") != "SQS":
                continue
            spec = event.get("Properties", {})

            def event_setting(name: str, default: Any, spec: dict[str, Any] = spec) -> Any:
                return self.resolve(spec[name]) if name in spec else default

            scaling = event_setting("ScalingConfig", {})
            events.append(
                SqsEventSource(
                    name=event_name,
                    queue=self._queue_logical_id(
                        spec["Queue"], f"{logical_id}.Events.{event_name}"
                    ),
                    batch_size=_as_int(event_setting("BatchSize", 10), "BatchSize"),
                    maximum_batching_window=_as_int(
                        event_setting("MaximumBatchingWindowInSeconds", 0),
                        "MaximumBatchingWindowInSeconds",
                    ),
                    function_response_types=tuple(event_setting("FunctionResponseTypes", [])),
                    maximum_concurrency=(
                        _as_int(scaling["MaximumConcurrency"], "MaximumConcurrency")
                        if "MaximumConcurrency" in scaling
                        else None
                    ),
                    enabled=bool(event_setting("Enabled", True)),
                )
            )
        return FunctionSpec(
            **self._identity(logical_id),
            code_uri=(self.path.parent / posixpath.normpath(code_uri)).resolve(),
            handler=handler,
            timeout=_as_int(setting("Timeout", _LAMBDA_DEFAULT_TIMEOUT), f"{logical_id}.Timeout"),
            memory_size=_as_int(
                setting("MemorySize", _LAMBDA_DEFAULT_MEMORY), f"{logical_id}.MemorySize"
            ),
            environment=environment,
            sqs_events=tuple(events),
            role=role_id,
        )

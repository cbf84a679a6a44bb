"""Invariants of template.yaml that the linters do not check but the pipeline relies on.

cfn-lint and ``sam validate`` check that the template is well formed; these tests check
that it is *this* pipeline: the right runtime, queues that retry into a DLQ without
redelivering work in progress, private encrypted buckets, no dependency cycle, handler
files that exist, and env vars the runtime settings actually read.
"""

from __future__ import annotations

import ast
import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from prism.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
# AWS guidance for SQS event sources: queue visibility >= 6x the function timeout.
VISIBILITY_FACTOR = 6
# Variables read by Powertools itself rather than by prism.settings.
POWERTOOLS_VARIABLES = {"LOG_LEVEL"}


# --- helpers ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    # cfn-lint's loader understands the short intrinsic tags (!Ref, !Sub, !GetAtt, ...).
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return loaded


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == type_
    }


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::Serverless::Function")


def function_property(template: dict[str, Any], function_id: str, name: str) -> Any:
    """A function's own property, else the one from Globals.Function."""
    props = template["Resources"][function_id]["Properties"]
    if name in props:
        return props[name]
    return template["Globals"]["Function"][name]


def resolve(template: dict[str, Any], value: Any) -> Any:
    """A literal, or the default of the parameter that ``value`` ``!Ref``s."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = template["Parameters"].get(value["Ref"])
        assert parameter is not None, f"!Ref {value['Ref']} is not a template parameter"
        return parameter["Default"]
    return value


def getatt_target(value: Any, attribute: str = "Arn") -> str:
    """The logical ID in ``!GetAtt <id>.<attribute>``."""
    assert isinstance(value, dict) and "Fn::GetAtt" in value, f"expected !GetAtt, got {value!r}"
    target, attr = value["Fn::GetAtt"]
    assert attr == attribute
    return str(target)


def sqs_consumers(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(function id, queue id, event properties) for every SQS event source."""
    found = []
    for function_id, function in functions(template).items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                queue_id = getatt_target(event["Properties"]["Queue"])
                found.append((function_id, queue_id, event["Properties"]))
    return found


def references(node: Any) -> set[str]:
    """Logical IDs referenced anywhere under ``node`` by !Ref or !GetAtt."""
    if isinstance(node, dict):
        found: set[str] = set()
        if "Ref" in node and isinstance(node["Ref"], str):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            found.add(str(node["Fn::GetAtt"][0]))
        for child in node.values():
            found |= references(child)
        return found
    if isinstance(node, list):
        return set().union(*(references(child) for child in node)) if node else set()
    return set()


def global_env(template: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = template["Globals"]["Function"]["Environment"]["Variables"]
    return variables


# --- runtime and packaging ---------------------------------------------------------------
def test_functions_run_python313_on_arm64(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == RUNTIME
    assert list(globals_["Architectures"]) == [ARCHITECTURE]
    assert functions(template), "the template defines no functions"
    for function_id in functions(template):
        assert function_property(template, function_id, "Runtime") == RUNTIME, function_id
        assert list(function_property(template, function_id, "Architectures")) == [ARCHITECTURE]


def test_layer_is_built_for_the_function_runtime(template: dict[str, Any]) -> None:
    layers = resources(template, "AWS::Serverless::LayerVersion")
    assert layers, "the template defines no layer"
    for layer_id, layer in layers.items():
        assert layer["Metadata"]["BuildMethod"] == RUNTIME, layer_id
        assert layer["Metadata"]["BuildArchitecture"] == ARCHITECTURE, layer_id
        assert RUNTIME in layer["Properties"]["CompatibleRuntimes"], layer_id
        assert ARCHITECTURE in layer["Properties"]["CompatibleArchitectures"], layer_id
        content = ROOT / layer["Properties"]["ContentUri"]
        # sam build installs requirements.txt next to the package directories.
        assert (content / "requirements.txt").is_file(), f"{content}/requirements.txt missing"


# What the installed CLI needs beyond the layer's dependencies.
CLI_DEPENDENCIES = {"moto[server]>=5.2,<6", "rich>=13", "shtab>=1.7"}


def test_layer_requirements_match_the_project_dependencies() -> None:
    # The layer is what Lambda runs; pyproject is what tests, local runs and an installed
    # CLI get: the layer's requirements exactly, plus the CLI's own.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {dep.replace(" ", "") for dep in pyproject["project"]["dependencies"]}
    lines = (ROOT / "layers/prism/requirements.txt").read_text().splitlines()
    layer = {line.replace(" ", "") for line in lines if line.strip() and not line.startswith("#")}
    assert layer <= declared
    assert declared - layer == CLI_DEPENDENCIES


def test_handler_modules_exist_and_have_distinct_names(template: dict[str, Any]) -> None:
    modules = []
    for function_id, function in functions(template).items():
        props = function["Properties"]
        module, _, attribute = props["Handler"].rpartition(".")
        # Unique names: pytest puts every functions/<x>/ dir on sys.path at once.
        assert module not in {"app", "handler", "main", "prism"}, f"{function_id}: {module}"
        path = ROOT / props["CodeUri"] / f"{module}.py"
        assert path.is_file(), f"{function_id}: handler file {path.relative_to(ROOT)} missing"
        tree = ast.parse(path.read_text(), filename=str(path))
        top_level = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)} | {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert attribute in top_level, f"{path.relative_to(ROOT)} defines no {attribute}()"
        modules.append(module)
    assert len(modules) == len(set(modules)), f"handler module names repeat: {modules}"


# --- queues --------------------------------------------------------------------------------
def test_both_queues_feed_functions_with_partial_batch_failures(
    template: dict[str, Any],
) -> None:
    consumers = sqs_consumers(template)
    assert {(f, q) for f, q, _ in consumers} == {
        ("FanoutFunction", "UploadsQueue"),
        ("WorkerFunction", "VariantsQueue"),
    }
    for function_id, _, event in consumers:
        # Without it one bad record makes SQS redeliver the whole batch.
        assert "ReportBatchItemFailures" in event["FunctionResponseTypes"], function_id


def test_consumed_queues_redrive_to_a_dead_letter_queue(template: dict[str, Any]) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    for function_id, queue_id, _ in sqs_consumers(template):
        redrive = queues[queue_id]["Properties"].get("RedrivePolicy")
        assert redrive, f"{queue_id} (consumed by {function_id}) has no RedrivePolicy"
        dlq_id = getatt_target(redrive["deadLetterTargetArn"])
        assert dlq_id in queues and dlq_id != queue_id, f"{queue_id} redrives to {dlq_id}"
        assert "RedrivePolicy" not in queues[dlq_id]["Properties"], f"{dlq_id} redrives on"
        assert 1 <= resolve(template, redrive["maxReceiveCount"]) <= 10, queue_id


def test_queue_visibility_covers_six_function_timeouts(template: dict[str, Any]) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    for function_id, queue_id, _ in sqs_consumers(template):
        timeout = resolve(template, function_property(template, function_id, "Timeout"))
        visibility = resolve(template, queues[queue_id]["Properties"]["VisibilityTimeout"])
        assert int(visibility) >= VISIBILITY_FACTOR * int(timeout), (
            f"{queue_id}.VisibilityTimeout={visibility} < {VISIBILITY_FACTOR} x "
            f"{function_id}.Timeout={timeout}"
        )


# --- buckets -------------------------------------------------------------------------------
def bucket_name(template: dict[str, Any], bucket_id: str) -> Any:
    return template["Resources"][bucket_id]["Properties"]["BucketName"]


def test_input_and_output_buckets_are_private_encrypted_and_distinct(
    template: dict[str, Any],
) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    assert {"InputBucket", "OutputBucket"} <= set(buckets)
    # Writing variants next to the uploads would re-trigger the pipeline on its own output.
    assert bucket_name(template, "InputBucket") != bucket_name(template, "OutputBucket")
    for bucket_id in ("InputBucket", "OutputBucket"):
        props = buckets[bucket_id]["Properties"]
        block = props["PublicAccessBlockConfiguration"]
        assert all(
            block.get(flag) is True
            for flag in (
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            )
        ), bucket_id
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        algorithms = {rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in rules}
        assert algorithms and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}, bucket_id


def test_uploads_notify_the_uploads_queue(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["InputBucket"]
    notification = bucket["Properties"]["NotificationConfiguration"]
    assert set(notification) == {"QueueConfigurations"}, "uploads must go through the queue"
    created, removed = notification["QueueConfigurations"]
    # Uploads, and deletes (a deleted source's variants are deleted too).
    assert (created["Event"], removed["Event"]) == ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
    for config in (created, removed):
        assert getatt_target(config["Queue"]) == "UploadsQueue"
    assert created["Filter"] == removed["Filter"]
    # S3 checks that it may send to the queue when the notification is created.
    policy_id = bucket["DependsOn"]
    policy = template["Resources"][policy_id]
    assert policy["Type"] == "AWS::SQS::QueuePolicy"
    assert {"Ref": "UploadsQueue"} in policy["Properties"]["Queues"]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (statement,) = [s for s in statements if s["Effect"] == "Allow"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    source_arn = statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source_arn.endswith(bucket_name(template, "InputBucket")["Fn::Sub"])


def test_nothing_refs_the_input_bucket(template: dict[str, Any]) -> None:
    # A !Ref/!GetAtt to the bucket from a policy or env var makes a dependency cycle
    # (bucket -> notification -> ... -> function role -> bucket) that cfn-lint does not
    # report for SAM resources; the functions use the bucket's !Sub name string instead.
    input_name = bucket_name(template, "InputBucket")
    for function_id, function in functions(template).items():
        assert "InputBucket" not in references(function["Properties"]), function_id
    assert "InputBucket" not in references(template["Globals"])
    assert global_env(template)["PRISM_INPUT_BUCKET"] == input_name
    assert global_env(template)["PRISM_OUTPUT_BUCKET"] == bucket_name(template, "OutputBucket")
    # Roles too: they name the bucket by the same !Sub string.
    for role_id in ("FanoutRole", "WorkerRole"):
        assert "InputBucket" not in references(template["Resources"][role_id]), role_id
    worker_reads = [
        statement["Resource"]["Fn::Sub"]
        for policy in template["Resources"]["WorkerRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "s3:GetObject" in statement.get("Action", []) and isinstance(statement["Resource"], dict)
    ]
    assert any(arn.endswith(input_name["Fn::Sub"] + "/*") for arn in worker_reads), (
        "the worker must be allowed to read the uploads"
    )


# --- settings ------------------------------------------------------------------------------
def test_every_prism_variable_is_read_by_settings(template: dict[str, Any]) -> None:
    names = list(global_env(template))
    prism_names = [name for name in names if name.startswith("PRISM_")]
    others = set(names) - set(prism_names)
    assert all(n.startswith("POWERTOOLS_") or n in POWERTOOLS_VARIABLES for n in others), others
    # A distinct value per variable (numeric, so integer settings parse too): each must
    # surface in some Settings field, so a misspelt or unused name in the template fails
    # here (a missing one fails from_env).
    environ = {name: str(1000 + index) for index, name in enumerate(prism_names)}
    settings = Settings.from_env(environ)
    values = {str(value) for value in dataclasses.asdict(settings).values()}
    unread = [name for name, value in environ.items() if value not in values]
    assert not unread, f"template sets variables that Settings ignores: {unread}"


# --- least privilege and operations --------------------------------------------------------
def test_each_function_has_a_role_of_its_own_and_no_sam_policies(
    template: dict[str, Any],
) -> None:
    # With Policies (or no Role) SAM generates a role and adds its managed SQS poller
    # policy, which may receive from and delete on every queue of the account.
    roles = set()
    for function_id, function in functions(template).items():
        properties = function["Properties"]
        assert "Policies" not in properties, function_id
        role = getatt_target(properties["Role"])
        assert template["Resources"][role]["Type"] == "AWS::IAM::Role"
        assert "ManagedPolicyArns" not in template["Resources"][role]["Properties"], role
        roles.add(role)
    assert len(roles) == len(functions(template)), "one role per function"


def test_buckets_queues_and_the_alarm_topic_refuse_plain_http(template: dict[str, Any]) -> None:
    def tls_only(statement: dict[str, Any]) -> bool:
        return bool(
            statement["Effect"] == "Deny"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        )

    guarded = set()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::S3::BucketPolicy":
            if any(tls_only(s) for s in resource["Properties"]["PolicyDocument"]["Statement"]):
                guarded.add(resource["Properties"]["Bucket"]["Ref"])
        elif resource["Type"] in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            key = "Queues" if resource["Type"] == "AWS::SQS::QueuePolicy" else "Topics"
            if any(tls_only(s) for s in resource["Properties"]["PolicyDocument"]["Statement"]):
                guarded |= {target["Ref"] for target in resource["Properties"][key]}
    kinds = ("AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::SNS::Topic")
    wanted = {rid for rid, r in template["Resources"].items() if r["Type"] in kinds}
    assert wanted - guarded == set()


def test_every_alarm_notifies_the_alarm_topic(template: dict[str, Any]) -> None:
    alarms = {
        rid: r for rid, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    # DLQ depth, errors, throttles, duration and queue age per function/queue, table throttles.
    assert len(alarms) >= 11
    for alarm_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm_id
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}], alarm_id


def test_logs_and_records_expire_and_the_log_is_kept(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for function in functions(template).values():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    table = resources["ProcessingTable"]
    assert table["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    for dlq in ("UploadsDeadLetterQueue", "VariantsDeadLetterQueue"):
        assert resources[dlq]["DeletionPolicy"] == "Retain"
    for bucket in ("InputBucket", "OutputBucket"):
        rules = resources[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any("AbortIncompleteMultipartUpload" in rule for rule in rules), bucket


def test_every_checkov_skip_says_why(template: dict[str, Any]) -> None:
    for resource_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_"), resource_id
            assert len(skip.get("comment", "")) > 20, f"{resource_id}: {skip['id']} has no reason"

"""`sam local invoke` against the local stack: the env files of ``prism stack sam-env`` and
the events of ``prism event upload|variant``, fed to the real handlers (Docker cannot run
here, so the handlers run in this process, as `sam local invoke` would run them)."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from prism.aws.schema import from_item, source_key
from prism.messages import VariantTask
from prism.records import SourceRecord, VariantRecord
from prism_cli.connection import CONNECTION_FILE, write_connection_file
from prism_cli.errors import UserError
from prism_cli.local.events import next_sequencer, upload_event, variant_event
from prism_cli.local.lambda_emulator import (
    FakeLambdaContext,
    forget_warm_state,
    load_function_handler,
    sqs_event,
)
from prism_cli.local.sam_env import (
    HOST_NETWORK_ENDPOINT_HOST,
    RunningStack,
    container_endpoint,
    sam_environment,
)
from prism_cli.local.stack import LocalStack
from prism_cli.main import main
from support.cli import prism, start_prism
from support.images import image_bytes

pytestmark = pytest.mark.integration

KEY = "uploads/holiday photos/beach (2).jpg"


class _AnyTag(yaml.SafeLoader):
    """template.yaml read independently of prism_cli.local.template: tags kept as text."""


_AnyTag.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix}")


def declared_variables(template_path: Path) -> dict[str, set[str]]:
    document: Any = yaml.load(template_path.read_text(), Loader=_AnyTag)
    shared = set(document["Globals"]["Function"].get("Environment", {}).get("Variables", {}))
    return {
        logical_id: shared | set(resource["Properties"].get("Environment", {}).get("Variables", {}))
        for logical_id, resource in document["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def running(stack: LocalStack, template_path: Path) -> RunningStack:
    return RunningStack(
        endpoint=stack.endpoint,
        region=stack.template.context.region,
        stack_name=stack.template.context.stack_name,
        parameters=stack.template.parameters,
        template_path=template_path,
    )


@pytest.fixture
def connected(local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A connection file for ``local_stack`` in the current folder (a temporary one), as
    `prism stack up` writes it; returns the folder."""
    write_connection_file(
        tmp_path / ".prism" / "local-stack.json",
        endpoint=local_stack.endpoint,
        region=local_stack.template.context.region,
        stack_name=local_stack.template.context.stack_name,
        outputs=local_stack.template.outputs,
        parameters=local_stack.template.parameters,
        template=local_stack.template.path,
        pid=os.getpid(),
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def put_source(stack: LocalStack) -> dict[str, Any]:
    bucket = stack.bucket_name("InputBucket")
    data = image_bytes((640, 480), "JPEG", "teal")
    stack.clients.s3.put_object(Bucket=bucket, Key=KEY, Body=data)
    return dict(stack.clients.s3.head_object(Bucket=bucket, Key=KEY))


def invoke(stack: LocalStack, logical_id: str, event: dict[str, Any]) -> Any:
    fn = stack.template.function(logical_id)
    return load_function_handler(fn)(event, FakeLambdaContext.for_function(fn))


def cli_event(folder: Path, *args: str) -> dict[str, Any]:
    out = folder / "event.json"
    assert main(["event", *args, "--out", str(out)]) == 0
    document: dict[str, Any] = json.loads(out.read_text())
    return document


# --- the env files ---------------------------------------------------------------------------
def test_env_file_sets_every_declared_variable_to_the_stacks_resources(
    local_stack: LocalStack, template_path: Path
) -> None:
    environment = sam_environment(
        running(local_stack, template_path).load_template(), local_stack.endpoint
    )
    declared = declared_variables(template_path)
    assert set(environment.env_vars) == set(declared) == {"FanoutFunction", "WorkerFunction"}
    reachable = container_endpoint(local_stack.endpoint)
    port = local_stack.endpoint.rsplit(":", 1)[1]
    assert reachable == f"http://host.docker.internal:{port}"
    clients = local_stack.clients
    for logical_id, variables in environment.env_vars.items():
        assert set(variables) == declared[logical_id], logical_id
        # Each value is the local stack's, not SAM's unresolved logical id or stack name.
        assert variables["PRISM_TABLE_NAME"] == local_stack.template.table("ProcessingTable").name
        clients.dynamodb.describe_table(TableName=variables["PRISM_TABLE_NAME"])
        assert variables["PRISM_INPUT_BUCKET"] == local_stack.bucket_name("InputBucket")
        assert variables["PRISM_OUTPUT_BUCKET"] == local_stack.bucket_name("OutputBucket")
        for bucket in (variables["PRISM_INPUT_BUCKET"], variables["PRISM_OUTPUT_BUCKET"]):
            clients.s3.head_bucket(Bucket=bucket)
        clients.ssm.get_parameter(Name=variables["PRISM_CONFIG_PARAMETER"])
        queue_url = local_stack.queue_url("VariantsQueue")
        assert variables["PRISM_VARIANTS_QUEUE_URL"] == queue_url.replace(
            local_stack.endpoint, reachable
        )
        # moto finds a queue by its URL's path, whatever the host.
        clients.sqs.send_message(QueueUrl=variables["PRISM_VARIANTS_QUEUE_URL"], MessageBody="x")
        local = {name: local_stack.environment[name] for name in variables}
        changed = {name for name in variables if variables[name] != local[name]}
        assert changed == {"PRISM_VARIANTS_QUEUE_URL"}
    assert environment.container_env_vars == {
        "AWS_ENDPOINT_URL": reachable,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def test_handlers_run_on_nothing_but_the_env_files(
    local_stack: LocalStack, template_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each function's environment exactly as `sam local invoke --docker-network host`
    would build it from the files (plus SAM's own AWS_* variables, which the container
    file overrides), and nothing of the test session's."""
    template = running(local_stack, template_path).load_template()
    files = sam_environment(template, local_stack.endpoint, HOST_NETWORK_ENDPOINT_HOST)
    put_source(local_stack)
    clients = local_stack.clients
    upload = upload_event(template, clients.s3, clients.dynamodb, KEY).event
    sam_own = {"AWS_ACCESS_KEY_ID": "real-key", "AWS_SECRET_ACCESS_KEY": "real-secret"}

    def as_sam_would(logical_id: str) -> None:
        for name in list(os.environ):
            if name.startswith(("AWS_", "PRISM_", "POWERTOOLS_")):
                monkeypatch.delenv(name)
        for name, value in {
            **sam_own,
            **files.env_vars[logical_id],
            **files.container_env_vars,
        }.items():
            monkeypatch.setenv(name, value)
        forget_warm_state()

    as_sam_would("FanoutFunction")
    assert invoke(local_stack, "FanoutFunction", upload) == {"batchItemFailures": []}
    worker_event = variant_event(template, clients.s3, clients.dynamodb, clients.ssm, KEY).event
    as_sam_would("WorkerFunction")
    assert invoke(local_stack, "WorkerFunction", worker_event) == {"batchItemFailures": []}
    outputs = clients.s3.list_objects_v2(Bucket=local_stack.bucket_name("OutputBucket"))
    keys = sorted(item["Key"] for item in outputs.get("Contents", []))
    assert len(keys) == 4 and keys[1].endswith("_manifest.json")  # 3 variants, the manifest
    forget_warm_state()


def test_sam_env_command_writes_both_files(connected: Path, local_stack: LocalStack) -> None:
    port = local_stack.endpoint.rsplit(":", 1)[1]
    assert main(["stack", "sam-env", "--out", "sam/env.json", "--docker-network-host"]) == 0
    env_vars = json.loads((connected / "sam" / "env.json").read_text())
    container = json.loads((connected / "container-env.json").read_text())
    assert container["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
    assert env_vars["WorkerFunction"]["PRISM_VARIANTS_QUEUE_URL"].startswith(
        f"http://127.0.0.1:{port}/"
    )
    assert main(["stack", "sam-env", "--endpoint-host", "172.17.0.1"]) == 0
    container = json.loads((connected / "container-env.json").read_text())
    assert container["AWS_ENDPOINT_URL"] == f"http://172.17.0.1:{port}"


def test_sam_env_without_a_stack_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["stack", "sam-env"]) == 2
    assert "run `prism stack up`" in capsys.readouterr().err
    assert not (tmp_path / "env.json").exists()


# --- the events ------------------------------------------------------------------------------
def test_upload_event_registers_the_upload_and_sends_its_tasks(
    connected: Path, local_stack: LocalStack
) -> None:
    head = put_source(local_stack)
    event = cli_event(connected, "upload", KEY)

    (record,) = event["Records"]
    assert record["eventSourceARN"] == local_stack.template.queue("UploadsQueue").arn
    s3_object = json.loads(record["body"])["Records"][0]["s3"]["object"]
    assert s3_object["eTag"] == head["ETag"].strip('"')
    assert s3_object["size"] == head["ContentLength"]
    assert s3_object["versionId"] == head["VersionId"]
    assert s3_object["key"] == "uploads/holiday+photos/beach+%282%29.jpg"

    assert invoke(local_stack, "FanoutFunction", event) == {"batchItemFailures": []}

    bucket = local_stack.bucket_name("InputBucket")
    messages = local_stack.clients.sqs.receive_message(
        QueueUrl=local_stack.queue_url("VariantsQueue"), MaxNumberOfMessages=10
    ).get("Messages", [])
    tasks = [VariantTask.model_validate_json(message["Body"]) for message in messages]
    assert sorted(task.variant.name for task in tasks) == ["large", "thumbnail", "web"]
    assert {task.source.version_id for task in tasks} == {head["VersionId"]}
    table = local_stack.environment["PRISM_TABLE_NAME"]
    item = local_stack.clients.dynamodb.get_item(TableName=table, Key=source_key(bucket, KEY))
    source = from_item(SourceRecord, item["Item"])
    assert (source.expected, source.generation, source.run_id) == (3, 1, tasks[0].run_id)

    # A second event of the key is a later upload: a new run, not an outdated one.
    again = cli_event(connected, "upload", KEY)
    assert invoke(local_stack, "FanoutFunction", again) == {"batchItemFailures": []}
    item = local_stack.clients.dynamodb.get_item(TableName=table, Key=source_key(bucket, KEY))
    assert from_item(SourceRecord, item["Item"]).generation == 2

    # A real upload after them is still newer: the events' sequencers are not ahead of S3's.
    newer = image_bytes((320, 240), "JPEG", "navy")
    local_stack.clients.s3.put_object(Bucket=bucket, Key=KEY, Body=newer)
    notifications = local_stack.clients.sqs.receive_message(
        QueueUrl=local_stack.queue_url("UploadsQueue"),
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
    ).get("Messages", [])
    real = sqs_event(
        notifications, local_stack.template.queue("UploadsQueue").arn, record["awsRegion"]
    )
    assert invoke(local_stack, "FanoutFunction", real) == {"batchItemFailures": []}
    item = local_stack.clients.dynamodb.get_item(TableName=table, Key=source_key(bucket, KEY))
    latest = from_item(SourceRecord, item["Item"])
    etag = local_stack.clients.s3.head_object(Bucket=bucket, Key=KEY)["ETag"].strip('"')
    assert (latest.generation, latest.etag) == (3, etag)


def test_variant_event_renders_the_variant_into_the_output_bucket(
    connected: Path, local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    head = put_source(local_stack)
    assert invoke(local_stack, "FanoutFunction", cli_event(connected, "upload", KEY)) == {
        "batchItemFailures": []
    }
    sent = {
        task.variant.name: task
        for task in (
            VariantTask.model_validate_json(message["Body"])
            for message in local_stack.clients.sqs.receive_message(
                QueueUrl=local_stack.queue_url("VariantsQueue"), MaxNumberOfMessages=10
            ).get("Messages", [])
        )
    }

    event = cli_event(connected, "variant", KEY, "--variant", "thumbnail")

    (record,) = event["Records"]
    assert record["eventSourceARN"] == local_stack.template.queue("VariantsQueue").arn
    task = VariantTask.model_validate_json(record["body"])
    # The very task the fan-out sent for this variant.
    assert task == sent["thumbnail"]
    assert task.source.version_id == head["VersionId"]
    assert invoke(local_stack, "WorkerFunction", event) == {"batchItemFailures": []}

    s3 = local_stack.clients.s3
    output = s3.get_object(Bucket=local_stack.bucket_name("OutputBucket"), Key=task.output_key)
    assert Image.open(io.BytesIO(output["Body"].read())).size == (256, 192)
    table = local_stack.environment["PRISM_TABLE_NAME"]
    bucket = local_stack.bucket_name("InputBucket")
    variant = local_stack.clients.dynamodb.get_item(
        TableName=table,
        Key={**source_key(bucket, KEY), "sk": {"S": "VARIANT#thumbnail"}},
    )["Item"]
    assert from_item(VariantRecord, variant).status == "done"

    # Asked again, it says the worker would take the event for a redelivery.
    capsys.readouterr()
    cli_event(connected, "variant", KEY, "--variant", "thumbnail")
    assert "recorded thumbnail already" in capsys.readouterr().err


def test_variant_event_of_a_new_run_renders_what_the_stack_had_rendered(
    connected: Path, local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    put_source(local_stack)
    sqs = local_stack.clients.sqs
    variants_queue = local_stack.queue_url("VariantsQueue")
    variants_arn = local_stack.template.queue("VariantsQueue").arn
    # What `prism stack up` does by itself: fan out the upload and render every variant.
    assert invoke(local_stack, "FanoutFunction", cli_event(connected, "upload", KEY)) == {
        "batchItemFailures": []
    }
    sent = sqs.receive_message(
        QueueUrl=variants_queue, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    rendered = sqs_event(sent, variants_arn, "us-east-1")
    assert invoke(local_stack, "WorkerFunction", rendered) == {"batchItemFailures": []}
    for message in sent:
        sqs.delete_message(QueueUrl=variants_queue, ReceiptHandle=message["ReceiptHandle"])
    capsys.readouterr()

    event = cli_event(connected, "variant", KEY, "--variant", "thumbnail", "--new-run")

    assert "registered run" in capsys.readouterr().err
    (record,) = event["Records"]
    task = VariantTask.model_validate_json(record["body"])
    bucket = local_stack.bucket_name("InputBucket")
    table = local_stack.environment["PRISM_TABLE_NAME"]
    dynamodb = local_stack.clients.dynamodb
    source = from_item(
        SourceRecord, dynamodb.get_item(TableName=table, Key=source_key(bucket, KEY))["Item"]
    )
    assert (source.run_id, source.generation, source.expected) == (task.run_id, 2, 3)
    assert (task.run_order, task.variant.name) == (2, "thumbnail")
    # The run's other variants went to the variants queue, for the stack's worker.
    others = sqs.receive_message(QueueUrl=variants_queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(VariantTask.model_validate_json(m["Body"]).variant.name for m in others) == [
        "large",
        "web",
    ]
    assert invoke(local_stack, "WorkerFunction", event) == {"batchItemFailures": []}
    variant = from_item(
        VariantRecord,
        dynamodb.get_item(
            TableName=table, Key={**source_key(bucket, KEY), "sk": {"S": "VARIANT#thumbnail"}}
        )["Item"],
    )
    assert (variant.run_id, variant.status) == (task.run_id, "done")


def test_events_of_missing_or_unregistered_objects_are_user_errors(
    local_stack: LocalStack,
) -> None:
    clients = local_stack.clients
    template = local_stack.template
    with pytest.raises(UserError, match="no object"):
        upload_event(template, clients.s3, clients.dynamodb, KEY)
    put_source(local_stack)
    with pytest.raises(UserError, match="not registered"):
        variant_event(template, clients.s3, clients.dynamodb, clients.ssm, KEY)
    assert invoke(
        local_stack,
        "FanoutFunction",
        upload_event(template, clients.s3, clients.dynamodb, KEY).event,
    ) == {"batchItemFailures": []}
    with pytest.raises(UserError, match="no variant nope"):
        variant_event(template, clients.s3, clients.dynamodb, clients.ssm, KEY, ["nope"])
    every = variant_event(template, clients.s3, clients.dynamodb, clients.ssm, KEY).event
    assert len(every["Records"]) == 3


def test_next_sequencer_comes_right_after_the_registered_one() -> None:
    registered = "617F08299329D189".rjust(64, "0")  # padded, as the fan-out records it
    assert next_sequencer(registered) == "617F08299329D18A"
    assert next_sequencer(None) == "0000000000000001"


# --- against a real `prism stack up` ----------------------------------------------------------
def test_stack_up_writes_the_env_files_and_the_event_commands_use_it(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "one.jpg").write_bytes(image_bytes((64, 48), "JPEG", "teal"))
    server = start_prism(
        "stack", "up", "--port", "0", "--workers", "1", "--sam-env", "env.json",
        "--sam-container-env", "container-env.json", "--docker-network-host", cwd=tmp_path,
    )  # fmt: skip
    container_env = tmp_path / "container-env.json"
    try:
        deadline = time.monotonic() + 90
        while not container_env.is_file() or not (tmp_path / "env.json").is_file():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "no env files"
            time.sleep(0.1)
        endpoint = json.loads((tmp_path / CONNECTION_FILE).read_text())["endpoint"]
        assert json.loads(container_env.read_text())["AWS_ENDPOINT_URL"] == endpoint
        env_vars = json.loads((tmp_path / "env.json").read_text())
        assert env_vars["FanoutFunction"]["PRISM_TABLE_NAME"] == "prism-local-ProcessingTable"

        submitted = prism("submit", "photos", "--job", "first", cwd=tmp_path, timeout=180)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        upload = prism("event", "upload", "uploads/photos/one.jpg", cwd=tmp_path)
        assert upload.returncode == 0, upload.stderr
        body = json.loads(json.loads(upload.stdout)["Records"][0]["body"])
        assert body["Records"][0]["s3"]["object"]["key"] == "uploads/photos/one.jpg"
        variant = prism("event", "variant", "uploads/photos/one.jpg", cwd=tmp_path)
        assert variant.returncode == 0, variant.stderr
        assert len(json.loads(variant.stdout)["Records"]) == 3
        # The stack rendered the upload itself: the worker would skip these.
        assert "recorded large, thumbnail, web already" in variant.stderr
        new_run = prism("event", "variant", "uploads/photos/one.jpg", "--variant", "web",
                         "--new-run", cwd=tmp_path)  # fmt: skip
        assert new_run.returncode == 0, new_run.stderr
        (record,) = json.loads(new_run.stdout)["Records"]  # the fan-out logged on stderr
        assert VariantTask.model_validate_json(record["body"]).run_order == 2
    finally:
        server.send_signal(signal.SIGINT)
        stdout, stderr = server.communicate(timeout=120)
    assert server.returncode == 0, stderr
    assert "sam env        env.json, container-env.json" in stdout

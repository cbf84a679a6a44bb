"""The local stack follows template.yaml, S3 notifies the uploads queue, and the Lambda SQS
event source emulator deletes, retries and dead-letters messages as Lambda would."""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from prism.settings import Settings
from prism_cli.errors import TemplateError
from prism_cli.local.lambda_emulator import (
    FakeLambdaContext,
    InvalidBatchResponse,
    SqsEventSourceEmulator,
    default_backoff,
    emulators_for,
    failed_message_ids,
    load_handler,
    run_until_idle,
)
from prism_cli.local.stack import LocalStack, local_environment
from prism_cli.local.template import StackContext, load_template

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def raw_template(template_path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(template_path))
    return loaded


def raw_resources(raw: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in raw["Resources"].items() if res["Type"] == type_}


def drain(stack: LocalStack, queue_url: str, wait: int = 1) -> list[dict[str, Any]]:
    """Receive (and delete) every message now in the queue."""
    sqs = stack.clients.sqs
    received: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", [])
        if not messages:
            return received
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            received.append(json.loads(message["Body"]))


def queue_counts(stack: LocalStack, queue_url: str) -> dict[str, int]:
    attributes = stack.clients.sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return {name: int(value) for name, value in attributes.items()}


# --- the template's description --------------------------------------------------------------
def test_names_and_environment_follow_the_stack_name(template_path: Path) -> None:
    template = load_template(template_path, StackContext(stack_name="other"))

    assert template.bucket("InputBucket").name == f"other-input-{ACCOUNT}"
    worker = template.function("WorkerFunction")
    assert worker.environment["PRISM_INPUT_BUCKET"] == f"other-input-{ACCOUNT}"
    assert worker.environment["PRISM_VARIANTS_QUEUE_URL"].endswith(f"/{ACCOUNT}/other-variants")
    assert worker.environment["PRISM_CONFIG_PARAMETER"] == "/other/pipeline-config"


def test_parameter_overrides_reach_notifications_and_environment(template_path: Path) -> None:
    template = load_template(template_path, StackContext(parameters={"UploadPrefix": "in/"}))

    created, removed = template.bucket("InputBucket").queue_notifications
    assert (created.event, removed.event) == ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
    for notification in (created, removed):
        assert notification.prefix == "in/"
        assert notification.queue == "UploadsQueue"
    assert template.function("FanoutFunction").environment["PRISM_UPLOAD_PREFIX"] == "in/"
    with pytest.raises(TemplateError, match="NoSuchParameter"):
        load_template(template_path, StackContext(parameters={"NoSuchParameter": "x"}))


def test_functions_match_the_raw_template(
    template_path: Path, raw_template: dict[str, Any]
) -> None:
    template = load_template(template_path)
    raw_functions = raw_resources(raw_template, "AWS::Serverless::Function")
    global_variables = raw_template["Globals"]["Function"]["Environment"]["Variables"]

    assert set(template.functions) == set(raw_functions)
    for logical_id, raw in raw_functions.items():
        fn = template.function(logical_id)
        props = raw["Properties"]
        assert fn.handler == props["Handler"]
        assert fn.timeout == props.get("Timeout", raw_template["Globals"]["Function"]["Timeout"])
        assert fn.code_uri == (template_path.parent / props["CodeUri"]).resolve()
        assert set(global_variables) <= set(fn.environment)
        (event_name,) = props["Events"]
        raw_event = props["Events"][event_name]["Properties"]
        (event,) = fn.sqs_events
        assert event.batch_size == raw_event["BatchSize"]
        assert event.maximum_batching_window == raw_event["MaximumBatchingWindowInSeconds"]
        assert event.reports_batch_item_failures
        assert event.queue == raw_event["Queue"]["Fn::GetAtt"][0]
    worker = template.function("WorkerFunction")
    assert worker.memory_size == raw_template["Parameters"]["WorkerMemorySize"]["Default"]


def test_intrinsics_sub_forms_and_unsupported_ones(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        textwrap.dedent(
            """
            Parameters:
              Stage: {Type: String, Default: dev}
            Resources:
              Table:
                Type: AWS::DynamoDB::Table
                Properties:
                  TableName: !Sub
                    - "${Prefix}-${Stage}-${!Literal}-${AWS::Region}"
                    - Prefix: !Join ["", [p, "1"]]
                  KeySchema: [{AttributeName: id, KeyType: HASH}]
                  AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
              Param:
                Type: AWS::SSM::Parameter
                Properties:
                  Type: String
                  Value: !GetAtt Table.Arn
            """
        )
    )
    template = load_template(path, StackContext(region="eu-west-1"))
    assert template.table("Table").name == "p1-dev-${Literal}-eu-west-1"
    assert template.ssm_parameters["Param"].value == (
        f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/p1-dev-${{Literal}}-eu-west-1"
    )
    assert template.ssm_parameters["Param"].name == "prism-local-Param"

    path.write_text(
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n"
        "    Properties: {Type: String, Value: !Select [0, [a, b]]}\n"
    )
    with pytest.raises(TemplateError, match="Fn::Select"):
        load_template(path)
    path.write_text(
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n"
        "    Properties: {Type: String, Value: !If [C, a, b]}\n"
    )
    with pytest.raises(TemplateError, match="unknown condition 'C'"):
        load_template(path)


def test_conditions_decide_resources_and_values(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        textwrap.dedent(
            """
            Parameters:
              Email: {Type: String, Default: ""}
              Logs: {Type: String, Default: "false"}
            Conditions:
              HasEmail: !Not [!Equals [!Ref Email, ""]]
              LogsOn: !Equals [!Ref Logs, "true"]
              Either: !Or [{Condition: HasEmail}, {Condition: LogsOn}]
            Resources:
              Logged:
                Type: AWS::SSM::Parameter
                Condition: LogsOn
                Properties: {Type: String, Value: x}
              Always:
                Type: AWS::SSM::Parameter
                Properties:
                  Type: String
                  Value: !If [Either, "yes", "no"]
                  Description: !If [HasEmail, !Ref Email, !Ref AWS::NoValue]
            """
        )
    )
    off = load_template(path)
    assert set(off.ssm_parameters) == {"Always"}
    assert off.ssm_parameters["Always"].value == "no"
    assert off.ssm_parameters["Always"].description is None  # left out, as AWS::NoValue is
    on = load_template(path, StackContext(parameters={"Logs": "true", "Email": "a@b.c"}))
    assert set(on.ssm_parameters) == {"Always", "Logged"}
    assert on.ssm_parameters["Always"].value == "yes"
    assert on.ssm_parameters["Always"].description == "a@b.c"


def test_the_optional_cdn_is_not_emulated_but_loads(template_path: Path) -> None:
    off = load_template(template_path)
    assert not {"CdnDomainName", "CdnDistributionId"} & set(off.outputs)
    on = load_template(template_path, StackContext(parameters={"EnableCdn": "true"}))
    assert on.outputs["CdnDomainName"].endswith(".cloudfront.net")
    assert (on.buckets, on.functions, on.roles) == (off.buckets, off.functions, off.roles)


def test_functions_disagreeing_on_a_variable_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    functions = "".join(
        f"""
          {name}:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn/
              Handler: h.handler
              Environment: {{Variables: {{LOG_LEVEL: {level}}}}}"""
        for name, level in (("A", "INFO"), ("B", "DEBUG"))
    )
    path.write_text(textwrap.dedent("Resources:" + functions))
    template = load_template(path)
    with pytest.raises(TemplateError, match="LOG_LEVEL"):
        local_environment(template, "http://127.0.0.1:1")


# --- the stack in moto -----------------------------------------------------------------------
def parameter_default(raw_template: dict[str, Any], value: Any) -> Any:
    """A literal, or the default of the template parameter a ``Ref`` names."""
    if isinstance(value, dict) and "Ref" in value:
        return raw_template["Parameters"][value["Ref"]]["Default"]
    return value


def test_the_functions_know_each_queues_max_receive_count(local_stack: LocalStack) -> None:
    settings = Settings.from_env(local_stack.environment)
    queues = local_stack.template.queues
    assert queues["VariantsQueue"].redrive is not None
    assert queues["UploadsQueue"].redrive is not None
    assert settings.variants_max_receive_count == queues["VariantsQueue"].redrive.max_receive_count
    assert settings.uploads_max_receive_count == queues["UploadsQueue"].redrive.max_receive_count


def test_queues_have_the_template_attributes(
    local_stack: LocalStack, raw_template: dict[str, Any]
) -> None:
    sqs = local_stack.clients.sqs
    raw_queues = raw_resources(raw_template, "AWS::SQS::Queue")
    assert set(local_stack.template.queues) == set(raw_queues)
    for logical_id, raw in raw_queues.items():
        props = raw["Properties"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=local_stack.queue_url(logical_id), AttributeNames=["All"]
        )["Attributes"]
        if "VisibilityTimeout" in props:
            assert int(attributes["VisibilityTimeout"]) == props["VisibilityTimeout"]
        if "MessageRetentionPeriod" in props:
            assert int(attributes["MessageRetentionPeriod"]) == props["MessageRetentionPeriod"]
        if "RedrivePolicy" in props:
            redrive = json.loads(attributes["RedrivePolicy"])
            assert redrive["maxReceiveCount"] == parameter_default(
                raw_template, props["RedrivePolicy"]["maxReceiveCount"]
            )
            dlq_id = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            dlq_arn = sqs.get_queue_attributes(
                QueueUrl=local_stack.queue_url(dlq_id), AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            assert redrive["deadLetterTargetArn"] == dlq_arn
        else:
            assert "RedrivePolicy" not in attributes


def test_table_buckets_and_parameter_exist_as_declared(
    local_stack: LocalStack, raw_template: dict[str, Any]
) -> None:
    clients = local_stack.clients
    (raw_table,) = raw_resources(raw_template, "AWS::DynamoDB::Table").values()
    table = clients.dynamodb.describe_table(TableName=os.environ["PRISM_TABLE_NAME"])["Table"]
    assert table["KeySchema"] == raw_table["Properties"]["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == raw_table["Properties"]["BillingMode"]

    buckets = {bucket["Name"] for bucket in clients.s3.list_buckets()["Buckets"]}
    assert buckets == {f"prism-local-input-{ACCOUNT}", f"prism-local-output-{ACCOUNT}"}
    for bucket in buckets:
        block = clients.s3.get_public_access_block(Bucket=bucket)
        assert all(block["PublicAccessBlockConfiguration"].values())
        rules = clients.s3.get_bucket_encryption(Bucket=bucket)[
            "ServerSideEncryptionConfiguration"
        ]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    parameter = clients.ssm.get_parameter(Name=os.environ["PRISM_CONFIG_PARAMETER"])["Parameter"]
    assert parameter["Value"] == raw_template["Parameters"]["PipelineConfig"]["Default"]


def test_handler_environment_matches_the_template(local_stack: LocalStack) -> None:
    for fn in local_stack.template.functions.values():
        for name, value in fn.environment.items():
            assert os.environ[name] == value
    assert os.environ["AWS_ENDPOINT_URL"] == local_stack.endpoint
    settings = Settings.from_env()
    # Every name the handlers get refers to a resource that exists.
    local_stack.clients.sqs.get_queue_attributes(
        QueueUrl=settings.variants_queue_url, AttributeNames=["QueueArn"]
    )
    local_stack.clients.s3.head_bucket(Bucket=settings.input_bucket)
    local_stack.clients.s3.head_bucket(Bucket=settings.output_bucket)
    local_stack.clients.dynamodb.describe_table(TableName=settings.table_name)
    assert settings.upload_prefix == local_stack.template.parameters["UploadPrefix"]


def test_upload_under_the_prefix_notifies_the_uploads_queue_once(local_stack: LocalStack) -> None:
    s3 = local_stack.clients.s3
    bucket = os.environ["PRISM_INPUT_BUCKET"]
    prefix = os.environ["PRISM_UPLOAD_PREFIX"]
    uploads = local_stack.queue_url("UploadsQueue")
    drain(local_stack, uploads)  # the s3:TestEvent sent when the notification was set

    s3.put_object(Bucket=bucket, Key=f"{prefix}trip/my cat.jpg", Body=b"jpeg")
    messages = drain(local_stack, uploads)
    records = [record for message in messages for record in message.get("Records", [])]
    assert len(records) == 1
    assert records[0]["eventName"].startswith("ObjectCreated:")
    assert records[0]["s3"]["bucket"]["name"] == bucket

    s3.put_object(Bucket=bucket, Key="elsewhere/cat.jpg", Body=b"jpeg")
    assert drain(local_stack, uploads) == []


# --- the event source emulator ---------------------------------------------------------------
def make_emulator(
    stack: LocalStack, function: str, handler: Callable[[dict[str, Any], Any], Any], **options: Any
) -> SqsEventSourceEmulator:
    fn = stack.template.function(function)
    (event,) = fn.sqs_events
    options.setdefault("batching_window", 0)
    return SqsEventSourceEmulator(
        fn,
        event,
        stack.template.queue(event.queue),
        stack.clients.sqs,
        region=stack.template.context.region,
        handler=handler,
        **options,
    )


def send(stack: LocalStack, queue: str, *bodies: str) -> None:
    for body in bodies:
        stack.clients.sqs.send_message(
            QueueUrl=stack.queue_url(queue),
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
        )


def fail_bodies(*bad: str) -> tuple[list[dict[str, Any]], Callable[[dict[str, Any], Any], Any]]:
    """A handler failing the records whose body is in ``bad``, and the events it saw."""
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record in event["Records"]
                if record["body"] in bad
            ]
        }

    return events, handler


def test_successful_messages_are_deleted_and_the_event_is_lambdas(local_stack: LocalStack) -> None:
    events, handler = fail_bodies()
    emulator = make_emulator(local_stack, "WorkerFunction", handler)
    send(local_stack, "VariantsQueue", "a", "b", "c")

    handled = 0
    while handled < 3:
        assert emulator.poll_once() > 0
        handled = sum(len(event["Records"]) for event in events)

    queue = local_stack.template.queue("VariantsQueue")
    record = events[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == local_stack.template.context.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"
    assert {"messageId", "receiptHandle", "md5OfBody", "body"} <= set(record)
    assert emulator.stats.deleted == 3
    assert emulator.in_flight == 0
    assert queue_counts(local_stack, queue.url) == {
        "ApproximateNumberOfMessages": 0,
        "ApproximateNumberOfMessagesNotVisible": 0,
    }


def test_a_failed_message_comes_back_quickly(local_stack: LocalStack) -> None:
    events, handler = fail_bodies("bad")
    emulator = make_emulator(local_stack, "WorkerFunction", handler)
    send(local_stack, "VariantsQueue", "good", "bad")

    def deliveries(body: str) -> list[str]:
        return [
            record["attributes"]["ApproximateReceiveCount"]
            for event in events
            for record in event["Records"]
            if record["body"] == body
        ]

    while not deliveries("bad"):
        emulator.poll_once()
    failed_at = time.monotonic()
    # Visible again after the emulator's short backoff, not the queue's 720 s timeout.
    while len(deliveries("bad")) < 2 and time.monotonic() < failed_at + default_backoff(1) + 5:
        emulator.poll_once()

    assert deliveries("bad") == ["1", "2"]
    assert deliveries("good") == ["1"]
    assert emulator.stats.deleted == 1
    assert emulator.stats.retried == 2


def test_a_raising_handler_deletes_nothing(local_stack: LocalStack) -> None:
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        calls.append(len(event["Records"]))
        raise RuntimeError("boom")

    emulator = make_emulator(local_stack, "WorkerFunction", handler, retry_backoff=lambda n: 60)
    send(local_stack, "VariantsQueue", "x", "y")
    while sum(calls) < 2:
        emulator.poll_once()

    assert emulator.stats.deleted == 0
    assert emulator.stats.errors == len(calls)
    assert "RuntimeError: boom" in emulator.errors[0].error
    counts = queue_counts(local_stack, local_stack.queue_url("VariantsQueue"))
    assert counts["ApproximateNumberOfMessagesNotVisible"] == 2


def test_a_message_that_always_fails_ends_in_the_dead_letter_queue(
    local_stack: LocalStack,
) -> None:
    queue = local_stack.template.queue("VariantsQueue")
    assert queue.redrive is not None
    attempts: list[str] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            attempts.extend(
                record["attributes"]["ApproximateReceiveCount"] for record in event["Records"]
            )
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}

    emulator = make_emulator(
        local_stack, "WorkerFunction", handler, instances=2, retry_backoff=lambda n: 0
    )
    send(local_stack, "VariantsQueue", "poison")
    dlq_url = local_stack.queue_url(queue.redrive.dead_letter_queue)
    emulator.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if queue_counts(local_stack, dlq_url)["ApproximateNumberOfMessages"]:
                break
            time.sleep(0.2)
    finally:
        emulator.stop()

    expected = [str(n) for n in range(1, queue.redrive.max_receive_count + 1)]
    assert sorted(attempts) == expected
    dead = local_stack.clients.sqs.receive_message(QueueUrl=dlq_url)["Messages"]
    assert [message["Body"] for message in dead] == ["poison"]
    assert queue_counts(local_stack, queue.url)["ApproximateNumberOfMessages"] == 0


def test_handler_loaded_from_a_file_sees_the_function_environment(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    module = f"probe_handler_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            import os
            TABLE = os.environ["PRISM_TABLE_NAME"]  # read at import, like settings
            TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT")

            def handler(event, context):
                return {
                    "batchItemFailures": [],
                    "table": TABLE,
                    "task_root": TASK_ROOT,
                    "function": context.function_name,
                    "memory": context.memory_limit_in_mb,
                    "remaining": context.get_remaining_time_in_millis(),
                }
            """
        )
    )
    task_root_before = os.environ.get("LAMBDA_TASK_ROOT")
    handler = load_handler(tmp_path / f"{module}.py")
    fn = local_stack.template.function("FanoutFunction")
    result = handler({"Records": []}, FakeLambdaContext.for_function(fn))

    assert result["table"] == local_stack.template.table("ProcessingTable").name
    # Imported as in Lambda: with the task root set (libraries decide at import where they
    # run), and the process's own value back afterwards.
    assert result["task_root"] == str(tmp_path.resolve())
    assert os.environ.get("LAMBDA_TASK_ROOT") == task_root_before
    assert result["function"] == fn.name
    assert result["memory"] == fn.memory_size
    assert 0 < result["remaining"] <= fn.timeout * 1000
    assert load_handler(tmp_path / f"{module}.py") is handler  # imported once


def test_batch_item_failure_responses_are_read_like_lambda() -> None:
    ids = ["m1", "m2"]
    assert failed_message_ids(None, ids) == set()
    assert failed_message_ids({"batchItemFailures": []}, ids) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "m2"}]}, ids) == {"m2"}
    invalid_failures: list[list[dict[str, str]]] = [
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": "other"}],
        [{}],
    ]
    for invalid in invalid_failures:
        with pytest.raises(InvalidBatchResponse):
            failed_message_ids({"batchItemFailures": invalid}, ids)
    assert [default_backoff(n) for n in (1, 2, 3, 4, 9)] == [2, 4, 8, 8, 8]


def test_run_until_idle_drives_a_chain_of_functions(local_stack: LocalStack) -> None:
    sqs = local_stack.clients.sqs
    variants_url = local_stack.queue_url("VariantsQueue")
    rendered: list[str] = []
    lock = threading.Lock()

    def fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for record in event["Records"]:
            for n in range(3):
                sqs.send_message(QueueUrl=variants_url, MessageBody=f"{record['body']}-{n}")
        return {"batchItemFailures": []}

    def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            rendered.extend(record["body"] for record in event["Records"])
        return {"batchItemFailures": []}

    drain(local_stack, local_stack.queue_url("UploadsQueue"))  # the s3:TestEvent
    emulators = emulators_for(
        local_stack.template,
        sqs,
        handlers={"FanoutFunction": fan_out, "WorkerFunction": work},
        instances={"WorkerFunction": 3},
        batching_window=0,
    )
    send(local_stack, "UploadsQueue", "a", "b")

    run_until_idle(emulators, sqs, timeout=60, poll_seconds=0.2)

    assert sorted(rendered) == [f"{s}-{n}" for s in "ab" for n in range(3)]
    assert [e.function.logical_id for e in emulators] == ["FanoutFunction", "WorkerFunction"]
    assert all(e.in_flight == 0 and not e.errors for e in emulators)

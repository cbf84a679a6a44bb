"""The job commands against the moto server: submit, status, cancel, log, pull, jobs, backfill, the
choice of stack, and ``prism stack up`` as a long-running process.

Most commands run in-process (``prism_cli.main.main``) against the ``local_stack`` fixture,
with the fan-out and worker emulators running in the background and a connection file in
the test's folder, as ``prism stack up`` would leave it. ``stack up`` itself runs in a
subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from prism.aws import schema
from prism.config import default_config, parse_config
from prism.jobs import JobCounters, JobRecord
from prism.messages import JOB_METADATA_KEY
from prism_cli.connection import CONNECTION_FILE, write_connection_file
from prism_cli.jobs.processing_log import ProcessingLog
from prism_cli.local.lambda_emulator import SqsEventSourceEmulator, emulators_for, forget_warm_state
from prism_cli.local.stack import LocalStack
from prism_cli.main import main
from prism_cli.report import REPORT_NAME
from support.cli import PRISM, child_env, one_line_error, prism, start_prism, user_error
from support.images import image_bytes, image_file
from support.pipeline import (
    create_job,
    job_progress,
    output_json,
    output_keys,
    output_objects,
    with_jobs,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, MessageTypeDef

pytestmark = pytest.mark.integration

TWO_VARIANTS = """
variants:
  - {name: thumbnail, transforms: [{op: thumbnail, width: 64, height: 64}], format: JPEG}
  - {name: web, transforms: [{op: thumbnail, width: 160, height: 160}], format: WEBP}
"""
THREE_VARIANTS = (
    TWO_VARIANTS
    + "  - {name: tiny, transforms: [{op: thumbnail, width: 16, height: 16}], format: PNG}\n"
)


# --- helpers --------------------------------------------------------------------------------------
def image(path: Path, size: tuple[int, int] = (320, 240), *, noise: bool = False) -> Path:
    return image_file(path, size, "JPEG", "teal", noise=noise, quality=90)


def job_record(stack: LocalStack, job_id: str) -> JobRecord | None:
    return with_jobs(stack, lambda jobs: jobs.get(job_id))


def wait_for(condition: Callable[[], bool], timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def connected(local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's folder holds a connection file for the fixture's stack (as `stack up`)."""
    monkeypatch.chdir(tmp_path)
    write_connection_file(
        tmp_path / CONNECTION_FILE,
        endpoint=local_stack.endpoint,
        region=local_stack.template.context.region,
        stack_name=local_stack.template.context.stack_name,
        outputs=local_stack.template.outputs,
        parameters=local_stack.template.parameters,
    )
    local_stack.put_pipeline_config(TWO_VARIANTS)
    return tmp_path


@pytest.fixture
def functions(connected: Path, local_stack: LocalStack) -> Iterator[list[SqsEventSourceEmulator]]:
    """The fan-out and the workers, running in the background."""
    emulators = emulators_for(
        local_stack.template,
        local_stack.clients.sqs,
        instances={"WorkerFunction": 2, "FanoutFunction": 1},
        batching_window=0,
    )
    for emulator in emulators:
        emulator.start()
    yield emulators
    for emulator in emulators:
        emulator.request_stop()
    for emulator in emulators:
        emulator.join()


def cli_out(capsys: pytest.CaptureFixture[str]) -> str:
    """What the command printed, without the lines of the functions running in-process
    (Powertools JSON logs and EMF metrics)."""
    lines = capsys.readouterr().out.splitlines()
    return "\n".join(line for line in lines if not line.startswith(('{"level"', '{"_aws"')))


def stdout_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return cli_out(capsys).splitlines()


# --- submit, status, log --------------------------------------------------------------------------
def test_submit_a_folder_completes_with_exact_counts(
    functions: list[SqsEventSourceEmulator],
    local_stack: LocalStack,
    connected: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    photos = connected / "photos"
    image(photos / "a.jpg")
    image(photos / "trip" / "b.jpg", (200, 400))
    image(photos / "c.jpg", (640, 480))
    (photos / "notes.txt").write_text("not an image")

    code = main(["submit", str(photos), "--job", "holiday", "--prefix", "batch-1"])

    out = stdout_lines(capsys)
    assert code == 0, out
    assert out[0] == "holiday"  # the job id first, alone
    progress = job_progress(local_stack, "holiday")
    counters = progress.counters
    assert progress.job.status == "complete" and progress.job.kind == "submit"
    assert progress.job.expected_sources == 3
    assert counters.sources_finished == 3
    assert counters.variants_expected == counters.variants_done == 3 * 2
    assert counters.variants_failed == counters.variants_skipped == 0
    assert len(output_keys(local_stack)) == 6
    head = local_stack.clients.s3.head_object(
        Bucket=local_stack.bucket_name("InputBucket"), Key="uploads/batch-1/photos/trip/b.jpg"
    )
    assert head["Metadata"] == {JOB_METADATA_KEY: "holiday"}
    for emulator in functions:
        assert not emulator.errors, emulator.errors

    # A snapshot as JSON.
    assert main(["status", "holiday", "--json"]) == 0
    document = json.loads(cli_out(capsys))
    assert document["status"] == "complete" and document["sealed"] is True
    assert document["stages"]["complete"] == {"count": 3, "total": 3, "percent": 100.0}
    assert document["stages"]["saving"] == {"count": 6, "total": 6, "percent": 100.0}
    assert document["counters"]["variants_done"] == 6

    # The same job name again is refused; a human-readable snapshot shows the stages.
    assert main(["submit", str(photos), "--job", "holiday", "--no-follow"]) == 2
    one_line_error(capsys.readouterr().err, "'holiday' exists already")
    assert main(["status", "holiday"]) == 0
    snapshot = cli_out(capsys)
    assert "Job holiday (submit) complete" in snapshot and "6/6" in snapshot


def test_log_export_and_import_round_trip(
    functions: list[SqsEventSourceEmulator],
    local_stack: LocalStack,
    connected: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    photos = connected / "photos"
    image(photos / "good.jpg")
    (photos / "broken.jpg").write_bytes(image(connected / "whole.jpg").read_bytes()[:300])

    assert main(["submit", str(photos), "--job", "mixed"]) == 1  # complete_with_failures
    out = cli_out(capsys)
    assert "failed" in out and "broken.jpg" in out  # failures are shown as they happen

    exported = connected / "mixed.json"
    assert main(["log", "mixed", "--json", str(exported)]) == 0
    document = json.loads(exported.read_text())
    assert document["job"] == "mixed"
    bucket = local_stack.bucket_name("InputBucket")
    assert document["successful"] == [f"s3://{bucket}/uploads/photos/good.jpg"]
    [failed] = document["failed"]
    assert failed["path"] == f"s3://{bucket}/uploads/photos/broken.jpg"
    assert failed["error"].startswith("truncated")
    assert document["summary"] == {
        "files": 2,
        "successful": 1,
        "partial": 0,
        "failed": 1,
        "skipped": 0,
        "variants_done": 2,
        "variants_failed": 2,
        "variants_skipped": 0,
    }
    done = [entry for entry in document["variants"] if entry["status"] == "done"]
    keys = output_keys(local_stack)
    output_bucket = local_stack.bucket_name("OutputBucket")
    assert sorted(entry["output"] for entry in done) == sorted(
        f"s3://{output_bucket}/{key}" for key in keys
    )

    loaded = ProcessingLog.load(exported)
    assert loaded.model_dump(mode="json") == document
    capsys.readouterr()
    assert main(["log", "--load", str(exported)]) == 0
    shown = cli_out(capsys)
    assert "sources: 1 successful, 0 partial, 1 failed, 0 skipped" in shown
    assert "variants: 2 done, 2 failed, 0 skipped" in shown and "broken.jpg" in shown

    assert main(["log", "mixed", "--failed-only", "--json", "-"]) == 1  # it lists failures
    only_failed = json.loads(cli_out(capsys))
    assert only_failed["successful"] == [] and len(only_failed["failed"]) == 1
    assert {entry["status"] for entry in only_failed["variants"]} == {"failed"}


def test_cancel_half_way(
    functions: list[SqsEventSourceEmulator],
    local_stack: LocalStack,
    connected: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    photos = connected / "many"
    sources = 30
    for index in range(sources):
        image(photos / f"n{index:02d}.jpg", (1600, 1200), noise=True)

    assert main(["submit", str(photos), "--job", "big", "--no-follow"]) == 0
    wait_for(
        lambda: job_progress(local_stack, "big").counters.sources_finished >= 3,
        what="the first sources to finish",
    )
    assert main(["cancel", "big"]) == 0
    assert "cancel" in cli_out(capsys)
    assert main(["status", "big", "--watch"]) == 3  # followed to the end: cancelled

    progress = job_progress(local_stack, "big")
    counters = progress.counters
    assert progress.job.status == "cancelled"
    assert counters.sources_finished == sources
    finished = counters.variants_done + counters.variants_failed + counters.variants_skipped
    assert finished == sources * 2 == counters.variants_expected
    assert counters.variants_done >= 3 * 2 and counters.variants_skipped > 0
    # Exactly the rendered variants were written: nothing for a skipped one.
    assert len(output_keys(local_stack)) == counters.variants_done

    log_file = connected / "big.json"
    assert main(["log", "big", "--json", str(log_file)]) == 0
    log = ProcessingLog.load(log_file)
    assert log.interrupted  # a cancelled job's log says so
    assert len(log.successful) + len(log.partial) + len(log.failed) + len(log.skipped) == sources
    assert log.skipped and {entry.reason for entry in log.skipped} == {"cancelled"}
    # A source cut off half way is partial, never successful.
    for partial in log.partial:
        assert partial.done and set(partial.not_done.values()) == {"cancelled"}
    assert all(
        entry.status == "done" for entry in log.variants if entry.path in set(log.successful)
    )
    assert log.summary.variants_done == counters.variants_done
    assert {v.reason for v in log.variants if v.status == "skipped"} <= {"cancelled"}

    # Cancelling a job that has ended says so and changes nothing.
    assert main(["cancel", "big"]) == 0
    assert "already ended: cancelled" in cli_out(capsys)


def test_unknown_jobs_and_bad_names_are_one_line_errors(
    connected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["status", "nope"], ["cancel", "nope"], ["log", "nope"]):
        assert main(command) == 2
        one_line_error(capsys.readouterr().err, "no job named 'nope'")
    assert main(["submit", str(connected), "--job", "bad#name"]) == 2
    one_line_error(capsys.readouterr().err, "invalid job name")
    assert main(["log"]) == 2
    one_line_error(capsys.readouterr().err, "name a job")
    assert main(["log", "--load", str(connected / "missing.json")]) == 2
    one_line_error(capsys.readouterr().err, "missing.json")


# --- backfill -------------------------------------------------------------------------------------
def put_library(stack: LocalStack) -> list[str]:
    """Objects that were never uploaded under the upload prefix (no notification)."""
    s3, bucket = stack.clients.s3, stack.bucket_name("InputBucket")
    keys = ["library/a.jpg", "library/2024/b.jpg", "library/c.jpg"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=image_bytes())
    s3.put_object(Bucket=bucket, Key="library/2024/", Body=b"")  # a "folder"
    s3.put_object(Bucket=bucket, Key="library/empty.jpg", Body=b"")
    return keys


def test_backfill_renders_existing_objects_and_missing_only_adds_a_new_variant(
    functions: list[SqsEventSourceEmulator],
    local_stack: LocalStack,
    connected: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = put_library(local_stack)
    library = f"s3://{local_stack.bucket_name('InputBucket')}/library/"

    assert main(["backfill", library, "--job", "fill"]) == 0
    progress = job_progress(local_stack, "fill")
    assert progress.job.kind == "backfill" and progress.job.status == "complete"
    assert progress.job.expected_sources == len(keys)  # no folder, no empty object
    assert progress.counters.variants_done == len(keys) * 2
    before = variant_objects(local_stack)
    assert len(before) == len(keys) * 2

    # A new variant in the config; --missing-only renders just that one.
    local_stack.put_pipeline_config(THREE_VARIANTS)
    forget_warm_state()  # the functions read the new config now, not after their cache time
    time.sleep(1.1)  # S3 LastModified has a resolution of a second
    assert main(["backfill", library, "--missing-only", "--job", "fill-tiny"]) == 0
    progress = job_progress(local_stack, "fill-tiny")
    assert progress.job.status == "complete"
    assert progress.counters.variants_done == len(keys)
    after = variant_objects(local_stack)
    new = set(after) - set(before)
    assert len(new) == len(keys) and all("_tiny." in key for key in new)
    assert {key: after[key] for key in before} == before  # nothing rewritten
    # The manifest lists the source's variants of both runs.
    manifest = output_json(local_stack, "library/a_manifest.json")
    assert [v["name"] for v in manifest["variants"]] == ["thumbnail", "tiny", "web"]
    capsys.readouterr()

    # --variants picks variants by name; an unknown name is a one-line error.
    assert main(["backfill", library, "--variants", "thumbnail,nope"]) == 2
    one_line_error(capsys.readouterr().err, "'nope'", "thumbnail, web, tiny")


def variant_objects(stack: LocalStack) -> dict[str, Any]:
    """The output bucket's variants (not the manifests, rewritten by every run)."""
    variants = output_keys(stack)
    return {key: modified for key, modified in output_objects(stack).items() if key in variants}


def test_backfill_dry_run_creates_nothing(
    local_stack: LocalStack, connected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = put_library(local_stack)
    bucket = local_stack.bucket_name("InputBucket")

    code = main(["backfill", f"s3://{bucket}/library/", "--dry-run", "--job", "dry"])

    out = cli_out(capsys)
    assert code == 0
    assert f"would enqueue {len(keys)} objects" in out
    assert all(f"s3://{bucket}/{key}" in out for key in keys)
    assert job_record(local_stack, "dry") is None
    messages = local_stack.clients.sqs.receive_message(
        QueueUrl=local_stack.template.outputs["UploadsQueueUrl"], MaxNumberOfMessages=10
    ).get("Messages", [])
    assert not [m for m in messages if "prism.backfill" in m["Body"]]  # S3's test event only
    assert main(["backfill", "library/"]) == 2
    one_line_error(capsys.readouterr().err, "s3://BUCKET/PREFIX")


def test_backfill_missing_only_dry_run_names_each_objects_missing_variants(
    local_stack: LocalStack, connected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put_library(local_stack)
    bucket, output = local_stack.bucket_name("InputBucket"), local_stack.bucket_name("OutputBucket")
    config = parse_config(TWO_VARIANTS)
    upload_prefix = local_stack.template.parameters.get("UploadPrefix", "uploads/")
    # a.jpg has both outputs, 2024/b.jpg only its thumbnail, c.jpg none.
    for key, names in (
        ("library/a.jpg", ("thumbnail", "web")),
        ("library/2024/b.jpg", ("thumbnail",)),
    ):
        for variant in config.variants:
            if variant.name in names:
                output_key = config.output_key_for(key, variant, upload_prefix)
                local_stack.clients.s3.put_object(Bucket=output, Key=output_key, Body=b"x")

    code = main(["backfill", f"s3://{bucket}/library/", "--missing-only", "--dry-run"])

    out = cli_out(capsys)
    assert code == 0, out
    assert "would enqueue 3 objects" in out
    assert "2 objects miss outputs (3 variants); 1 have every output already" in out
    assert f"s3://{bucket}/library/2024/b.jpg: missing web" in out
    assert f"s3://{bucket}/library/c.jpg: missing thumbnail, web" in out
    assert f"s3://{bucket}/library/a.jpg" not in out


def test_backfill_refuses_the_output_bucket(
    local_stack: LocalStack, connected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = local_stack.bucket_name("OutputBucket")
    local_stack.clients.s3.put_object(Bucket=output, Key="photos/a_thumbnail.jpg", Body=b"x")
    input_bucket = local_stack.bucket_name("InputBucket")

    for command in (
        ["backfill", f"s3://{output}/", "--dry-run"],
        ["backfill", f"s3://{input_bucket}/library/", f"s3://{output}/photos/", "--job", "v"],
    ):
        assert main(command) == 2
        one_line_error(capsys.readouterr().err, f"s3://{output}/", "output bucket")
    assert job_record(local_stack, "v") is None  # refused before the job was made


# --- which stack ----------------------------------------------------------------------------------
FAKE_DEPLOYED = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  UploadPrefix: {Type: String, Default: "uploads/"}
Resources:
  Marker: {Type: AWS::SQS::Queue}
Outputs:
"""


def deploy_fake_stack(stack: LocalStack, name: str) -> None:
    """A CloudFormation stack whose Outputs name the fixture's resources (as SAM's would)."""
    outputs = "".join(
        f"  {key}: {{Value: {json.dumps(value)}}}\n"
        for key, value in stack.template.outputs.items()
    )
    cloudformation = boto3.client("cloudformation")  # the fixture's endpoint and credentials
    cloudformation.create_stack(StackName=name, TemplateBody=FAKE_DEPLOYED + outputs)


def test_a_deployed_stack_is_found_by_name_and_wins_over_the_connection_file(
    local_stack: LocalStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    deploy_fake_stack(local_stack, "prism-prod")
    # A connection file that would lead nowhere: --stack must not use it.
    write_connection_file(
        tmp_path / CONNECTION_FILE,
        endpoint="http://127.0.0.1:9",
        region="us-east-1",
        stack_name="elsewhere",
        outputs={"InputBucketName": "x"},
        parameters={},
    )
    create_job(local_stack, "deployed-job", shards=4)

    assert main(["status", "deployed-job", "--stack", "prism-prod", "--json"]) == 0
    assert json.loads(cli_out(capsys))["job"] == "deployed-job"
    # pull and jobs find it the same way.
    pulled = tmp_path / "pulled"
    assert main(["pull", "deployed-job", "--stack", "prism-prod", "--out", str(pulled)]) == 0
    assert ProcessingLog.load(pulled / "processing_log.json").job == "deployed-job"
    assert "Pulled 0 outputs of job deployed-job" in cli_out(capsys)
    assert main(["jobs", "--stack", "prism-prod", "--json"]) == 0
    assert [job["job"] for job in json.loads(cli_out(capsys))] == ["deployed-job"]

    monkeypatch.setenv("PRISM_STACK", "prism-prod")
    assert main(["cancel", "deployed-job"]) == 0
    assert "cancel" in cli_out(capsys)
    assert job_record(local_stack, "deployed-job") is not None

    assert main(["status", "deployed-job", "--stack", "nowhere"]) == 2
    one_line_error(capsys.readouterr().err, "no stack named 'nowhere'")


def test_no_stack_and_a_stale_connection_file_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRISM_STACK", raising=False)
    assert main(["status", "x"]) == 2
    one_line_error(capsys.readouterr().err, "no stack", "prism stack up")
    assert main(["status", "x", "--local"]) == 2
    one_line_error(capsys.readouterr().err, "no local stack")

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_connection_file(
        tmp_path / CONNECTION_FILE,
        endpoint="http://127.0.0.1:9",
        region="us-east-1",
        stack_name="gone",
        outputs={},
        parameters={},
        pid=dead.pid,
    )
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found from a folder below too
    assert main(["status", "x"]) == 2
    one_line_error(capsys.readouterr().err, "not running", "prism stack up")


# --- prism stack up -------------------------------------------------------------------------------
def test_stack_up_serves_other_commands_and_cleans_up(tmp_path: Path) -> None:
    image(tmp_path / "photos" / "one.jpg")
    server = start_prism("stack", "up", "--port", "0", "--workers", "2", cwd=tmp_path)
    connection = tmp_path / CONNECTION_FILE
    try:
        deadline = time.monotonic() + 90
        while not connection.is_file():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "no connection file"
            time.sleep(0.1)
        document = json.loads(connection.read_text())
        assert document["endpoint"].startswith("http://127.0.0.1:")
        assert document["pid"] == server.pid
        assert document["outputs"]["InputBucketName"]

        missing = prism("status", "nope", cwd=tmp_path, timeout=180)
        user_error(missing, "no job named 'nope'")

        submitted = prism("submit", "photos", "--job", "first", cwd=tmp_path, timeout=180)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        assert submitted.stdout.splitlines()[0] == "first"
        assert "Job first complete" in submitted.stdout
    finally:
        server.send_signal(signal.SIGINT)
        stdout, stderr = server.communicate(timeout=120)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert not connection.exists()
    assert "Local stack stopped" in stdout
    assert "Ephemeral" in stdout


def test_pipeline_config_show_and_set(
    local_stack: LocalStack, connected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "show"]) == 0
    assert parse_config(cli_out(capsys)).variants[0].name == "thumbnail"
    new = connected / "pipeline.yaml"
    new.write_text(THREE_VARIANTS)
    assert main(["config", "set", str(new)]) == 0
    capsys.readouterr()
    assert main(["config", "show"]) == 0
    assert [v.name for v in parse_config(cli_out(capsys)).variants] == [
        "thumbnail",
        "web",
        "tiny",
    ]
    new.write_text("variants: []\n")
    assert main(["config", "set", str(new)]) == 2
    one_line_error(capsys.readouterr().err)
    new.write_text(TWO_VARIANTS, encoding="utf-16")
    assert main(["config", "set", str(new)]) == 2
    one_line_error(capsys.readouterr().err, "pipeline.yaml", "not UTF-8")


# --- redrive --------------------------------------------------------------------------------------
def queue_messages(stack: LocalStack, url: str) -> list[MessageTypeDef]:
    """Every message now in the queue (received, so hidden for a while)."""
    found: list[MessageTypeDef] = []
    while batch := stack.clients.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
    ).get("Messages", []):
        found.extend(batch)
    return found


def queue_counts(stack: LocalStack, url: str) -> tuple[int, int]:
    """(visible, in flight) messages: a DLQ that is empty holds neither."""
    attributes = stack.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def test_redrive_moves_dead_letters_back_to_their_queues(
    local_stack: LocalStack, connected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, outputs = local_stack.clients.sqs, local_stack.template.outputs
    uploads_dlq = local_stack.queue_url("UploadsDeadLetterQueue")
    variants_dlq = local_stack.queue_url("VariantsDeadLetterQueue")
    # S3's test event waits in the uploads queue from the start: not ours to move.
    before = {m["Body"] for m in queue_messages(local_stack, outputs["UploadsQueueUrl"])}
    attribute: dict[str, MessageAttributeValueTypeDef] = {
        "trace": {"DataType": "String", "StringValue": "t-1"}
    }
    for index in range(23):
        sqs.send_message(
            QueueUrl=variants_dlq, MessageBody=f"variant-{index}", MessageAttributes=attribute
        )
    for index in range(3):
        sqs.send_message(QueueUrl=uploads_dlq, MessageBody=f"upload-{index}")

    assert main(["redrive", "--queue", "variants"]) == 0
    out = cli_out(capsys)
    assert "variants: 23 messages moved" in out and "uploads" not in out
    assert queue_counts(local_stack, variants_dlq) == (0, 0)
    moved = queue_messages(local_stack, outputs["VariantsQueueUrl"])
    # None lost, none twice, attributes kept.
    assert sorted(m["Body"] for m in moved) == sorted(f"variant-{i}" for i in range(23))
    assert all(m["MessageAttributes"] == attribute for m in moved)
    assert queue_counts(local_stack, uploads_dlq) == (3, 0)  # not asked for

    assert main(["redrive"]) == 0
    out = cli_out(capsys)
    assert "uploads: 3 messages moved" in out and "variants: nothing to move" in out
    back = {m["Body"] for m in queue_messages(local_stack, outputs["UploadsQueueUrl"])} - before
    assert back == {"upload-0", "upload-1", "upload-2"}
    assert queue_counts(local_stack, uploads_dlq) == (0, 0)


# --- Ctrl+C while following -------------------------------------------------------------------
class Terminal:
    """A command on a pseudo-terminal (so it may ask questions), read as it writes."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        master, slave = os.openpty()
        self.master = master
        self.output = b""
        self.process = subprocess.Popen(
            [*PRISM, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=child_env(),
            close_fds=True,
        )
        os.close(slave)

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the command has exited
                    return

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            exited = self.process.poll() is not None
            assert not exited and time.monotonic() < deadline, f"no {text!r} in {self.text!r}"
            self.read(0.2)

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:  # keep reading: a full terminal blocks the writer
            assert time.monotonic() < deadline, self.text
            self.read(0.2)
        self.read(0.2)
        os.close(self.master)
        return self.process.returncode

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


@pytest.fixture
def unsealed_job(local_stack: LocalStack, connected: Path) -> str:
    """A job that keeps running: nobody has sealed it."""
    create_job(local_stack, "waiting", shards=4)
    return "waiting"


def test_ctrl_c_on_a_terminal_asks_before_cancelling(
    local_stack: LocalStack, connected: Path, unsealed_job: str
) -> None:
    declined = Terminal(["status", unsealed_job, "--watch"], connected)
    declined.expect("Scanning")
    declined.interrupt()
    declined.expect(f"Cancel job {unsealed_job}? [y/N]")
    declined.type("n\n")
    assert declined.wait() == 130
    assert "Detached" in declined.text
    assert job_progress(local_stack, unsealed_job).job.status == "running"

    accepted = Terminal(["status", unsealed_job, "--watch"], connected)
    accepted.expect("Scanning")
    accepted.interrupt()
    accepted.expect("[y/N]")
    accepted.type("y\n")
    accepted.expect("Cancelling job")
    # The job cannot end while unsealed; a second Ctrl+C stops following it.
    accepted.interrupt()
    assert accepted.wait() == 130
    assert "Traceback" not in accepted.text
    assert job_progress(local_stack, unsealed_job).job.status == "cancelling"


def test_ctrl_c_without_a_terminal_detaches(
    local_stack: LocalStack, connected: Path, unsealed_job: str
) -> None:
    follower = start_prism("status", unsealed_job, "--watch", cwd=connected)
    time.sleep(3)  # following (a pipe shows the display only at the end)
    assert follower.poll() is None, follower.communicate()
    follower.send_signal(signal.SIGINT)
    stdout, stderr = follower.communicate(timeout=60)
    assert follower.returncode == 130, stderr
    assert "Detached" in stdout and "Traceback" not in stderr
    assert job_progress(local_stack, unsealed_job).job.status == "running"


# --- pure pieces ----------------------------------------------------------------------------
def test_stack_precedence_and_names(tmp_path: Path) -> None:
    from prism_cli.errors import UserError
    from prism_cli.jobs.ids import check_job_id, new_job_id
    from prism_cli.jobs.s3_urls import S3Location
    from prism_cli.jobs.target import StackTarget, resolve_target

    with pytest.raises(UserError, match="either --stack or --local"):
        resolve_target("a", local=True, cwd=tmp_path, environ={})
    with pytest.raises(UserError, match="no stack"):
        resolve_target(None, cwd=tmp_path, environ={})
    with pytest.raises(
        UserError, match="stack old has no output OutputBucketName, ProcessingTableName"
    ):
        StackTarget(stack_name="old", outputs={"InputBucketName": "b"})

    assert S3Location.parse("s3://bucket/a/b/") == S3Location("bucket", "a/b/")
    assert S3Location.parse("s3://bucket") == S3Location("bucket", "")
    for bad in ("bucket/a", "s3:///a"):
        with pytest.raises(UserError):
            S3Location.parse(bad)

    generated = new_job_id(datetime(2026, 5, 1, 10, 15, 0, tzinfo=UTC))
    assert generated.startswith("job-20260501-101500-") and len(generated) == 24
    assert check_job_id(generated) == generated
    for bad in ("", "-x", "a#b", "a/b", "é", "x" * 101):
        with pytest.raises(UserError):
            check_job_id(bad)


# --- pull, jobs, log --json's config, config show/set errors ----------------------------------
def test_pull_downloads_only_the_jobs_outputs_and_its_log(
    functions: list[SqsEventSourceEmulator],
    local_stack: LocalStack,
    connected: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image(connected / "photos" / "a.jpg")
    image(connected / "photos" / "trip" / "b.jpg", (200, 400))
    image(connected / "other" / "c.jpg")
    assert main(["submit", str(connected / "other"), "--job", "other"]) == 0
    capsys.readouterr()

    assert main(["submit", str(connected / "photos"), "--job", "holiday"]) == 0

    # submit says how to get the outputs back out of the local stack.
    out = cli_out(capsys)
    output_bucket = local_stack.bucket_name("OutputBucket")
    assert "prism pull holiday --out DIR" in out
    assert (
        f"aws s3 cp --recursive s3://{output_bucket}/photos/ DIR "
        f"--endpoint-url {local_stack.endpoint}" in out
    )

    pulled = connected / "pulled"
    assert main(["pull", "holiday", "--out", str(pulled)]) == 0
    assert "Pulled 4 outputs of job holiday" in cli_out(capsys)
    files = sorted(
        path.relative_to(pulled).as_posix()
        for path in pulled.rglob("*")
        if path.is_file() and path.name not in ("processing_log.json", REPORT_NAME)
    )
    # Laid out as prism run lays them out; nothing of the other job.
    assert files == [
        "photos/a_thumbnail.jpg",
        "photos/a_web.webp",
        "photos/trip/b_thumbnail.jpg",
        "photos/trip/b_web.webp",
    ]
    log = ProcessingLog.load(pulled / "processing_log.json")
    assert log.job == "holiday" and log.summary.variants_done == 4
    assert sorted(entry.output or "" for entry in log.variants) == files
    assert parse_config(log.config) == parse_config(TWO_VARIANTS)
    assert (pulled / REPORT_NAME).is_file()

    assert main(["pull", "nope", "--out", str(pulled)]) == 2
    one_line_error(capsys.readouterr().err, "no job named 'nope'")


def put_job(
    stack: LocalStack, job_id: str, created_at: str, counters: JobCounters, **fields: Any
) -> None:
    """A job item and one counter shard, as the functions leave them."""
    job = JobRecord(job_id=job_id, kind="submit", created_at=created_at, shards=2, **fields)
    table = stack.template.outputs["ProcessingTableName"]
    dynamodb = stack.clients.dynamodb
    dynamodb.put_item(TableName=table, Item=schema.job_item(job))
    shard = schema.to_attributes(schema.counter_deltas(counters))
    dynamodb.put_item(TableName=table, Item={**schema.shard_key(job_id, 1), **shard})


def test_jobs_lists_recent_jobs_first_with_their_counts(
    local_stack: LocalStack, connected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put_job(
        local_stack,
        "oldest",
        "2026-01-01T10:00:00+00:00",
        JobCounters(sources_finished=2, variants_done=4),
        status="complete",
        sealed=True,
        expected_sources=2,
    )
    put_job(
        local_stack,
        "middle",
        "2026-01-02T10:00:00+00:00",
        JobCounters(
            sources_finished=3,
            sources_failed=1,
            variants_done=4,
            variants_failed=1,
            variants_skipped=1,
        ),
        status="complete_with_failures",
        sealed=True,
        expected_sources=3,
    )
    put_job(local_stack, "newest", "2026-01-03T10:00:00+00:00", JobCounters(), status="running")

    assert main(["jobs", "--json", "--limit", "2"]) == 0
    listed = json.loads(cli_out(capsys))
    assert [job["job"] for job in listed] == ["newest", "middle"]
    middle = listed[1]
    assert middle["status"] == "complete_with_failures"
    assert middle["sources"]["finished"] == 3 and middle["sources"]["expected"] == 3
    assert middle["variants"] == {"expected": 0, "done": 4, "failed": 1, "skipped": 1}
    assert middle["age_seconds"] > 0

    assert main(["jobs"]) == 0
    lines = stdout_lines(capsys)
    assert lines[0].split() == [
        "job",
        "kind",
        "status",
        "sources",
        "done",
        "failed",
        "skipped",
        "age",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["newest", "middle", "oldest"]
    assert lines[2].split()[2:7] == ["complete_with_failures", "3/3", "4", "1", "1"]
    assert lines[1].split()[3] == "0/?"  # not sealed: expected unknown
    with pytest.raises(SystemExit) as refused:
        main(["jobs", "--limit", "0"])
    assert refused.value.code == 2


def test_log_json_holds_the_config_and_config_show_set_name_what_they_mean(
    local_stack: LocalStack, connected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create_job(local_stack, "empty", shards=2)
    assert main(["log", "empty", "--json", "-"]) == 0
    document = json.loads(cli_out(capsys))
    assert parse_config(document["config"]) == parse_config(TWO_VARIANTS)  # not a label

    local_stack.put_pipeline_config("default")
    assert main(["config", "show"]) == 0
    shown = cli_out(capsys)
    first = shown.partition("\n")[0]
    assert first.startswith("# ") and "built-in default" in first
    assert parse_config(shown) == default_config()

    bad = connected / "pipeline.yaml"
    bad.write_text("variants: []\n")
    assert main(["config", "set", str(bad)]) == 2
    err = capsys.readouterr().err
    one_line_error(err, str(bad))
    assert "SSM parameter" not in err and "given config" not in err

"""Never serve a wrong image, never lose a count: output claims, ordered runs, jobs that
always end, and the races between them, each forced with a deliberate interleaving."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

import prism.worker
from prism.aws.processing_table import ProcessingTable
from prism.aws.storage import ObjectStore
from prism.config import Variant
from prism.imaging import RenderedVariant, Source, render_variant
from prism.jobs import JobCounters, JobStatus
from prism.messages import JOB_METADATA_KEY
from prism.ports import Registration, WriteResult
from prism.records import SourceRecord, VariantRecord
from prism_cli.local.lambda_emulator import FakeLambdaContext, load_function_handler, sqs_event
from prism_cli.local.stack import LocalStack
from support.images import image_bytes, pixel
from support.pipeline import (
    NO_BACKOFF,
    create_job,
    drain,
    job_progress,
    job_variants,
    output_image,
    output_keys,
    run_functions,
    with_jobs,
    with_processing,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

pytestmark = pytest.mark.integration

TWO_VARIANTS = """
variants:
  - {name: small, transforms: [{op: thumbnail, width: 16, height: 16}], format: jpeg}
  - {name: web, transforms: [{op: thumbnail, width: 40, height: 40}], format: png}
"""


def image(colour: str, fmt: str = "PNG") -> bytes:
    return image_bytes((60, 40), fmt, colour)


def put(stack: LocalStack, key: str, data: bytes, job: str | None = None) -> None:
    stack.clients.s3.put_object(
        Bucket=stack.bucket_name("InputBucket"),
        Key=key,
        Body=data,
        Metadata={JOB_METADATA_KEY: job} if job else {},
    )


def output_head(stack: LocalStack, key: str) -> dict[str, Any]:
    return dict(stack.clients.s3.head_object(Bucket=stack.bucket_name("OutputBucket"), Key=key))


def output_colour(stack: LocalStack, key: str) -> tuple[int, ...]:
    return pixel(output_image(stack, key).convert("RGB"), (5, 5))


def current_source(stack: LocalStack, key: str) -> SourceRecord:
    record = with_processing(stack, lambda t: t.get_source(stack.bucket_name("InputBucket"), key))
    assert record is not None
    return record


def variants_of(stack: LocalStack, key: str) -> dict[str, VariantRecord]:
    _, variants = with_processing(
        stack, lambda t: t.source_state(stack.bucket_name("InputBucket"), key)
    )
    return dict(variants)


def fan_out(stack: LocalStack) -> None:
    run_functions(stack, "FanoutFunction")


def seal(stack: LocalStack, job_id: str, sources: int) -> None:
    with_jobs(stack, lambda jobs: jobs.seal(job_id, sources))


# --- 1. output keys cannot be overwritten by another source -------------------------------
def test_two_sources_mapping_to_one_output_key_never_overwrite_each_other(
    local_stack: LocalStack,
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    create_job(local_stack, "clash")
    put(local_stack, "uploads/pets/cat.jpg", image("red", "JPEG"), "clash")
    fan_out(local_stack)  # cat.jpg claims pets/cat_small.jpg and pets/cat_web.png first
    put(local_stack, "uploads/pets/cat.png", image("blue"), "clash")
    seal(local_stack, "clash", 2)
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")

    winner = current_source(local_stack, "uploads/pets/cat.jpg")
    loser = current_source(local_stack, "uploads/pets/cat.png")
    assert (winner.status, winner.done) == ("complete", 2)
    assert (loser.status, loser.failed, loser.done) == ("complete_with_failures", 2, 0)
    refused = variants_of(local_stack, "uploads/pets/cat.png")
    assert {v.reason for v in refused.values()} == {"output_conflict"}
    assert all("uploads/pets/cat.jpg" in (v.error or "") for v in refused.values())
    # Every output is the winner's, written once, and says so.
    assert output_keys(local_stack) == {"pets/cat_small.jpg", "pets/cat_web.png"}
    assert output_head(local_stack, "pets/cat_web.png")["Metadata"]["prism-run"] == winner.run_id
    assert output_colour(local_stack, "pets/cat_web.png")[0] > 200  # red
    assert job_progress(local_stack, "clash").job.status == JobStatus.COMPLETE_WITH_FAILURES

    # Re-uploading the winner is not a conflict: it keeps its claim.
    put(local_stack, "uploads/pets/cat.jpg", image("green", "JPEG"), "clash")
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")
    assert current_source(local_stack, "uploads/pets/cat.jpg").done == 2
    assert output_colour(local_stack, "pets/cat_web.png")[1] > 100  # green


def test_a_collision_free_layout_keeps_both_sources(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS + 'output_key: "{dir}/{name}_{variant}.{ext}"\n')
    put(local_stack, "uploads/pets/cat.jpg", image("red", "JPEG"))
    put(local_stack, "uploads/pets/cat.png", image("blue"))
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")
    assert output_keys(local_stack) == {
        "pets/cat.jpg_small.jpg",
        "pets/cat.jpg_web.png",
        "pets/cat.png_small.jpg",
        "pets/cat.png_web.png",
    }


# --- 2. an older run never overwrites a newer one -------------------------------------------
class HeldWrite:
    """Holds one thread's first write of an output (``ObjectStore.write_in_order`` on the
    output bucket) until released: the moment after rendering, before anything at its key
    is read or written."""

    def __init__(self, output_bucket: str) -> None:
        self.output_bucket = output_bucket
        self.holder: threading.Thread | None = None
        self.reached = threading.Event()
        self.release = threading.Event()
        self._original = ObjectStore.write_in_order

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original, held = self._original, self

        async def write_in_order(
            store: ObjectStore, bucket: str, key: str, data: bytes, **kwargs: Any
        ) -> tuple[WriteResult, str | None]:
            if (
                bucket == held.output_bucket
                and threading.current_thread() is held.holder
                and not held.reached.is_set()
            ):
                held.reached.set()
                await asyncio.to_thread(held.release.wait, 60)
            return await original(store, bucket, key, data, **kwargs)

        monkeypatch.setattr(ObjectStore, "write_in_order", write_in_order)


def invoke_worker_in_thread(
    stack: LocalStack,
    messages: list[MessageTypeDef],
    context: FakeLambdaContext | None = None,
) -> threading.Thread:
    """A thread (not started) invoking the worker with ``messages``, as Lambda would, in
    ``context`` (a fresh one if None)."""
    worker = stack.template.function("WorkerFunction")
    handler = load_function_handler(worker)
    event = sqs_event(messages, stack.template.queue("VariantsQueue").arn, "us-east-1")
    context = context or FakeLambdaContext.for_function(worker)
    return threading.Thread(target=handler, args=(event, context), daemon=True)


@pytest.mark.parametrize("existing_output", [False, True], ids=["new-key", "replacing"])
def test_an_older_run_held_before_its_write_never_lands_last(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, existing_output: bool
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    if existing_output:  # a finished run 0, so both later runs replace an existing output
        put(local_stack, "uploads/race.png", image("white"))
        run_functions(local_stack, "FanoutFunction", "WorkerFunction")
    put(local_stack, "uploads/race.png", image("red"))
    fan_out(local_stack)
    run_one = current_source(local_stack, "uploads/race.png").run_id

    # Run 1's worker reads what is at its output keys, then is held there.
    held = HeldWrite(local_stack.bucket_name("OutputBucket"))
    held.install(monkeypatch)
    worker = invoke_worker_in_thread(local_stack, drain(local_stack, "VariantsQueue"))
    held.holder = worker
    worker.start()
    assert held.reached.wait(30)

    # Meanwhile the key is uploaded again and run 2 finishes completely.
    put(local_stack, "uploads/race.png", image("blue"))
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")
    run_two = current_source(local_stack, "uploads/race.png")
    assert run_two.run_id != run_one and (run_two.status, run_two.done) == ("complete", 2)

    held.release.set()  # now run 1 writes
    worker.join(60)
    assert not worker.is_alive()

    for key in ("race_small.jpg", "race_web.png"):
        assert output_head(local_stack, key)["Metadata"]["prism-run"] == run_two.run_id
        assert output_colour(local_stack, key)[2] > 200  # blue: run 2's image
    assert {v.run_id for v in variants_of(local_stack, "uploads/race.png").values()} == {
        run_two.run_id
    }
    assert current_source(local_stack, "uploads/race.png").done == 2


def test_a_newer_run_that_fails_leaves_no_older_output(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    put(local_stack, "uploads/gone.png", image("red"))
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")
    assert output_keys(local_stack) == {"gone_small.jpg", "gone_web.png"}

    put(local_stack, "uploads/gone.png", b"\x89PNG\r\n\x1a\n not really a png")
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")
    source = current_source(local_stack, "uploads/gone.png")
    assert (source.status, source.failed) == ("complete_with_failures", 2)
    # The photo was replaced by a broken one: the old photo's variants are not served on.
    assert output_keys(local_stack) == set()


# --- 3. every job ends, whatever happened to its uploads ------------------------------------
@pytest.mark.parametrize("same_bytes", [False, True], ids=["new-bytes", "identical-bytes"])
def test_an_upload_overwritten_before_its_fan_out_still_ends_its_job(
    local_stack: LocalStack, same_bytes: bool
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    create_job(local_stack, "job-a")
    create_job(local_stack, "job-b")
    put(local_stack, "uploads/shared.png", image("red"), "job-a")
    put(local_stack, "uploads/shared.png", image("red" if same_bytes else "blue"), "job-b")
    seal(local_stack, "job-a", 1)
    seal(local_stack, "job-b", 1)
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")

    job_a, job_b = job_progress(local_stack, "job-a"), job_progress(local_stack, "job-b")
    assert job_a.job.status == JobStatus.COMPLETE
    assert (job_a.counters.sources_registered, job_a.counters.sources_finished) == (1, 1)
    assert job_a.counters.sources_skipped == 1 and job_a.counters.variants_expected == 0
    assert job_b.job.status == JobStatus.COMPLETE
    assert (job_b.counters.sources_finished, job_b.counters.variants_done) == (1, 2)


def test_an_upload_deleted_before_its_fan_out_ends_its_job_as_failed(
    local_stack: LocalStack,
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    create_job(local_stack, "vanished")
    put(local_stack, "uploads/vanish.png", image("red"), "vanished")
    local_stack.clients.s3.delete_object(
        Bucket=local_stack.bucket_name("InputBucket"), Key="uploads/vanish.png"
    )
    seal(local_stack, "vanished", 1)
    run_functions(local_stack, "FanoutFunction", "WorkerFunction")
    job = job_progress(local_stack, "vanished")
    assert job.job.status == JobStatus.COMPLETE_WITH_FAILURES
    assert (job.counters.sources_finished, job.counters.sources_failed) == (1, 1)


# --- 4. superseding while the old run completes ----------------------------------------------
def test_superseding_a_run_that_completes_meanwhile_counts_it_once(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fan-out reads run 1 as processing; run 1 then completes (counted finished); the
    fan-out's supersede must not commit on its stale read and count it finished again."""
    bucket = local_stack.bucket_name("InputBucket")
    create_job(local_stack, "old")
    create_job(local_stack, "new")

    def record(run_id: str, job: str) -> SourceRecord:
        return SourceRecord(
            bucket=bucket, key="uploads/k.png", job_id=job, run_id=run_id,
            status="processing", expected=1, shard=0,
        )  # fmt: skip

    async def scenario(processing: ProcessingTable) -> None:
        await processing.register_source(record("run-1", "old"), JobCounters(sources_registered=1))
        await processing.record_variant(
            VariantRecord(
                bucket=bucket,
                key="uploads/k.png",
                variant="v",
                run_id="run-1",
                status="done",
                job_id="old",
                shard=0,
            )
        )
        original = processing.get_source
        interleaved = False

        async def stale_read(bucket_: str, key: str) -> SourceRecord | None:
            nonlocal interleaved
            seen = await original(bucket_, key)
            if not interleaved:  # between the fan-out's read and its write: run 1 completes
                interleaved = True
                assert (await processing.settle_source(bucket, "uploads/k.png", "run-1")).finished
            return seen

        monkeypatch.setattr(processing, "get_source", stale_read)
        registration, _ = await processing.register_source(
            record("run-2", "new"), JobCounters(sources_registered=1)
        )
        assert registration is Registration.REGISTERED

    with_processing(local_stack, scenario)
    old = job_progress(local_stack, "old").counters
    assert (old.sources_registered, old.sources_finished, old.variants_done) == (1, 1, 1)
    assert old.variants_skipped == 0
    assert job_progress(local_stack, "new").counters.sources_registered == 1


# --- 8. a message that exhausts its retries still ends its job; a redrive corrects it -------
def test_exhausted_variants_end_their_job_and_a_redrive_corrects_the_counts(
    local_stack: LocalStack,
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    create_job(local_stack, "outage")
    put(local_stack, "uploads/outage.png", image("red"), "outage")
    seal(local_stack, "outage", 1)
    output_bucket = local_stack.bucket_name("OutputBucket")
    s3, sqs = local_stack.clients.s3, local_stack.clients.sqs
    s3.delete_bucket(Bucket=output_bucket)  # every write fails: an outage, not bad input
    run_all(local_stack, failures_expected=True)

    job = job_progress(local_stack, "outage")
    assert job.job.status == JobStatus.COMPLETE_WITH_FAILURES
    assert (job.counters.variants_failed, job.counters.sources_failed) == (2, 1)
    dead = drain(local_stack, "VariantsDeadLetterQueue")
    assert len(dead) == 2

    # The outage ends; the operator moves the dead letters back.
    s3.create_bucket(Bucket=output_bucket)
    variants_url = local_stack.queue_url("VariantsQueue")
    for message in dead:
        sqs.send_message(QueueUrl=variants_url, MessageBody=message["Body"])
    run_all(local_stack)

    job = job_progress(local_stack, "outage")
    assert job.job.status == JobStatus.COMPLETE
    counters = job.counters
    assert (counters.variants_done, counters.variants_failed) == (2, 0)
    assert (counters.sources_finished, counters.sources_failed) == (1, 0)
    source = current_source(local_stack, "uploads/outage.png")
    assert (source.status, source.done, source.failed) == ("complete", 2, 0)
    assert {v.status for v in job_variants(local_stack, "outage")} == {"done"}


def test_an_exhausted_upload_ends_its_job_and_a_redrive_counts_it_once(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    create_job(local_stack, "stuck")
    put(local_stack, "uploads/stuck.png", image("red"), "stuck")
    seal(local_stack, "stuck", 1)
    import prism.fanout

    original = prism.fanout.FanOut._fan_out

    async def broken(self: Any, upload: Any) -> None:
        raise ConnectionError("the variants queue is unreachable")

    monkeypatch.setattr(prism.fanout.FanOut, "_fan_out", broken)
    run_all(local_stack, failures_expected=True)
    job = job_progress(local_stack, "stuck")
    assert job.job.status == JobStatus.COMPLETE_WITH_FAILURES
    assert (job.counters.sources_registered, job.counters.sources_failed) == (1, 1)

    monkeypatch.setattr(prism.fanout.FanOut, "_fan_out", original)
    for message in drain(local_stack, "UploadsDeadLetterQueue"):
        local_stack.clients.sqs.send_message(
            QueueUrl=local_stack.queue_url("UploadsQueue"), MessageBody=message["Body"]
        )
    run_all(local_stack)
    job = job_progress(local_stack, "stuck")
    assert job.job.status == JobStatus.COMPLETE
    assert (job.counters.sources_registered, job.counters.sources_finished) == (1, 1)
    assert (job.counters.sources_failed, job.counters.variants_done) == (0, 2)


def run_all(stack: LocalStack, *, failures_expected: bool = False) -> None:
    """Every function, one instance each, failed messages retried at once."""
    run_functions(stack, workers=1, retry_backoff=NO_BACKOFF, failures_expected=failures_expected)


# --- 9. output keys S3 would refuse ----------------------------------------------------------
def test_an_output_key_over_s3s_limit_fails_once_at_fan_out(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS + "output_prefix: variants\n")
    # A valid source key of 1,020 bytes; its outputs' keys would be 1,027 and 1,025.
    key = "uploads/" + "n" * 1008 + ".png"
    put(local_stack, key, image("red"))
    run_all(local_stack)
    source = current_source(local_stack, key)
    assert (source.status, source.failed) == ("complete_with_failures", 2)
    assert {v.reason for v in variants_of(local_stack, key).values()} == {"output_key_too_long"}
    assert drain(local_stack, "VariantsDeadLetterQueue") == []


# --- 10. a missing watermark logo is named as such --------------------------------------------
def test_a_missing_watermark_logo_has_its_own_reason(local_stack: LocalStack) -> None:
    local_stack.put_pipeline_config(
        "variants:\n  - {name: marked, format: png, watermark: {image: assets/nope.png}}\n"
    )
    put(local_stack, "uploads/photo.png", image("red"))
    run_all(local_stack)
    (record,) = variants_of(local_stack, "uploads/photo.png").values()
    assert (record.status, record.reason) == ("failed", "watermark_missing")
    assert "assets/nope.png" in (record.error or "")


# --- 12. duplicates are not rendered again ----------------------------------------------------
@pytest.fixture
def render_count(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    rendered: list[str] = []

    def counting(image: Source | Image.Image, variant: Variant, *args: Any) -> RenderedVariant:
        rendered.append(variant.name)
        return render_variant(image, variant, *args)

    monkeypatch.setattr(prism.worker, "render_variant", counting)
    yield rendered


def test_duplicate_deliveries_are_not_rendered_again(
    local_stack: LocalStack, render_count: list[str]
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    for n in range(3):
        put(local_stack, f"uploads/dup-{n}.png", image("red"))
    fan_out(local_stack)
    bodies = [message["Body"] for message in drain(local_stack, "VariantsQueue")]
    variants = sorted(json.loads(body)["variant"]["name"] for body in bodies)
    sqs, url = local_stack.clients.sqs, local_stack.queue_url("VariantsQueue")

    for body in bodies * 2:  # twice, in the same batch or the next one
        sqs.send_message(QueueUrl=url, MessageBody=body)
    run_functions(local_stack, "WorkerFunction", workers=1)
    assert sorted(render_count) == variants

    # Redelivered after they were recorded, to concurrent workers: nothing is redone.
    for body in bodies * 3:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    run_functions(local_stack, "WorkerFunction", workers=3)
    assert sorted(render_count) == variants
    assert all(current_source(local_stack, f"uploads/dup-{n}.png").done == 2 for n in range(3))


# --- 13. a batch near its timeout hands back what it has not started --------------------------
class ShortOnTime(FakeLambdaContext):
    """Time enough for the first source only."""

    answers: list[int]

    def get_remaining_time_in_millis(self) -> int:
        return self.answers.pop(0) if self.answers else 0


def test_sources_not_started_before_the_timeout_are_handed_back(
    local_stack: LocalStack, render_count: list[str]
) -> None:
    local_stack.put_pipeline_config(TWO_VARIANTS)
    put(local_stack, "uploads/first.png", image("red"))
    put(local_stack, "uploads/second.png", image("blue"))
    fan_out(local_stack)
    messages = drain(local_stack, "VariantsQueue")
    assert len(messages) == 4
    worker = local_stack.template.function("WorkerFunction")
    context = ShortOnTime.for_function(worker)
    assert isinstance(context, ShortOnTime)
    context.answers = [100_000]
    response = load_function_handler(worker)(
        sqs_event(messages, local_stack.template.queue("VariantsQueue").arn, "us-east-1"), context
    )
    handed_back = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    assert len(handed_back) == 2 and len(render_count) == 2
    finished = {
        json.loads(m["Body"])["source"]["key"]
        for m in messages
        if m["MessageId"] not in handed_back
    }
    assert len(finished) == 1
    (started,) = finished
    assert current_source(local_stack, started).done == 2
    (other,) = {"uploads/first.png", "uploads/second.png"} - finished
    assert variants_of(local_stack, other) == {}

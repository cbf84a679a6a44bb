"""The message the fan-out sends to the variants queue: one per (source, variant).

Each message carries everything the worker needs (the resolved variant, watermark and
limits), so a config change while messages are in flight cannot mix two configs in one
source's outputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from prism.config import Limits, Variant, Watermark

T = TypeVar("T")

# SQS's limit on the messages of one ReceiveMessage, SendMessageBatch, DeleteMessageBatch
# or ChangeMessageVisibilityBatch call.
SQS_BATCH_LIMIT = 10


def sqs_batches(entries: Sequence[T]) -> Iterator[Sequence[T]]:
    """``entries`` in order, in batches that one SQS batch call takes."""
    for start in range(0, len(entries), SQS_BATCH_LIMIT):
        yield entries[start : start + SQS_BATCH_LIMIT]


class SourceRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    version_id: str | None = None

    @property
    def id(self) -> str:
        return f"{self.bucket}/{self.key}"


class OtherVariant(BaseModel):
    """Another variant of the same run, as its own task has it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Variant
    watermark: Watermark | None = None
    output_key: str


class VariantTask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A fresh id per registration of the source: a re-upload starts a new run, and a
    # redelivered message of an old run is recognised as such.
    run_id: str
    # The run's place among the runs of its source key (its registration's generation): an
    # output is only ever replaced by a run of a higher or equal order.
    run_order: int = 0
    job_id: str
    # The job counter shard the outcome is added to (chosen by the fan-out).
    shard: int = 0
    source: SourceRef
    variant: Variant
    watermark: Watermark | None = None
    output_key: str
    limits: Limits = Limits()
    # Reuse an identical earlier render by copying it (the pipeline's ``dedupe``).
    dedupe: bool = False
    # On a run's first task only (``with_others``): the run's other variants (none for a
    # run of one), so that the batch that gets it can render them all from its one decode
    # when the rest of the run went to another batch (their own tasks then find them
    # recorded). None on every other task, and on every task of a run too large for one
    # batch.
    others: tuple[OtherVariant, ...] | None = None
    # Made from the first task's ``others``: rendered by that task's batch, while the
    # variant's own task may be in another (its outcome record says so).
    ahead: bool = False

    @property
    def output_metadata(self) -> dict[str, str]:
        """The output's S3 user metadata: the variant's own, and which variant it is."""
        return {**(self.variant.user_metadata or {}), VARIANT_METADATA_KEY: self.variant.name}

    def other_tasks(self) -> list[VariantTask]:
        """The tasks of the run's other variants that this (first) task carries."""
        return [
            self.model_copy(
                update={
                    "variant": other.variant,
                    "watermark": other.watermark,
                    "output_key": other.output_key,
                    "others": None,
                    "ahead": True,
                }
            )
            for other in self.others or ()
        ]


def with_others(tasks: Sequence[VariantTask]) -> list[VariantTask]:
    """One run's tasks as they are sent: the first carries the others' variants, when the
    whole run fits in one worker batch. (A larger run spans several batches however they
    fall, and its first message would grow with every variant.)"""
    if not tasks or len(tasks) > SQS_BATCH_LIMIT:
        return list(tasks)
    first, *rest = tasks
    others = tuple(
        OtherVariant(variant=t.variant, watermark=t.watermark, output_key=t.output_key)
        for t in rest
    )
    return [first.model_copy(update={"others": others}), *rest]


# S3 user metadata that puts an uploaded object into a job (``prism submit`` sets it).
JOB_METADATA_KEY = "prism-job"
# S3 user metadata of an output: the variant it is.
VARIANT_METADATA_KEY = "prism-variant"


class BackfillRequest(BaseModel):
    """Sent to the uploads queue by ``prism backfill`` for an object that already exists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["prism.backfill"] = "prism.backfill"
    job_id: str
    source: SourceRef
    # Names of the variants to render; None renders every variant of the config.
    variants: list[str] | None = None
    # Skip variants whose output object exists already.
    missing_only: bool = False

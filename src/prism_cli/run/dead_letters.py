"""Read what a run left in the stack's dead-letter queues."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import SQSRecord
from pydantic import ValidationError

from prism.messages import SQS_BATCH_LIMIT, VariantTask

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass
class DeadLetters:
    """What ended in dead-letter queues: uploads never fanned out, variants never rendered."""

    uploads: set[str] = field(default_factory=set)  # object keys
    variants: dict[str, set[str]] = field(default_factory=dict)  # object key -> variant names
    unrecognised: int = 0

    def add_body(self, body: str) -> None:
        try:
            task = VariantTask.model_validate_json(body)
        except ValidationError:
            pass
        else:
            self.variants.setdefault(task.source.key, set()).add(task.variant.name)
            return
        try:
            event = SQSRecord({"body": body}).decoded_nested_s3_event
            # S3 events carry keys URL-encoded ("a+b.jpg" for "a b.jpg"). Powertools'
            # ``object_key`` decodes only the first record's, so each is decoded here,
            # once, as the fan-out does.
            keys = [unquote_plus(record.s3.get_object.key) for record in event.records]
        except (ValueError, KeyError, TypeError):
            keys = []
        if keys:
            self.uploads.update(keys)
        else:
            self.unrecognised += 1


def read_dead_letters(sqs: SQSClient, queue_urls: Iterable[str]) -> DeadLetters:
    """Every message now in ``queue_urls`` (left in place, hidden for a minute)."""
    letters = DeadLetters()
    for url in queue_urls:
        while True:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=SQS_BATCH_LIMIT,
                VisibilityTimeout=60,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                letters.add_body(message["Body"])
    return letters

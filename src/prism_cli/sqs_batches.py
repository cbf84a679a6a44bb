"""Batch actions on received SQS messages (the batch limit is ``prism.messages``')."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def receipt_entries(
    messages: Sequence[Mapping[str, Any]],
    fields: Callable[[Any], Mapping[str, Any]] = lambda message: {},
) -> list[dict[str, Any]]:
    """The ``Entries`` of a batch action on received ``messages`` (delete, change their
    visibility): ids by position, the receipt handles, and ``fields(message)``."""
    return [
        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], **fields(message)}
        for index, message in enumerate(messages)
    ]

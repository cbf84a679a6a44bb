"""Outcome reasons and the errors that carry them.

A permanent error is recorded once with its reason and never retried. Anything else that
escapes a record handler is treated as transient: the batch reports the message as failed,
SQS redelivers it with backoff, and after ``maxReceiveCount`` it lands in the DLQ.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """The closed set of reasons a source or variant did not end ``done``."""

    UNSUPPORTED_FORMAT = "unsupported_format"  # skipped: not an image we decode
    EMPTY_FILE = "empty_file"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    DECOMPRESSION_BOMB = "decompression_bomb"
    TOO_LARGE = "too_large"
    TOO_MANY_FRAMES = "too_many_frames"
    SOURCE_MISSING = "source_missing"
    SUPERSEDED = "superseded"  # skipped: the object was overwritten after this upload
    CANCELLED = "cancelled"  # skipped: the job was cancelled first
    ENCODE_FAILED = "encode_failed"
    # Another source's variant already owns this output key (named in the error).
    OUTPUT_CONFLICT = "output_conflict"
    # The output key would pass S3's limit of 1,024 bytes.
    OUTPUT_KEY_TOO_LONG = "output_key_too_long"
    # The watermark's logo object does not exist (or is not a readable image).
    WATERMARK_MISSING = "watermark_missing"
    RETRIES_EXHAUSTED = "retries_exhausted"
    INTERNAL_ERROR = "internal_error"


# Reasons that mean "not for us" rather than "broken": recorded as skipped, not failed.
SKIP_REASONS = frozenset({Reason.UNSUPPORTED_FORMAT, Reason.SUPERSEDED, Reason.CANCELLED})


class PrismError(Exception):
    """Base class for the project's own errors."""


class PermanentError(PrismError):
    """Retrying cannot help: the input itself is the problem."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    @property
    def skipped(self) -> bool:
        return self.reason in SKIP_REASONS


class TransientError(PrismError):
    """A fault that a later attempt may not hit (throttling, timeouts, 5xx)."""

"""Runtime settings, parsed once from the environment into a typed object.

The names are the environment variables that ``template.yaml`` sets on every function;
local runs and tests derive the same variables from the template. No endpoint URLs live
here: pointing the SDK at moto is the job of ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    input_bucket: str
    output_bucket: str
    table_name: str
    variants_queue_url: str
    # SSM parameter holding the pipeline config ("default" as its value means built-in).
    config_parameter: str
    # Key prefix uploads arrive under; stripped when naming outputs.
    upload_prefix: str = ""
    # Pillow threads per worker invocation; Pillow releases the GIL while it works.
    image_threads: int = 2
    # S3/DynamoDB requests in flight at once per invocation.
    io_concurrency: int = 16
    # Sources fetched, decoded and rendered at once per invocation: two, so that the next
    # source is fetched and decoded while the current one encodes. What they decode at once
    # is bounded by ``source_memory_mb`` (see prism.budget).
    source_concurrency: int = 2
    # Memory the sources decoded at once may take together, in MB: by default 60 % of the
    # function's memory (the runtime, imports and I/O take the rest). A source that needs
    # more than this is decoded alone.
    source_memory_mb: int = 1228
    # How long a function keeps the pipeline config before reading the parameter again.
    config_cache_seconds: int = 60
    # Counter shards of a new job: more shards, more concurrent writers per job.
    job_counter_shards: int = 16
    # The variants queue's maxReceiveCount: a task failing on its last delivery is recorded
    # ``retries_exhausted`` before SQS moves it to the dead-letter queue.
    variants_max_receive_count: int = 5
    # The same for the uploads queue: an upload failing on its last delivery is recorded
    # failed in its job before it goes to the dead-letter queue.
    uploads_max_receive_count: int = 5
    # A worker starts no new source with less time than this left before its timeout.
    time_reserve_seconds: int = 30
    # Days a finished record (a variant's outcome, a past run) and an ended job are kept
    # before DynamoDB's TTL removes them (their ``expires_at``); 0 keeps them for ever.
    # Keep it above the queues' message retention (14 days), which bounds how late a
    # redriven message can arrive: its record must still be there to find it a duplicate.
    record_retention_days: int = 90
    # Days a deleted source's records are kept for the audit trail (its outputs are gone at
    # once); above the queues' 14 days of retention for the same reason as above.
    deleted_retention_days: int = 30
    # The EventBridge bus "Source Processed", "Source Deleted" and "Job Completed" events go
    # to ("default": the account's default bus); empty: no events.
    event_bus: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"environment variable {name} is not set")
            return value

        def whole_number(name: str, default: int, minimum: int = 1) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError as exc:
                raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
            if value < minimum:
                raise SettingsError(f"{name} must be at least {minimum}, got {value}")
            return value

        return cls(
            input_bucket=required("PRISM_INPUT_BUCKET"),
            output_bucket=required("PRISM_OUTPUT_BUCKET"),
            table_name=required("PRISM_TABLE_NAME"),
            variants_queue_url=required("PRISM_VARIANTS_QUEUE_URL"),
            config_parameter=required("PRISM_CONFIG_PARAMETER"),
            upload_prefix=env.get("PRISM_UPLOAD_PREFIX", "").strip(),
            image_threads=whole_number("PRISM_IMAGE_THREADS", min(os.cpu_count() or 2, 4)),
            io_concurrency=whole_number("PRISM_IO_CONCURRENCY", 16),
            source_concurrency=whole_number("PRISM_SOURCE_CONCURRENCY", 2),
            source_memory_mb=whole_number(
                "PRISM_SOURCE_MEMORY_MB",
                whole_number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 2048) * 6 // 10,
            ),
            config_cache_seconds=whole_number("PRISM_CONFIG_CACHE_SECONDS", 60, minimum=0),
            job_counter_shards=whole_number("PRISM_JOB_COUNTER_SHARDS", 16),
            variants_max_receive_count=whole_number("PRISM_VARIANTS_MAX_RECEIVE_COUNT", 5),
            uploads_max_receive_count=whole_number("PRISM_UPLOADS_MAX_RECEIVE_COUNT", 5),
            time_reserve_seconds=whole_number("PRISM_TIME_RESERVE_SECONDS", 30, minimum=0),
            record_retention_days=whole_number("PRISM_RECORD_RETENTION_DAYS", 90, minimum=0),
            deleted_retention_days=whole_number("PRISM_DELETED_RETENTION_DAYS", 30, minimum=0),
            event_bus=env.get("PRISM_EVENT_BUS", "").strip(),
        )


@functools.cache
def current_settings() -> Settings:
    """The process's settings, parsed on first use (a Lambda cold start)."""
    return Settings.from_env()

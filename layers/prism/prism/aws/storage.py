"""S3 reads of sources and logos, and writes of rendered variants (the ``Objects`` port)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import ClientError

from prism.aws.errors import error_code
from prism.errors import PermanentError, Reason, TransientError
from prism.keys import bare_etag
from prism.ports import ObjectHead, Vet, WriteResult

_NO_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_MISSING_CODES = _NO_KEY_CODES | {"NoSuchBucket", "NoSuchVersion"}
_CHANGED_CODES = frozenset({"PreconditionFailed", "412"})
# A conditional write that lost a race: S3 answers 412, or 409 when two overlap.
_RACE_CODES = _CHANGED_CODES | {"ConditionalRequestConflict", "409"}
WRITE_ATTEMPTS = 8

# Output object metadata: the run that wrote it, and that run's place among the key's runs.
RUN_METADATA_KEY = "prism-run"
RUN_ORDER_METADATA_KEY = "prism-run-order"


class ObjectStore:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    async def read(
        self,
        bucket: str,
        key: str,
        *,
        etag: str | None = None,
        version_id: str | None = None,
        vet: Vet | None = None,
    ) -> bytes:
        """The object's bytes, in one GET.

        With ``version_id`` (a versioned bucket), exactly that upload is read; with ``etag``
        only, only that content is: an object overwritten since is then a permanent
        ``superseded`` (its new upload has a notification of its own). A missing object is
        a permanent ``source_missing``. ``vet`` sees the first bytes as soon as they
        arrive; what it raises ends the download there."""
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        elif etag:
            request["IfMatch"] = _quoted(etag)
        try:
            response = await self._s3.get_object(**request)
            body = response["Body"]  # aiobotocore's stream: ``read(amt)``, length checked
            async with body:
                if vet is None:
                    data: bytes = await body.read()
                else:
                    first = await _read_up_to(body, vet.first_bytes)
                    vet.check(first)  # raising leaves the rest unread: the connection closes
                    data = first + await body.read()
        except ClientError as exc:
            code = error_code(exc)
            if code in _MISSING_CODES:
                raise PermanentError(
                    Reason.SOURCE_MISSING, f"s3://{bucket}/{key} does not exist"
                ) from exc
            if code in _CHANGED_CODES:
                raise PermanentError(
                    Reason.SUPERSEDED, f"s3://{bucket}/{key} was overwritten after this upload"
                ) from exc
            raise
        return data

    async def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectHead | None:
        """The object's (or that version's) ETag, size and metadata; None if it does not exist."""
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        try:
            response = await self._s3.head_object(**request)
        except ClientError as exc:
            if error_code(exc) in _MISSING_CODES:
                return None
            raise
        return ObjectHead(
            etag=bare_etag(response.get("ETag")),
            size=int(response.get("ContentLength", 0)),
            version_id=response.get("VersionId"),
            metadata=dict(response.get("Metadata") or {}),
        )

    async def write_in_order(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str,
        run_id: str,
        order: int,
        metadata: dict[str, str],
        cache_control: str | None = None,
        content_disposition: str | None = None,
    ) -> tuple[WriteResult, str | None]:
        """Write an output unless a later run's output is there; the result and new ETag.

        Every write is conditional on what was read (``If-None-Match: *`` for a new key,
        ``If-Match`` on the existing ETag otherwise) and re-checked when S3 refuses it, so
        no interleaving lets an older run's bytes land after a newer run's (``_in_order``).

        ``metadata`` is the output's user metadata, the run's keys added; ``cache_control``
        and ``content_disposition`` are its headers (None: not set)."""
        headers = _headers(cache_control, content_disposition)

        async def put(condition: dict[str, str]) -> str | None:
            response = await self._s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata=_tags(metadata, run_id, order),
                **headers,
                **condition,
            )
            return bare_etag(response.get("ETag"))

        written = await self._in_order(bucket, key, order, put)
        assert written is not None  # a put has no source to change
        return written

    async def copy_in_order(
        self,
        bucket: str,
        source_key: str,
        source_etag: str,
        key: str,
        *,
        content_type: str,
        run_id: str,
        order: int,
        metadata: dict[str, str],
        cache_control: str | None = None,
        content_disposition: str | None = None,
    ) -> tuple[WriteResult, str | None] | None:
        """Copy the output at ``source_key`` (while its ETag is ``source_etag``) to ``key``
        server-side, in order as ``write_in_order`` writes; None when the source has
        changed or gone since (render instead)."""
        headers = _headers(cache_control, content_disposition)

        async def copy(condition: dict[str, str]) -> str | None:
            response = await self._s3.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": source_key},
                CopySourceIfMatch=_quoted(source_etag),
                MetadataDirective="REPLACE",
                ContentType=content_type,
                Metadata=_tags(metadata, run_id, order),
                **headers,
                **condition,
            )
            return bare_etag((response.get("CopyObjectResult") or {}).get("ETag"))

        async def source_unchanged() -> bool:
            source = await self.head(bucket, source_key)
            return source is not None and source.etag == bare_etag(source_etag)

        try:
            return await self._in_order(bucket, key, order, copy, still_possible=source_unchanged)
        except ClientError as exc:
            if error_code(exc) in _MISSING_CODES:  # the source is gone
                return None
            raise

    async def _in_order(
        self,
        bucket: str,
        key: str,
        order: int,
        write: Callable[[dict[str, str]], Awaitable[str | None]],
        still_possible: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[WriteResult, str | None] | None:
        """``write(condition)`` at ``key`` unless a later run's output is there: the result
        and the new ETag, or None if ``still_possible`` says, after S3 refused a write, that
        the write can no longer succeed.

        The first attempt assumes a new key (``If-None-Match: *``, one request, the usual
        case); once S3 refuses one, each attempt reads what is there first and writes
        ``If-Match`` on its ETag, so no interleaving lets an older run land last."""
        for attempt in range(WRITE_ATTEMPTS):
            existing = await self.head(bucket, key) if attempt else None
            if existing is not None and output_order(existing) > order:
                return WriteResult.NEWER_EXISTS, None
            condition = (
                {"IfNoneMatch": "*"} if existing is None else {"IfMatch": _quoted(existing.etag)}
            )
            try:
                return WriteResult.WRITTEN, await write(condition)
            except ClientError as exc:
                code = error_code(exc)
                # S3 answers an ``If-Match`` write with 404 if the object read has gone since.
                removed = existing is not None and code in _NO_KEY_CODES
                if code not in _RACE_CODES and not removed:
                    raise
            # Another run wrote or removed meanwhile (or a copy's source changed): look again.
            if still_possible is not None and not await still_possible():
                return None
        raise TransientError(f"s3://{bucket}/{key} kept changing while being written")

    async def remove_outputs_up_to(self, bucket: str, key: str, order: int) -> bool:
        """Delete the output at ``key`` if a run no later than ``order`` wrote it; whether
        something was deleted. Conditional on the ETag read, so a later run's output that
        lands meanwhile is never deleted."""
        for _ in range(WRITE_ATTEMPTS):
            existing = await self.head(bucket, key)
            if existing is None or output_order(existing) > order:
                return False
            if await self.delete_if_unchanged(bucket, key, existing.etag):
                return True
        raise TransientError(f"s3://{bucket}/{key} kept changing while being removed")

    async def delete_if_unchanged(self, bucket: str, key: str, etag: str | None) -> bool:
        """Delete the object if its ETag is still ``etag``; False if it changed or is gone."""
        try:
            await self._s3.delete_object(Bucket=bucket, Key=key, IfMatch=_quoted(etag))
        except ClientError as exc:
            if error_code(exc) in _RACE_CODES | _MISSING_CODES:
                return False
            raise
        return True


def _tags(metadata: dict[str, str], run_id: str, order: int) -> dict[str, str]:
    """An output's user metadata: ``metadata`` and the run that wrote it, with its order."""
    return {**metadata, RUN_METADATA_KEY: run_id, RUN_ORDER_METADATA_KEY: str(order)}


def _headers(cache_control: str | None, content_disposition: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if cache_control is not None:
        headers["CacheControl"] = cache_control
    if content_disposition is not None:
        headers["ContentDisposition"] = content_disposition
    return headers


def output_order(head: ObjectHead) -> int:
    """The run order an output was written with (-1: written before runs were ordered)."""
    try:
        return int(head.metadata.get(RUN_ORDER_METADATA_KEY, "-1"))
    except ValueError:
        return -1


def _quoted(etag: str | None) -> str:
    """The ETag as a conditional request header wants it."""
    return f'"{bare_etag(etag) or ""}"'


async def _read_up_to(body: Any, size: int) -> bytes:
    """The stream's next ``size`` bytes (fewer at its end): a read may return less."""
    parts: list[bytes] = []
    missing = size
    while missing > 0 and (part := await body.read(missing)):
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)

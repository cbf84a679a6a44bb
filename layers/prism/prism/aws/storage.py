"""S3 reads of sources and logos, and writes of rendered variants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from prism.errors import PermanentError, Reason

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})
_CHANGED_CODES = frozenset({"PreconditionFailed", "412"})


def parse_s3_location(location: str, default_bucket: str) -> tuple[str, str]:
    """``s3://bucket/key`` or a bare key in ``default_bucket``."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://") :].partition("/")
        return bucket, key
    return default_bucket, location


@dataclass(frozen=True)
class ObjectHead:
    etag: str | None
    size: int
    version_id: str | None
    metadata: dict[str, str]


def bare_etag(etag: str | None) -> str | None:
    """ETags come quoted from the API and bare in S3 events; compare them bare."""
    return etag.strip('"') if etag else None


class ObjectStore:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    async def read(
        self, bucket: str, key: str, *, etag: str | None = None, first_bytes: int | None = None
    ) -> bytes:
        """The object's bytes (or its first ``first_bytes``).

        With ``etag``, only that version of the object is read: an object overwritten since
        is a permanent ``superseded`` (its new upload has a notification of its own); a
        missing object is a permanent ``source_missing``."""
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            request["IfMatch"] = f'"{bare_etag(etag)}"'
        if first_bytes is not None:
            request["Range"] = f"bytes=0-{first_bytes - 1}"
        try:
            response = await self._s3.get_object(**request)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
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

    async def head(self, bucket: str, key: str) -> ObjectHead | None:
        """The object's current ETag, size and metadata; None if it does not exist."""
        try:
            response = await self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                return None
            raise
        return ObjectHead(
            etag=bare_etag(response.get("ETag")),
            size=int(response.get("ContentLength", 0)),
            version_id=response.get("VersionId"),
            metadata=dict(response.get("Metadata") or {}),
        )

    async def write(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]
    ) -> None:
        await self._s3.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata
        )

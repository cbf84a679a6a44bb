"""S3 reads of sources and logos, and writes of rendered variants."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from prism.errors import PermanentError, Reason

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})


def parse_s3_location(location: str, default_bucket: str) -> tuple[str, str]:
    """``s3://bucket/key`` or a bare key in ``default_bucket``."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://") :].partition("/")
        return bucket, key
    return default_bucket, location


class ObjectStore:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    async def read(self, bucket: str, key: str) -> bytes:
        """The object's bytes; a missing object is a permanent ``source_missing``."""
        try:
            response = await self._s3.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise PermanentError(
                    Reason.SOURCE_MISSING, f"s3://{bucket}/{key} does not exist"
                ) from exc
            raise
        return data

    async def write(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]
    ) -> None:
        await self._s3.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata
        )

"""``s3://BUCKET/KEY`` URLs: the one place the CLI writes and parses them."""

from __future__ import annotations

from dataclasses import dataclass

from prism_cli.errors import UserError

S3_SCHEME = "s3://"


def s3_url(bucket: str, key: str) -> str:
    return f"{S3_SCHEME}{bucket}/{key}"


def is_s3_url(text: str) -> bool:
    return text.startswith(S3_SCHEME)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, text: str) -> S3Location:
        if not is_s3_url(text):
            raise UserError(f"expected s3://BUCKET/PREFIX, got {text!r}")
        bucket, _, prefix = text[len(S3_SCHEME) :].partition("/")
        if not bucket:
            raise UserError(f"no bucket in {text!r}")
        return cls(bucket, prefix)

    def __str__(self) -> str:
        return s3_url(self.bucket, self.prefix)

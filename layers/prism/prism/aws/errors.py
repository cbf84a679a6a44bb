"""Reading AWS's answers: the one place a ClientError's code is taken apart."""

from __future__ import annotations

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailedException"


def error_code(exc: ClientError) -> str:
    """The service's error code (``NoSuchKey``, ``ConditionalCheckFailedException``...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))

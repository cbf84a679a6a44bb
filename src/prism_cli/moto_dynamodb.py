"""Make moto's DynamoDB backend safe under concurrent requests.

moto's server answers requests on many threads, but its DynamoDB backend is not
thread-safe: ``transact_write_items`` snapshots the tables first and, when a condition
fails (as it does for every redelivered message), restores that snapshot, silently
discarding what other threads wrote in between. Real DynamoDB is atomic per item, and
Prism's exact counts rely on that, so the local stack serialises DynamoDB operations.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_OPERATIONS = (
    "put_item",
    "get_item",
    "query",
    "scan",
    "update_item",
    "delete_item",
    "transact_write_items",
)
_lock = threading.RLock()
_applied = False


def serialise_dynamodb() -> None:
    """Run each DynamoDB operation of this process's moto backend under one lock (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        from moto.dynamodb.models import DynamoDBBackend

        for name in _OPERATIONS:
            setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
        _applied = True


def _locked(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return operation(*args, **kwargs)

    return run

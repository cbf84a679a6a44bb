"""Make moto's S3 behave like S3 where Prism's ordering depends on it.

- Conditional writes and deletes (``If-None-Match: *``, ``If-Match``) are checked and applied
  atomically by S3; moto checks, then writes, on whichever server thread took the request.
  Object writes and deletes are serialised here, so a condition holds when it is applied.
- S3 event notifications carry a ``sequencer`` (later events of a key compare greater) and,
  in a versioned bucket, the ``versionId`` of the upload; moto's carry neither. They are
  added here, the sequencer from a counter advanced under the same lock as the writes, so
  the events of a key are ordered as the writes were.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable
from typing import Any

from prism_cli.local.moto_locking import applied_once, lock_methods

_lock = threading.RLock()
_sequence = itertools.count(1)


@applied_once(_lock)
def emulate_s3_ordering() -> None:
    """Patch this process's moto S3 (idempotent)."""
    from moto.s3 import notifications
    from moto.s3.responses import S3Response

    lock_methods(S3Response, ("put_object", "delete_object", "delete_objects"), _lock)
    notifications._get_s3_event = _with_sequencer(notifications._get_s3_event)


def _with_sequencer(make_event: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(make_event)
    def event(event_name: str, bucket: Any, key: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        body = make_event(event_name, bucket, key, *args, **kwargs)
        with _lock:
            sequencer = f"{next(_sequence):016X}"
        for record in body.get("Records", []):
            obj = record["s3"]["object"]
            obj["sequencer"] = sequencer
            version = getattr(key, "version_id", None)
            if version and version != "null":
                obj["versionId"] = version
        return body

    return event

"""Make moto's S3 behave like S3 where Prism's ordering depends on it.

- Conditional writes and deletes (``If-None-Match: *``, ``If-Match``) are checked and applied
  atomically by S3; moto checks, then writes, on whichever server thread took the request.
  Object writes and deletes are serialised here, so a condition holds when it is applied.
- S3 event notifications carry a ``sequencer`` (later events of a key compare greater) and,
  in a versioned bucket, the ``versionId`` of the upload; moto's carry neither. They are
  added here, the sequencer from a counter advanced under the same lock as the writes, so
  the events of a key are ordered as the writes were.
- A copy is conditional on its source (``x-amz-copy-source-if-match``) and, as S3's
  conditional writes are, on its destination (``If-Match``, ``If-None-Match: *``); moto
  checks neither. Both are checked here, under the same lock as the writes.
- Deleting an object of a versioned bucket without a version id creates a delete marker,
  which S3 announces as ``s3:ObjectRemoved:DeleteMarkerCreated``; moto announces nothing.
  The event is sent here, as S3 would (no size or ETag; the marker's version id).
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from prism_cli.local.moto_locking import applied_once, lock_methods

_lock = threading.RLock()
_sequence = itertools.count(1)
# Removals to announce to nobody: (bucket, key, version id or None), each taken once.
_silenced: set[tuple[str, str, str | None]] = set()


def silence_removal(bucket: str, key: str, version_id: str | None) -> None:
    """Send no ``ObjectRemoved`` notification for the next removal of this object (a local
    run releasing an upload it has finished with, which is no user's delete)."""
    with _lock:
        _silenced.add((bucket, key, version_id))


@applied_once(_lock)
def emulate_s3_ordering() -> None:
    """Patch this process's moto S3 (idempotent)."""
    from moto.s3 import notifications
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    S3Response.copy_object = _conditional_copy(S3Response.copy_object)  # type: ignore[method-assign]
    lock_methods(
        S3Response, ("put_object", "copy_object", "delete_object", "delete_objects"), _lock
    )
    notifications._get_s3_event = _with_sequencer(notifications._get_s3_event)
    notifications.send_event = _unless_silenced(notifications.send_event)
    S3Backend.delete_object = _announcing_delete_markers(S3Backend.delete_object)  # type: ignore[method-assign]


def _conditional_copy(copy: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(copy)
    def copy_object(response: Any) -> Any:
        from urllib.parse import unquote, urlparse

        from moto.s3.exceptions import MissingKey, PreconditionFailed

        def bare(etag: str) -> str:
            return etag.replace('"', "")

        headers = response.headers
        source = headers.get("x-amz-copy-source")
        if isinstance(source, bytes):
            source = source.decode("utf-8")
        wanted = headers.get("x-amz-copy-source-if-match")
        if source and wanted:
            bucket, key = unquote(urlparse(source).path).lstrip("/").split("/", 1)
            found = response.backend.get_object(bucket, key)
            if found is None or bare(found.etag) != bare(wanted):
                raise PreconditionFailed("x-amz-copy-source-If-Match")
        destination = response.backend.get_object(response.bucket_name, response.parse_key_name())
        if_match, if_none_match = headers.get("If-Match"), headers.get("If-None-Match")
        if if_match and destination is None:
            raise MissingKey  # 404, as S3 (and moto's own PutObject) answer If-Match
        if if_match and bare(destination.etag) != bare(if_match):
            raise PreconditionFailed("If-Match")
        if if_none_match == "*" and destination is not None:
            raise PreconditionFailed("If-None-Match")
        return copy(response)

    return copy_object


def _unless_silenced(send: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(send)
    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        # moto passes an S3NotificationEvent (an Enum whose value is the event's name).
        if "ObjectRemoved" in str(getattr(event_name, "value", event_name)):
            version = getattr(key, "version_id", None)
            with _lock:
                for candidate in ((bucket.name, key.name, version), (bucket.name, key.name, None)):
                    if candidate in _silenced:
                        _silenced.discard(candidate)
                        return
        send(account_id, event_name, bucket, key)

    return send_event


def _announcing_delete_markers(delete: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(delete)
    def delete_object(
        backend: Any, bucket_name: str, key_name: str, version_id: str | None = None, **kw: Any
    ) -> Any:
        from moto.s3 import notifications

        result = delete(backend, bucket_name, key_name, version_id, **kw)
        _, meta = result
        if version_id is None and meta.get("delete-marker") == "true":
            marker = SimpleNamespace(name=key_name, size=0, etag="", version_id=meta["version-id"])
            notifications.send_event(
                backend.account_id,
                notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
                backend.get_bucket(bucket_name),
                marker,
            )
        return result

    return delete_object


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
            if event_name.endswith("DeleteMarkerCreated"):  # S3 gives a marker neither
                obj.pop("size", None)
                obj.pop("eTag", None)
        return body

    return event

"""A decoded source kept between batches of a warm container, for the variants of its run
that SQS handed to the next batch (a source's tasks are sent together, but a batch of ten
messages can end in the middle of a source's).

Kept only while its run has variants still to come, at most one source per container (the
last one kept) and at most ``max_bytes`` of pixels, and only for the event loop (the
container) that decoded it; taken when used, so a source is decoded again only if the
picture kept is too small for what is asked of it (``prism.imaging.covers``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from prism.config import Variant
from prism.imaging import Source, covers
from prism.messages import VariantTask

RunKey = tuple[str, str, str, str]  # bucket/key, version or ETag, run id, upload ETag


def run_key(task: VariantTask) -> RunKey:
    source = task.source
    return (source.id, source.version_id or "", task.run_id, source.etag or "")


def pixel_bytes(source: Source) -> int:
    image = source.image
    return image.width * image.height * len(image.getbands())


@dataclass
class _Kept:
    key: RunKey
    source: Source


class RecentDecodes:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._kept: _Kept | None = None

    def take(self, task: VariantTask, variants: Sequence[Variant]) -> Source | None:
        """The source ``task``'s run decoded before, if it can serve ``variants`` (taken:
        kept again only by ``keep``). Another run's source stays."""
        kept = self._kept
        if kept is None or kept.key != run_key(task):
            return None
        self._kept = None
        return kept.source if covers(kept.source, variants) else None

    def keep(self, task: VariantTask, source: Source) -> None:
        if pixel_bytes(source) <= self._max_bytes:
            self._kept = _Kept(run_key(task), source)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RecentDecodes] = (
    weakref.WeakKeyDictionary()
)


def recent_decodes(max_bytes: int) -> RecentDecodes:
    """The running loop's (its container's) recent decodes."""
    loop = asyncio.get_running_loop()
    recent = _by_loop.get(loop)
    if recent is None:
        recent = _by_loop[loop] = RecentDecodes(max_bytes)
    return recent

"""Name a local run's files as the user did, not by the local stack's objects.

The pipeline's errors name sources as ``<bucket>/<key>`` or ``s3://<bucket>/<key>``
(``prism-local-input-123456789012/uploads/photos/a.jpg is empty``). In ``prism run`` that
bucket is an implementation detail of a stack that is gone when the run ends; the user
knows the file as ``photos/a.jpg``.
"""

from __future__ import annotations

from collections.abc import Mapping

from prism_cli.jobs.s3_urls import S3_SCHEME


class LocalPaths:
    """Rewrites references to objects of ``bucket`` into the paths the user gave."""

    def __init__(self, bucket: str, displays: Mapping[str, str]) -> None:
        self._bucket_prefix = f"{bucket}/"
        self._displays = dict(displays)  # object key -> path as the user named it
        # Longest first, so that "a/b.jpg.png" is not taken for "a/b.jpg".
        self._keys = sorted(self._displays, key=len, reverse=True)

    def rewrite(self, text: str | None, own_key: str | None = None) -> str | None:
        """``text`` with each ``[s3://]<bucket>/<key>`` of a known key replaced by its path.

        ``own_key`` (the source the text is about, which it names most often) is tried
        first; other keys are looked for one by one."""
        if not text or self._bucket_prefix not in text:
            return text
        parts: list[str] = []
        position = 0
        while (found := text.find(self._bucket_prefix, position)) >= 0:
            start = found - len(S3_SCHEME) if text.endswith(S3_SCHEME, 0, found) else found
            after = found + len(self._bucket_prefix)
            if own_key is not None and text.startswith(own_key, after):
                key: str | None = own_key
            else:
                key = next((key for key in self._keys if text.startswith(key, after)), None)
            if key is None:
                parts.append(text[position:after])
                position = after
                continue
            parts.append(text[position:start])
            parts.append(self._displays[key])
            position = after + len(key)
        parts.append(text[position:])
        return "".join(parts)

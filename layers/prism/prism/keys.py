"""Naming of output objects.

``<output prefix>/<source key without upload prefix and extension>_<variant>.<ext>``:
``uploads/trips/cat.jpg`` with prefix ``uploads/`` and output prefix ``variants`` becomes
``variants/trips/cat_thumbnail.jpg``. Output keys live in a separate bucket, so writing a
variant can never trigger the pipeline again.
"""

from __future__ import annotations

import posixpath

from prism.config import Variant


def source_stem(source_key: str, upload_prefix: str = "") -> str:
    """The source key without the upload prefix and without its extension."""
    relative = source_key
    if upload_prefix and relative.startswith(upload_prefix):
        relative = relative[len(upload_prefix) :]
    relative = relative.lstrip("/")
    directory, filename = posixpath.split(relative)
    # A dot-file such as ".jpg" has no stem; keep the whole name.
    stem = posixpath.splitext(filename)[0] or filename
    return posixpath.join(directory, stem) if directory else stem


def output_key(
    source_key: str, variant: Variant, *, upload_prefix: str = "", output_prefix: str = ""
) -> str:
    name = f"{source_stem(source_key, upload_prefix)}_{variant.name}.{variant.extension}"
    prefix = output_prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name

"""S3 names: output keys, ``s3://`` locations and ETags.

An output key is ``<output prefix>/<layout>``, where the layout is a template over the
source key (relative to the upload prefix) and the variant. The default,
``{dir}/{stem}_{variant}.{ext}``, turns ``uploads/trips/cat.jpg`` (upload prefix
``uploads/``, output prefix ``variants``) into ``variants/trips/cat_thumbnail.jpg``.

Placeholders: ``dir`` (the source's folder, may be empty), ``stem`` (file name without its
extension), ``name`` (file name with its extension), ``variant`` (the variant's name) and
``ext`` (the output format's extension). Empty path segments are dropped, so a source at
the top level has no leading slash. Output keys live in a separate bucket, so writing a
variant can never trigger the pipeline again.
"""

from __future__ import annotations

import posixpath
import string
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prism.config import Variant

DEFAULT_OUTPUT_KEY = "{dir}/{stem}_{variant}.{ext}"
# The layout that cannot collide for two sources in one folder (cat.jpg, cat.png).
COLLISION_FREE_OUTPUT_KEY = "{dir}/{name}_{variant}.{ext}"
PLACEHOLDERS = frozenset({"dir", "stem", "name", "variant", "ext"})
# S3's limit on a key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


class OutputKeyTemplateError(ValueError):
    """The ``output_key`` layout cannot name every variant of every source apart."""


def check_output_key_template(template: str) -> str:
    """``template`` if it is a usable layout, else an OutputKeyTemplateError saying why."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise OutputKeyTemplateError(f"not a valid template: {exc}") from None
    used: set[str] = set()
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            known = ", ".join("{" + name + "}" for name in sorted(PLACEHOLDERS))
            raise OutputKeyTemplateError(f"unknown placeholder {{{field}}} (known: {known})")
        if spec or conversion:
            raise OutputKeyTemplateError(f"placeholder {{{field}}} takes no format or conversion")
        used.add(field)
    if "variant" not in used:
        raise OutputKeyTemplateError("needs {variant}, or every variant of a source collides")
    if not used & {"stem", "name"}:
        raise OutputKeyTemplateError("needs {stem} or {name}, or every source collides")
    if any(segment in {".", ".."} for segment in template.split("/")):
        raise OutputKeyTemplateError("must not contain '.' or '..' path segments")
    return template


def relative_source_key(source_key: str, upload_prefix: str = "") -> str:
    """The source key below the upload prefix."""
    relative = source_key
    if upload_prefix and relative.startswith(upload_prefix):
        relative = relative[len(upload_prefix) :]
    return relative.lstrip("/")


def source_stem(source_key: str, upload_prefix: str = "") -> str:
    """The source key without the upload prefix and without its extension."""
    directory, filename = posixpath.split(relative_source_key(source_key, upload_prefix))
    # A dot-file such as ".jpg" has no stem; keep the whole name.
    stem = posixpath.splitext(filename)[0] or filename
    return posixpath.join(directory, stem) if directory else stem


def output_key(
    source_key: str,
    variant: Variant,
    *,
    upload_prefix: str = "",
    output_prefix: str = "",
    template: str = DEFAULT_OUTPUT_KEY,
) -> str:
    directory, filename = posixpath.split(relative_source_key(source_key, upload_prefix))
    layout = template.format(
        dir=directory,
        stem=posixpath.splitext(filename)[0] or filename,
        name=filename,
        variant=variant.name,
        ext=variant.extension,
    )
    segments = [output_prefix.strip("/"), *layout.split("/")]
    return "/".join(segment for segment in segments if segment)


# A source's manifest sits where a variant named "manifest" in format "json" would: no
# image variant can have that key, whatever its name, since none has that extension.
MANIFEST_VARIANT = "manifest"
MANIFEST_EXTENSION = "json"


def manifest_key(
    source_key: str,
    *,
    upload_prefix: str = "",
    output_prefix: str = "",
    template: str = DEFAULT_OUTPUT_KEY,
) -> str:
    """Where the source's manifest is written: the layout with ``{variant}`` "manifest"
    and ``{ext}`` "json" (``uploads/trips/cat.jpg`` -> ``trips/cat_manifest.json``)."""
    directory, filename = posixpath.split(relative_source_key(source_key, upload_prefix))
    layout = template.format(
        dir=directory,
        stem=posixpath.splitext(filename)[0] or filename,
        name=filename,
        variant=MANIFEST_VARIANT,
        ext=MANIFEST_EXTENSION,
    )
    segments = [output_prefix.strip("/"), *layout.split("/")]
    return "/".join(segment for segment in segments if segment)


def key_too_long(key: str) -> bool:
    return len(key.encode("utf-8")) > MAX_KEY_BYTES


def parse_s3_location(location: str, default_bucket: str = "") -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key), or a bare key in ``default_bucket``."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://") :].partition("/")
        return bucket, key
    return default_bucket, location


def bare_etag(etag: str | None) -> str | None:
    """ETags come quoted from the API and bare in S3 events; compare them bare."""
    return etag.strip('"') or None if etag else None

"""Every limit on an upload (``prism.config.Limits`` and ``Animation``'s frame limits),
checked as early as the bytes at hand allow.

The worker checks the object's size (``check_size``) and, unless it is known to be small
(``needs_probe``), the header in its first ``PROBE_BYTES`` before downloading it all
(``admit_prefix``). ``decode`` checks the whole
file's header (``admit_image``) before decoding any pixel: a prefix cannot always tell
(WebP, AVIF), and a watermark logo is never probed.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from prism.config import Animation, Limits, Variant
from prism.errors import PermanentError, Reason
from prism.imaging.animation import source_animation
from prism.imaging.probe import (
    ImageInfo,
    describe,
    frame_count,
    open_image,
    permanent_errors,
    probe_header,
)
from prism.imaging.webp_still import footprint_factor

# Bytes fetched first to read a large source's header (dimensions, frame count).
PROBE_BYTES = 64 * 1024
# Peak imaging memory per byte of a decoded RGBA frame (bench/memory.py, 100 MP inputs):
# PNGs 1.2x; JPEGs, drafted, far less (1.2x bounds the small ones, decoded in full); WebPs
# as ``webp_still.footprint_factor`` says.
_FOOTPRINT_FACTOR = 1.25


def check_size(size: int | None, limits: Limits, source_id: str) -> None:
    """Refuse ``size`` bytes (None: not known) above the limit (TOO_LARGE), or 0 (EMPTY_FILE)."""
    if size is not None and size > limits.max_source_bytes:
        raise PermanentError(
            Reason.TOO_LARGE,
            f"{source_id} is {size} bytes; the limit is {limits.max_source_bytes}",
        )
    if size == 0:
        raise PermanentError(Reason.EMPTY_FILE, f"{source_id} is empty")


def needs_probe(size: int | None) -> bool:
    """Whether a source's header is read before it is downloaded: unless it is known to be
    no larger than the probe itself."""
    return size is None or size > PROBE_BYTES


def admit_prefix(prefix: bytes, limits: Limits, variants: Sequence[Variant]) -> bytes | None:
    """Refuse a source from its first ``PROBE_BYTES`` (as ``admit_header``), decoded for
    ``variants``; the prefix when it is the whole object, else None (download the rest)."""
    complete = len(prefix) < PROBE_BYTES
    admit_header(prefix, complete=complete, limits=limits, animation=source_animation(variants))
    return prefix if complete else None


def admit_header(
    prefix: bytes, *, complete: bool, limits: Limits, animation: Animation | None
) -> None:
    """Refuse an upload from its first bytes (``complete``: all of them), if they tell:
    raises what ``probe_header`` and ``check_limits`` raise."""
    info = probe_header(prefix, complete=complete, max_pixels=limits.max_source_pixels)
    if info is not None:
        check_limits(info, max_pixels=limits.max_source_pixels, animation=animation)


def admit_image(image: Image.Image, *, max_pixels: int, animation: Animation | None) -> ImageInfo:
    """The header's numbers of an opened, not yet loaded, ``image``, within the limits.

    Frames are counted only for ``animation`` (counting reads headers, for a GIF all of
    them); a still decodes one frame, however many there are.
    """
    frames = frame_count(image) if animation is not None else 1
    info = describe(image, frames, exact=animation is not None)
    check_limits(info, max_pixels=max_pixels, animation=animation)
    return info


def check_limits(info: ImageInfo, *, max_pixels: int, animation: Animation | None = None) -> None:
    """Refuse a source whose header numbers exceed the limits.

    ``animation`` is the policy the source is decoded with; frame limits apply only when
    frames are to be preserved (a first-frame still decodes one frame, however many there
    are). Raises ``PermanentError`` with TOO_LARGE or TOO_MANY_FRAMES.
    """
    if info.pixels > max_pixels:
        raise PermanentError(
            Reason.TOO_LARGE,
            f"{info.width}x{info.height} is {info.pixels} pixels; the limit is {max_pixels}",
        )
    if animation is None or animation.policy != "preserve" or info.frames <= 1:
        return
    frames = f"{info.frames} frames" if info.frames_exact else f"at least {info.frames} frames"
    if info.frames > animation.max_frames:
        raise PermanentError(
            Reason.TOO_MANY_FRAMES, f"{frames}; the limit is {animation.max_frames}"
        )
    total = info.frames * info.pixels
    if total > animation.max_total_pixels:
        raise PermanentError(
            Reason.TOO_MANY_FRAMES,
            f"{frames} of {info.width}x{info.height} are {total} pixels; "
            f"the limit is {animation.max_total_pixels}",
        )


def decode_footprint(data: bytes, *, max_pixels: int, variants: Sequence[Variant]) -> int:
    """A bound on the bytes that decoding ``data`` for ``variants`` and rendering them take,
    from its header (refused as ``decode_source`` would refuse it: ``PermanentError``)."""
    animation = source_animation(variants)
    image = open_image(data, max_pixels=max_pixels)
    with permanent_errors():
        info = admit_image(image, max_pixels=max_pixels, animation=animation)
    frames = info.frames if animation is not None and animation.policy == "preserve" else 1
    factor = footprint_factor(data, image) if info.format == "WEBP" else _FOOTPRINT_FACTOR
    return int(info.pixels * 4 * factor * max(frames, 1))

"""Animated sources (GIF, WebP, APNG, AVIF) and animated GIF/WebP outputs.

The source's frames are not held decoded: ``Frames`` keeps the file's bytes and decodes
one frame at a time while a variant is rendered, so a renderer holds one full-size source
frame plus its own output frames (GIF ones already reduced to a palette, 1 byte a
pixel). Pillow's GIF and WebP writers both collect every frame before writing.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from prism.config import Animation, Variant
from prism.errors import PermanentError, Reason
from prism.imaging.encode import (
    expand_gray,
    gif_frame,
    lowest_alpha,
    resolved_effort,
    webp_method,
)
from prism.imaging.prepare import prepare
from prism.imaging.probe import open_image, permanent_errors
from prism.output_formats import FORMATS

# The alpha bit in the flags of WebP's extended-format (VP8X) chunk.
_VP8X_ALPHA = 0x10


def source_animation(variants: Iterable[Variant]) -> Animation | None:
    """The policy one decode of a source must serve: ``preserve`` with the strictest
    limits of the variants that keep frames (``preserves_frames``), or
    None: the first frame is all any variant needs."""
    preserving = [
        variant.animation
        for variant in variants
        if preserves_frames(variant) and variant.animation is not None
    ]
    if not preserving:
        return None
    return Animation(
        policy="preserve",
        max_frames=min(animation.max_frames for animation in preserving),
        max_total_pixels=min(animation.max_total_pixels for animation in preserving),
    )


def preserves_frames(variant: Variant) -> bool:
    return (
        variant.animation is not None
        and variant.animation.policy == "preserve"
        and FORMATS[variant.format].animated
    )


@dataclass(frozen=True)
class Frame:
    image: Image.Image  # upright, sRGB, working mode, no metadata
    duration: int  # milliseconds


@dataclass(frozen=True, eq=False)
class Frames:
    """Every frame of an animated source, decoded afresh (one at a time) on each iteration.

    Several threads may iterate the same ``Frames`` at once: each opens its own reader.
    Raises ``PermanentError`` (CORRUPT, TRUNCATED) if a frame cannot be decoded.
    """

    data: bytes
    count: int  # already checked against the limits
    loop: int | None  # None: play once (a GIF without a loop extension)
    max_pixels: int

    def __iter__(self) -> Iterator[Frame]:
        image = open_image(self.data, max_pixels=self.max_pixels)
        for index in range(self.count):
            with permanent_errors():
                image.seek(index)
                frame = image.copy()  # loads it; ``seek`` reuses the reader's buffers
                duration = round(float(image.info.get("duration") or 0))
                prepared = prepare(frame)
            yield Frame(prepared, duration)


def animation_frame(image: Image.Image, format: str) -> Image.Image:
    """One rendered frame as the ``format`` writer will store it (GIF: paletted now)."""
    return gif_frame(image, fast=True) if format == "GIF" else expand_gray(image)


def encode_animation(
    frames: Sequence[Image.Image],
    durations: Sequence[int],
    *,
    loop: int | None,
    format: str,
    quality: int,
    exif: bytes | None = None,
    effort: int | None = None,
) -> bytes:
    """Frames made by ``animation_frame`` (all one size) as an animated GIF or WEBP
    (``quality`` and ``effort`` as for ``encode``).

    Raises ``PermanentError(Reason.ENCODE_FAILED)`` if the writer fails.
    """
    first, rest = frames[0], list(frames[1:])
    options: dict[str, Any] = {
        "save_all": True,
        "append_images": rest,
        "duration": list(durations),
    }
    if format == "GIF":
        if loop is not None:
            options["loop"] = loop
        if any("transparency" in frame.info for frame in frames):
            # Frames are whole pictures: clear each one before the next is drawn, or
            # the previous frame shows through the transparent pixels of the next.
            options["disposal"] = 2
    else:
        options.update(
            loop=1 if loop is None else loop,
            quality=quality,
            method=webp_method(resolved_effort("WEBP", effort)),
        )
        if exif is not None:
            options["exif"] = exif
    buffer = io.BytesIO()
    try:
        first.save(buffer, format, **options)
    except MemoryError:
        raise
    except Exception as exc:
        raise PermanentError(
            Reason.ENCODE_FAILED, f"animated {format}: {type(exc).__name__}: {exc}"
        ) from exc
    if format == "WEBP" and any(lowest_alpha(frame) < 255 for frame in frames):
        return _with_alpha_flag(buffer.getvalue())
    return buffer.getvalue()


def _with_alpha_flag(data: bytes) -> bytes:
    """Set the alpha flag of an animated WebP whose canvas has transparent areas.

    libwebp's animation encoder crops each frame to the rectangle that changes and sets
    the flag only if one of those rectangles has alpha. A sprite on a clear background
    is then all opaque rectangles on a transparent canvas, flagged opaque, and readers
    that trust the flag (Pillow, browsers) show the clear parts black.
    """
    if data[12:16] != b"VP8X":  # RIFF header (12 bytes), then the extended-format chunk
        return data
    flagged = bytearray(data)
    flagged[20] |= _VP8X_ALPHA
    return bytes(flagged)

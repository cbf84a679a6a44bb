"""Decode an upload once into what every variant of it is rendered from.

This is where the expensive and easy-to-get-wrong steps happen: bounded memory (limits
checked from the header, JPEG DCT scaling through ``draft``, animation frames counted
before any is decoded), EXIF orientation, ICC profiles, the zoo of Pillow modes, and
noting the metadata that outputs will not carry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import ExifTags, Image, ImageFile

from prism.config import Animation, Variant
from prism.imaging.admission import admit_image
from prism.imaging.animation import Frames, source_animation
from prism.imaging.metadata import SourceMetadata, read_metadata
from prism.imaging.prepare import prepare
from prism.imaging.probe import ImageInfo, open_image, permanent_errors
from prism.imaging.transforms import combined_needed_size, needed_size

# EXIF orientations 5-8 turn the stored image by 90 degrees: its width becomes the height.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True, eq=False)
class Source:
    """A decoded upload, shared (read-only) by all of its variants."""

    # The first (or only) picture: upright, sRGB, in RGB, RGBA, L or LA, no metadata.
    image: Image.Image
    # The header's description of the upload (format, stored size; frames are counted
    # only if some variant preserves them, else ``frames_exact`` is False).
    info: ImageInfo
    metadata: SourceMetadata = field(default_factory=SourceMetadata)
    # Every frame, when the source is animated and some variant preserves animation.
    frames: Frames | None = None

    @classmethod
    def still(cls, image: Image.Image) -> Source:
        """A source made from an image already in memory (no metadata, one frame)."""
        info = ImageInfo("unknown", image.width, image.height, image.mode, frames=1)
        return cls(image=image, info=info)


def decode_source(data: bytes, *, max_pixels: int, variants: Sequence[Variant] = ()) -> Source:
    """Decode an upload once for all of ``variants``.

    The limits are checked from the header first: ``max_pixels`` (TOO_LARGE) and, if a
    variant preserves animation, its frame limits (TOO_MANY_FRAMES). JPEGs are decoded
    at the smallest DCT scale the variants allow (see ``needed_size``). Raises
    ``PermanentError`` with EMPTY_FILE, UNSUPPORTED_FORMAT, CORRUPT, TRUNCATED,
    TOO_LARGE, TOO_MANY_FRAMES or DECOMPRESSION_BOMB.
    """
    size = combined_needed_size(needed_size(variant.transforms) for variant in variants)
    return _decode(data, max_pixels, size, source_animation(variants))


def decode(
    data: bytes, *, max_pixels: int, needed_size: tuple[int, int] | None = None
) -> Image.Image:
    """Decode ``data`` into one fully loaded, upright, sRGB image in mode RGB, RGBA, L or LA.

    For stills (a watermark logo) and tests: animated images yield their first frame and
    metadata is dropped. ``needed_size`` is the smallest upright size the caller will
    resize to (see ``decode_source``). Raises what ``decode_source`` raises.
    """
    return _decode(data, max_pixels, needed_size, None).image


def _decode(
    data: bytes,
    max_pixels: int,
    size: tuple[int, int] | None,
    animation: Animation | None,
) -> Source:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A process-wide switch that would turn truncated uploads into grey-padded outputs.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    image = open_image(data, max_pixels=max_pixels)
    with permanent_errors():
        info = admit_image(image, max_pixels=max_pixels, animation=animation)
        # A GIF without a loop extension plays once; Pillow reports no loop count for AVIF,
        # whose players loop an unknown count forever.
        loop = image.info.get("loop", None if image.format == "GIF" else 0)
        if size is not None:
            _draft(image, size)
        image.load()
        metadata = read_metadata(image)
        first = prepare(image)
    animated = None
    if animation is not None and info.frames > 1:
        animated = Frames(data=data, count=info.frames, loop=loop, max_pixels=max_pixels)
    return Source(image=first, info=info, metadata=metadata, frames=animated)


def _draft(image: ImageFile.ImageFile, needed_size: tuple[int, int]) -> None:
    """Ask the JPEG decoder for the smallest DCT scale still >= ``needed_size``."""
    if image.format not in ("JPEG", "MPO"):
        return
    width, height = needed_size
    orientation = 1
    with contextlib.suppress(Exception):
        orientation = int(image.getexif().get(ExifTags.Base.Orientation, 1))
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width  # ``draft`` works on the stored (sideways) image
    image.draft(None, (width, height))

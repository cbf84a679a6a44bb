"""Decode an upload once into what every variant of it is rendered from.

This is where the expensive and easy-to-get-wrong steps happen: bounded memory (limits
checked from the header, JPEG DCT scaling through ``draft``, animation frames counted
before any is decoded), EXIF orientation, ICC profiles, the zoo of Pillow modes, and
noting the metadata that outputs will not carry.

``decode_source`` knows the variants, so it keeps only what they need: the picture
shrunk to the largest size any of them is rendered from (``reduced_size``). A JPEG is
decoded at the DCT scale closest above that size, anything else in full and then
shrunk band by band; the variants then resize from that one small image, so the
second and later resizes of an upload start from the largest one's result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageFile

from prism.config import Animation, Variant
from prism.imaging.admission import admit_image
from prism.imaging.animation import Frames, source_animation
from prism.imaging.metadata import SourceMetadata, read_metadata
from prism.imaging.prepare import SWAPPING_ORIENTATIONS, orientation, prepare
from prism.imaging.probe import ImageInfo, open_image, permanent_errors
from prism.imaging.transforms import combined_needed_size, reduced_size
from prism.imaging.webp_still import decode_still

# What to decode for: the upright size of the picture -> the upright size to keep
# (None: all of it).
_Plan = Callable[[tuple[int, int]], tuple[int, int] | None]


@dataclass(frozen=True, eq=False)
class Source:
    """A decoded upload, shared (read-only) by all of its variants."""

    # The first (or only) picture: upright, sRGB, in RGB, RGBA, L or LA, no metadata;
    # possibly reduced to what the variants it was decoded for need (see ``size``).
    image: Image.Image
    # The header's description of the upload (format, stored size; frames are counted
    # only if some variant preserves them, else ``frames_exact`` is False).
    info: ImageInfo
    metadata: SourceMetadata = field(default_factory=SourceMetadata)
    # Every frame, when the source is animated and some variant preserves animation.
    frames: Frames | None = None
    # The upright size of the picture ``image`` shows (larger than ``image`` when it was
    # decoded reduced); output sizes are computed from it. None: ``image.size``.
    size: tuple[int, int] | None = None

    @classmethod
    def still(cls, image: Image.Image) -> Source:
        """A source made from an image already in memory (no metadata, one frame)."""
        info = ImageInfo("unknown", image.width, image.height, image.mode, frames=1)
        return cls(image=image, info=info)

    @property
    def upright_size(self) -> tuple[int, int]:
        return self.size or self.image.size


def decode_source(data: bytes, *, max_pixels: int, variants: Sequence[Variant] = ()) -> Source:
    """Decode an upload once for all of ``variants``.

    The limits are checked from the header first: ``max_pixels`` (TOO_LARGE) and, if a
    variant preserves animation, its frame limits (TOO_MANY_FRAMES). The picture is kept
    at the largest size the variants are rendered from (``reduced_size``; a JPEG is
    decoded at the smallest DCT scale above it). Render only these ``variants`` from
    the result. Raises ``PermanentError`` with EMPTY_FILE, UNSUPPORTED_FORMAT, CORRUPT,
    TRUNCATED, TOO_LARGE, TOO_MANY_FRAMES or DECOMPRESSION_BOMB.
    """

    def plan(size: tuple[int, int]) -> tuple[int, int] | None:
        return combined_needed_size(reduced_size(variant.transforms, size) for variant in variants)

    return _decode(data, max_pixels, plan, source_animation(variants), shrink=True)


def covers(source: Source, variants: Sequence[Variant]) -> bool:
    """Whether ``source``, decoded for other variants of the same upload, holds all that
    ``variants`` are rendered from: the picture at least as large as a decode for them
    would keep it. Never for a variant that preserves animation: its frame limits are
    checked by the decode made for it."""
    if source_animation(variants) is not None:
        return False
    if source.size is None:  # the picture at its own size
        return True
    needed = combined_needed_size(
        reduced_size(variant.transforms, source.upright_size) for variant in variants
    )
    if needed is None:
        return False
    return source.image.width >= needed[0] and source.image.height >= needed[1]


def decode(
    data: bytes, *, max_pixels: int, needed_size: tuple[int, int] | None = None
) -> Image.Image:
    """Decode ``data`` into one fully loaded, upright, sRGB image in mode RGB, RGBA, L or LA.

    For stills (a watermark logo) and tests: animated images yield their first frame and
    metadata is dropped. ``needed_size`` is the smallest upright size the caller will
    resize to, on both axes: a JPEG is decoded at the smallest DCT scale that keeps both
    sides at least that large, and nothing is shrunk further. Raises what
    ``decode_source`` raises.
    """
    return _decode(data, max_pixels, lambda _size: needed_size, None, shrink=False).image


def _decode(
    data: bytes,
    max_pixels: int,
    plan: _Plan,
    animation: Animation | None,
    *,
    shrink: bool,
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
        if image.format in ("JPEG", "MPO"):
            # The JPEG header holds the EXIF block: the orientation is known before decoding.
            turn = orientation(image)
            keep = plan(_upright((image.width, image.height), turn))
            if keep is not None:
                _draft(image, keep, turn)
        # A still WebP in one buffer rather than Pillow's four (``webp_still``).
        picture = decode_still(data, image) if image.format == "WEBP" else None
        if picture is None:
            image.load()
            picture = image
        metadata = read_metadata(image)
        # The size of the picture itself, upright (a draft may have decoded it smaller).
        size = _upright((info.width, info.height), orientation(image))
        first = prepare(picture, plan(size) if shrink else None)
        del image, picture  # the full decode, once ``first`` is made from it
    animated = None
    if animation is not None and info.frames > 1:
        animated = Frames(data=data, count=info.frames, loop=loop, max_pixels=max_pixels)
    return Source(
        image=first,
        info=info,
        metadata=metadata,
        frames=animated,
        size=size if size != first.size else None,
    )


def _upright(size: tuple[int, int], turn: int) -> tuple[int, int]:
    return (size[1], size[0]) if turn in SWAPPING_ORIENTATIONS else size


def _draft(image: ImageFile.ImageFile, size: tuple[int, int], turn: int) -> None:
    """Ask the JPEG decoder for the smallest DCT scale still >= ``size`` (upright)."""
    # ``draft`` works on the stored (possibly sideways) image.
    image.draft(None, _upright(size, turn))

"""Render one variant of a decoded source: transforms, then watermark, then encode."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from prism.config import DEFAULT_BACKGROUND, Variant, Watermark
from prism.imaging.animation import (
    Frames,
    animation_frame,
    encode_animation,
    preserves_frames,
)
from prism.imaging.decode import Source
from prism.imaging.encode import encode
from prism.imaging.transforms import apply_transforms
from prism.imaging.watermark import WatermarkPlan, apply_watermark, plan_watermark, stamp


@dataclass(frozen=True)
class RenderedVariant:
    data: bytes
    width: int
    height: int
    format: str
    content_type: str
    # The kinds of source metadata the output does not carry, in the order of
    # ``prism.imaging.metadata.KINDS``: "exif", "gps", "xmp", "iptc", "icc", "comment".
    stripped: tuple[str, ...] = ()
    # Frames rendered: 1 unless an animation was preserved (a GIF writer may still merge
    # identical neighbours into one longer frame).
    frames: int = 1


def render_variant(
    source: Source | Image.Image,
    variant: Variant,
    watermark: Watermark | None,
    logo: Image.Image | None = None,
) -> RenderedVariant:
    """Render ``variant`` from ``source`` without modifying ``source``.

    Safe to call from several threads at once with the same ``source`` and ``logo``.
    Raises ``PermanentError`` (ENCODE_FAILED, or CORRUPT/TRUNCATED for a broken frame of
    a preserved animation).
    """
    if isinstance(source, Image.Image):
        source = Source.still(source)
    background = variant.background or DEFAULT_BACKGROUND
    keep = variant.metadata.keep if variant.metadata is not None else []
    exif = source.metadata.exif_for(keep, variant.format)
    if source.frames is not None and preserves_frames(variant):
        data, size, frames = _render_animation(
            source.frames, variant, watermark, logo, background, exif
        )
    else:
        image = apply_transforms(
            source.image, variant.transforms, background=background, size=source.size
        )
        if watermark is not None:
            image = apply_watermark(image, watermark, logo)
        if image is source.image:
            image = _view(image)
        data = encode(
            image,
            variant.format,
            variant.quality,
            background=background,
            exif=exif,
            effort=variant.effort,
        )
        size, frames = image.size, 1
    return RenderedVariant(
        data=data,
        width=size[0],
        height=size[1],
        format=variant.format,
        content_type=variant.content_type,
        stripped=source.metadata.stripped(keep, variant.format),
        frames=frames,
    )


def _view(image: Image.Image) -> Image.Image:
    """A new image object on the same pixels (no copy), to encode a source unchanged:
    ``Image.save`` writes its options onto the object it saves, which other threads may
    be saving at the same moment. Encoding only reads the pixels."""
    return image._new(image.im)


def _render_animation(
    source: Frames,
    variant: Variant,
    watermark: Watermark | None,
    logo: Image.Image | None,
    background: str,
    exif: bytes | None,
) -> tuple[bytes, tuple[int, int], int]:
    """Every frame through the transforms and the watermark (planned on the first frame,
    so it neither moves nor changes colour), then one animated GIF or WEBP."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    plan: WatermarkPlan | None = None
    for frame in source:
        image = apply_transforms(frame.image, variant.transforms, background=background)
        if watermark is not None:
            plan = plan or plan_watermark(image, watermark, logo)
            image = stamp(image, plan)
        frames.append(animation_frame(image, variant.format))
        durations.append(frame.duration)
    data = encode_animation(
        frames,
        durations,
        loop=source.loop,
        format=variant.format,
        quality=variant.quality,
        exif=exif,
        effort=variant.effort,
    )
    return data, frames[0].size, len(frames)

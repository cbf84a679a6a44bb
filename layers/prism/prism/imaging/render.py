"""Render one variant of a decoded source: transforms, then watermark, then encode."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from prism.config import Variant, Watermark
from prism.imaging.encode import encode
from prism.imaging.transforms import apply_transforms
from prism.imaging.watermark import apply_watermark


@dataclass(frozen=True)
class RenderedVariant:
    data: bytes
    width: int
    height: int
    format: str
    content_type: str


def render_variant(
    source: Image.Image,
    variant: Variant,
    watermark: Watermark | None,
    logo: Image.Image | None = None,
) -> RenderedVariant:
    """Render ``variant`` from ``source`` without modifying ``source``.

    Safe to call from several threads at once with the same ``source`` and ``logo``.
    """
    image = apply_transforms(source, variant.transforms)
    if watermark is not None:
        image = apply_watermark(image, watermark, logo)
    if image is source:
        # Nothing changed the pixels, but ``Image.save`` writes its options onto the image
        # object, which other threads may be saving at the same moment.
        image = source.copy()
    return RenderedVariant(
        data=encode(image, variant.format, variant.quality),
        width=image.width,
        height=image.height,
        format=variant.format,
        content_type=variant.content_type,
    )

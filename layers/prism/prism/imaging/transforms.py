"""The pipeline's transforms, applied in order, and the decode size they need.

Never mutates its input: one decoded source is shared by every variant, possibly across
threads, so only Pillow operations that return new images are used here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PIL import Image

from prism.config import (
    DEFAULT_BACKGROUND,
    Autocontrast,
    Blur,
    Brighten,
    Contain,
    Contrast,
    Cover,
    Equalize,
    Flip,
    Grayscale,
    Resize,
    Rotate,
    Sharpen,
    Thumbnail,
    Transform,
)
from prism.imaging import filters, geometry
from prism.imaging.geometry import REDUCING_GAP, fit_size

__all__ = ["REDUCING_GAP", "apply_transforms", "combined_needed_size", "fit_size", "needed_size"]

# Clockwise degrees -> Pillow's transpose (whose ROTATE_* constants turn counter-clockwise).
_CLOCKWISE = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
_FLIPS = {
    "horizontal": Image.Transpose.FLIP_LEFT_RIGHT,
    "vertical": Image.Transpose.FLIP_TOP_BOTTOM,
}


def apply_transforms(
    image: Image.Image,
    transforms: Sequence[Transform],
    *,
    background: str = DEFAULT_BACKGROUND,
) -> Image.Image:
    """Apply ``transforms`` in order. May return ``image`` itself when nothing changes it.

    ``background`` is the variant's: the padding of ``contain`` unless it names its own.
    """
    for transform in transforms:
        image = _apply(image, transform, background)
    return image


def _apply(image: Image.Image, transform: Transform, background: str) -> Image.Image:
    match transform:
        case Resize(width=width, height=height):
            return geometry.resize(image, (width, height))
        case Thumbnail(width=width, height=height, upscale=upscale):
            return geometry.thumbnail(image, (width, height), upscale=upscale)
        case Cover(width=width, height=height, gravity=gravity, upscale=upscale):
            return geometry.cover(image, (width, height), gravity, upscale=upscale)
        case Contain(width=width, height=height, gravity=gravity, upscale=upscale):
            pad = transform.background or background
            return geometry.contain(image, (width, height), gravity, pad, upscale=upscale)
        case Grayscale():
            return filters.grayscale(image)
        case Blur(sigma=sigma):
            return filters.blur(image, sigma)
        case Sharpen(radius=radius, percent=percent, threshold=threshold):
            return filters.sharpen(image, radius, percent, threshold)
        case Brighten(value=value):
            return filters.brighten(image, value)
        case Contrast(value=value):
            return filters.contrast(image, value)
        case Autocontrast(cutoff=cutoff):
            return filters.autocontrast(image, cutoff)
        case Equalize():
            return filters.equalize(image)
        case Rotate(degrees=degrees):
            return image.transpose(_CLOCKWISE[degrees])
        case Flip(direction=direction):
            return image.transpose(_FLIPS[direction])
    raise TypeError(f"unknown transform: {transform!r}")  # pragma: no cover


def needed_size(transforms: Sequence[Transform]) -> tuple[int, int] | None:
    """The smallest decoded size from which ``transforms`` still give a full-quality result.

    That is the box of the first resize/thumbnail/cover/contain, as long as only
    geometry-neutral operations come before it (a 90/270 rotation swaps the box's axes).
    A JPEG is then decoded at a DCT scale that keeps *both* sides at least as large as
    the box, which is exactly what ``cover`` needs, and more than a fit needs. ``None``
    means "decode at full size": no resize at all, or a blur or sharpen first (their
    radius is in pixels of the image they are applied to).
    """
    swapped = False
    for transform in transforms:
        match transform:
            case (
                Resize(width=width, height=height)
                | Thumbnail(width=width, height=height)
                | Cover(width=width, height=height)
                | Contain(width=width, height=height)
            ):
                return (height, width) if swapped else (width, height)
            case Rotate(degrees=degrees):
                swapped ^= degrees in (90, 270)
            case Blur() | Sharpen():
                return None
    return None


def combined_needed_size(sizes: Iterable[tuple[int, int] | None]) -> tuple[int, int] | None:
    """One decode size for several variants: the largest of each axis; ``None`` (full
    size) if any variant needs it, or if there are no variants."""
    width = height = 0
    for size in sizes:
        if size is None:
            return None
        width, height = max(width, size[0]), max(height, size[1])
    return (width, height) if width and height else None

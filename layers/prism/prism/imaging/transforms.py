"""The pipeline's transforms, applied in order, and the decode size they need.

Never mutates its input: one decoded source is shared by every variant, possibly across
threads, so only Pillow operations that return new images are used here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

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

_M = TypeVar("_M")
# An operation: (image, its config model, the variant's background) -> an image.
_Operation = Callable[[Image.Image, _M, str], Image.Image]

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
        image = _OPERATIONS[type(transform)](image, transform, background)
    return image


def _op(model: type[_M], operation: _Operation[_M]) -> tuple[type[Any], _Operation[Any]]:
    """A registry entry; typed so that ``operation`` is checked against ``model``."""
    return model, operation


# What each config model of ``Transform`` does: a new transform is its model in
# ``prism.config`` and its entry here (``test_imaging_transforms`` checks none is missing).
_OPERATIONS = dict(
    [
        _op(Resize, lambda im, t, _: geometry.resize(im, (t.width, t.height))),
        _op(
            Thumbnail,
            lambda im, t, _: geometry.thumbnail(im, (t.width, t.height), upscale=t.upscale),
        ),
        _op(
            Cover,
            lambda im, t, _: geometry.cover(im, (t.width, t.height), t.gravity, upscale=t.upscale),
        ),
        _op(
            Contain,
            lambda im, t, background: geometry.contain(
                im, (t.width, t.height), t.gravity, t.background or background, upscale=t.upscale
            ),
        ),
        _op(Grayscale, lambda im, t, _: filters.grayscale(im)),
        _op(Blur, lambda im, t, _: filters.blur(im, t.sigma)),
        _op(Sharpen, lambda im, t, _: filters.sharpen(im, t.radius, t.percent, t.threshold)),
        _op(Brighten, lambda im, t, _: filters.brighten(im, t.value)),
        _op(Contrast, lambda im, t, _: filters.contrast(im, t.value)),
        _op(Autocontrast, lambda im, t, _: filters.autocontrast(im, t.cutoff)),
        _op(Equalize, lambda im, t, _: filters.equalize(im)),
        _op(Rotate, lambda im, t, _: im.transpose(_CLOCKWISE[t.degrees])),
        _op(Flip, lambda im, t, _: im.transpose(_FLIPS[t.direction])),
    ]
)


def needed_size(transforms: Sequence[Transform]) -> tuple[int, int] | None:
    """The smallest decoded size from which ``transforms`` still give a full-quality result.

    That is the box of the first resize/thumbnail/cover/contain, as long as only
    geometry-neutral operations come before it (a 90/270 rotation swaps the box's axes).
    A JPEG is then decoded at a DCT scale that keeps *both* sides at least as large as
    the box, which is exactly what ``cover`` needs, and more than a fit needs. ``None``
    means "decode at full size": no resize at all, or first a blur or sharpen (their
    radius is in pixels of the image they are applied to) or any operation not listed
    here as size-neutral, so that a new one is safe before it is considered.
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
            case Grayscale() | Brighten() | Contrast() | Autocontrast() | Equalize() | Flip():
                pass  # size-neutral: the box of a later resize still applies
            case _:
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

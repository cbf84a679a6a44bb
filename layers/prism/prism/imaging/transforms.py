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
from prism.imaging.geometry import fit_size

_M = TypeVar("_M")
# An operation: (image, its config model, the variant's background, the upright size of
# the picture ``image`` stands for) -> an image. The size differs from ``image.size`` only
# before the first resize, when ``image`` is a reduced decode (``reduced_size``): a fit
# computes its output size from the picture's real size, so that decoding smaller never
# changes the dimensions of an output.
_Operation = Callable[[Image.Image, _M, str, tuple[int, int]], Image.Image]

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
    size: tuple[int, int] | None = None,
) -> Image.Image:
    """Apply ``transforms`` in order. May return ``image`` itself when nothing changes it.

    ``background`` is the variant's: the padding of ``contain`` unless it names its own.
    ``size`` is the upright size of the picture when ``image`` is a reduced decode of it
    (at least ``reduced_size(transforms, size)``): fits then give the sizes they give
    from the picture itself. None: ``image.size``.
    """
    stands_for = size or image.size
    for transform in transforms:
        result = _OPERATIONS[type(transform)](image, transform, background, stands_for)
        if isinstance(transform, Rotate):
            if transform.degrees in (90, 270):
                stands_for = (stands_for[1], stands_for[0])
        elif not isinstance(transform, _SIZE_NEUTRAL):
            stands_for = result.size
        image = result
    return image


def _op(model: type[_M], operation: _Operation[_M]) -> tuple[type[Any], _Operation[Any]]:
    """A registry entry; typed so that ``operation`` is checked against ``model``."""
    return model, operation


# What each config model of ``Transform`` does: a new transform is its model in
# ``prism.config`` and its entry here (``test_imaging_transforms`` checks none is missing).
_OPERATIONS = dict(
    [
        _op(Resize, lambda im, t, _, __: geometry.resize(im, (t.width, t.height))),
        _op(
            Thumbnail,
            lambda im, t, _, size: geometry.thumbnail(
                im, (t.width, t.height), upscale=t.upscale, size=size
            ),
        ),
        _op(
            Cover,
            lambda im, t, _, __: geometry.cover(
                im, (t.width, t.height), t.gravity, upscale=t.upscale
            ),
        ),
        _op(
            Contain,
            lambda im, t, background, size: geometry.contain(
                im,
                (t.width, t.height),
                t.gravity,
                t.background or background,
                upscale=t.upscale,
                size=size,
            ),
        ),
        _op(Grayscale, lambda im, t, _, __: filters.grayscale(im)),
        _op(Blur, lambda im, t, _, __: filters.blur(im, t.sigma)),
        _op(Sharpen, lambda im, t, _, __: filters.sharpen(im, t.radius, t.percent, t.threshold)),
        _op(Brighten, lambda im, t, _, __: filters.brighten(im, t.value)),
        _op(Contrast, lambda im, t, _, __: filters.contrast(im, t.value)),
        _op(Autocontrast, lambda im, t, _, __: filters.autocontrast(im, t.cutoff)),
        _op(Equalize, lambda im, t, _, __: filters.equalize(im)),
        _op(Rotate, lambda im, t, _, __: im.transpose(_CLOCKWISE[t.degrees])),
        _op(Flip, lambda im, t, _, __: im.transpose(_FLIPS[t.direction])),
    ]
)
# Operations that keep the size (and the framing) of the picture: the box of a later
# resize still applies to the picture as decoded.
_SIZE_NEUTRAL = (Grayscale, Brighten, Contrast, Autocontrast, Equalize, Flip)


def needed_size(transforms: Sequence[Transform]) -> tuple[int, int] | None:
    """The smallest decoded size from which ``transforms`` still give a full-quality result,
    for a picture of unknown size (``decode(needed_size=...)``; ``decode_source`` knows
    the picture and uses ``reduced_size``).

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


def reduced_size(transforms: Sequence[Transform], size: tuple[int, int]) -> tuple[int, int] | None:
    """The smallest size, with the aspect ratio of ``size`` (the upright picture), from
    which ``transforms`` still give a full-quality result of the dimensions they give
    from the picture itself; None: the picture's own size is needed.

    Unlike ``needed_size``, this knows the picture: a fit into 1920 x 1920 needs only
    1920 x 1440 of an 8000 x 6000 photo (its output), where ``needed_size`` asks for
    both sides to be 1920. A cover or an exact resize needs the smallest scaled copy of
    the picture that still covers its box. The same operations as in ``needed_size``
    may come before the resize; anything else (a blur, a sharpen) needs the full size.
    """
    width, height = size
    swapped = False
    for transform in transforms:
        match transform:
            case (
                Thumbnail(width=box_w, height=box_h, upscale=upscale)
                | Contain(width=box_w, height=box_h, upscale=upscale)
            ):
                box = (box_h, box_w) if swapped else (box_w, box_h)
                return _below(fit_size(size, box, upscale=upscale), size)
            case Cover(width=box_w, height=box_h) | Resize(width=box_w, height=box_h):
                box_w, box_h = (box_h, box_w) if swapped else (box_w, box_h)
                if box_w * height >= box_h * width:  # the box's width decides the scale
                    covering = (box_w, -(-height * box_w // width))
                else:
                    covering = (-(-width * box_h // height), box_h)
                return _below(covering, size)
            case Rotate(degrees=degrees):
                swapped ^= degrees in (90, 270)
            case Grayscale() | Brighten() | Contrast() | Autocontrast() | Equalize() | Flip():
                pass
            case _:
                return None
    return None


def _below(needed: tuple[int, int], size: tuple[int, int]) -> tuple[int, int] | None:
    return needed if needed[0] < size[0] and needed[1] < size[1] else None


def combined_needed_size(sizes: Iterable[tuple[int, int] | None]) -> tuple[int, int] | None:
    """One decode size for several variants: the largest of each axis; ``None`` (full
    size) if any variant needs it, or if there are no variants."""
    width = height = 0
    for size in sizes:
        if size is None:
            return None
        width, height = max(width, size[0]), max(height, size[1])
    return (width, height) if width and height else None

"""The pipeline's transforms, applied in order; each returns a new image.

Never mutates its input: one decoded source is shared by every variant, possibly across
threads, so only Pillow operations that return new images are used here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PIL import Image, ImageEnhance, ImageFilter

from prism.config import Blur, Brighten, Flip, Grayscale, Resize, Rotate, Thumbnail, Transform

# Downscale by an integer factor (cheap box reduce) until within this factor of the target,
# then finish with Lanczos. 3.0 is indistinguishable from a full Lanczos pass in practice.
REDUCING_GAP = 3.0

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


def apply_transforms(image: Image.Image, transforms: Sequence[Transform]) -> Image.Image:
    """Apply ``transforms`` in order. May return ``image`` itself when nothing changes it."""
    for transform in transforms:
        image = _apply(image, transform)
    return image


def _apply(image: Image.Image, transform: Transform) -> Image.Image:
    match transform:
        case Resize(width=width, height=height):
            return _resize(image, (width, height))
        case Thumbnail(width=width, height=height):
            size = fit_size(image.size, (width, height))
            return image if size == image.size else _resize(image, size)
        case Grayscale():
            return image.convert("LA" if "A" in image.getbands() else "L")
        case Blur(sigma=sigma):
            return _blur(image, sigma)
        case Brighten(value=value):
            # Brightness blends with black; Pillow keeps the alpha band as it was.
            return ImageEnhance.Brightness(image).enhance(1.0 + value)
        case Rotate(degrees=degrees):
            return image.transpose(_CLOCKWISE[degrees])
        case Flip(direction=direction):
            return image.transpose(_FLIPS[direction])
    raise TypeError(f"unknown transform: {transform!r}")  # pragma: no cover


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    # Pillow premultiplies alpha while resampling RGBA/LA, so edges do not darken.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


def _blur(image: Image.Image, sigma: float) -> Image.Image:
    blur = ImageFilter.GaussianBlur(radius=sigma)
    premultiplied = {"RGBA": "RGBa", "LA": "La"}.get(image.mode)
    if premultiplied is None:
        return image.filter(blur)
    # Blur premultiplied colours, or invisible pixels bleed their colour into the edges.
    return image.convert(premultiplied).filter(blur).convert(image.mode)


def fit_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size with ``size``'s aspect ratio that fits in ``box``; never larger
    than ``size`` itself, never below 1 pixel (the rule of ``Image.thumbnail``)."""
    width, height = size
    box_width, box_height = box
    if width <= box_width and height <= box_height:
        return size
    scale = min(box_width / width, box_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def needed_size(transforms: Sequence[Transform]) -> tuple[int, int] | None:
    """The smallest decoded size from which ``transforms`` still give a full-quality result.

    That is the box of the first resize/thumbnail, as long as only geometry-neutral
    operations come before it (a 90/270 rotation swaps the box's axes). ``None`` means
    "decode at full size": no resize at all, or a blur first (its radius is in pixels of
    the image it is applied to, so decoding smaller would change the result).
    """
    swapped = False
    for transform in transforms:
        match transform:
            case Resize(width=width, height=height) | Thumbnail(width=width, height=height):
                return (height, width) if swapped else (width, height)
            case Rotate(degrees=degrees):
                swapped ^= degrees in (90, 270)
            case Blur():
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

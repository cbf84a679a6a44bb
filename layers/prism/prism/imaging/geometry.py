"""Geometry: exact resize, fit inside a box, cover a box (crop), contain in a box (pad).

Never mutates its input; every function returns a new image, or the input itself when
nothing changes. Only ``resize``, ``thumbnail``/``fit`` and ``contain`` with ``upscale``
(and exact ``resize``) ever enlarge an image.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PIL import Image, ImageColor, ImageOps

from prism.config import CoverGravity, FocalPoint, Gravity
from prism.imaging.smartcrop import smart_centering

# Downscale by an integer factor (cheap box reduce) until within this factor of the target,
# then finish with Lanczos. 3.0 is indistinguishable from a full Lanczos pass in practice.
REDUCING_GAP = 3.0

# Gravity as Pillow's ``centering``: where the kept (cover) or placed (contain) part sits,
# 0 = left/top, 1 = right/bottom.
CENTERING: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "north": (0.5, 0.0),
    "south": (0.5, 1.0),
    "east": (1.0, 0.5),
    "west": (0.0, 0.5),
    "northeast": (1.0, 0.0),
    "northwest": (0.0, 0.0),
    "southeast": (1.0, 1.0),
    "southwest": (0.0, 1.0),
}


# ``shrink`` makes temporaries of up to this many pixels (32 MB of RGBA) in one piece:
# a converted or premultiplied copy of the whole image, or Pillow's intermediate pass.
# Past that it works in bands, so a large upload is never held twice.
ONE_PIECE_PIXELS = 8_000_000
# Bands of about this many source pixels (4 MB of RGBA): small next to the image; the
# rows either side that each band's filter also reads are then a little more work.
BAND_PIXELS = 1_000_000
# Pillow's Lanczos reads this many source pixels either side, times the scale factor.
_LANCZOS_SUPPORT = 3
# Modes Pillow resamples as they are, without a premultiplied copy of the whole image.
_RESAMPLED_AS_IS = frozenset({"RGB", "L", "CMYK"})


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    # Pillow premultiplies alpha while resampling RGBA/LA, so edges do not darken.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


def shrink(
    image: Image.Image,
    size: tuple[int, int],
    convert: Callable[[Image.Image], Image.Image] | None = None,
) -> Image.Image:
    """``resize(convert(image), size)`` for a large ``image`` and a smaller ``size``,
    computed one band of rows at a time, so that no temporary the size of ``image`` is
    ever made: not the conversion, not Pillow's premultiplied copy of RGBA/LA, not its
    intermediate pass. ``convert`` must work pixel by pixel (a mode conversion).

    Each band of output rows is resampled from the source rows under its filter (Pillow's
    ``resize`` with a ``box``), so the bands join without seams and the result is the
    one-piece resize's, to rounding (Pillow may run its two passes in the other order
    for a band, which rounds and clips between them differently).
    """
    width, height = image.size
    crop = convert is not None or image.mode not in _RESAMPLED_AS_IS
    # What one piece would make on top of the image: a converted (or premultiplied) copy
    # of it, or only Pillow's intermediate pass (new width x old height).
    temporary = width * height if crop else size[0] * height
    if temporary <= ONE_PIECE_PIXELS or size[0] >= width or size[1] >= height:
        converted = convert(image) if convert is not None else image
        return converted if size == image.size else resize(converted, size)
    scale = height / size[1]
    factor = max(1, int(scale / REDUCING_GAP))  # the integer reduce ``resize`` does first
    margin = math.ceil(_LANCZOS_SUPPORT * scale) + 2 * factor
    rows = max(1, int(BAND_PIXELS / width / scale))  # output rows per band
    shrunk: Image.Image | None = None
    for top in range(0, size[1], rows):
        bottom = min(size[1], top + rows)
        # The band's source rows (fractional; the last band ends exactly at the bottom).
        first, last = top * scale, min(float(height), bottom * scale)
        offset = 0
        source = image
        if crop:
            # Only the rows the filter reads, converted (and premultiplied) on their own.
            offset = max(0, math.floor(first) - margin)
            source = image.crop((0, offset, width, min(height, math.ceil(last) + margin)))
            source = convert(source) if convert is not None else source
        band = source.resize(
            (size[0], bottom - top),
            Image.Resampling.LANCZOS,
            box=(0, first - offset, width, last - offset),
            reducing_gap=REDUCING_GAP,
        )
        if shrunk is None:
            shrunk = Image.new(band.mode, size, None)  # every row is pasted over
        shrunk.paste(band, (0, top))
        del source, band  # before the next band's are made
    assert shrunk is not None  # ``size`` has at least one row
    return shrunk


def fit_size(
    size: tuple[int, int], box: tuple[int, int], *, upscale: bool = False
) -> tuple[int, int]:
    """The largest size with ``size``'s aspect ratio that fits in ``box``, never below 1
    pixel; never larger than ``size`` itself unless ``upscale`` (the rule of
    ``Image.thumbnail``, or of ``ImageOps.contain`` with ``upscale``)."""
    width, height = size
    box_width, box_height = box
    if not upscale and width <= box_width and height <= box_height:
        return size
    scale = min(box_width / width, box_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail(
    image: Image.Image,
    box: tuple[int, int],
    *,
    upscale: bool,
    size: tuple[int, int] | None = None,
) -> Image.Image:
    """Fit ``image`` in ``box``. ``size``: the size of the picture ``image`` is a reduced
    copy of; the output size is then the picture's fit, whatever the copy's rounding."""
    fitted = fit_size(size or image.size, box, upscale=upscale)
    return image if fitted == image.size else resize(image, fitted)


def cover_size(size: tuple[int, int], box: tuple[int, int], *, upscale: bool) -> tuple[int, int]:
    """What ``cover`` makes of ``size``: ``box``, or without ``upscale`` for a smaller
    image, the largest size with the box's aspect ratio that the image still covers."""
    scale = min(size[0] / box[0], size[1] / box[1])
    if upscale or scale >= 1:
        return box
    return max(1, round(box[0] * scale)), max(1, round(box[1] * scale))


def cover(
    image: Image.Image, box: tuple[int, int], gravity: CoverGravity, *, upscale: bool
) -> Image.Image:
    """Scale ``image`` to cover ``box`` and crop the excess, keeping the ``gravity`` side
    (or the focal point, as near the middle as the crop allows; or with ``entropy`` or
    ``attention``, the part ``smartcrop`` finds most interesting)."""
    size = cover_size(image.size, box, upscale=upscale)
    if size == image.size:
        return image
    centering = _cover_centering(gravity, image, size)
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS, centering=centering)


def contain(
    image: Image.Image,
    box: tuple[int, int],
    gravity: Gravity,
    background: str,
    *,
    upscale: bool,
    size: tuple[int, int] | None = None,
) -> Image.Image:
    """Fit ``image`` in ``box``, then pad it to exactly ``box`` with ``background`` (a
    colour, or "transparent"), placed by ``gravity``. ``size``: as for ``thumbnail``."""
    fitted = thumbnail(image, box, upscale=upscale, size=size)
    if fitted.size == box:
        return fitted
    mode, fill = _canvas(fitted.mode, background)
    canvas = Image.new(mode, box, fill)
    centering = (gravity.x, gravity.y) if isinstance(gravity, FocalPoint) else CENTERING[gravity]
    # The placement rule of ``ImageOps.pad``.
    x = round((box[0] - fitted.width) * centering[0])
    y = round((box[1] - fitted.height) * centering[1])
    canvas.paste(fitted if fitted.mode == mode else fitted.convert(mode), (x, y))
    return canvas


def _canvas(mode: str, background: str) -> tuple[str, int | tuple[int, ...]]:
    """Mode and fill of the padding canvas for a working-mode image."""
    grey = mode in ("L", "LA")
    if background == "transparent":
        return ("LA" if grey else "RGBA"), (0, 0) if grey else (0, 0, 0, 0)
    colour = ImageColor.getrgb(background)[:3]
    if grey and len(set(colour)) > 1:
        mode = "RGBA" if mode == "LA" else "RGB"  # a coloured pad makes the image colour
    alpha = (255,) if "A" in mode else ()
    return mode, ((colour[0], *alpha) if mode in ("L", "LA") else (*colour, *alpha))


def _cover_centering(
    gravity: CoverGravity, image: Image.Image, target: tuple[int, int]
) -> tuple[float, float]:
    if gravity == "entropy" or gravity == "attention":
        return smart_centering(image, target, gravity)
    if not isinstance(gravity, FocalPoint):
        return CENTERING[gravity]
    # ``ImageOps.fit`` keeps the largest region with the target's aspect ratio; place it
    # so the focal point is in its middle, shifted only as far as the edges require.
    width, height = image.size
    ratio = target[0] / target[1]
    crop_width, crop_height = min(width, height * ratio), min(height, width / ratio)
    return (
        _centre_on(gravity.x * width, crop_width, width),
        _centre_on(gravity.y * height, crop_height, height),
    )


def _centre_on(point: float, crop: float, length: float) -> float:
    spare = length - crop
    if spare <= 0:
        return 0.5
    return min(1.0, max(0.0, (point - crop / 2) / spare))

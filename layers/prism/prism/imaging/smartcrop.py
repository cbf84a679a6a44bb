"""Smart crop for ``cover``: where to put the crop window when ``gravity`` is ``entropy``
or ``attention`` (after sharp's strategies of the same names).

``cover`` keeps the largest region of the box's aspect ratio, which spans the whole image
along one axis, so only its offset along the other axis is chosen. Both strategies look
at a copy reduced to at most ``ANALYSIS_SIZE`` pixels on the long side (an integer box
reduce, then Pillow only):

- ``entropy``: slides the window over at most ``ENTROPY_STEPS`` + 1 evenly spaced
  offsets and keeps the one whose luminance histogram has the highest entropy.
- ``attention``: a saliency map (luminance edges, saturation, skin tones), summed per
  column (or row); the window with the highest sum, found at every pixel offset with
  cumulative sums.

Ties go to the offset nearest the middle, so a flat image is cropped at the centre and
the same input always gives the same crop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageMath

ANALYSIS_SIZE = 256
ENTROPY_STEPS = 32
# How much a skin-toned pixel and a saturated pixel count, next to a strong edge (255).
SKIN_WEIGHT = 2.0
SATURATION_WEIGHT = 1.0
# YCbCr chroma ranges of skin tones (Chai & Ngan), and the darkest luminance counted.
_SKIN_CB = (77, 127)
_SKIN_CR = (133, 173)
_SKIN_MIN_Y = 40
# Saturation below this counts for nothing (greys, JPEG noise, near-white backgrounds).
_SATURATION_FLOOR = 48


def smart_centering(
    image: Image.Image, target: tuple[int, int], strategy: str
) -> tuple[float, float]:
    """Pillow ``centering`` for ``ImageOps.fit(image, target, ...)`` that keeps the part
    ``strategy`` (``entropy`` or ``attention``) finds most interesting."""
    width, height = image.size
    ratio = target[0] / target[1]
    crop_width, crop_height = min(width, height * ratio), min(height, width / ratio)
    horizontal = width - crop_width >= height - crop_height
    spare = (width - crop_width) if horizontal else (height - crop_height)
    if spare < 1:
        return 0.5, 0.5
    small = _reduced(image)
    # The window along the cropped axis, in pixels of the small copy.
    length = small.width if horizontal else small.height
    window = round(length * (crop_width / width if horizontal else crop_height / height))
    window = min(length, max(1, window))
    if window == length:
        return 0.5, 0.5
    if strategy == "entropy":
        offset = _entropy_offset(small.convert("L"), window, horizontal=horizontal)
    else:
        profile = _profile(_saliency(small), horizontal=horizontal)
        offset = _best_window(profile, window)
    fraction = offset / (length - window)
    return (fraction, 0.5) if horizontal else (0.5, fraction)


def _reduced(image: Image.Image) -> Image.Image:
    """``image`` as RGB, box-reduced to at most ``ANALYSIS_SIZE`` on the long side."""
    factor = math.ceil(max(image.size) / ANALYSIS_SIZE)
    small = image.reduce(factor) if factor > 1 else image
    if small.mode in ("RGBA", "LA"):
        # Invisible pixels are not interesting: flatten onto black, like a flat background.
        background = Image.new("RGB", small.size, (0, 0, 0))
        background.paste(small.convert("RGB"), mask=small.getchannel("A"))
        return background
    return small.convert("RGB")


def _entropy_offset(luminance: Image.Image, window: int, *, horizontal: bool) -> int:
    length = luminance.width if horizontal else luminance.height
    spare = length - window
    steps = min(spare, ENTROPY_STEPS)
    offsets = sorted({round(spare * i / steps) for i in range(steps + 1)})
    scores = []
    for offset in offsets:
        box = (
            (offset, 0, offset + window, luminance.height)
            if horizontal
            else (0, offset, luminance.width, offset + window)
        )
        # Rounded so that equal histograms compare equal whatever the float summation.
        scores.append(round(luminance.crop(box).entropy(), 9))
    return _nearest_middle(offsets, scores, spare)


def _saliency(rgb: Image.Image) -> Image.Image:
    """A float ("F") map of how much each pixel draws the eye."""
    luminance = rgb.convert("L")
    edges = luminance.filter(ImageFilter.FIND_EDGES)
    # Pillow copies the border pixels through the kernel: they are no edges.
    ImageDraw.Draw(edges).rectangle((0, 0, edges.width - 1, edges.height - 1), outline=0)
    saturation = rgb.convert("HSV").getchannel("S")
    saturation = saturation.point(lambda s: s if s >= _SATURATION_FLOOR else 0)
    y, cb, cr = rgb.convert("YCbCr").split()
    skin = ImageChops.multiply(
        ImageChops.multiply(
            cb.point(lambda v: 255 if _SKIN_CB[0] <= v <= _SKIN_CB[1] else 0),
            cr.point(lambda v: 255 if _SKIN_CR[0] <= v <= _SKIN_CR[1] else 0),
        ),
        y.point(lambda v: 255 if v >= _SKIN_MIN_Y else 0),
    )
    score = ImageMath.lambda_eval(
        lambda b: (
            b["float"](b["edges"])
            + b["float"](b["saturation"]) * SATURATION_WEIGHT
            + b["float"](b["skin"]) * SKIN_WEIGHT
        ),
        edges=edges,
        saturation=saturation,
        skin=skin,
    )
    assert isinstance(score, Image.Image)
    return score


def _profile(score: Image.Image, *, horizontal: bool) -> list[float]:
    """The score summed over each column (``horizontal``) or row."""
    width, height = score.size
    # A box reduce over the whole other axis gives the mean; times its length, the sum.
    if horizontal:
        means = score.reduce((1, height)) if height > 1 else score
        across = height
    else:
        means = score.reduce((width, 1)) if width > 1 else score
        across = width
    values = means.get_flattened_data()
    return [value * across for value in values if isinstance(value, int | float)]


def _best_window(profile: Sequence[float], window: int) -> int:
    """The offset of the ``window``-long run of ``profile`` with the highest sum."""
    # Integers, so that equal sums compare equal.
    sums = [0, *accumulate(round(value) for value in profile)]
    spare = len(profile) - window
    offsets = list(range(spare + 1))
    return _nearest_middle(offsets, [sums[o + window] - sums[o] for o in offsets], spare)


def _nearest_middle(offsets: Sequence[int], scores: Sequence[float], spare: int) -> int:
    """The offset with the highest score; of several, the one nearest ``spare / 2``."""
    best = max(scores)
    return min(
        (offset for offset, score in zip(offsets, scores, strict=True) if score == best),
        key=lambda offset: (abs(2 * offset - spare), offset),
    )

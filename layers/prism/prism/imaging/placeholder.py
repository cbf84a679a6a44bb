"""A low-quality image placeholder (LQIP): a BlurHash and a dominant colour.

A page shows these while the real variant loads, so they must be cheap to compute for
every upload: the source is first reduced to a tiny working grid of at most 24x24
pixels (``resize`` with a box filter and ``reducing_gap``, which averages every source
pixel, alpha premultiplied), and both values are computed from that grid alone. The
grid is not kept to the source's aspect ratio: BlurHash's basis functions are in
coordinates normalised to each side, so squeezing the picture changes nothing but
gives the short side of an elongated image as many samples as the long one. Each grid
cell still covers the same source area, so the dominant colour is not biased either.

Transparency is composited over white for both values: that is what the placeholder
stands in for on a white page, and a BlurHash has no alpha.

The BlurHash comes from the pure-Python ``blurhash`` package (no numpy, one universal
wheel, the same on x86_64 and Lambda's arm64). Pure Python is fast enough here because
the grid is tiny: the encoder's cost is components x grid pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import blurhash  # type: ignore[import-untyped]
from PIL import Image

__all__ = ["GRID", "Placeholder", "components", "placeholder"]

GRID = 24
"""The working grid's largest side.

BlurHash's basis (``cos(pi * i * x / width)`` at integer ``x``, as in the reference
encoders) does not sum to zero over a side of N samples for odd ``i``: even a flat
picture gets AC components of 2/N of its level, a faint ramp when decoded. More samples
shrink that; the encoder's pure-Python cost grows with their count (components x
pixels). 24 costs ~2.4 ms here (16: ~1.1 ms, 32: ~4.3 ms), and decodes within ~5-10 sRGB
levels (mean) of a hash of a 128x128 grid, against ~7-13 at 16 (bench/placeholder_cost.py).
"""

_LONG_COMPONENTS = 4
_SHORT_COMPONENTS = 3
_DOMINANT_COLOURS = 5
_WHITE = (255, 255, 255, 255)

# sRGB byte -> linear light, as the encoder would compute it for each pixel.
_LINEAR = tuple(float(blurhash.srgb_to_linear(value)) for value in range(256))


@dataclass(frozen=True)
class Placeholder:
    """What a page shows before the image itself."""

    blurhash: str
    """The BlurHash (see ``components`` for the component counts)."""
    dominant_colour: str
    """The most common colour, ``#rrggbb`` (sRGB, lower case)."""


def components(size: tuple[int, int]) -> tuple[int, int]:
    """The BlurHash component counts (x, y) for a picture of ``size``.

    4 along the long side and 3 along the short one (4x3 landscape and square, 3x4
    portrait), fewer on the short side the more elongated the picture: 3 up to 4:1.33,
    2 up to 4:1 (a 2:1 or 3:1 panorama is 4x2), 1 beyond (a 1x5000 strip is 1x4). Never
    more than the side has pixels (a 2-pixel side gets at most 2).
    """
    width, height = size
    long_side, short_side = max(width, height), min(width, height)
    short = min(_SHORT_COMPONENTS, max(1, math.ceil(_LONG_COMPONENTS * short_side / long_side)))
    x, y = (_LONG_COMPONENTS, short) if width >= height else (short, _LONG_COMPONENTS)
    return min(x, width), min(y, height)


def placeholder(image: Image.Image) -> Placeholder:
    """The placeholder of an upright sRGB ``image`` in mode RGB, RGBA, L or LA.

    ``image`` is not modified. Any size works, but the cost grows with it: one
    box-filtered pass over the source plus a fixed ~2.5 ms, about 15-20 ms for 4000x3000
    RGB and ~70-80 ms for RGBA, where Pillow first premultiplies the whole picture (see
    bench/placeholder_cost.py). A caller that holds a reduced copy should pass that.
    """
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        raise ValueError(f"placeholder() takes RGB, RGBA, L or LA, not {image.mode}")
    if not image.width or not image.height:
        raise ValueError(f"placeholder() needs at least one pixel, not {image.size}")
    grid = _working_grid(image)
    return Placeholder(
        blurhash=_blurhash(grid, components(image.size)),
        dominant_colour=_dominant_colour(grid),
    )


def _working_grid(image: Image.Image) -> Image.Image:
    """The tiny RGB copy everything is computed from, alpha composited over white."""
    width, height = image.size
    size = (min(width, GRID), min(height, GRID))
    # BOX averages every source pixel; reducing_gap does most of it with reduce(), which
    # is cheaper. Pillow premultiplies alpha for RGBA and LA in both steps.
    small = image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    if small.mode in ("RGBA", "LA"):
        rgba = small.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", size, _WHITE), rgba).convert("RGB")
    return small.convert("RGB")


def _blurhash(grid: Image.Image, counts: tuple[int, int]) -> str:
    width, height = grid.size
    data = grid.tobytes()
    linear = _LINEAR
    row_bytes = width * 3
    # The encoder takes rows of pixels; handing it linear light skips its own conversion.
    rows = [
        [
            (linear[data[i]], linear[data[i + 1]], linear[data[i + 2]])
            for i in range(start, start + row_bytes, 3)
        ]
        for start in range(0, height * row_bytes, row_bytes)
    ]
    encoded: str = blurhash.encode(rows, counts[0], counts[1], linear=True)
    return encoded


def _dominant_colour(grid: Image.Image) -> str:
    """The average colour of the largest median-cut box (ties: the first palette entry)."""
    quantized = grid.quantize(colors=_DOMINANT_COLOURS, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette()
    # A P image's "colours" are palette indices: (count, index) pairs.
    counts = [
        (count, index)
        for count, index in quantized.getcolors(_DOMINANT_COLOURS) or ()
        if isinstance(index, int)
    ]
    if not counts or palette is None:  # neither happens for a non-empty P image
        raise AssertionError("quantize() returned no colours")
    _count, index = max(counts, key=lambda entry: (entry[0], -entry[1]))
    red, green, blue = palette[index * 3 : index * 3 + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"

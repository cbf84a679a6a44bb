"""Text and logo watermarks, sized relative to the image so they read at any size.

Sizes follow ``prism.config.Watermark``: ``scale`` is the text height, or the logo width,
as a fraction of the image's shorter side, and ``margin`` likewise. The mark is drawn on a
small RGBA layer, its alpha multiplied by ``opacity``, and composited with
``Image.alpha_composite`` over just the region it covers; or, with ``tile``, repeated
over the whole image. Text always has an outline in the opposite shade, and
``color: auto`` picks white or black text from what lies underneath.

Planning (rendering the text, choosing places and colours) is separate from stamping,
so an animation is marked identically on every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageColor, ImageDraw, ImageFont, ImageStat

from prism.config import Watermark
from prism.imaging.colour import normalize_mode
from prism.imaging.geometry import fit_size

# Smallest text height (and logo width) in pixels: still legible on a 256 px thumbnail,
# where the default scale of 0.05 alone would give 12.8 px.
MIN_MARK_PIXELS = 12
# Outline width as a fraction of the text height: thin, but enough to separate light text
# from a light background (and dark from dark).
STROKE_FRACTION = 0.06
# At most about this many marks when tiling (bounds the stamping work on huge images).
MAX_TILES = 400


def watermark_position(
    image_size: tuple[int, int], mark_size: tuple[int, int], position: str, margin: int
) -> tuple[int, int]:
    """Top-left corner of a ``mark_size`` mark placed at ``position`` inside the image.

    ``margin`` pixels keep it away from the edges (ignored for "center"); the result is
    clamped so the mark stays inside the image whenever it fits.
    """
    width, height = image_size
    mark_width, mark_height = mark_size
    free_x, free_y = max(0, width - mark_width), max(0, height - mark_height)
    vertical, _, horizontal = position.partition("-")
    if position == "center":
        x, y = free_x // 2, free_y // 2
    elif vertical in ("top", "bottom") and horizontal in ("left", "right"):
        x = margin if horizontal == "left" else free_x - margin
        y = margin if vertical == "top" else free_y - margin
    else:
        raise ValueError(f"unknown watermark position: {position!r}")
    return min(max(0, x), free_x), min(max(0, y), free_y)


@dataclass(frozen=True)
class WatermarkPlan:
    """Where marks go on an image of ``size``: made once, stamped on every frame."""

    size: tuple[int, int]
    # (mark, top-left corner); marks are RGBA with the opacity applied, and may stick out
    # of the image when tiled.
    placements: tuple[tuple[Image.Image, tuple[int, int]], ...]


def apply_watermark(
    image: Image.Image, spec: Watermark, logo: Image.Image | None = None
) -> Image.Image:
    """A copy of ``image`` with the watermark ``spec``; ``image`` itself is not modified.

    For an image watermark the caller passes the decoded ``logo`` (a ``ValueError`` if it
    is missing); it is scaled so its width is ``spec.scale`` of the image's shorter side.
    The result has the same size, and mode RGB, RGBA, L or LA following the input's.
    """
    return stamp(image, plan_watermark(image, spec, logo))


def plan_watermark(
    image: Image.Image, spec: Watermark, logo: Image.Image | None = None
) -> WatermarkPlan:
    """Render the mark(s) of ``spec`` for ``image`` and choose where they go.

    With ``color: auto`` each text mark is white or black, whichever contrasts with the
    mean luminance of the pixels under its ink.
    """
    shorter = min(image.size)
    margin = round(spec.margin * shorter)
    # The room for one mark; a mark bigger than that is shrunk to fit.
    if spec.tile:
        room = image.size
    else:
        room = (max(1, image.width - 2 * margin), max(1, image.height - 2 * margin))
    target = max(MIN_MARK_PIXELS, round(spec.scale * shorter))
    if spec.text is not None:
        colours = ("white", "black") if spec.color == "auto" else (spec.color,)
        marks = [_text_mark(spec.text, colour, target, room) for colour in colours]
    elif logo is not None:
        marks = [_logo_mark(logo, target, room)]
    else:
        raise ValueError(f"the watermark image {spec.image!r} was not loaded (logo is None)")
    for mark in marks:
        _apply_opacity(mark, spec.opacity)
    if spec.tile:
        gap = round(spec.spacing * shorter)
        corners = tile_positions(image.size, marks[0].size, gap)
    else:
        corners = [watermark_position(image.size, marks[0].size, spec.position, margin)]
    if len(marks) == 1:
        return WatermarkPlan(image.size, tuple((marks[0], corner) for corner in corners))
    gray = image.convert("L")
    light, dark = marks
    placements = tuple(
        (dark if _luminance_under(gray, light, corner) >= 128 else light, corner)
        for corner in corners
    )
    return WatermarkPlan(image.size, placements)


def stamp(image: Image.Image, plan: WatermarkPlan) -> Image.Image:
    """A copy of ``image`` (of ``plan.size``) with the planned marks composited on it."""
    if image.size != plan.size:
        raise ValueError(f"a watermark planned for {plan.size} cannot go on {image.size}")
    image = normalize_mode(image)
    if len(plan.placements) == 1:
        # One mark: composite just the region it covers.
        mark, (x, y) = plan.placements[0]
        box = (x, y, x + mark.width, y + mark.height)
        region = image.crop(box).convert("RGBA")
        region.alpha_composite(mark)
        result = image.copy()
        result.paste(region.convert(image.mode), box)
        return result
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    for mark, corner in plan.placements:
        layer.paste(mark, corner)  # clipped at the edges; tiles never overlap
    base = image.convert("RGBA")
    base.alpha_composite(layer)
    return base.convert(image.mode)


def tile_positions(
    image_size: tuple[int, int], mark_size: tuple[int, int], gap: int
) -> list[tuple[int, int]]:
    """Top-left corners of marks repeated over the image, ``gap`` pixels apart, every
    other row shifted by half a step (so a crop cannot dodge them column-wise)."""
    width, height = image_size
    step_x, step_y = mark_size[0] + gap, mark_size[1] + gap
    # Tiny marks on a huge image: widen the steps so stamping stays cheap.
    spread = math.sqrt(width * height / (step_x * step_y) / MAX_TILES)
    if spread > 1:
        step_x, step_y = math.ceil(step_x * spread), math.ceil(step_y * spread)
    corners: list[tuple[int, int]] = []
    for row, y in enumerate(range(gap // 2, height, step_y)):
        start = gap // 2 - (step_x // 2 if row % 2 else 0)
        corners.extend((x, y) for x in range(start, width, step_x))
    return corners or [(0, 0)]


def _luminance_under(gray: Image.Image, mark: Image.Image, corner: tuple[int, int]) -> float:
    """Mean luminance (0-255) of the pixels of ``gray`` under the ink of ``mark``."""
    x, y = corner
    box = (max(0, x), max(0, y), min(gray.width, x + mark.width), min(gray.height, y + mark.height))
    if box[0] >= box[2] or box[1] >= box[3]:
        return 0.0
    ink = mark.getchannel("A").crop((box[0] - x, box[1] - y, box[2] - x, box[3] - y))
    region = gray.crop(box)
    stat = ImageStat.Stat(region, mask=ink if ink.getbbox() else None)
    return float(stat.mean[0])


def _text_mark(text: str, color: str, height: int, room: tuple[int, int]) -> Image.Image:
    """``text`` in a transparent RGBA layer cropped to the ink (outline included)."""
    fill = ImageColor.getcolor(color, "RGBA")  # ValueError for an unknown colour name
    assert isinstance(fill, tuple)
    red, green, blue = fill[:3]
    # ITU-R 601 luma, as in Pillow's own RGB -> L conversion.
    light = red * 299 + green * 587 + blue * 114 >= 128_000
    outline = (0, 0, 0, fill[3]) if light else (255, 255, 255, fill[3])
    measure = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    size = height
    while True:
        font = ImageFont.load_default(size=size)
        stroke = max(1, round(size * STROKE_FRACTION))
        bbox = measure.textbbox((0, 0), text, font=font, stroke_width=stroke)
        left, top = math.floor(bbox[0]), math.floor(bbox[1])
        ink = (max(1, math.ceil(bbox[2]) - left), max(1, math.ceil(bbox[3]) - top))
        if (ink[0] <= room[0] and ink[1] <= room[1]) or size == 1:
            break
        # Text does not scale exactly linearly with font size: shrink, then re-measure.
        shrink = min(room[0] / ink[0], room[1] / ink[1])
        size = max(1, min(size - 1, int(size * shrink)))
    mark = Image.new("RGBA", ink, (0, 0, 0, 0))
    ImageDraw.Draw(mark).text(
        (-left, -top), text, font=font, fill=fill, stroke_width=stroke, stroke_fill=outline
    )
    return mark


def _logo_mark(logo: Image.Image, width: int, room: tuple[int, int]) -> Image.Image:
    """``logo`` as RGBA, ``width`` pixels wide (aspect kept), shrunk further to fit ``room``."""
    height = max(1, round(logo.height * width / logo.width))
    size = fit_size((width, height), room)
    # ``convert`` returns a new image, so a logo shared between variants is never modified.
    return logo.convert("RGBA").resize(size, Image.Resampling.LANCZOS)


def _apply_opacity(mark: Image.Image, opacity: float) -> None:
    if opacity < 1.0:
        mark.putalpha(mark.getchannel("A").point(lambda alpha: round(alpha * opacity)))

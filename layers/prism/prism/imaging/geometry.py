"""Geometry: exact resize, fit inside a box, cover a box (crop), contain in a box (pad).

Never mutates its input; every function returns a new image, or the input itself when
nothing changes. Only ``resize``, ``thumbnail``/``fit`` and ``contain`` with ``upscale``
(and exact ``resize``) ever enlarge an image.
"""

from __future__ import annotations

from PIL import Image, ImageColor, ImageOps

from prism.config import FocalPoint, Gravity

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


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    # Pillow premultiplies alpha while resampling RGBA/LA, so edges do not darken.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


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


def thumbnail(image: Image.Image, box: tuple[int, int], *, upscale: bool) -> Image.Image:
    size = fit_size(image.size, box, upscale=upscale)
    return image if size == image.size else resize(image, size)


def cover_size(size: tuple[int, int], box: tuple[int, int], *, upscale: bool) -> tuple[int, int]:
    """What ``cover`` makes of ``size``: ``box``, or without ``upscale`` for a smaller
    image, the largest size with the box's aspect ratio that the image still covers."""
    scale = min(size[0] / box[0], size[1] / box[1])
    if upscale or scale >= 1:
        return box
    return max(1, round(box[0] * scale)), max(1, round(box[1] * scale))


def cover(
    image: Image.Image, box: tuple[int, int], gravity: Gravity, *, upscale: bool
) -> Image.Image:
    """Scale ``image`` to cover ``box`` and crop the excess, keeping the ``gravity`` side
    (or the focal point, as near the middle as the crop allows)."""
    size = cover_size(image.size, box, upscale=upscale)
    if size == image.size:
        return image
    centering = _cover_centering(gravity, image.size, size)
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS, centering=centering)


def contain(
    image: Image.Image,
    box: tuple[int, int],
    gravity: Gravity,
    background: str,
    *,
    upscale: bool,
) -> Image.Image:
    """Fit ``image`` in ``box``, then pad it to exactly ``box`` with ``background`` (a
    colour, or "transparent"), placed by ``gravity``."""
    fitted = thumbnail(image, box, upscale=upscale)
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
    gravity: Gravity, size: tuple[int, int], target: tuple[int, int]
) -> tuple[float, float]:
    if not isinstance(gravity, FocalPoint):
        return CENTERING[gravity]
    # ``ImageOps.fit`` keeps the largest region with the target's aspect ratio; place it
    # so the focal point is in its middle, shifted only as far as the edges require.
    width, height = size
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

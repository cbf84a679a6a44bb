"""One decoded picture (or animation frame) made ready to render from.

Upright (the EXIF orientation applied to the pixels), in sRGB, in a working mode (RGB,
RGBA, L or LA), and with no metadata left on the image object. When the caller knows
how small the picture may be rendered from (``decode_source``), it is shrunk first, so
that turning it, its colour profile and its mode conversion all work on the small image.
"""

from __future__ import annotations

import contextlib

from PIL import ExifTags, Image, ImageOps

from prism.errors import PermanentError, Reason
from prism.imaging.colour import normalize_mode, to_srgb
from prism.imaging.geometry import shrink

# EXIF orientations 5-8 turn the stored image by 90 degrees: its width becomes the height.
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
# Modes Pillow resamples correctly as they are (alpha premultiplied on the way) and that
# ``to_srgb`` can still convert from their profile after the resize.
_RESAMPLED_MODES = frozenset({"RGB", "RGBA", "L", "LA", "CMYK"})
# Modes ``normalize_mode`` turns into one of those pixel by pixel, so one band at a time.
# (Float images are scaled by their extrema, and LAB, YCbCr, HSV... are converted whole.)
# (RGBX: a still WebP, ``webp_still``.)
_CONVERTED_BY_PIXEL = frozenset(
    {"P", "PA", "1", "La", "RGBa", "RGBX", "I", "I;16", "I;16B", "I;16L", "I;16N"}
)


def prepare(image: Image.Image, size: tuple[int, int] | None = None) -> Image.Image:
    """``image`` (loaded, and ours: it is modified in place) upright, sRGB, in a working
    mode and without metadata. May return ``image`` itself.

    ``size`` (upright) shrinks the picture to that size first, if it is smaller: the
    caller renders nothing larger from it. Raises ``PermanentError(UNSUPPORTED_FORMAT)``
    for a pixel mode Pillow cannot convert.
    """
    turn = orientation(image)
    try:
        if size is not None:
            image = _shrunk(image, size, turn)
        upright(image, turn)
        if image.mode == "RGBX":
            image = image.convert("RGB")  # not shrunk; colour profiles convert from RGB
        converted = normalize_mode(to_srgb(image))
        if size is not None and size[0] < converted.width and size[1] < converted.height:
            # A mode converted whole first (LAB, YCbCr, float...): shrunk once upright.
            converted = shrink(converted, size)
    except ValueError as exc:
        raise PermanentError(Reason.UNSUPPORTED_FORMAT, f"pixel mode {image.mode}: {exc}") from exc
    with contextlib.suppress(Exception):
        converted.getexif().clear()  # the parsed copy Pillow caches next to ``info``
    converted.info = {}
    return converted


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of a stored image; 1 when it has none or broken EXIF."""
    with contextlib.suppress(Exception):
        value = int(image.getexif().get(ExifTags.Base.Orientation, 1))
        return value if 1 <= value <= 8 else 1
    return 1


def upright(image: Image.Image, turn: int | None = None) -> None:
    """Apply the EXIF orientation (or ``turn``, the one read before ``image`` was made
    from the stored picture) to the pixels, in place, and drop the tag.

    Runs before any conversion, which would lose the EXIF block. Broken EXIF must not
    cost the picture: it is then kept as stored.
    """
    try:
        if turn is not None and turn != 1:
            # Pillow's own table (``exif_transpose``) turns the image by this tag.
            image.getexif()[ExifTags.Base.Orientation] = turn
        ImageOps.exif_transpose(image, in_place=True)
    except MemoryError:
        raise
    except Exception:
        return


def _shrunk(image: Image.Image, size: tuple[int, int], turn: int) -> Image.Image:
    """``image`` at ``size`` (upright; the stored image may be sideways) in a mode it can
    be colour-managed from, keeping only its colour profile; ``image`` if it is no
    larger, or in a mode that must be converted whole first."""
    stored = (size[1], size[0]) if turn in SWAPPING_ORIENTATIONS else size
    if stored[0] >= image.width or stored[1] >= image.height:
        return image
    keyed = image.mode in ("RGB", "L") and "transparency" in image.info
    if image.mode in _RESAMPLED_MODES and not keyed:
        convert = None
    elif image.mode in _CONVERTED_BY_PIXEL or keyed:
        convert = normalize_mode  # a colour key becomes alpha before any resampling
    else:
        return image
    icc = image.info.get("icc_profile")
    shrunk = shrink(image, stored, convert)
    shrunk.info = {"icc_profile": icc} if icc else {}
    return shrunk

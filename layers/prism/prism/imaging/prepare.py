"""One decoded picture (or animation frame) made ready to render from.

Upright (the EXIF orientation applied to the pixels), in sRGB, in a working mode (RGB,
RGBA, L or LA), and with no metadata left on the image object.
"""

from __future__ import annotations

import contextlib

from PIL import Image, ImageOps

from prism.errors import PermanentError, Reason
from prism.imaging.colour import normalize_mode, to_srgb


def prepare(image: Image.Image) -> Image.Image:
    """``image`` (loaded, and ours: it is modified in place) upright, sRGB, in a working
    mode and without metadata. May return ``image`` itself.

    Raises ``PermanentError(UNSUPPORTED_FORMAT)`` for a pixel mode Pillow cannot convert.
    """
    upright(image)
    converted = to_srgb(image)
    try:
        converted = normalize_mode(converted)
    except ValueError as exc:
        raise PermanentError(
            Reason.UNSUPPORTED_FORMAT, f"pixel mode {converted.mode}: {exc}"
        ) from exc
    with contextlib.suppress(Exception):
        converted.getexif().clear()  # the parsed copy Pillow caches next to ``info``
    converted.info = {}
    return converted


def upright(image: Image.Image) -> None:
    """Apply the EXIF orientation to the pixels, in place, and drop the tag.

    Runs before any conversion, which would lose the EXIF block. Broken EXIF must not
    cost the picture: it is then kept as stored.
    """
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except MemoryError:
        raise
    except Exception:
        return

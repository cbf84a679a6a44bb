"""Encode an image to the bytes of an output format.

Outputs are sRGB (``decode`` converts) and carry no metadata: no EXIF (GPS), no ICC
profile, no comments. Formats without alpha (JPEG, BMP) are flattened onto white, never
black. Encoder settings favour Lambda CPU time where size or quality barely differ.

``Image.save`` records its options on the image object, so never encode one ``Image``
from two threads at once (``render_variant`` always encodes an image of its own).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from PIL import Image

from prism.errors import PermanentError, Reason
from prism.imaging.decode import normalize_mode

# A preparer turns a working-mode image into one the format can store, plus save options.
_Prepared = tuple[Image.Image, dict[str, Any]]

# GIF: 255 palette colours from the image, index 255 kept for "transparent".
_GIF_TRANSPARENT_INDEX = 255
# Alpha below this becomes fully transparent in a GIF (it has no partial transparency).
_GIF_ALPHA_THRESHOLD = 128


def encode(image: Image.Image, format: str, quality: int) -> bytes:
    """The bytes of ``image`` encoded as ``format`` (JPEG, PNG, WEBP, GIF, BMP or AVIF).

    ``quality`` (1-100) applies to JPEG, WEBP and AVIF. Raises
    ``PermanentError(Reason.ENCODE_FAILED)`` if the image cannot be encoded.
    """
    name = format.strip().upper()
    name = "JPEG" if name == "JPG" else name
    preparer = _PREPARERS.get(name)
    if preparer is None:
        raise PermanentError(Reason.ENCODE_FAILED, f"unknown output format {format!r}")
    buffer = io.BytesIO()
    try:
        prepared, options = preparer(normalize_mode(image), quality)
        prepared.save(buffer, name, **options)
    except MemoryError:
        raise
    except Exception as exc:
        raise PermanentError(
            Reason.ENCODE_FAILED, f"{name} from mode {image.mode}: {type(exc).__name__}: {exc}"
        ) from exc
    return buffer.getvalue()


def flatten(image: Image.Image, background: str = "white") -> Image.Image:
    """``image`` without alpha (RGB or L), composited onto ``background``."""
    if "A" not in image.getbands():
        return image
    base = Image.new("L" if image.mode == "LA" else "RGB", image.size, background)
    base.paste(image, mask=image.getchannel("A"))
    return base


def _jpeg(image: Image.Image, quality: int) -> _Prepared:
    # ``comment`` would otherwise be copied from ``image.info``; EXIF and ICC are only
    # written when passed.
    return flatten(image), {"quality": quality, "optimize": True, "comment": ""}


def _png(image: Image.Image, quality: int) -> _Prepared:
    # ``icc_profile`` would otherwise be copied from ``image.info``. optimize=True costs
    # several times the CPU for a few percent.
    return image, {"compress_level": 6, "optimize": False, "icc_profile": None}


def _webp(image: Image.Image, quality: int) -> _Prepared:
    # method 4 (of 0-6): about half the CPU of 6 for a slightly larger file.
    return _colour(image), {"quality": quality, "method": 4}


def _avif(image: Image.Image, quality: int) -> _Prepared:
    # speed 6 (of 0-10) is libavif's default balance; lower speeds cost minutes on big images.
    return _colour(image), {"quality": quality, "speed": 6, "icc_profile": None}


def _colour(image: Image.Image) -> Image.Image:
    """RGB or RGBA, for encoders that take no grayscale input."""
    if image.mode == "L":
        return image.convert("RGB")
    if image.mode == "LA":
        return image.convert("RGBA")
    return image


def _bmp(image: Image.Image, quality: int) -> _Prepared:
    return flatten(image), {}


def _gif(image: Image.Image, quality: int) -> _Prepared:
    if "A" not in image.getbands():
        paletted = image.copy() if image.mode == "L" else image.quantize(colors=256)
        paletted.info = {}  # ours: drop any comment or transparency copied from the source
        return paletted, {}
    paletted = image.convert("RGB").quantize(colors=_GIF_TRANSPARENT_INDEX)
    paletted.info = {}
    see_through = image.getchannel("A").point(
        lambda alpha: 255 if alpha < _GIF_ALPHA_THRESHOLD else 0, mode="1"
    )
    paletted.paste(_GIF_TRANSPARENT_INDEX, mask=see_through)
    return paletted, {"transparency": _GIF_TRANSPARENT_INDEX}


_PREPARERS: dict[str, Callable[[Image.Image, int], _Prepared]] = {
    "JPEG": _jpeg,
    "PNG": _png,
    "WEBP": _webp,
    "GIF": _gif,
    "BMP": _bmp,
    "AVIF": _avif,
}

"""Encode an image to the bytes of an output format.

Outputs are sRGB (``decode`` converts) and carry no metadata: no ICC profile, no
comments, and no EXIF but the block the caller passes (kept copyright/artist fields).
Formats without alpha (``FormatSpec.alpha``: JPEG, BMP) are flattened onto a background,
white unless the variant says otherwise, never black. Encoder settings favour Lambda CPU
time where size or quality barely differ.

``Image.save`` records its options on the image object, so never encode one ``Image``
from two threads at once (``render_variant`` always encodes an image of its own).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageColor

from prism.config import DEFAULT_BACKGROUND
from prism.errors import PermanentError, Reason
from prism.imaging.colour import normalize_mode
from prism.output_formats import FORMATS, canonical_name

# A preparer turns a working-mode image into one the format can store, plus save options,
# from the variant's quality and encoder effort.
_Prepared = tuple[Image.Image, dict[str, Any]]
_Preparer = Callable[[Image.Image, int, int], _Prepared]

# GIF: 255 palette colours from the image, index 255 kept for "transparent".
_GIF_TRANSPARENT_INDEX = 255
# Alpha below this becomes fully transparent in a GIF (it has no partial transparency).
_GIF_ALPHA_THRESHOLD = 128


def encode(
    image: Image.Image,
    format: str,
    quality: int,
    *,
    background: str = DEFAULT_BACKGROUND,
    exif: bytes | None = None,
    effort: int | None = None,
) -> bytes:
    """The bytes of ``image`` encoded as ``format``, a name (or alias) in ``FORMATS``.

    ``quality`` (1-100) applies to JPEG, WEBP and AVIF, ``effort`` to WEBP and AVIF
    (``prism.config.Variant.effort``; None: the format's default). Transparency is
    flattened onto ``background`` for formats without alpha. ``exif`` is written where
    the format takes it. Raises ``PermanentError(Reason.ENCODE_FAILED)`` if the image
    cannot be encoded.
    """
    spec = FORMATS.get(canonical_name(format))
    if spec is None:
        raise PermanentError(Reason.ENCODE_FAILED, f"unknown output format {format!r}")
    buffer = io.BytesIO()
    try:
        working = normalize_mode(image)
        if not spec.alpha:
            working = flatten(working, background)
        preparer = _PREPARERS.get(spec.name, _as_is)
        prepared, options = preparer(working, quality, resolved_effort(spec.name, effort))
        if exif is not None and spec.exif:
            options["exif"] = exif
        prepared.save(buffer, spec.name, **options)
    except MemoryError:
        raise
    except Exception as exc:
        raise PermanentError(
            Reason.ENCODE_FAILED,
            f"{spec.name} from mode {image.mode}: {type(exc).__name__}: {exc}",
        ) from exc
    return buffer.getvalue()


def flatten(image: Image.Image, background: str = DEFAULT_BACKGROUND) -> Image.Image:
    """``image`` without alpha (RGB, or L on a gray background), composited onto
    ``background`` (any Pillow colour; an alpha part of it is ignored)."""
    if "A" not in image.getbands():
        return image
    colour = ImageColor.getrgb(background)[:3]
    if image.mode == "LA" and len(set(colour)) == 1:
        base = Image.new("L", image.size, colour[0])
    else:
        base = Image.new("RGB", image.size, colour)
    layer = image if image.mode == base.mode + "A" else image.convert(base.mode + "A")
    base.paste(layer, mask=image.getchannel("A"))
    return base


def resolved_effort(format: str, effort: int | None) -> int:
    """``effort`` for an output in ``format``, or the format's default (0 if it has none)."""
    spec = FORMATS[format].effort
    if effort is not None:
        return effort
    return spec.default if spec is not None else 0


def webp_method(effort: int) -> int:
    """libwebp's ``method`` (0-6) for an effort: the same number. At 4, the default, it
    costs about half the CPU of 6 for a slightly larger file; 2 about half that again."""
    return effort


def _jpeg(image: Image.Image, quality: int, effort: int) -> _Prepared:
    # ``comment`` would otherwise be copied from ``image.info``; EXIF and ICC are only
    # written when passed.
    return image, {"quality": quality, "optimize": True, "comment": ""}


def _png(image: Image.Image, quality: int, effort: int) -> _Prepared:
    # ``icc_profile`` would otherwise be copied from ``image.info``. optimize=True costs
    # several times the CPU for a few percent.
    return image, {"compress_level": 6, "optimize": False, "icc_profile": None}


def _webp(image: Image.Image, quality: int, effort: int) -> _Prepared:
    return expand_gray(image), {"quality": quality, "method": webp_method(effort)}


def _avif(image: Image.Image, quality: int, effort: int) -> _Prepared:
    # Effort 4 is speed 6 (of 0-10), libavif's default balance; lower speeds cost
    # minutes on big images.
    options = {"quality": quality, "speed": 10 - effort, "icc_profile": None}
    return expand_gray(image), options


def _as_is(image: Image.Image, quality: int, effort: int) -> _Prepared:
    """For writers that take no options and copy nothing from ``image.info`` (BMP)."""
    return image, {}


def expand_gray(image: Image.Image) -> Image.Image:
    """RGB or RGBA (L and LA expanded), for encoders that take no grayscale input."""
    if image.mode in ("L", "LA"):
        return image.convert("RGBA" if image.mode == "LA" else "RGB")
    return image


def _gif(image: Image.Image, quality: int, effort: int) -> _Prepared:
    paletted = gif_frame(image)
    options = {"transparency": paletted.info["transparency"]} if paletted.info else {}
    return paletted, options


def gif_frame(image: Image.Image, *, fast: bool = False) -> Image.Image:
    """A working-mode image as GIF stores it: paletted (L as it is), with the palette
    index for "transparent" in ``info["transparency"]`` if it has alpha.

    ``fast`` picks the octree quantizer: about 8x faster than median cut, slightly
    coarser palettes; for animations, whose every frame is quantized.
    """
    method = Image.Quantize.FASTOCTREE if fast else Image.Quantize.MEDIANCUT
    if "A" in image.getbands() and lowest_alpha(image) >= _GIF_ALPHA_THRESHOLD:
        # Nothing would be see-through in a GIF (an opaque RGBA frame): no alpha needed.
        image = image.convert("L" if image.mode == "LA" else "RGB")
    if image.mode == "L":
        paletted = image.copy()
        paletted.info = {}
        return paletted
    if "A" not in image.getbands():
        paletted = image.quantize(colors=256, method=method)
        paletted.info = {}  # ours: drop any comment or transparency copied from the source
        return paletted
    paletted = image.convert("RGB").quantize(colors=_GIF_TRANSPARENT_INDEX, method=method)
    see_through = image.getchannel("A").point(
        lambda alpha: 255 if alpha < _GIF_ALPHA_THRESHOLD else 0, mode="1"
    )
    paletted.paste(_GIF_TRANSPARENT_INDEX, mask=see_through)
    paletted.info = {"transparency": _GIF_TRANSPARENT_INDEX}
    return paletted


def lowest_alpha(image: Image.Image) -> int:
    """The lowest alpha value in ``image``; 255 (opaque) if it has no alpha band."""
    if "A" not in image.getbands():
        return 255
    lowest = image.getchannel("A").getextrema()[0]
    return int(lowest) if isinstance(lowest, int | float) else 0  # one band: a number


# By ``FormatSpec.name``; formats not listed are saved ``_as_is``.
_PREPARERS: dict[str, _Preparer] = {
    "JPEG": _jpeg,
    "PNG": _png,
    "WEBP": _webp,
    "GIF": _gif,
    "AVIF": _avif,
}

"""Identify an upload from its bytes alone: format, size, mode and frame count.

Only the header is read; no pixels are decoded. Detection is Pillow's own content sniffing,
restricted to ``ALLOWED_FORMATS`` so that no other decoder (EPS, PDF, exotic plugins) is ever
reachable from an upload. The file name and extension play no part.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import (
    AvifImagePlugin,
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from prism.errors import PermanentError, Reason

# Importing the plugins registers exactly these readers with Pillow, nothing else.
_PLUGINS = (
    JpegImagePlugin,
    PngImagePlugin,
    GifImagePlugin,
    WebPImagePlugin,
    BmpImagePlugin,
    AvifImagePlugin,
    TiffImagePlugin,
)

# Raster formats accepted from uploads. TIFF is the one extra: a mainstream photo/scan
# interchange format with a core Pillow reader. Never EPS/PS/PDF (they run Ghostscript).
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF", "TIFF")

# How many leading bytes ``sniff_format`` needs: what ``Image.open`` itself reads.
SNIFF_BYTES = 16

# Multi-picture JPEGs (phone photos with a depth map or preview) open as MPO; the primary
# picture is an ordinary JPEG and the extra pictures are not animation frames.
_FORMAT_ALIASES = {"MPO": "JPEG"}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str
    frames: int


def sniff_format(prefix: bytes) -> str | None:
    """The allowed format whose signature ``prefix`` (the first bytes of a file) carries.

    A cheap pre-filter that uses the plugins' own signature checks; a match does not
    promise that the rest of the file is readable.
    """
    head = prefix[:SNIFF_BYTES]
    for name in ALLOWED_FORMATS:
        _factory, accept = Image.OPEN[name]
        # A string result means "recognised, but this Pillow cannot read it".
        if accept is not None and accept(head) is True:
            return name
    return None


def probe(data: bytes) -> ImageInfo:
    """Format, size, mode and frame count of an image, from its header.

    Raises ``PermanentError`` with EMPTY_FILE, UNSUPPORTED_FORMAT, CORRUPT or
    DECOMPRESSION_BOMB.
    """
    image = open_image(data)
    try:
        frames = 1 if image.format == "MPO" else int(getattr(image, "n_frames", 1))
    except MemoryError:
        raise
    except Exception as exc:
        raise as_permanent_error(exc) from exc
    return ImageInfo(
        format=_FORMAT_ALIASES.get(image.format or "", image.format or "unknown"),
        width=image.width,
        height=image.height,
        mode=image.mode,
        frames=frames,
    )


def open_image(data: bytes) -> ImageFile.ImageFile:
    """``Image.open`` restricted to ``ALLOWED_FORMATS``, with errors as ``PermanentError``.

    Lazy: only the header is parsed. Pillow refuses sizes above twice
    ``Image.MAX_IMAGE_PIXELS`` here, before any pixel memory is allocated.
    """
    if not data:
        raise PermanentError(Reason.EMPTY_FILE, "the file is empty")
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError as exc:
        recognised = sniff_format(data[:SNIFF_BYTES])
        if recognised is None:
            allowed = ", ".join(ALLOWED_FORMATS)
            raise PermanentError(
                Reason.UNSUPPORTED_FORMAT, f"not an image in a supported format ({allowed})"
            ) from exc
        raise PermanentError(
            Reason.CORRUPT, f"has a {recognised} signature but an unreadable header"
        ) from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise as_permanent_error(exc) from exc


def as_permanent_error(exc: Exception) -> PermanentError:
    """Classify an exception raised while reading or decoding an upload.

    Decoding bytes already in memory is deterministic, so every failure is permanent;
    only the reason differs.
    """
    if isinstance(exc, PermanentError):
        return exc
    message = str(exc)
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return PermanentError(Reason.DECOMPRESSION_BOMB, message)
    if "MAX_TEXT_" in message:  # PNG text chunks that inflate past Pillow's limits
        return PermanentError(Reason.DECOMPRESSION_BOMB, message)
    if isinstance(exc, EOFError) or "truncated" in message.lower():
        return PermanentError(Reason.TRUNCATED, message or "unexpected end of file")
    return PermanentError(Reason.CORRUPT, f"{type(exc).__name__}: {message}")

"""Identify an upload from its bytes alone: format, size, mode and frame count.

Only the header is read; no pixels are decoded. ``probe_header`` works on the first bytes
of an object (a ranged GET), so a worker can refuse an oversized upload before it
downloads it. The limits are checked against the header's numbers in ``admission``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from prism.errors import PermanentError, Reason
from prism.imaging.formats import ALLOWED_FORMATS, SNIFF_BYTES, sniff_format

# Multi-picture JPEGs (phone photos with a depth map or preview) open as MPO; the primary
# picture is an ordinary JPEG and the extra pictures are not animation frames.
_FORMAT_ALIASES = {"MPO": "JPEG"}
# Likewise, pillow-heif counts the top-level images of a HEIF collection (bursts), not
# frames of an animation.
_NOT_ANIMATION = frozenset({"MPO", "HEIF"})
# Formats whose frame count is in the header proper (APNG's acTL chunk), so a prefix
# tells it exactly. A GIF must be read to its end to count frames.
_FRAMES_IN_HEADER = frozenset({"JPEG", "MPO", "PNG", "BMP"})

_ceiling_lock = threading.Lock()


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str
    frames: int
    # False when ``frames`` is a lower bound: from a prefix of a GIF or TIFF, or from a
    # decode for stills only (frames not counted).
    frames_exact: bool = True

    @property
    def pixels(self) -> int:
        return self.width * self.height


def probe(data: bytes, *, max_pixels: int | None = None) -> ImageInfo:
    """Format, size, mode and frame count of a whole file, from its header.

    ``max_pixels`` (the pipeline's limit) lifts Pillow's bomb ceiling where it is lower;
    it is not checked here (see ``admission``). Raises ``PermanentError`` with
    EMPTY_FILE, UNSUPPORTED_FORMAT, CORRUPT or DECOMPRESSION_BOMB.
    """
    image = open_image(data, max_pixels=max_pixels)
    with permanent_errors():
        frames = frame_count(image)
    return describe(image, frames, exact=True)


def probe_header(
    prefix: bytes, *, complete: bool = False, max_pixels: int | None = None
) -> ImageInfo | None:
    """What ``probe`` says, from the first bytes of a file (e.g. a 64 KiB ranged GET).

    Returns None when the prefix is too short to tell: the caller then reads the whole
    file. That is always the case for WebP and AVIF (Pillow parses them whole), and for
    JPEGs whose metadata fills the prefix. ``complete=True`` means ``prefix`` is the
    whole file, which makes this exactly ``probe``. Raises ``PermanentError`` with
    UNSUPPORTED_FORMAT (no allowed signature) or DECOMPRESSION_BOMB (declared size).
    """
    if complete:
        return probe(prefix, max_pixels=max_pixels)
    if sniff_format(prefix[:SNIFF_BYTES]) is None:
        if len(prefix) < SNIFF_BYTES:
            return None
        raise _unsupported()
    _allow_pixels(max_pixels)
    try:
        # (TIFF may warn "Truncated File Read" here; ``warnings.catch_warnings`` would
        # silence it, but is not thread-safe.)
        image = Image.open(io.BytesIO(prefix), formats=ALLOWED_FORMATS)
        exact = image.format in _FRAMES_IN_HEADER
        try:
            frames = frame_count(image)
        except Exception:  # the prefix ends inside a frame table
            frames, exact = 1, False
    except Image.DecompressionBombError as exc:
        raise as_permanent_error(exc) from exc
    except MemoryError:
        raise
    except Exception:
        return None
    return describe(image, frames, exact=exact)


def frame_count(image: Image.Image) -> int:
    """Animation frames as Pillow counts them from the headers, without decoding any."""
    if image.format in _NOT_ANIMATION:
        return 1
    return int(getattr(image, "n_frames", 1))


def describe(image: Image.Image, frames: int, *, exact: bool = True) -> ImageInfo:
    """The ``ImageInfo`` of an opened image (MPO reported as the JPEG it is)."""
    return ImageInfo(
        format=_FORMAT_ALIASES.get(image.format or "", image.format or "unknown"),
        width=image.width,
        height=image.height,
        mode=image.mode,
        frames=frames,
        frames_exact=exact,
    )


def open_image(data: bytes, *, max_pixels: int | None = None) -> ImageFile.ImageFile:
    """``Image.open`` restricted to ``ALLOWED_FORMATS``, with errors as ``PermanentError``.

    Lazy: only the header is parsed. Pillow refuses sizes above twice
    ``Image.MAX_IMAGE_PIXELS`` here, before any pixel memory is allocated.
    """
    if not data:
        raise PermanentError(Reason.EMPTY_FILE, "the file is empty")
    _allow_pixels(max_pixels)
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except MemoryError:
        raise
    except Exception as exc:
        if isinstance(exc, Image.DecompressionBombError):
            raise as_permanent_error(exc) from exc
        recognised = sniff_format(data[:SNIFF_BYTES])
        if recognised is None:
            # Not one of ours, however a reader choked on it ("BM" text, HEIF without
            # the optional reader): skipped, not failed.
            raise _unsupported() from exc
        if isinstance(exc, UnidentifiedImageError):
            raise PermanentError(
                Reason.CORRUPT, f"has a {recognised} signature but an unreadable header"
            ) from exc
        raise as_permanent_error(exc) from exc


def _unsupported() -> PermanentError:
    allowed = ", ".join(ALLOWED_FORMATS)
    return PermanentError(
        Reason.UNSUPPORTED_FORMAT, f"not an image in a supported format ({allowed})"
    )


def _allow_pixels(max_pixels: int | None) -> None:
    """Make sure Pillow's decompression-bomb ceiling is not below ``max_pixels``.

    Pillow refuses images above 2 x ``Image.MAX_IMAGE_PIXELS`` (179 MP by default), which
    would silently cap a pipeline configured for more. The process-wide setting is only
    ever raised, under a lock, so no concurrent decode sees a lower ceiling than it
    needs; the configured limit is then the one that applies (``admission``), and
    anything above twice it is still refused by Pillow as a bomb.
    """
    if max_pixels is None:
        return
    with _ceiling_lock:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and current < max_pixels:
            Image.MAX_IMAGE_PIXELS = max_pixels


@contextmanager
def permanent_errors() -> Iterator[None]:
    """Raise what the block raises as a ``PermanentError`` (see ``as_permanent_error``);
    ``MemoryError`` passes as it is: running out is not the file's fault alone."""
    try:
        yield
    except (MemoryError, PermanentError):
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

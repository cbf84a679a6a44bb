"""A still WebP decoded by libwebp straight into the memory of the picture made from it.

Pillow reads every WebP through libwebp's animation decoder, which keeps two canvases of
the full size and hands the frame over as a copy that is then copied into the image:
about 4x the decoded size at its peak (bench/memory.py), 1.6 GB for a 100 MP upload. A
still needs none of that: ``WebPDecodeRGBAInto`` writes the pixels into one buffer, and
the image returned shares it (``Image.frombuffer``), so a lossy still peaks at about its
decoded size (a lossless one at about twice: libwebp's lossless decoder keeps its own
full-size copy while it decodes).

The libwebp called is the one Pillow's WebP module is linked against, found through that
module, so that both always read a file the same way. Without it (a Pillow built
otherwise) the caller decodes with Pillow, as it does for animations.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterator

from PIL import Image


def decode_still(data: bytes, image: Image.Image) -> Image.Image | None:
    """The picture of ``image``, a still WebP opened (not loaded) from ``data``, in mode
    RGBA if Pillow reads it with alpha, else RGBX, with ``image``'s ``info``.

    None when libwebp is not reachable or declines the file (an animation, a corrupt or
    truncated file): the caller then loads ``image`` with Pillow, which says why it fails.
    The result is read-only; operations on it make new images.
    """
    decode_into = _decode_rgba_into()
    if decode_into is None or not decodes_in_place(data, image):
        return None
    width, height = image.size
    stride = width * 4
    pixels = bytearray(stride * height)
    target = (ctypes.c_uint8 * len(pixels)).from_buffer(pixels)
    # ctypes releases the GIL for the call: other threads go on while libwebp decodes.
    written = decode_into(data, len(data), target, len(pixels), stride)
    del target  # the export that would keep ``pixels`` from being shared or freed
    if not written:
        return None
    mode = "RGBA" if image.mode == "RGBA" else "RGBX"
    decoded = Image.frombuffer(mode, (width, height), pixels, "raw", mode, 0, 1)
    decoded.info = dict(image.info)  # profile, EXIF (orientation) and XMP, read at open
    return decoded


def decodes_in_place(data: bytes, image: Image.Image) -> bool:
    """Whether ``decode_still`` decodes ``image`` (a WebP opened from ``data``) itself, unless
    the file turns out corrupt: libwebp is reachable and the file is a still."""
    return can_decode_still() and isinstance(data, bytes) and getattr(image, "n_frames", 1) == 1


# Peak imaging memory per byte of the decoded RGBA picture (bench/memory.py, 20-100 MP):
# libwebp's lossless decoder, and its decoder of a lossy file's (losslessly stored) alpha
# plane, keep working copies of their own next to the buffer; Pillow's reader (animations,
# or without libwebp) keeps two canvases and copies the frame twice.
LOSSY_FACTOR = 1.3
LOSSY_ALPHA_FACTOR = 1.8
LOSSLESS_FACTOR = 2.2
PILLOW_READER_FACTOR = 4.1


def footprint_factor(data: bytes, image: Image.Image) -> float:
    """``*_FACTOR`` for decoding ``image``, a WebP opened from ``data``: by who decodes it
    and, for a still, by the chunks of its RIFF container."""
    if not decodes_in_place(data, image):
        return PILLOW_READER_FACTOR
    chunks = set(_chunk_names(data))
    if b"VP8L" in chunks:
        return LOSSLESS_FACTOR
    return LOSSY_ALPHA_FACTOR if b"ALPH" in chunks else LOSSY_FACTOR


def _chunk_names(data: bytes) -> Iterator[bytes]:
    offset = 12  # after "RIFF", the file size and "WEBP"
    while offset + 8 <= len(data):
        yield data[offset : offset + 4]
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        offset += 8 + size + (size & 1)


def can_decode_still() -> bool:
    """Whether ``decode_still`` can reach libwebp (else it always returns None)."""
    return _decode_rgba_into() is not None


@functools.cache
def _decode_rgba_into() -> Callable[..., int | None] | None:
    """libwebp's ``WebPDecodeRGBAInto`` (the output pointer, or None on failure)."""
    try:
        from PIL import _webp

        # dlsym on the module's handle searches the libraries it was linked against.
        function = ctypes.CDLL(_webp.__file__).WebPDecodeRGBAInto
    except (ImportError, OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_uint8),
        ctypes.c_size_t,
        ctypes.c_int,
    ]
    function.restype = ctypes.c_void_p
    decode_into: Callable[..., int | None] = function
    return decode_into

"""Images made in the tests: small, deterministic, and in every shape the pipeline meets."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageCms

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

# Every mode the decoder may meet in an upload, and each output format.
INPUT_MODES = ("RGB", "RGBA", "L", "LA", "P", "1", "I;16", "CMYK")
OUTPUT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF")


def to_bytes(image: Image.Image, format: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **params)
    return buffer.getvalue()


def open_bytes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Pixels that do not compress to nothing (a realistic encode workload)."""
    return Image.effect_noise(size, 64).convert(mode)


def corners(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """White RGB image with a 4x4 red block in the top-left corner (to track rotations)."""
    image = Image.new("RGB", size, WHITE)
    image.paste(RED, (0, 0, 4, 4))
    return image


def half_transparent(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """RGBA: opaque red on the left half, fully transparent *black* on the right half."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste((*RED, 255), (0, 0, size[0] // 2, size[1]))
    return image


def in_mode(mode: str, size: tuple[int, int] = (40, 20)) -> Image.Image:
    """An image in ``mode`` with some structure, transparent on the right half if it can be."""
    base = half_transparent(size)
    if mode == "RGBA":
        return base
    if mode == "LA":
        return base.convert("LA")
    if mode == "P":
        paletted = Image.new("P", size, 0)
        paletted.putpalette([*RED, 0, 0, 0])
        paletted.paste(1, (size[0] // 2, 0, size[0], size[1]))
        paletted.info["transparency"] = 1
        return paletted
    if mode == "I;16":
        wide = Image.new("I;16", size, 0)
        wide.paste(65535, (0, 0, size[0] // 2, size[1]))
        return wide
    return base.convert("RGB").convert(mode)


def with_orientation(image: Image.Image, orientation: int, **params: Any) -> bytes:
    """``image`` as a JPEG whose EXIF says how to turn it upright."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return to_bytes(image, "JPEG", exif=exif.tobytes(), quality=95, **params)


def png_declaring(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR is rewritten to declare ``width`` x ``height``.

    The header is all a reader sees before it allocates; the pixel data stays 1 byte.
    """
    data = bytearray(to_bytes(Image.new("L", (1, 1)), "PNG"))
    # Signature (8), chunk length (4), b"IHDR" (4), then width and height.
    assert data[12:16] == b"IHDR"
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def animated_gif(frames: int = 3, size: tuple[int, int] = (20, 10)) -> bytes:
    colours = [RED, GREEN, BLUE, WHITE]
    images = [Image.new("RGB", size, colours[i % len(colours)]) for i in range(frames)]
    return to_bytes(images[0], "GIF", save_all=True, append_images=images[1:], duration=50)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def swapped_primaries_profile() -> bytes:
    """An RGB ICC profile whose red and blue primaries are swapped (named accordingly).

    Pure red tagged with it *means* sRGB blue: only a decoder that honours the profile
    turns it into (0, 0, 255).
    """
    data = bytearray(srgb_profile())
    (count,) = struct.unpack_from(">I", data, 128)
    entries = {bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    data[red + 4 : red + 12], data[blue + 4 : blue + 12] = (
        data[blue + 4 : blue + 12],
        data[red + 4 : red + 12],
    )
    # A new description, or the decoder would take it for sRGB and skip the conversion.
    text = "Swapped primaries".encode("utf-16-be")
    desc = b"mluc" + bytes(4) + struct.pack(">II", 1, 12) + b"enUS"
    desc += struct.pack(">II", len(text), 28) + text
    data += bytes(-len(data) % 4)
    struct.pack_into(">II", data, entries[b"desc"] + 4, len(data), len(desc))
    data += desc
    struct.pack_into(">I", data, 0, len(data))
    data[84:100] = bytes(16)  # profile ID (an MD5) no longer matches: mark it unset
    return bytes(data)

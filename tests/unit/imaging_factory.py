"""Images made in the tests: small, deterministic, and in every shape the pipeline meets."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageCms

from prism.output_formats import FORMATS

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

# Every mode the decoder may meet in an upload, and each output format.
INPUT_MODES = ("RGB", "RGBA", "L", "LA", "P", "1", "I;16", "CMYK")
OUTPUT_FORMATS = tuple(FORMATS)


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


# --- orientation ---------------------------------------------------------------------
YELLOW = (255, 255, 0)
# The colour of each quadrant of ``quadrants()``, as seen upright.
QUADRANT_COLOURS = {
    "top-left": RED,
    "top-right": GREEN,
    "bottom-left": BLUE,
    "bottom-right": YELLOW,
}

# How to store an upright picture so that EXIF orientation ``n`` turns it upright again:
# the inverse of what the tag asks a viewer to do (EXIF 2.32, tag 0x0112). Written out
# here rather than borrowed from Pillow, so the tests do not check Pillow against itself.
_STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,  # viewer mirrors: store mirrored
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,  # viewer transposes: its own inverse
    6: Image.Transpose.ROTATE_90,  # viewer turns 90 clockwise: store turned counter-clockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,  # viewer turns counter-clockwise: store turned clockwise
}


def quadrants(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Upright RGB picture with four differently coloured quadrants (see QUADRANT_COLOURS)."""
    width, height = size
    image = Image.new("RGB", size)
    image.paste(RED, (0, 0, width // 2, height // 2))
    image.paste(GREEN, (width // 2, 0, width, height // 2))
    image.paste(BLUE, (0, height // 2, width // 2, height))
    image.paste(YELLOW, (width // 2, height // 2, width, height))
    return image


def stored_for_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera stores for ``upright`` when it tags them with ``orientation``."""
    method = _STORE_FOR_ORIENTATION[orientation]
    return upright.copy() if method is None else upright.transpose(method)


def oriented(upright: Image.Image, orientation: int, format: str = "JPEG") -> bytes:
    """``upright`` stored sideways/mirrored as ``format`` with an EXIF orientation tag."""
    stored = stored_for_orientation(upright, orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, Any] = {"exif": exif.tobytes()}
    if format in ("JPEG", "WEBP", "AVIF"):
        params["quality"] = 95
    return to_bytes(stored, format, **params)


def quadrant_colours(image: Image.Image) -> dict[str, tuple[int, int, int]]:
    """The colour at the centre of each quadrant of ``image`` (as RGB)."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    points = {
        "top-left": (width // 4, height // 4),
        "top-right": (3 * width // 4, height // 4),
        "bottom-left": (width // 4, 3 * height // 4),
        "bottom-right": (3 * width // 4, 3 * height // 4),
    }
    colours = {}
    for name, point in points.items():
        pixel = rgb.getpixel(point)
        assert isinstance(pixel, tuple)
        colours[name] = (pixel[0], pixel[1], pixel[2])
    return colours


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# --- ICC profiles ---------------------------------------------------------------------
def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _text_description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    # ICC v2 textDescriptionType: ASCII, then empty Unicode and ScriptCode parts.
    return (
        b"desc"
        + bytes(4)
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + struct.pack(">II", 0, 0)
        + struct.pack(">HB", 0, 0)
        + bytes(67)
    )


_D50 = (0.9642, 1.0, 0.8249)


def icc_profile(
    device_class: bytes, colour_space: bytes, pcs: bytes, tags: dict[bytes, bytes]
) -> bytes:
    """A minimal ICC v2.1 profile with ``tags`` (signature -> tag data)."""
    table = struct.pack(">I", len(tags))
    data = b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, body in tags.items():
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body + bytes(-len(body) % 4)
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + bytes(4)  # preferred CMM
        + struct.pack(">I", 0x02100000)
        + device_class
        + colour_space
        + pcs
        + bytes(12)  # date
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8)  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + b"".join(_s15(v) for v in _D50)
        + bytes(4 + 16 + 28)  # creator, profile ID, reserved
    )
    assert len(header) == 128
    return header + table + data


def rgb_profile(
    description: str,
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
    gamma: float = 2.2,
) -> bytes:
    """A matrix/TRC RGB display profile from D50-adapted primaries and a plain gamma."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))
    return icc_profile(
        b"mntr",
        b"RGB ",
        b"XYZ ",
        {
            b"desc": _text_description(description),
            b"wtpt": _xyz(*_D50),
            b"rXYZ": _xyz(*red),
            b"gXYZ": _xyz(*green),
            b"bXYZ": _xyz(*blue),
            b"rTRC": curve,
            b"gTRC": curve,
            b"bTRC": curve,
        },
    )


def display_p3_profile() -> bytes:
    # Display P3 primaries, D50-adapted (as in Apple's profile); gamma 2.2 stands in for
    # its sRGB-like curve.
    return rgb_profile(
        "Display P3 (test)",
        (0.51512, 0.24120, -0.00105),
        (0.29198, 0.69225, 0.04189),
        (0.15710, 0.06657, 0.78407),
    )


def adobe_rgb_profile() -> bytes:
    return rgb_profile(
        "Adobe RGB (1998) (test)",
        (0.60974, 0.31111, 0.01947),
        (0.20528, 0.62567, 0.06087),
        (0.14919, 0.06322, 0.74457),
        gamma=563 / 256,
    )


def cmyk_profile(description: str = "CMYK (test)", swap_red_blue: bool = False) -> bytes:
    """A CMYK printer profile (lut16 A2B0 into Lab) with a 2-point grid per ink.

    Each corner of the CMYK cube maps to the Lab of the naive RGB of those inks
    (R = (1 - C)(1 - K), ...). ``swap_red_blue`` makes red ink *mean* blue, so a decoder
    that ignores the profile is caught.
    """
    corners_rgb = []
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    rgb = [round(255 * (1 - ink) * (1 - k)) for ink in (c, m, y)]
                    if swap_red_blue:
                        rgb.reverse()
                    corners_rgb.append(tuple(rgb))
    strip = Image.new("RGB", (len(corners_rgb), 1))
    for index, colour in enumerate(corners_rgb):
        strip.putpixel((index, 0), colour)
    lab = ImageCms.profileToProfile(
        strip, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), outputMode="LAB"
    )
    assert lab is not None
    clut = b""
    for index in range(len(corners_rgb)):
        lightness, a, b = lab.getpixel((index, 0))  # type: ignore[misc]
        # ICC v2 16-bit Lab: L 0..100 -> 0..0xFF00; a, b -128..127 -> 0..0xFF00 (+128).
        clut += struct.pack(">HHH", round(lightness / 255 * 0xFF00), a * 256, b * 256)
    identity = struct.pack(">HH", 0, 0xFFFF)
    lut = (
        b"mft2"
        + bytes(4)
        + struct.pack(">BBBB", 4, 3, 2, 0)
        + b"".join(_s15(1.0 if row == col else 0.0) for row in range(3) for col in range(3))
        + struct.pack(">HH", 2, 2)
        + identity * 4
        + clut
        + identity * 3
    )
    return icc_profile(
        b"prtr",
        b"CMYK",
        b"Lab ",
        {b"desc": _text_description(description), b"wtpt": _xyz(*_D50), b"A2B0": lut},
    )


def in_profile(colour: tuple[int, int, int], profile: bytes) -> tuple[int, int, int]:
    """The RGB values that mean sRGB ``colour`` in an RGB ``profile``."""
    pixel = Image.new("RGB", (1, 1), colour)
    converted = ImageCms.profileToProfile(
        pixel,
        ImageCms.createProfile("sRGB"),
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        outputMode="RGB",
    )
    assert converted is not None
    value = converted.getpixel((0, 0))
    assert isinstance(value, tuple)
    return (value[0], value[1], value[2])


# --- CMYK and YCCK JPEGs --------------------------------------------------------------
def cmyk_jpeg(inks: list[tuple[int, int, int, int]], profile: bytes | None = None) -> bytes:
    """Adobe-style CMYK JPEG (Pillow writes inverted values and an Adobe APP14 marker),
    one 8x8 block per ink combination, left to right."""
    image = Image.new("CMYK", (8 * len(inks), 8))
    for index, ink in enumerate(inks):
        image.paste(ink, (8 * index, 0, 8 * index + 8, 8))
    params: dict[str, Any] = {"quality": 100}
    if profile is not None:
        params["icc_profile"] = profile
    return to_bytes(image, "JPEG", **params)


def ycck_jpeg(inks: list[tuple[int, int, int, int]]) -> bytes:
    """A YCCK JPEG (Adobe transform 2), as Photoshop writes CMYK, for ``inks``.

    libjpeg turns YCCK back into (Adobe-inverted) CMYK: the YCC channels carry the
    inverted CMY as if it were RGB, K is stored inverted. Pillow writes CMYK inverted, so
    the pixels handed to it are inverted once more; then the APP14 transform flag is set.
    """
    pixels = []
    for c, m, y, k in inks:
        luma = 0.299 * c + 0.587 * m + 0.114 * y
        blue = -0.168736 * c - 0.331264 * m + 0.5 * y + 128
        red = 0.5 * c - 0.418688 * m - 0.081312 * y + 128
        pixels.append((round(255 - luma), round(255 - blue), round(255 - red), k))
    data = bytearray(cmyk_jpeg(pixels))
    marker = data.index(b"Adobe")
    assert data[marker + 11] == 0  # transform: 0 = CMYK as is
    data[marker + 11] = 2
    return bytes(data)


# --- 16-bit PNGs ----------------------------------------------------------------------
_PNG_COLOUR_TYPES = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}


def png16(mode: str, rows: list[list[tuple[int, ...]]]) -> bytes:
    """A 16-bit-per-sample PNG (which Pillow cannot write) from rows of sample tuples."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    height, width = len(rows), len(rows[0])
    header = struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOUR_TYPES[mode], 0, 0, 0)
    raw = b"".join(b"\0" + b"".join(struct.pack(f">{len(p)}H", *p) for p in row) for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# --- animations -----------------------------------------------------------------------
def animation_frames(
    count: int, size: tuple[int, int] = (40, 30), alpha: bool = False
) -> list[Image.Image]:
    """Frames that differ: a red square moving right over a solid (or clear) background."""
    frames = []
    for index in range(count):
        background = (0, 0, 0, 0) if alpha else (*WHITE, 255)
        frame = Image.new("RGBA", size, background)
        x = (index * 6) % (size[0] - 8)
        frame.paste((*RED, 255), (x, 4, x + 8, 12))
        frames.append(frame if alpha else frame.convert("RGB"))
    return frames


def animated(
    format: str,
    frames: list[Image.Image],
    durations: list[int] | int = 80,
    loop: int | None = 0,
) -> bytes:
    """An animated GIF, WEBP or PNG (APNG) of ``frames``."""
    params: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "duration": durations}
    if loop is not None:
        params["loop"] = loop
    if format == "WEBP":
        params["lossless"] = True
    if format == "GIF" and frames[0].mode == "RGBA":
        params["disposal"] = 2
    data = to_bytes(frames[0], format, **params)
    if format == "WEBP" and frames[0].mode == "RGBA" and data[12:16] == b"VP8X":
        # libwebp flags a clear canvas under opaque frame rectangles as opaque: set the
        # alpha flag, as the file means it (see prism.imaging.animation).
        data = data[:20] + bytes([data[20] | 0x10]) + data[21:]
    return data


def read_frames(data: bytes) -> list[tuple[Image.Image, int]]:
    """Every frame of an animation, as RGBA, with its duration."""
    image = Image.open(io.BytesIO(data))
    frames = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        frames.append((image.convert("RGBA"), int(image.info.get("duration", 0))))
    return frames

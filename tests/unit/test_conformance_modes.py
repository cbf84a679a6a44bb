"""Conformance: every pixel mode an upload may use gives correct 8-bit outputs.

16-bit samples are *scaled* to 8 bits (65535 -> 255, 32768 -> 128), never clipped.
"""

from __future__ import annotations

import pytest
from imaging_factory import OUTPUT_FORMATS, close, open_bytes, png16, to_bytes
from PIL import Image

from prism.config import Variant
from prism.imaging import decode, decode_source, render_variant

LIMIT = 10**7


def gradient(mode: str, values: list[float]) -> Image.Image:
    image = Image.new(mode, (len(values), 1))
    for x, value in enumerate(values):
        image.putpixel((x, 0), value)
    return image


def grey_levels(data: bytes) -> list[int]:
    image = decode(data, max_pixels=LIMIT)
    return [_grey(image.getpixel((x, 0))) for x in range(image.width)]


def _grey(value: object) -> int:
    if isinstance(value, tuple):
        return int(value[0])
    assert isinstance(value, int)
    return value


@pytest.mark.parametrize("format", ["PNG", "TIFF"])
def test_sixteen_bit_grey_is_scaled(format: str) -> None:
    data = to_bytes(gradient("I;16", [0, 32768, 65535]), format)

    assert grey_levels(data) == [0, 128, 255]


def test_sixteen_bit_grey_png_written_by_hand_is_scaled() -> None:
    assert grey_levels(png16("L", [[(0,), (32768,), (65535,)]])) == [0, 128, 255]


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_sixteen_bit_colour_png_is_scaled(mode: str) -> None:
    alpha = (65535,) if mode == "RGBA" else ()
    data = png16(mode, [[(65535, 32768, 0, *alpha), (0, 0, 65535, *alpha)]])

    image = decode(data, max_pixels=LIMIT)

    assert image.mode == mode
    assert image.getpixel((0, 0))[:3] == (255, 128, 0)  # type: ignore[index]
    assert image.getpixel((1, 0))[:3] == (0, 0, 255)  # type: ignore[index]


def test_sixteen_bit_grey_alpha_png_keeps_half_alpha() -> None:
    image = decode(png16("LA", [[(32768, 32768)]]), max_pixels=LIMIT)

    value = image.getpixel((0, 0))
    assert isinstance(value, tuple)
    assert close((value[0], value[-1]), (128, 128), 1)


def test_32_bit_integer_tiff_is_read_as_16_bit_range() -> None:
    assert grey_levels(to_bytes(gradient("I", [0, 32768, 65535, 70000]), "TIFF")) == [
        0,
        128,
        255,
        255,
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.0, 0.5, 1.0], [0, 127, 255]), ([0.0, 128.0, 255.0], [0, 128, 255])],
    ids=["unit-floats", "byte-range-floats"],
)
def test_float_tiff(values: list[float], expected: list[int]) -> None:
    levels = grey_levels(to_bytes(gradient("F", values), "TIFF"))

    assert all(abs(a - e) <= 1 for a, e in zip(levels, expected, strict=True))


def test_one_bit_is_black_and_white() -> None:
    image = Image.new("1", (2, 1), 0)
    image.putpixel((1, 0), 1)

    assert grey_levels(to_bytes(image, "PNG")) == [0, 255]


MODE_INPUTS = {
    "1-png": lambda: to_bytes(Image.new("1", (8, 8), 1), "PNG"),
    "l-jpeg": lambda: to_bytes(Image.new("L", (8, 8), 200), "JPEG"),
    "la-png": lambda: to_bytes(Image.new("LA", (8, 8), (200, 255)), "PNG"),
    "p-gif": lambda: to_bytes(Image.new("RGB", (8, 8), (200, 10, 10)).quantize(4), "GIF"),
    "i16-png": lambda: to_bytes(Image.new("I;16", (8, 8), 51400), "PNG"),
    "i-tiff": lambda: to_bytes(Image.new("I", (8, 8), 51400), "TIFF"),
    "f-tiff": lambda: to_bytes(Image.new("F", (8, 8), 200.0), "TIFF"),
    "rgb16-png": lambda: png16("RGB", [[(51400, 2570, 2570)] * 8] * 8),
    "rgba16-png": lambda: png16("RGBA", [[(51400, 2570, 2570, 65535)] * 8] * 8),
    "cmyk-jpeg": lambda: to_bytes(Image.new("CMYK", (8, 8), (0, 240, 240, 55)), "JPEG"),
    "cmyk-tiff": lambda: to_bytes(Image.new("CMYK", (8, 8), (0, 240, 240, 55)), "TIFF"),
    "ycbcr-tiff": lambda: to_bytes(
        Image.new("RGB", (8, 8), (200, 10, 10)).convert("YCbCr"), "TIFF"
    ),
}
# What the middle of each comes out as (about 200 of 255 where it is grey).
EXPECTED = {
    "1-png": (255, 255, 255),
    "l-jpeg": (200, 200, 200),
    "la-png": (200, 200, 200),
    "p-gif": (200, 10, 10),
    "i16-png": (200, 200, 200),
    "i-tiff": (200, 200, 200),
    "f-tiff": (200, 200, 200),
    "rgb16-png": (200, 10, 10),
    "rgba16-png": (200, 10, 10),
    "cmyk-jpeg": (200, 15, 15),
    "cmyk-tiff": (200, 15, 15),
    "ycbcr-tiff": (200, 10, 10),
}


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
@pytest.mark.parametrize("name", sorted(MODE_INPUTS))
def test_every_mode_gives_a_correct_8_bit_output(name: str, format: str) -> None:
    variant = Variant(name="v", format=format, quality=95)  # type: ignore[arg-type]
    source = decode_source(MODE_INPUTS[name](), max_pixels=LIMIT, variants=[variant])

    output = open_bytes(render_variant(source, variant, None).data)

    value = output.convert("RGB").getpixel((4, 4))
    assert isinstance(value, tuple)
    assert close(value, EXPECTED[name], 16), value

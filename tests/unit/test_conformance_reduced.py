"""Conformance, decoded reduced: the same inputs as the other suites, rendered to half
their size, so that ``decode_source`` shrinks them *before* it applies the orientation,
the colour profile and the mode conversion (and a JPEG is decoded at a DCT scale).

Bands are made tiny here, so every shrink also runs band by band: each band converted
and premultiplied on its own, then stitched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from imaging_factory import (
    OUTPUT_FORMATS,
    QUADRANT_COLOURS,
    RED,
    WHITE,
    close,
    cmyk_jpeg,
    cmyk_profile,
    display_p3_profile,
    in_profile,
    open_bytes,
    oriented,
    quadrant_colours,
    quadrants,
    to_bytes,
    ycck_jpeg,
)
from PIL import ExifTags, Image
from test_conformance_modes import EXPECTED as MODE_EXPECTED
from test_conformance_modes import MODE_INPUTS
from test_conformance_transparency import TRANSPARENT_INPUTS

from prism.config import Variant
from prism.imaging import decode_source, geometry, render_variant

LIMIT = 10**7
BRICK = (200, 60, 40)
WHITE_INK, RED_INK = (0, 0, 0, 0), (0, 255, 255, 0)


@pytest.fixture(autouse=True)
def tiny_bands(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(geometry, "ONE_PIECE_PIXELS", 16)
    monkeypatch.setattr(geometry, "BAND_PIXELS", 16)
    yield


def render(data: bytes, format: str, box: tuple[int, int], **fields: Any) -> Image.Image:
    variant = Variant.model_validate(
        {
            "name": "v",
            "format": format,
            "quality": 95,
            "transforms": [{"op": "thumbnail", "width": box[0], "height": box[1]}],
            **fields,
        }
    )
    source = decode_source(data, max_pixels=LIMIT, variants=[variant])
    assert source.image.size[0] <= box[0] and source.image.size[1] <= box[1]  # shrunk
    image = open_bytes(render_variant(source, variant, None).data)
    assert "icc_profile" not in image.info
    return image


def rgb_at(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    pixel = image.convert("RGB").getpixel((x, y))
    assert isinstance(pixel, tuple)
    return (pixel[0], pixel[1], pixel[2])


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
@pytest.mark.parametrize("input_format", ["JPEG", "PNG", "WEBP", "TIFF", "AVIF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_after_a_shrink(orientation: int, input_format: str, format: str) -> None:
    data = oriented(quadrants((128, 96)), orientation, input_format)

    image = render(data, format, (64, 64))

    assert image.size == (64, 48)
    assert image.getexif().get(ExifTags.Base.Orientation) is None
    colours = quadrant_colours(image)
    for quadrant, expected in QUADRANT_COLOURS.items():
        assert close(colours[quadrant], expected, 40), (quadrant, colours)


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
@pytest.mark.parametrize("name", sorted(MODE_INPUTS))
def test_every_mode_after_a_shrink(name: str, format: str) -> None:
    image = render(MODE_INPUTS[name](), format, (4, 4))

    assert image.size == (4, 4)
    assert close(rgb_at(image, 2, 2), MODE_EXPECTED[name], 16)


@pytest.mark.parametrize("format", ["PNG", "WEBP", "AVIF", "GIF", "JPEG"])
@pytest.mark.parametrize("name", sorted(TRANSPARENT_INPUTS))
def test_transparency_after_a_shrink(name: str, format: str) -> None:
    image = render(TRANSPARENT_INPUTS[name](), format, (20, 20)).convert("RGBA")

    assert image.size == (20, 10)
    left, right = image.getpixel((2, 5)), image.getpixel((17, 5))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    if format == "JPEG":
        assert close(right, (*WHITE, 255), 6)  # flattened onto white, never black
    else:
        assert left[3] == 255 and right[3] == 0
    if not name.startswith("la"):
        assert close(left[:3], RED, 20)


@pytest.mark.parametrize("input_format", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_profile_converted_after_a_shrink(input_format: str) -> None:
    profile = display_p3_profile()
    stored = Image.new("RGB", (32, 32), in_profile(BRICK, profile))

    image = render(to_bytes(stored, input_format, icc_profile=profile), "PNG", (16, 16))

    assert close(rgb_at(image, 8, 8), BRICK, 4)


def test_palette_with_a_profile_after_a_shrink() -> None:
    profile = display_p3_profile()
    paletted = Image.new("RGB", (32, 32), in_profile(BRICK, profile)).quantize(colors=4)

    image = render(to_bytes(paletted, "PNG", icc_profile=profile), "PNG", (16, 16))

    assert close(rgb_at(image, 8, 8), BRICK, 4)


@pytest.mark.parametrize("profiled", [False, True], ids=["no-profile", "cmyk-profile"])
def test_cmyk_jpeg_after_a_shrink(profiled: bool) -> None:
    data = cmyk_jpeg([WHITE_INK, RED_INK] * 2, cmyk_profile() if profiled else None)

    image = render(data, "PNG", (16, 4))

    assert image.size == (16, 4)
    assert close(rgb_at(image, 2, 2), WHITE, 12)
    assert close(rgb_at(image, 6, 2), RED, 40)


def test_ycck_jpeg_after_a_shrink() -> None:
    image = render(ycck_jpeg([WHITE_INK, RED_INK] * 2), "PNG", (16, 4))

    assert close(rgb_at(image, 2, 2), WHITE, 12)
    assert close(rgb_at(image, 6, 2), RED, 40)

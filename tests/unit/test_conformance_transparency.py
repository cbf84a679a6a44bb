"""Conformance: transparency is kept where the format has it, and flattened onto the
configured background (white by default, never black) where it does not."""

from __future__ import annotations

from typing import Any

import pytest
from imaging_factory import RED, WHITE, close, in_mode, open_bytes, to_bytes

from prism.config import Variant, parse_config
from prism.imaging import decode_source, render_variant

LIMIT = 10**7
KEEPS_ALPHA = ("PNG", "WEBP", "AVIF", "GIF")
FLATTENS = ("JPEG", "BMP")
# Inputs whose right half is transparent (black behind it, where the format stores colour).
TRANSPARENT_INPUTS = {
    "rgba-png": lambda: to_bytes(in_mode("RGBA"), "PNG"),
    "la-png": lambda: to_bytes(in_mode("LA"), "PNG"),
    "palette-trns-png": lambda: to_bytes(in_mode("P"), "PNG"),
    "palette-gif": lambda: to_bytes(in_mode("P"), "GIF"),
    "rgba-webp": lambda: to_bytes(in_mode("RGBA"), "WEBP", lossless=True),
    "rgba-avif": lambda: to_bytes(in_mode("RGBA"), "AVIF", quality=100),
    "rgb-colour-key-png": lambda: to_bytes(
        in_mode("RGBA").convert("RGB"), "PNG", transparency=(0, 0, 0)
    ),
}


def render(data: bytes, **fields: Any) -> bytes:
    variant = Variant.model_validate({"name": "v", "quality": 95, **fields})
    source = decode_source(data, max_pixels=LIMIT, variants=[variant])
    return render_variant(source, variant, None).data


def pixel(data: bytes, x: int, y: int) -> tuple[int, int, int, int]:
    value = open_bytes(data).convert("RGBA").getpixel((x, y))
    assert isinstance(value, tuple)
    return (value[0], value[1], value[2], value[3])


@pytest.mark.parametrize("format", KEEPS_ALPHA)
@pytest.mark.parametrize("name", sorted(TRANSPARENT_INPUTS))
def test_alpha_is_kept(name: str, format: str) -> None:
    data = render(TRANSPARENT_INPUTS[name](), format=format)

    assert pixel(data, 35, 10)[3] == 0
    assert pixel(data, 5, 10)[3] == 255


@pytest.mark.parametrize("format", FLATTENS)
@pytest.mark.parametrize("name", sorted(TRANSPARENT_INPUTS))
def test_flattened_onto_white_not_black(name: str, format: str) -> None:
    data = render(TRANSPARENT_INPUTS[name](), format=format)

    assert close(pixel(data, 35, 10), (*WHITE, 255), 6)
    if not name.startswith("la"):
        assert close(pixel(data, 5, 10), (*RED, 255), 20)


@pytest.mark.parametrize("format", FLATTENS)
def test_background_is_configurable_per_pipeline_and_variant(format: str) -> None:
    config = parse_config(
        f"""
        background: "#336699"
        variants:
          - {{name: pipeline, format: {format}}}
          - {{name: own, format: {format}, background: "#ffcc00"}}
        """
    )
    data = TRANSPARENT_INPUTS["rgba-png"]()
    source = decode_source(data, max_pixels=LIMIT, variants=config.variants)
    pipeline, own = (render_variant(source, v, None).data for v in config.variants)

    assert close(pixel(pipeline, 35, 10), (0x33, 0x66, 0x99, 255), 6)
    assert close(pixel(own, 35, 10), (0xFF, 0xCC, 0x00, 255), 6)


def test_grayscale_with_alpha_on_a_coloured_background_becomes_colour() -> None:
    data = render(TRANSPARENT_INPUTS["la-png"](), format="JPEG", background="#ff0000")

    assert close(pixel(data, 35, 10), (255, 0, 0, 255), 20)


def test_contain_pads_transparent_in_png_and_with_the_background_in_jpeg() -> None:
    box = {"op": "contain", "width": 40, "height": 40, "background": "transparent"}
    data = to_bytes(in_mode("RGB").convert("RGB"), "PNG")  # opaque 40x20

    png = render(data, format="PNG", transforms=[box])
    jpeg = render(data, format="JPEG", transforms=[box], background="#00ff00")

    assert pixel(png, 20, 2)[3] == 0  # the padding above the picture
    assert pixel(png, 5, 20)[3] == 255
    assert close(pixel(jpeg, 20, 2), (0, 255, 0, 255), 20)

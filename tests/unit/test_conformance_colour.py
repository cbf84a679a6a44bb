"""Conformance: colour-managed inputs come out as the same colours in (untagged) sRGB.

Each input stores a known sRGB colour in another colour space (Display P3, Adobe RGB,
a CMYK print profile, CIELAB) with the matching profile. Outputs carry no profile, so
only a decoder that converts *before* dropping the profile gets the colour right.
"""

from __future__ import annotations

import pytest
from imaging_factory import (
    OUTPUT_FORMATS,
    RED,
    WHITE,
    adobe_rgb_profile,
    close,
    cmyk_jpeg,
    cmyk_profile,
    display_p3_profile,
    in_profile,
    open_bytes,
    to_bytes,
    ycck_jpeg,
)
from PIL import Image, ImageCms

from prism.config import Variant
from prism.imaging import decode, decode_source, render_variant

LIMIT = 10**7
BRICK = (200, 60, 40)  # an sRGB colour inside both wide gamuts
WHITE_INK, RED_INK = (0, 0, 0, 0), (0, 255, 255, 0)


def colour_at(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    pixel = image.convert("RGB").getpixel((x, y))
    assert isinstance(pixel, tuple)
    return (pixel[0], pixel[1], pixel[2])


def render(data: bytes, format: str) -> Image.Image:
    variant = Variant(name="v", format=format, quality=95)  # type: ignore[arg-type]
    source = decode_source(data, max_pixels=LIMIT, variants=[variant])
    image = open_bytes(render_variant(source, variant, None).data)
    assert "icc_profile" not in image.info
    return image


@pytest.mark.parametrize(
    "profile", [display_p3_profile(), adobe_rgb_profile()], ids=["display-p3", "adobe-rgb"]
)
@pytest.mark.parametrize("input_format", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_wide_gamut_rgb_is_converted_to_srgb(profile: bytes, input_format: str) -> None:
    stored = in_profile(BRICK, profile)
    assert not close(stored, BRICK, 8)  # the test means something: the values differ
    data = to_bytes(Image.new("RGB", (16, 16), stored), input_format, icc_profile=profile)

    image = decode(data, max_pixels=LIMIT)

    assert close(colour_at(image, 8, 8), BRICK, 3)


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
def test_converted_colour_survives_every_output_format(format: str) -> None:
    profile = display_p3_profile()
    data = to_bytes(
        Image.new("RGB", (16, 16), in_profile(BRICK, profile)), "PNG", icc_profile=profile
    )

    assert close(colour_at(render(data, format), 8, 8), BRICK, 12)


def test_alpha_survives_profile_conversion() -> None:
    profile = display_p3_profile()
    image = Image.new("RGBA", (16, 16), (*in_profile(BRICK, profile), 255))
    image.paste((0, 0, 0, 0), (8, 0, 16, 16))

    decoded = decode(to_bytes(image, "PNG", icc_profile=profile), max_pixels=LIMIT)

    assert decoded.mode == "RGBA"
    assert close(decoded.getpixel((2, 2)), (*BRICK, 255), 3)  # type: ignore[arg-type]
    assert decoded.getpixel((12, 2))[3] == 0  # type: ignore[index]


def test_palette_image_with_a_profile_is_converted() -> None:
    profile = display_p3_profile()
    paletted = Image.new("RGB", (16, 16), in_profile(BRICK, profile)).quantize(colors=4)

    decoded = decode(to_bytes(paletted, "PNG", icc_profile=profile), max_pixels=LIMIT)

    assert close(colour_at(decoded, 8, 8), BRICK, 3)


@pytest.mark.parametrize("profiled", [False, True], ids=["no-profile", "cmyk-profile"])
@pytest.mark.parametrize("format", OUTPUT_FORMATS)
def test_adobe_cmyk_jpeg_is_never_inverted(profiled: bool, format: str) -> None:
    data = cmyk_jpeg([WHITE_INK, RED_INK], cmyk_profile() if profiled else None)

    image = render(data, format)

    assert close(colour_at(image, 4, 4), WHITE, 12)
    assert close(colour_at(image, 12, 4), RED, 40)


def test_cmyk_profile_is_honoured() -> None:
    # A profile in which red ink *means* blue: ignoring it would give red.
    data = cmyk_jpeg([RED_INK], cmyk_profile("Swapped CMYK (test)", swap_red_blue=True))

    image = decode(data, max_pixels=LIMIT)

    assert close(colour_at(image, 4, 4), (0, 0, 255), 12)


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_ycck_jpeg_comes_out_in_the_right_colours(format: str) -> None:
    data = ycck_jpeg([WHITE_INK, RED_INK])

    image = render(data, format)

    assert close(colour_at(image, 4, 4), WHITE, 12)
    assert close(colour_at(image, 12, 4), RED, 40)


def test_cielab_tiff_is_converted() -> None:
    lab = ImageCms.profileToProfile(
        Image.new("RGB", (8, 8), BRICK),
        ImageCms.createProfile("sRGB"),
        ImageCms.createProfile("LAB"),
        outputMode="LAB",
    )
    assert lab is not None

    image = decode(to_bytes(lab, "TIFF"), max_pixels=LIMIT)

    assert image.mode == "RGB"
    assert close(colour_at(image, 4, 4), BRICK, 3)


def test_srgb_profile_and_broken_profiles_leave_pixels_alone() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for profile in (srgb, b"not an ICC profile at all"):
        data = to_bytes(Image.new("RGB", (8, 8), BRICK), "PNG", icc_profile=profile)

        assert colour_at(decode(data, max_pixels=LIMIT), 4, 4) == BRICK

"""The LQIP of a decoded source: a BlurHash that decodes back, and a dominant colour."""

from __future__ import annotations

import dataclasses
import re

import blurhash  # type: ignore[import-untyped]
import pytest
from PIL import Image, ImageDraw

from prism.imaging.placeholder import GRID, Placeholder, components, placeholder

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
BASE83 = re.compile(f"[{re.escape(ALPHABET)}]+")
HEX = re.compile(r"#[0-9a-f]{6}")


def photo(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Noise over gradients: a picture with structure on both axes."""
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 48)
    flipped = gradient.transpose(Image.Transpose.ROTATE_90).resize(size)
    return Image.merge("RGB", (gradient, noise, flipped)).convert(mode)


def half_red_half_blue(size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.new("RGB", size, RED)
    ImageDraw.Draw(image).rectangle((size[0] // 2, 0, size[0], size[1]), fill=BLUE)
    return image


def assert_valid(result: Placeholder, size: tuple[int, int]) -> None:
    x, y = components(size)
    assert BASE83.fullmatch(result.blurhash)
    assert len(result.blurhash) == 4 + 2 * x * y
    assert blurhash.components(result.blurhash) == (x, y)
    decoded = blurhash.decode(result.blurhash, 4, 3)
    assert len(decoded) == 3 and all(len(row) == 4 for row in decoded)
    assert HEX.fullmatch(result.dominant_colour)


def base83(digits: str) -> int:
    value = 0
    for digit in digits:
        value = value * 83 + ALPHABET.index(digit)
    return value


def decoded_mean(hash_: str) -> tuple[float, float, float]:
    pixels = [pixel for row in blurhash.decode(hash_, 8, 8) for pixel in row]
    return (
        sum(p[0] for p in pixels) / len(pixels),
        sum(p[1] for p in pixels) / len(pixels),
        sum(p[2] for p in pixels) / len(pixels),
    )


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((400, 300), (4, 3)),
        ((300, 300), (4, 3)),
        ((300, 400), (3, 4)),
        ((1600, 900), (4, 3)),
        ((200, 100), (4, 2)),
        ((300, 100), (4, 2)),
        ((100, 400), (1, 4)),
        ((5000, 1), (4, 1)),
        ((1, 5000), (1, 4)),
        ((1, 1), (1, 1)),
        ((2, 2), (2, 2)),
    ],
)
def test_component_counts(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert components(size) == expected


def test_a_photo_gives_a_full_hash_that_decodes() -> None:
    result = placeholder(photo((256, 256)))
    assert_valid(result, (256, 256))
    assert len(result.blurhash) == 28  # 4x3 components


def test_a_solid_colour_is_its_own_dominant_colour_and_hash_average() -> None:
    result = placeholder(Image.new("RGB", (64, 48), RED))
    assert result.dominant_colour == "#ff0000"
    # The DC component (characters 2-5) is the average colour, exact for a flat picture.
    assert base83(result.blurhash[2:6]) == 0xFF0000
    red, green, blue = decoded_mean(result.blurhash)
    assert red > 250 and green < 5 and blue < 5


@pytest.mark.parametrize("colour", [(12, 200, 99), (0, 0, 0), (255, 255, 255), (1, 2, 3)])
def test_the_dominant_colour_of_a_flat_picture_is_exact(colour: tuple[int, int, int]) -> None:
    result = placeholder(Image.new("RGB", (300, 200), colour))
    assert result.dominant_colour == "#{:02x}{:02x}{:02x}".format(*colour)


def test_the_dominant_colour_is_the_largest_area() -> None:
    image = Image.new("RGB", (100, 100), BLUE)
    ImageDraw.Draw(image).rectangle((0, 0, 99, 69), fill=RED)  # 70% red
    assert placeholder(image).dominant_colour == "#ff0000"


def test_half_red_half_blue_differs_from_solid() -> None:
    split = placeholder(half_red_half_blue())
    solid_red = placeholder(Image.new("RGB", (64, 48), RED))
    solid_blue = placeholder(Image.new("RGB", (64, 48), BLUE))
    assert split.blurhash not in (solid_red.blurhash, solid_blue.blurhash)
    # Red on the left, blue on the right, in what the hash decodes to.
    decoded = blurhash.decode(split.blurhash, 8, 1)[0]
    assert decoded[0][0] > decoded[0][2] and decoded[-1][2] > decoded[-1][0]
    assert split.dominant_colour in ("#ff0000", "#0000ff")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_each_input_mode(mode: str) -> None:
    result = placeholder(photo((120, 80), mode))
    assert_valid(result, (120, 80))


def test_grey_inputs_give_grey() -> None:
    result = placeholder(Image.new("L", (50, 50), 100))
    assert result.dominant_colour == "#646464"
    red, green, blue = decoded_mean(result.blurhash)
    assert red == green == blue


def test_transparency_is_composited_over_white() -> None:
    clear = placeholder(Image.new("RGBA", (40, 40), (*RED, 0)))
    assert clear.dominant_colour == "#ffffff"
    assert placeholder(Image.new("RGB", (40, 40), WHITE)) == clear
    assert placeholder(Image.new("LA", (40, 40), (0, 0))) == clear
    half = placeholder(Image.new("RGBA", (40, 40), (0, 0, 0, 128)))
    assert half.dominant_colour == "#7f7f7f"


def test_opaque_alpha_is_the_same_as_no_alpha() -> None:
    rgb = photo((90, 60))
    assert placeholder(rgb.convert("RGBA")) == placeholder(rgb)
    assert placeholder(rgb.convert("LA")) == placeholder(rgb.convert("L"))


@pytest.mark.parametrize("size", [(1, 1), (1, 5000), (5000, 1), (2, 3), (GRID + 1, 7)])
def test_tiny_and_elongated_sizes(size: tuple[int, int]) -> None:
    result = placeholder(photo(size))
    assert_valid(result, size)


def test_a_single_pixel() -> None:
    result = placeholder(Image.new("RGB", (1, 1), (10, 20, 30)))
    assert result.dominant_colour == "#0a141e"
    assert blurhash.decode(result.blurhash, 1, 1) == [[[10, 20, 30]]]


def test_a_large_input() -> None:
    result = placeholder(photo((4000, 3000)))
    assert_valid(result, (4000, 3000))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_the_input_is_not_modified(mode: str) -> None:
    image = photo((97, 61), mode)
    before = (image.mode, image.size, image.tobytes(), dict(image.info))
    placeholder(image)
    assert (image.mode, image.size, image.tobytes(), dict(image.info)) == before


def test_deterministic() -> None:
    image = photo((333, 222), "RGBA")
    first = placeholder(image)
    assert all(placeholder(image) == first for _ in range(3))
    assert placeholder(image.copy()) == first


def test_the_result_is_frozen() -> None:
    result = placeholder(Image.new("RGB", (4, 4), RED))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.blurhash = "x"  # type: ignore[misc]


@pytest.mark.parametrize("mode", ["P", "CMYK", "I;16", "1"])
def test_other_modes_are_refused(mode: str) -> None:
    with pytest.raises(ValueError, match="RGB, RGBA, L or LA"):
        placeholder(Image.new(mode, (4, 4)))


def test_an_empty_image_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one pixel"):
        placeholder(Image.new("RGB", (0, 4)))

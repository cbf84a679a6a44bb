"""Transforms: geometry, colour, ordering, and the decode size they need."""

from __future__ import annotations

from typing import Any

import pytest
from imaging_factory import RED, WHITE, corners, noise
from PIL import Image
from pydantic import TypeAdapter

from prism.config import Transform
from prism.imaging import apply_transforms, combined_needed_size, fit_size, needed_size

_TRANSFORMS = TypeAdapter(list[Transform])


def ops(*items: dict[str, Any] | str) -> list[Transform]:
    """Transforms written as in a pipeline config."""
    return _TRANSFORMS.validate_python([{"op": i} if isinstance(i, str) else i for i in items])


def red_at(image: Image.Image) -> str:
    """Which corner of an RGB image holds the red marker."""
    rgb = image.convert("RGB")
    found = []
    for name, x, y in (
        ("top-left", 1, 1),
        ("top-right", rgb.width - 2, 1),
        ("bottom-left", 1, rgb.height - 2),
        ("bottom-right", rgb.width - 2, rgb.height - 2),
    ):
        red, green, blue = rgb.getpixel((x, y))
        if red > 200 and green < 60 and blue < 60:
            found.append(name)
    assert len(found) == 1, found
    return found[0]


def test_resize_gives_the_exact_size() -> None:
    result = apply_transforms(noise((200, 100)), ops({"op": "resize", "width": 37, "height": 91}))

    assert result.size == (37, 91)


@pytest.mark.parametrize("op", ["thumbnail", "fit"])
def test_thumbnail_keeps_aspect_ratio(op: str) -> None:
    result = apply_transforms(noise((200, 100)), ops({"op": op, "width": 50, "height": 50}))

    assert result.size == (50, 25)


def test_thumbnail_never_upscales() -> None:
    source = noise((10, 10))

    result = apply_transforms(source, ops({"op": "thumbnail", "width": 50, "height": 50}))

    assert result.size == (10, 10)
    assert result.tobytes() == source.tobytes()


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((200, 100), (50, 50), (50, 25)),
        ((100, 200), (50, 50), (25, 50)),
        ((4000, 3000), (256, 256), (256, 192)),
        ((10, 10), (50, 50), (10, 10)),
        ((10_000, 1), (100, 100), (100, 1)),  # never below one pixel
        ((300, 100), (300, 50), (150, 50)),
    ],
)
def test_fit_size(size: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit_size(size, box) == expected


def test_grayscale_gives_equal_channels_once_encoded_as_rgb() -> None:
    result = apply_transforms(noise((20, 20)), ops("grayscale"))

    assert result.mode == "L"
    red, green, blue = result.convert("RGB").split()
    assert red.tobytes() == green.tobytes() == blue.tobytes()


def test_grayscale_keeps_alpha() -> None:
    source = Image.new("RGBA", (4, 4), (255, 0, 0, 77))

    result = apply_transforms(source, ops("grayscale"))

    assert result.mode == "LA"
    assert result.getpixel((0, 0)) == (76, 77)  # ITU-R 601 luma of pure red


@pytest.mark.parametrize(
    ("degrees", "size", "corner"),
    [(90, (20, 40), "top-right"), (180, (40, 20), "bottom-right"), (270, (20, 40), "bottom-left")],
)
def test_rotate_turns_clockwise(degrees: int, size: tuple[int, int], corner: str) -> None:
    result = apply_transforms(corners((40, 20)), ops({"op": "rotate", "degrees": degrees}))

    assert result.size == size
    assert red_at(result) == corner


@pytest.mark.parametrize(
    ("direction", "corner"), [("horizontal", "top-right"), ("vertical", "bottom-left")]
)
def test_flip(direction: str, corner: str) -> None:
    result = apply_transforms(corners(), ops({"op": "flip", "direction": direction}))

    assert result.size == (40, 20)
    assert red_at(result) == corner


def test_chained_resize_grayscale_rotate() -> None:
    source = corners((200, 100))
    source.paste(RED, (0, 0, 20, 20))  # big enough to survive the downscale

    result = apply_transforms(
        source,
        ops(
            {"op": "resize", "width": 100, "height": 50},
            "grayscale",
            {"op": "rotate", "degrees": 90},
        ),
    )

    assert (result.mode, result.size) == ("L", (50, 100))
    # Red turned grey (luma 76) now sits top-right; the rest stays white.
    assert result.getpixel((48, 1)) == 76
    assert result.getpixel((1, 1)) == 255
    assert result.getpixel((1, 98)) == 255


def test_blur_softens_a_sharp_edge() -> None:
    source = Image.new("L", (40, 40), 0)
    source.paste(255, (20, 0, 40, 40))

    result = apply_transforms(source, ops({"op": "blur", "sigma": 2}))

    assert 0 < result.getpixel((19, 20)) < 128 < result.getpixel((20, 20)) < 255
    assert result.getpixel((2, 20)) == 0
    assert result.getpixel((37, 20)) == 255


def test_blur_does_not_bleed_the_colour_of_invisible_pixels() -> None:
    # Opaque white next to fully transparent red: the edge must fade out white, not pink.
    source = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    source.paste((*WHITE, 255), (0, 0, 20, 40))

    result = apply_transforms(source, ops({"op": "blur", "sigma": 2}))

    red, green, blue, alpha = result.getpixel((20, 20))
    assert 0 < alpha < 255
    assert (red, green, blue) == WHITE


@pytest.mark.parametrize(("value", "expected"), [(0.5, 150), (-0.5, 50), (-1.0, 0), (0.0, 100)])
def test_brighten(value: float, expected: int) -> None:
    source = Image.new("RGB", (4, 4), (100, 100, 100))

    result = apply_transforms(source, ops({"op": "brighten", "value": value}))

    assert result.getpixel((1, 1)) == (expected, expected, expected)


def test_brighten_leaves_alpha_untouched() -> None:
    source = Image.new("RGBA", (4, 4), (100, 100, 100, 60))

    result = apply_transforms(source, ops({"op": "brighten", "value": 1.0}))

    assert result.getpixel((1, 1)) == (200, 200, 200, 60)


def test_transforms_do_not_modify_their_input() -> None:
    source = corners((60, 40))
    before = source.tobytes()

    apply_transforms(
        source,
        ops(
            {"op": "thumbnail", "width": 30, "height": 30},
            "grayscale",
            {"op": "blur", "sigma": 1},
            {"op": "brighten", "value": 0.2},
            {"op": "rotate", "degrees": 90},
            {"op": "flip", "direction": "vertical"},
        ),
    )

    assert (source.size, source.mode, source.tobytes()) == ((60, 40), "RGB", before)


def test_no_transforms_returns_the_image_unchanged() -> None:
    source = noise((8, 8))

    assert apply_transforms(source, []).tobytes() == source.tobytes()


THUMB_256 = {"op": "thumbnail", "width": 256, "height": 256}
RESIZE_300_100 = {"op": "resize", "width": 300, "height": 100}


@pytest.mark.parametrize(
    ("transforms", "expected"),
    [
        ([], None),
        (["grayscale"], None),
        ([THUMB_256], (256, 256)),
        ([RESIZE_300_100], (300, 100)),
        ([{"op": "fit", "width": 640, "height": 480}], (640, 480)),
        (
            [
                "grayscale",
                {"op": "brighten", "value": 0.1},
                {"op": "flip", "direction": "horizontal"},
                THUMB_256,
            ],
            (256, 256),
        ),
        ([{"op": "rotate", "degrees": 90}, RESIZE_300_100], (100, 300)),
        ([{"op": "rotate", "degrees": 270}, RESIZE_300_100], (100, 300)),
        ([{"op": "rotate", "degrees": 180}, RESIZE_300_100], (300, 100)),
        (
            [{"op": "rotate", "degrees": 90}, {"op": "rotate", "degrees": 90}, RESIZE_300_100],
            (300, 100),
        ),
        ([{"op": "blur", "sigma": 3}, THUMB_256], None),
        ([THUMB_256, {"op": "blur", "sigma": 3}], (256, 256)),
        ([RESIZE_300_100, THUMB_256], (300, 100)),
    ],
)
def test_needed_size(transforms: list[Any], expected: tuple[int, int] | None) -> None:
    assert needed_size(ops(*transforms)) == expected


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([(256, 256), (1280, 1280), (1920, 1920)], (1920, 1920)),
        ([(100, 300), (300, 100)], (300, 300)),
        ([(256, 256), None], None),
        ([], None),
    ],
)
def test_combined_needed_size(
    sizes: list[tuple[int, int] | None], expected: tuple[int, int] | None
) -> None:
    assert combined_needed_size(iter(sizes)) == expected

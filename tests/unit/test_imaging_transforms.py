"""Transforms: geometry, colour, ordering, and the decode size they need."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from imaging_factory import RED, WHITE, corners, noise
from PIL import Image
from pydantic import TypeAdapter

from prism.config import Transform
from prism.imaging import apply_transforms, combined_needed_size, fit_size, needed_size
from prism.imaging.transforms import _OPERATIONS
from support.images import pixel

_TRANSFORMS = TypeAdapter(list[Transform])


def ops(*items: dict[str, Any] | str) -> list[Transform]:
    """Transforms written as in a pipeline config."""
    return _TRANSFORMS.validate_python([{"op": i} if isinstance(i, str) else i for i in items])


def level(image: Image.Image, xy: tuple[int, int]) -> int:
    """The value of a single-band image's pixel at ``xy``."""
    value = image.getpixel(xy)
    assert isinstance(value, int), f"a {image.mode} image has bands: {value!r}"
    return value


def value_range(image: Image.Image) -> tuple[int, int]:
    """The lowest and highest value of a single-band image."""
    low, high = image.getextrema()
    assert isinstance(low, int) and isinstance(high, int), f"a {image.mode} image has bands"
    return low, high


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
        red, green, blue = pixel(rgb, (x, y))
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

    assert 0 < level(result, (19, 20)) < 128 < level(result, (20, 20)) < 255
    assert result.getpixel((2, 20)) == 0
    assert result.getpixel((37, 20)) == 255


def test_blur_does_not_bleed_the_colour_of_invisible_pixels() -> None:
    # Opaque white next to fully transparent red: the edge must fade out white, not pink.
    source = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    source.paste((*WHITE, 255), (0, 0, 20, 40))

    result = apply_transforms(source, ops({"op": "blur", "sigma": 2}))

    red, green, blue, alpha = pixel(result, (20, 20))
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


# --- upscale, cover, contain ----------------------------------------------------------
def test_thumbnail_upscales_only_when_asked() -> None:
    result = apply_transforms(
        noise((10, 20)), ops({"op": "fit", "width": 50, "height": 50, "upscale": True})
    )

    assert result.size == (25, 50)


@pytest.mark.parametrize(
    ("size", "box", "upscale", "expected"),
    [
        ((400, 300), (100, 100), False, (100, 100)),
        ((300, 400), (200, 100), False, (200, 100)),
        ((300, 100), (200, 200), False, (100, 100)),  # smaller: cropped to 1:1, not enlarged
        ((50, 40), (100, 100), False, (40, 40)),
        ((50, 40), (100, 100), True, (100, 100)),
        ((100, 100), (100, 100), False, (100, 100)),
    ],
)
def test_cover_size(
    size: tuple[int, int], box: tuple[int, int], upscale: bool, expected: tuple[int, int]
) -> None:
    spec = {"op": "cover", "width": box[0], "height": box[1], "upscale": upscale}

    assert apply_transforms(noise(size), ops(spec)).size == expected


def striped(width: int = 90, height: int = 30) -> Image.Image:
    """Three vertical stripes: red, white, blue (left to right)."""
    image = Image.new("RGB", (width, height), WHITE)
    image.paste(RED, (0, 0, width // 3, height))
    image.paste((0, 0, 255), (2 * width // 3, 0, width, height))
    return image


def centre_colour(image: Image.Image) -> tuple[int, int, int]:
    pixel = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    assert isinstance(pixel, tuple)
    return (pixel[0], pixel[1], pixel[2])


@pytest.mark.parametrize(
    ("gravity", "expected"),
    [
        ("west", RED),
        ("center", WHITE),
        ("east", (0, 0, 255)),
        ("northwest", RED),
        ("southeast", (0, 0, 255)),
        ({"x": 0.1, "y": 0.5}, RED),
        ({"x": 0.9, "y": 0.5}, (0, 0, 255)),
        ({"x": 0.5, "y": 0.0}, WHITE),
    ],
)
def test_cover_keeps_the_gravity_side(gravity: Any, expected: tuple[int, int, int]) -> None:
    spec = {"op": "cover", "width": 30, "height": 30, "gravity": gravity}

    result = apply_transforms(striped(), ops(spec))

    assert result.size == (30, 30)
    assert centre_colour(result) == expected


def test_cover_focal_point_is_centred_when_the_crop_allows() -> None:
    # A 10 px marker at x = 600..610 of a 1000x100 image; a 100x100 crop around x = 0.605.
    image = Image.new("RGB", (1000, 100), WHITE)
    image.paste(RED, (600, 0, 610, 100))
    spec = {"op": "cover", "width": 100, "height": 100, "gravity": {"x": 0.605, "y": 0.5}}

    result = apply_transforms(image, ops(spec))

    assert result.getpixel((50, 50)) == RED
    assert result.getpixel((40, 50)) == WHITE == result.getpixel((60, 50))


def test_contain_pads_to_the_exact_box_with_the_variant_background() -> None:
    result = apply_transforms(
        striped(90, 30), ops({"op": "contain", "width": 60, "height": 60}), background="#00ff00"
    )

    assert result.size == (60, 60)
    assert result.getpixel((30, 5)) == (0, 255, 0)  # padding above
    assert result.getpixel((5, 30)) == RED  # the picture, scaled to 60x20, in the middle


@pytest.mark.parametrize(("gravity", "top"), [("north", 0), ("center", 20), ("south", 40)])
def test_contain_places_the_image_by_gravity(gravity: str, top: int) -> None:
    spec = {"op": "pad", "width": 60, "height": 60, "gravity": gravity, "background": "black"}

    result = apply_transforms(striped(90, 30), ops(spec))

    column = [result.getpixel((5, y)) for y in range(60)]
    assert column.index(RED) == top


def test_contain_transparent_padding_adds_alpha() -> None:
    spec = {"op": "contain", "width": 40, "height": 40, "background": "transparent"}

    result = apply_transforms(noise((40, 20)), ops(spec))

    assert result.mode == "RGBA"
    assert pixel(result, (20, 2))[3] == 0
    assert pixel(result, (20, 20))[3] == 255


def test_contain_does_not_enlarge_unless_asked() -> None:
    small = ops({"op": "contain", "width": 100, "height": 100})
    enlarged = ops({"op": "contain", "width": 100, "height": 100, "upscale": True})
    image = Image.new("RGB", (20, 10), RED)

    kept = apply_transforms(image, small)
    grown = apply_transforms(image, enlarged)

    assert kept.size == grown.size == (100, 100)
    assert sum(1 for x in range(100) if kept.getpixel((x, 50)) == RED) == 20
    assert sum(1 for x in range(100) if grown.getpixel((x, 50)) == RED) == 100


def test_grey_image_padded_with_a_colour_becomes_colour() -> None:
    spec = {"op": "contain", "width": 20, "height": 20, "background": "#ff0000"}

    result = apply_transforms(Image.new("L", (20, 10), 128), ops(spec))

    assert result.mode == "RGB"
    assert result.getpixel((10, 1)) == RED


# --- filters --------------------------------------------------------------------------
def test_sharpen_increases_edge_contrast() -> None:
    source = Image.new("L", (40, 40), 100)
    source.paste(150, (20, 0, 40, 40))

    result = apply_transforms(source, ops({"op": "sharpen"}))

    assert level(result, (19, 20)) < 100 and level(result, (20, 20)) > 150
    assert result.getpixel((2, 20)) == 100


def test_sharpen_keeps_alpha() -> None:
    source = Image.new("RGBA", (20, 20), (100, 100, 100, 77))

    red, _, _, alpha = pixel(apply_transforms(source, ops({"op": "sharpen"})), (10, 10))
    assert alpha == 77 and abs(red - 100) <= 1  # premultiplied: a rounding step at most


@pytest.mark.parametrize(
    ("value", "expected"), [(1.0, (0, 200)), (-1.0, (100, 100)), (0.0, (50, 150))]
)
def test_contrast(value: float, expected: tuple[int, int]) -> None:
    source = Image.new("L", (20, 10), 50)
    source.paste(150, (10, 0, 20, 10))  # mean 100

    result = apply_transforms(source, ops({"op": "contrast", "value": value}))

    assert (result.getpixel((2, 2)), result.getpixel((15, 2))) == expected


def test_autocontrast_stretches_to_the_full_range() -> None:
    source = Image.new("RGB", (20, 10), (100, 100, 100))
    source.paste((150, 150, 150), (10, 0, 20, 10))

    result = apply_transforms(source, ops({"op": "autocontrast", "cutoff": 0}))

    assert result.getpixel((2, 2)) == (0, 0, 0)
    assert result.getpixel((15, 2)) == (255, 255, 255)


def test_autocontrast_keeps_alpha_and_ignores_invisible_pixels() -> None:
    source = Image.new("RGBA", (30, 10), (0, 0, 0, 0))  # invisible black
    source.paste((100, 100, 100, 255), (0, 0, 10, 10))
    source.paste((150, 150, 150, 255), (10, 0, 20, 10))

    result = apply_transforms(source, ops("autocontrast"))

    assert result.mode == "RGBA"
    assert pixel(result, (25, 5))[3] == 0
    # Stretched by the visible pixels only: 100 -> 0, 150 -> 255.
    assert result.getpixel((5, 5)) == (0, 0, 0, 255)
    assert result.getpixel((15, 5)) == (255, 255, 255, 255)


def test_equalize_keeps_alpha() -> None:
    ramp = Image.linear_gradient("L").resize((64, 64)).point(lambda v: 100 + v // 8)
    source = Image.merge("LA", (ramp, Image.new("L", (64, 64), 200)))

    result = apply_transforms(source, ops("equalize"))

    assert result.mode == "LA"
    assert result.getchannel("A").getextrema() == (200, 200)
    assert result.getchannel("L").getextrema() != ramp.getextrema()


def test_equalize_spreads_the_histogram() -> None:
    source = Image.linear_gradient("L").resize((64, 64)).point(lambda v: 100 + v // 8)

    result = apply_transforms(source, ops("equalize"))

    low, high = value_range(result)
    assert (low, high) != source.getextrema()
    assert low < 20 and high > 230


COVER_200 = {"op": "cover", "width": 200, "height": 100}
CONTAIN_200 = {"op": "contain", "width": 200, "height": 100}


@pytest.mark.parametrize(
    ("transforms", "expected"),
    [
        ([COVER_200], (200, 100)),
        ([CONTAIN_200], (200, 100)),
        ([{"op": "rotate", "degrees": 90}, COVER_200], (100, 200)),
        (["sharpen", THUMB_256], None),
        ([{"op": "contrast", "value": 0.2}, "autocontrast", "equalize", COVER_200], (200, 100)),
        ([{**THUMB_256, "upscale": True}], (256, 256)),
    ],
)
def test_needed_size_of_the_new_operations(
    transforms: list[Any], expected: tuple[int, int] | None
) -> None:
    assert needed_size(ops(*transforms)) == expected


def test_cover_after_jpeg_draft_still_fills_the_box() -> None:
    from imaging_factory import to_bytes

    from prism.imaging import decode

    data = to_bytes(noise((4000, 1000)), "JPEG", quality=70)
    spec = ops({"op": "cover", "width": 300, "height": 300})

    source = decode(data, max_pixels=10**8, needed_size=needed_size(spec))

    assert source.height >= 300  # drafted (1/2: 2000x500), never below the box's height
    assert source.width < 4000
    assert apply_transforms(source, spec).size == (300, 300)


def test_every_transform_model_has_an_operation() -> None:
    union, _discriminator = get_args(Transform)
    assert set(get_args(union)) == set(_OPERATIONS)

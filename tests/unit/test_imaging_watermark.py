"""Watermarks: placement, sizing, opacity, legibility, and leaving the input alone."""

from __future__ import annotations

from typing import Any

import pytest
from imaging_factory import RED, noise
from PIL import Image, ImageChops

from prism.config import Watermark
from prism.imaging import apply_watermark, watermark_position
from prism.imaging.watermark import (
    MAX_TILES,
    MIN_MARK_PIXELS,
    plan_watermark,
    stamp,
    tile_positions,
)


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("top-left", (0, 0)),
        ("top-right", (80, 0)),
        ("bottom-left", (0, 90)),
        ("bottom-right", (80, 90)),
        ("center", (40, 45)),
    ],
)
def test_watermark_position(position: str, expected: tuple[int, int]) -> None:
    assert watermark_position((100, 100), (20, 10), position, 0) == expected


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("top-left", (5, 5)),
        ("top-right", (75, 5)),
        ("bottom-left", (5, 85)),
        ("bottom-right", (75, 85)),
        ("center", (40, 45)),
    ],
)
def test_margin_pushes_the_mark_inward(position: str, expected: tuple[int, int]) -> None:
    assert watermark_position((100, 100), (20, 10), position, 5) == expected


def test_position_stays_inside_the_image() -> None:
    assert watermark_position((100, 100), (20, 10), "bottom-right", 500) == (0, 0)
    assert watermark_position((100, 100), (150, 10), "top-right", 0) == (0, 0)


def test_unknown_position_is_an_error() -> None:
    with pytest.raises(ValueError, match="position"):
        watermark_position((100, 100), (20, 10), "middle", 0)


def changed_box(before: Image.Image, after: Image.Image) -> tuple[int, int, int, int] | None:
    return ImageChops.difference(before.convert("RGB"), after.convert("RGB")).getbbox()


def text(**fields: Any) -> Watermark:
    return Watermark.model_validate({"text": "Prism", "opacity": 1.0, **fields})


# The quarter of a 200x200 image a mark at each position must stay within.
QUARTERS = {
    "top-left": (0, 0, 100, 100),
    "top-right": (100, 0, 200, 100),
    "bottom-left": (0, 100, 100, 200),
    "bottom-right": (100, 100, 200, 200),
}
OPPOSITE = {
    "top-left": "bottom-right",
    "top-right": "bottom-left",
    "bottom-left": "top-right",
    "bottom-right": "top-left",
}


@pytest.mark.parametrize("position", sorted(QUARTERS))
def test_text_watermark_marks_its_corner_only(position: str) -> None:
    source = Image.new("RGB", (200, 200), (90, 120, 160))

    result = apply_watermark(source, text(position=position, scale=0.1))

    box = changed_box(source, result)
    assert box is not None
    left, top, right, bottom = QUARTERS[position]
    assert left <= box[0] and top <= box[1] and box[2] <= right and box[3] <= bottom
    opposite = QUARTERS[OPPOSITE[position]]
    assert ImageChops.difference(source.crop(opposite), result.crop(opposite)).getbbox() is None


def test_text_watermark_reads_on_light_and_dark_backgrounds() -> None:
    # White text on white is still visible through its dark outline; black on black too.
    for background, color in (("white", "white"), ("black", "black")):
        source = Image.new("RGB", (256, 256), background)

        result = apply_watermark(source, text(color=color))

        assert changed_box(source, result) is not None, (background, color)


def test_text_height_follows_scale_with_a_legible_minimum() -> None:
    source = Image.new("RGB", (1000, 1000), "black")

    big = changed_box(source, apply_watermark(source, text(scale=0.1)))
    tiny = changed_box(source, apply_watermark(source, text(scale=0.001)))

    assert big is not None and tiny is not None
    assert 60 <= big[3] - big[1] <= 110  # about 100 px tall glyphs (cap height + outline)
    assert tiny[3] - tiny[1] >= MIN_MARK_PIXELS * 0.6  # not 1 px: the minimum kicks in


def test_text_larger_than_the_image_is_shrunk_to_fit() -> None:
    source = Image.new("RGB", (120, 60), "black")
    spec = text(text="A long watermark line that cannot fit", scale=0.9, margin=0)

    result = apply_watermark(source, spec)

    box = changed_box(source, result)
    assert result.size == (120, 60)
    assert box is not None and box[2] - box[0] > 60  # still a real, visible mark


def test_text_opacity_blends() -> None:
    source = Image.new("RGB", (200, 200), "black")

    solid = apply_watermark(source, text(color="white", opacity=1.0, scale=0.2))
    faint = apply_watermark(source, text(color="white", opacity=0.3, scale=0.2))

    assert solid.convert("L").getextrema()[1] == 255
    _, brightest = faint.convert("L").getextrema()
    assert isinstance(brightest, int) and 60 <= brightest <= 90  # 0.3 * 255 = 76.5


def logo_spec(**fields: Any) -> Watermark:
    values = {"image": "logos/logo.png", "position": "bottom-right", "margin": 0, **fields}
    return Watermark.model_validate(values)


def red_logo(size: tuple[int, int] = (20, 10)) -> Image.Image:
    return Image.new("RGBA", size, (*RED, 255))


def test_image_watermark_with_opacity_zero_changes_nothing() -> None:
    source = noise((200, 100))

    result = apply_watermark(source, logo_spec(opacity=0.0, scale=0.3), red_logo())

    assert result.tobytes() == source.tobytes()


def test_image_watermark_with_opacity_one_stamps_the_logo() -> None:
    source = noise((400, 200))

    # Logo width = 0.25 x the shorter side (200) = 50 px; 20x10 keeps its aspect: 50x25.
    result = apply_watermark(source, logo_spec(opacity=1.0, scale=0.25), red_logo())

    assert changed_box(source, result) == (350, 175, 400, 200)
    assert result.getpixel((360, 185)) == RED
    assert result.getpixel((399, 199)) == RED
    assert result.getpixel((340, 185)) == source.getpixel((340, 185))


def test_image_watermark_respects_the_logos_own_transparency() -> None:
    source = Image.new("RGB", (100, 100), "white")
    logo = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    logo.paste((*RED, 255), (0, 0, 10, 20))  # left half opaque red, right half see-through

    result = apply_watermark(source, logo_spec(opacity=1.0, scale=0.2), logo)

    assert result.getpixel((82, 90)) == RED
    assert result.getpixel((97, 90)) == (255, 255, 255)


def test_oversized_logo_is_shrunk_to_fit() -> None:
    source = Image.new("RGB", (50, 50), "white")

    result = apply_watermark(source, logo_spec(opacity=1.0, scale=1.0), red_logo((10, 100)))

    box = changed_box(source, result)
    assert result.size == (50, 50)
    assert box == (45, 0, 50, 50)  # 50 px wide would be 500 tall: fitted to 5x50


def test_image_watermark_without_a_loaded_logo_is_an_error() -> None:
    with pytest.raises(ValueError, match="logo"):
        apply_watermark(noise((50, 50)), logo_spec())


def test_logo_is_not_modified() -> None:
    logo = red_logo()
    before = (logo.mode, logo.size, logo.tobytes())

    apply_watermark(noise((200, 200)), logo_spec(opacity=0.5, scale=0.3), logo)

    assert (logo.mode, logo.size, logo.tobytes()) == before


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_result_keeps_size_and_mode_and_input_is_untouched(mode: str) -> None:
    source = noise((120, 80)).convert(mode)
    before = source.tobytes()

    result = apply_watermark(source, text(scale=0.2))

    assert (result.size, result.mode) == ((120, 80), mode)
    assert source.tobytes() == before
    assert result.tobytes() != before


def test_transparent_areas_stay_transparent_outside_the_mark() -> None:
    source = Image.new("RGBA", (100, 100), (0, 0, 0, 0))

    result = apply_watermark(source, text(position="bottom-right"))

    assert result.getpixel((5, 5)) == (0, 0, 0, 0)
    assert result.getchannel("A").getbbox() is not None  # the mark itself is opaque


@pytest.mark.parametrize("size", [(1, 1), (3, 500), (500, 3)])
@pytest.mark.parametrize(
    "spec",
    [
        text(text="A long watermark", margin=0.5, scale=1.0),
        text(),
        logo_spec(margin=0.5),
        text(tile=True, spacing=0.3, color="auto"),
        logo_spec(tile=True, spacing=2),
    ],
    ids=["long-text-big-margin", "text", "logo-big-margin", "tiled-text", "tiled-logo"],
)
def test_degenerate_image_sizes_do_not_break_it(size: tuple[int, int], spec: Watermark) -> None:
    result = apply_watermark(Image.new("RGB", size, "gray"), spec, red_logo())

    assert (result.size, result.mode) == (size, "RGB")


# --- tiling and automatic colour ------------------------------------------------------
def test_tiled_watermark_covers_the_whole_image() -> None:
    source = Image.new("RGB", (400, 300), (90, 120, 160))

    result = apply_watermark(source, text(tile=True, scale=0.05, spacing=0.1))

    # Every 100x100 cell of the image carries some of the mark.
    for left in range(0, 400, 100):
        for top in range(0, 300, 100):
            cell = (left, top, left + 100, top + 100)
            assert changed_box(source.crop(cell), result.crop(cell)) is not None, cell


def test_tile_positions_are_spaced_and_staggered() -> None:
    corners = tile_positions((100, 60), (20, 10), 10)

    rows = sorted({y for _, y in corners})
    assert rows == [5, 25, 45]
    first = sorted(x for x, y in corners if y == 5)
    second = sorted(x for x, y in corners if y == 25)
    assert first == [5, 35, 65, 95]
    assert second == [-10, 20, 50, 80]  # shifted by half a step, entering from the left


def test_tiling_a_huge_image_with_tiny_marks_stays_bounded() -> None:
    corners = tile_positions((20_000, 20_000), (12, 12), 0)

    assert len(corners) <= 2 * MAX_TILES


def mark_bytes(image: Image.Image, spec: Watermark) -> set[bytes]:
    """The distinct marks a plan puts on ``image``."""
    return {mark.tobytes() for mark, _ in plan_watermark(image, spec).placements}


@pytest.mark.parametrize(
    ("background", "expected"), [("white", "black"), ((200, 200, 90), "black"), ("black", "white")]
)
def test_auto_colour_contrasts_with_the_background(background: Any, expected: str) -> None:
    source = Image.new("RGB", (300, 300), background)

    chosen = mark_bytes(source, text(color="auto", scale=0.2))

    assert chosen == mark_bytes(source, text(color=expected, scale=0.2))


def test_auto_colour_is_chosen_per_tile() -> None:
    source = Image.new("RGB", (400, 200), "white")
    source.paste((0, 0, 0), (200, 0, 400, 200))  # dark right half
    spec = text(color="auto", tile=True, scale=0.1, spacing=0.3)
    black = mark_bytes(source, text(color="black", scale=0.1, tile=True)).pop()
    white = mark_bytes(source, text(color="white", scale=0.1, tile=True)).pop()

    plan = plan_watermark(source, spec)

    checked = set()
    for mark, (x, _) in plan.placements:
        centre = x + mark.width // 2
        if 0 < centre < 180:
            assert mark.tobytes() == black
            checked.add("left")
        elif 220 < centre < 400:
            assert mark.tobytes() == white
            checked.add("right")
    assert checked == {"left", "right"}


def test_a_plan_stamps_identically_on_every_frame() -> None:
    frames = [noise((200, 100)) for _ in range(3)]
    plan = plan_watermark(frames[0], text(color="auto", scale=0.2))

    marked = [stamp(frame, plan) for frame in frames]

    boxes = {changed_box(frame, result) for frame, result in zip(frames, marked, strict=True)}
    assert len(boxes) == 1 and None not in boxes


def test_stamping_a_plan_on_an_image_of_another_size_is_an_error() -> None:
    plan = plan_watermark(noise((100, 100)), text())

    with pytest.raises(ValueError, match="planned for"):
        stamp(noise((50, 50)), plan)


def test_auto_is_a_valid_colour_but_nonsense_is_not() -> None:
    assert text(color="auto").color == "auto"
    with pytest.raises(ValueError, match="unknown colour"):
        text(color="automatic")

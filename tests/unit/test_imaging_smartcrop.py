"""Smart crop: ``cover`` with ``gravity: entropy`` or ``gravity: attention``."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw
from pydantic import TypeAdapter

from prism.config import ConfigError, Transform, parse_config
from prism.imaging import apply_transforms
from prism.imaging.smartcrop import smart_centering

_TRANSFORMS = TypeAdapter(list[Transform])
BACKGROUND = (200, 200, 200)
SATURATED = (230, 20, 40)
SKIN = (224, 172, 140)
SMART = ("entropy", "attention")

# Source size and the subject's box: near the left edge of a landscape image, near the
# bottom of a portrait one, in the bottom-right corner of a 3:2 one.
LAYOUTS = {
    "landscape-edge": ((400, 200), (10, 60, 70, 140)),
    "portrait-edge": ((200, 400), (50, 320, 150, 390)),
    "corner": ((450, 300), (370, 220, 440, 290)),
}


def cover(gravity: str, size: int = 100) -> list[Transform]:
    spec: dict[str, Any] = {"op": "cover", "width": size, "height": size, "gravity": gravity}
    return _TRANSFORMS.validate_python([spec])


def config_text(gravity: str) -> str:
    cover = f"{{op: cover, width: 9, height: 9, gravity: {gravity}}}"
    return f"variants: [{{name: a, transforms: [{cover}]}}]"


def with_subject(size: tuple[int, int], box: tuple[int, int, int, int], kind: str) -> Image.Image:
    """A flat grey image with one subject in ``box``: fine stripes (detail), or a
    saturated or skin-toned disc."""
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    if kind == "detail":
        left, top, right, bottom = box
        for x in range(left, right, 4):
            colour = (0, 0, 0) if x // 4 % 2 else (255, 255, 255)
            draw.rectangle((x, top, min(x + 1, right - 1), bottom - 1), fill=colour)
    else:
        draw.ellipse(
            (box[0], box[1], box[2] - 1, box[3] - 1), fill=SATURATED if kind != "skin" else SKIN
        )
    return image


def subject_pixels(image: Image.Image) -> int:
    """How many pixels differ clearly from the background."""
    background = Image.new("RGB", image.size, BACKGROUND)
    difference = ImageChops.difference(image.convert("RGB"), background).convert("L")
    return sum(
        1 for value in difference.get_flattened_data() if isinstance(value, int) and value > 24
    )


@pytest.mark.parametrize("strategy", SMART)
@pytest.mark.parametrize("kind", ["detail", "saturated", "skin"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_smart_crop_keeps_an_off_centre_subject_that_center_cuts(
    strategy: str, kind: str, layout: str
) -> None:
    size, box = LAYOUTS[layout]
    image = with_subject(size, box, kind)
    scale = 100 / min(size)
    whole = subject_pixels(image) * scale * scale  # the subject's area in the output

    smart = apply_transforms(image, cover(strategy))
    centre = apply_transforms(image, cover("center"))

    assert smart.size == centre.size == (100, 100)
    assert subject_pixels(smart) >= 0.9 * whole
    assert subject_pixels(centre) <= 0.5 * whole


@pytest.mark.parametrize("strategy", SMART)
def test_smart_crop_is_deterministic(strategy: str) -> None:
    image = Image.effect_noise((300, 180), 30).convert("RGB")
    ImageDraw.Draw(image).ellipse((200, 40, 280, 120), fill=SKIN)

    first = apply_transforms(image, cover(strategy, 90))
    second = apply_transforms(image.copy(), cover(strategy, 90))

    assert first.tobytes() == second.tobytes()
    assert smart_centering(image, (90, 90), strategy) == smart_centering(image, (90, 90), strategy)


@pytest.mark.parametrize("strategy", SMART)
@pytest.mark.parametrize("size", [(400, 200), (200, 400)])
def test_a_flat_image_is_cropped_at_the_centre(strategy: str, size: tuple[int, int]) -> None:
    image = Image.new("RGB", size, SATURATED)

    assert smart_centering(image, (100, 100), strategy) == (0.5, 0.5)
    assert smart_centering(image.convert("L"), (100, 100), strategy) == (0.5, 0.5)


@pytest.mark.parametrize("strategy", SMART)
@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_smart_crop_works_in_every_working_mode(strategy: str, mode: str) -> None:
    image = with_subject((400, 200), (10, 60, 70, 140), "detail").convert(mode)

    result = apply_transforms(image, cover(strategy))

    assert result.size == (100, 100)
    assert result.mode == mode
    assert subject_pixels(result) > 0


@pytest.mark.parametrize("strategy", SMART)
def test_smart_crop_without_a_crop_changes_nothing(strategy: str) -> None:
    image = with_subject((200, 200), (10, 60, 70, 140), "skin")

    assert smart_centering(image, (100, 100), strategy) == (0.5, 0.5)
    assert apply_transforms(image, cover(strategy, 200)) is image


@pytest.mark.parametrize("gravity", ["saliency", "Entropy", "smart"])
def test_an_unknown_gravity_names_the_field(gravity: str) -> None:
    text = config_text(gravity)

    with pytest.raises(ConfigError) as excinfo:
        parse_config(text, "my.yaml")

    assert "gravity" in str(excinfo.value)


def test_contain_has_no_smart_gravity() -> None:
    text = "variants: [{name: a, transforms: [{op: pad, width: 9, height: 9, gravity: entropy}]}]"

    with pytest.raises(ConfigError) as excinfo:
        parse_config(text, "my.yaml")

    assert "gravity" in str(excinfo.value)


@pytest.mark.parametrize("strategy", SMART)
def test_smart_gravity_parses(strategy: str) -> None:
    text = config_text(strategy)

    config = parse_config(text, "my.yaml")

    assert config.variants[0].transforms[0] == cover(strategy, 9)[0]

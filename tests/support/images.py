"""Small generated images, and their pixels typed for what the tests read (Pillow's
``getpixel`` is typed for every mode at once)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

Colour = str | tuple[int, int, int]


def picture(
    size: tuple[int, int], colour: Colour = "orange", *, noise: bool = False
) -> Image.Image:
    """An RGB image of one colour, or of grey noise (which compresses badly: slow to encode)."""
    if noise:
        return Image.effect_noise(size, 64).convert("RGB")
    return Image.new("RGB", size, colour)


def image_bytes(
    size: tuple[int, int] = (200, 150), fmt: str = "JPEG", colour: Colour = "orange", **save: Any
) -> bytes:
    buffer = io.BytesIO()
    picture(size, colour).save(buffer, fmt, **save)
    return buffer.getvalue()


def image_file(
    path: Path,
    size: tuple[int, int],
    fmt: str = "JPEG",
    colour: Colour = "orange",
    *,
    noise: bool = False,
    **save: Any,
) -> Path:
    """``path`` (its folders made), holding a ``fmt`` image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture(size, colour, noise=noise).save(path, fmt, **save)
    return path


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The bands of a multi-band image's pixel at ``xy``."""
    value = image.getpixel(xy)
    assert isinstance(value, tuple), f"a {image.mode} image has no bands: {value!r}"
    return value


def pixels(image: Image.Image) -> list[tuple[int, ...]]:
    """The bands of every pixel of a multi-band image, row by row."""
    data = image.get_flattened_data()
    bands = [value for value in data if isinstance(value, tuple)]
    assert len(bands) == len(data), f"a {image.mode} image has no bands"
    return bands

"""Conformance: every EXIF orientation comes out upright, in every output format.

The input is a picture with four coloured quadrants, stored turned/mirrored and tagged so
that its correctly oriented view is the original. Each output must show the quadrants
where they belong, at the upright size, and carry no orientation tag.
"""

from __future__ import annotations

import pytest
from imaging_factory import (
    OUTPUT_FORMATS,
    QUADRANT_COLOURS,
    close,
    open_bytes,
    oriented,
    quadrant_colours,
    quadrants,
)
from PIL import ExifTags

from prism.config import Variant
from prism.imaging import decode_source, render_variant

UPRIGHT = quadrants((64, 48))
ORIENTATIONS = range(1, 9)
# GIF keeps these four colours exactly; the lossy formats come close.
TOLERANCE = 40


def render(data: bytes, format: str, **fields: object) -> bytes:
    variant = Variant.model_validate({"name": "v", "format": format, "quality": 90, **fields})
    source = decode_source(data, max_pixels=10**7, variants=[variant])
    return render_variant(source, variant, None).data


def assert_upright(data: bytes, size: tuple[int, int] = (64, 48)) -> None:
    image = open_bytes(data)
    assert image.size == size
    assert image.getexif().get(ExifTags.Base.Orientation) is None
    colours = quadrant_colours(image)
    for quadrant, expected in QUADRANT_COLOURS.items():
        assert close(colours[quadrant], expected, TOLERANCE), (quadrant, colours)


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_jpeg_orientation_is_upright_in_every_output(orientation: int, format: str) -> None:
    assert_upright(render(oriented(UPRIGHT, orientation), format))


@pytest.mark.parametrize("input_format", ["PNG", "WEBP", "TIFF", "AVIF"])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_orientation_of_other_input_formats(orientation: int, input_format: str) -> None:
    assert_upright(render(oriented(UPRIGHT, orientation, input_format), "PNG"))


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_sideways_orientation_with_a_resize_is_sized_upright(orientation: int) -> None:
    # The JPEG is stored 48x64 and decoded with DCT scaling; the box applies upright.
    big = quadrants((640, 480))
    data = render(
        oriented(big, orientation),
        "PNG",
        transforms=[{"op": "cover", "width": 64, "height": 48}],
    )

    assert_upright(data)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_no_exif_left_even_when_copyright_is_kept(orientation: int) -> None:
    data = render(oriented(UPRIGHT, orientation), "JPEG", metadata={"keep": ["copyright"]})

    assert dict(open_bytes(data).getexif()) == {}  # the source had no copyright to keep

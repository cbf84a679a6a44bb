"""HEIF/HEIC uploads, an opt-in: only when the optional ``pillow-heif`` is installed.

Without it these tests are skipped, and HEIF uploads are refused as unsupported (see
test_conformance_hostile).
"""

from __future__ import annotations

import io

import pytest
from imaging_factory import QUADRANT_COLOURS, close, open_bytes, quadrant_colours, quadrants
from PIL import Image

from prism.config import Variant
from prism.errors import PermanentError, Reason
from prism.imaging import ALLOWED_FORMATS, HEIF_SUPPORTED, decode_source, probe, render_variant

pillow_heif = pytest.importorskip("pillow_heif")


def heic(image: Image.Image, major_brand: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=95)
    data = buffer.getvalue()
    if major_brand is not None:
        data = data[:8] + major_brand + data[12:]
    return data


def test_heif_is_allowed_when_the_reader_is_installed() -> None:
    assert HEIF_SUPPORTED and "HEIF" in ALLOWED_FORMATS


@pytest.mark.parametrize("major_brand", [None, b"mif1"], ids=["heic", "mif1"])
def test_heic_is_probed_and_decoded(major_brand: bytes | None) -> None:
    data = heic(quadrants((64, 48)), major_brand)

    info = probe(data)
    source = decode_source(data, max_pixels=10**7)

    assert (info.format, info.width, info.height) == ("HEIF", 64, 48)
    colours = quadrant_colours(source.image)
    for quadrant, expected in QUADRANT_COLOURS.items():
        assert close(colours[quadrant], expected, 40), quadrant


def test_heic_renders_to_jpeg_without_metadata() -> None:
    variant = Variant(name="v", format="JPEG")
    source = decode_source(heic(quadrants()), max_pixels=10**7, variants=[variant])

    output = open_bytes(render_variant(source, variant, None).data)

    assert output.format == "JPEG" and output.size == (64, 48)
    assert dict(output.getexif()) == {}


def test_a_broken_heic_is_corrupt() -> None:
    data = heic(quadrants())

    with pytest.raises(PermanentError) as caught:
        decode_source(data[:200] + bytes(len(data) - 200), max_pixels=10**7)

    assert caught.value.reason in (Reason.CORRUPT, Reason.TRUNCATED)

"""Encoding: every format from every mode, alpha handling, and no metadata in outputs."""

from __future__ import annotations

import pytest
from imaging_factory import (
    INPUT_MODES,
    OUTPUT_FORMATS,
    RED,
    WHITE,
    half_transparent,
    in_mode,
    noise,
    open_bytes,
    srgb_profile,
)
from PIL import ExifTags, Image

from prism.errors import PermanentError, Reason
from prism.imaging import decode, encode, flatten

# What each format may legitimately decode back as.
READ_BACK_MODES = {
    "JPEG": {"RGB", "L"},
    "PNG": {"RGB", "RGBA", "L", "LA"},
    "WEBP": {"RGB", "RGBA"},
    "GIF": {"P", "L"},
    "BMP": {"RGB", "L", "P"},
    "AVIF": {"RGB", "RGBA"},
}
KEEPS_ALPHA = {"PNG", "WEBP", "GIF", "AVIF"}


def test_jpeg_and_png_outputs() -> None:
    source = noise((64, 48))

    jpeg = open_bytes(encode(source, "JPEG", 85))
    png = open_bytes(encode(source, "PNG", 85))

    assert (jpeg.format, jpeg.size, jpeg.mode) == ("JPEG", (64, 48), "RGB")
    assert (png.format, png.size, png.mode) == ("PNG", (64, 48), "RGB")
    assert png.tobytes() == source.tobytes()  # lossless


def test_jpg_is_accepted_as_an_alias() -> None:
    assert open_bytes(encode(noise((8, 8)), "jpg", 80)).format == "JPEG"


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
@pytest.mark.parametrize("mode", INPUT_MODES)
def test_every_format_round_trips_from_every_mode(mode: str, format: str) -> None:
    source = in_mode(mode)

    data = encode(source, format, 80)

    image = open_bytes(data)
    assert image.format == format
    assert image.size == (40, 20)
    assert image.mode in READ_BACK_MODES[format]
    # ... and the pipeline can read its own output back.
    assert decode(data, max_pixels=10_000).size == (40, 20)


@pytest.mark.parametrize("format", sorted(KEEPS_ALPHA))
def test_alpha_is_kept_where_the_format_has_it(format: str) -> None:
    image = open_bytes(encode(half_transparent(), format, 90)).convert("RGBA")

    assert image.getpixel((35, 10))[3] == 0
    red, green, blue, alpha = image.getpixel((5, 10))
    assert alpha == 255 and red > 240 and green < 20 and blue < 20


@pytest.mark.parametrize("format", ["JPEG", "BMP"])
@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_flattens_onto_white_not_black(format: str, mode: str) -> None:
    image = open_bytes(encode(in_mode(mode), format, 95)).convert("RGB")

    assert all(channel >= 250 for channel in image.getpixel((35, 10)))
    if mode != "LA":
        red, green, blue = image.getpixel((5, 10))
        assert red > 240 and green < 20 and blue < 20


def test_jpeg_keeps_grayscale_as_one_channel() -> None:
    assert open_bytes(encode(noise((16, 16), "L"), "JPEG", 80)).mode == "L"


def test_quality_changes_the_size() -> None:
    source = noise((128, 128))

    for format in ("JPEG", "WEBP", "AVIF"):
        assert len(encode(source, format, 20)) < len(encode(source, format, 95)), format


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
def test_no_metadata_is_written(format: str) -> None:
    source = noise((16, 16))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Camera"
    source.info.update(exif=exif.tobytes(), icc_profile=srgb_profile(), comment=b"secret")

    image = open_bytes(encode(source, format, 80))

    assert "icc_profile" not in image.info
    assert "comment" not in image.info
    assert dict(image.getexif()) == {}


def test_encode_does_not_modify_its_input() -> None:
    source = half_transparent()
    before = (source.mode, source.size, source.tobytes())

    for format in OUTPUT_FORMATS:
        encode(source, format, 80)

    assert (source.mode, source.size, source.tobytes()) == before


def test_unknown_format_fails_permanently() -> None:
    with pytest.raises(PermanentError) as caught:
        encode(noise((8, 8)), "TGA", 80)
    assert caught.value.reason is Reason.ENCODE_FAILED


def test_encoder_failure_is_encode_failed() -> None:
    # WebP cannot store more than 16383 pixels on a side.
    too_wide = Image.new("RGB", (16_384, 1), RED)

    with pytest.raises(PermanentError) as caught:
        encode(too_wide, "WEBP", 80)

    assert caught.value.reason is Reason.ENCODE_FAILED
    assert "WEBP" in caught.value.detail


def test_gif_keeps_the_colours_of_a_small_palette_exactly() -> None:
    source = Image.new("RGB", (20, 10), WHITE)
    source.paste(RED, (0, 0, 10, 10))

    image = open_bytes(encode(source, "GIF", 80)).convert("RGB")

    assert image.getpixel((2, 2)) == RED
    assert image.getpixel((15, 5)) == WHITE


@pytest.mark.parametrize("format", ["JPEG", "BMP"])
def test_flattening_uses_the_given_background(format: str) -> None:
    image = open_bytes(encode(half_transparent(), format, 95, background="#3366cc")).convert("RGB")

    red, green, blue = image.getpixel((35, 10))
    assert abs(red - 0x33) < 8 and abs(green - 0x66) < 8 and abs(blue - 0xCC) < 8


def test_flatten_keeps_grey_on_a_grey_background_and_colours_otherwise() -> None:
    grey = Image.new("LA", (4, 4), (10, 0))

    assert flatten(grey, "white").mode == "L"
    assert flatten(grey, "#808080").getpixel((0, 0)) == 128
    assert flatten(grey, "red").getpixel((0, 0)) == RED


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP", "AVIF"])
def test_an_exif_block_is_written_when_given(format: str) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Copyright] = "(c) Ann"

    image = open_bytes(encode(noise((16, 16)), format, 80, exif=exif.tobytes()))

    assert dict(image.getexif()) == {ExifTags.Base.Copyright: "(c) Ann"}


@pytest.mark.parametrize("format", ["GIF", "BMP"])
def test_an_exif_block_is_ignored_where_the_format_has_none(format: str) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Copyright] = "(c) Ann"

    assert open_bytes(encode(noise((16, 16)), format, 80, exif=exif.tobytes())).format == format

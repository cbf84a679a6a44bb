"""Encoding: every format from every mode, alpha handling, and no metadata in outputs."""

from __future__ import annotations

import json

import pytest
from imaging_factory import (
    INPUT_MODES,
    OUTPUT_FORMATS,
    RED,
    WHITE,
    animated_gif,
    half_transparent,
    in_mode,
    noise,
    open_bytes,
    srgb_profile,
)
from PIL import ExifTags, Image, ImageFilter

from prism.config import ConfigError, Variant, default_config, parse_config
from prism.errors import PermanentError, Reason
from prism.imaging import decode, decode_source, encode, flatten, render_variant
from support.images import pixel

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

    assert pixel(image, (35, 10))[3] == 0
    red, green, blue, alpha = pixel(image, (5, 10))
    assert alpha == 255 and red > 240 and green < 20 and blue < 20


@pytest.mark.parametrize("format", ["JPEG", "BMP"])
@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_flattens_onto_white_not_black(format: str, mode: str) -> None:
    image = open_bytes(encode(in_mode(mode), format, 95)).convert("RGB")

    assert all(channel >= 250 for channel in pixel(image, (35, 10)))
    if mode != "LA":
        red, green, blue = pixel(image, (5, 10))
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

    red, green, blue = pixel(image, (35, 10))
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


# --- encoder effort (``Variant.effort``) ----------------------------------------------
def _saved_options(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    saved: list[dict[str, object]] = []
    original = Image.Image.save

    def spy(self: Image.Image, fp: object, format: object = None, **params: object) -> None:
        saved.append(params)
        original(self, fp, format, **params)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "save", spy)
    return saved


@pytest.mark.parametrize(
    ("format", "effort", "option", "value"),
    [
        ("WEBP", None, "method", 4),  # today's setting: libwebp's default
        ("WEBP", 0, "method", 0),
        ("WEBP", 6, "method", 6),
        ("AVIF", None, "speed", 6),  # libavif's default balance
        ("AVIF", 0, "speed", 10),
        ("AVIF", 10, "speed", 0),
    ],
)
def test_effort_sets_the_encoders_own_knob(
    format: str, effort: int | None, option: str, value: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = _saved_options(monkeypatch)

    encode(noise((32, 32)), format, 80, effort=effort)

    assert saved[-1][option] == value


def test_webp_effort_changes_the_encoding_and_defaults_to_todays() -> None:
    source = noise((256, 256)).filter(ImageFilter.GaussianBlur(1))

    outputs = {effort: encode(source, "WEBP", 85, effort=effort) for effort in (0, 2, 4)}

    assert len(set(outputs.values())) == 3
    assert encode(source, "WEBP", 85) == outputs[4]
    assert all(open_bytes(data).size == (256, 256) for data in outputs.values())


def test_render_passes_the_variants_effort(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = _saved_options(monkeypatch)
    spec = Variant.model_validate({"name": "v", "format": "WEBP", "effort": 2})

    render_variant(noise((32, 32)), spec, None)

    assert saved[-1]["method"] == 2


def test_an_animated_webp_takes_the_effort_too(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = _saved_options(monkeypatch)
    spec = Variant.model_validate(
        {"name": "v", "format": "WEBP", "effort": 1, "animation": {"policy": "preserve"}}
    )
    source = decode_source(animated_gif(frames=3), max_pixels=10**7, variants=[spec])

    assert render_variant(source, spec, None).frames == 3
    assert saved[-1]["method"] == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"format": "JPEG", "effort": 2}, "effort applies to WEBP, AVIF outputs only"),
        ({"format": "PNG", "effort": 0}, "effort applies to WEBP, AVIF outputs only"),
        ({"format": "WEBP", "effort": 7}, "effort for WEBP must be 0-6"),
        ({"format": "AVIF", "effort": 11}, "effort for AVIF must be 0-10"),
        ({"format": "WEBP", "effort": -1}, "greater than or equal to 0"),
    ],
)
def test_effort_is_validated_per_format(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(json.dumps({"variants": [{"name": "v", **fields}]}))


def test_effort_is_optional_and_kept_per_variant() -> None:
    config = parse_config(
        json.dumps(
            {
                "variants": [
                    {"name": "a", "format": "WEBP", "effort": 2},
                    {"name": "b", "format": "AVIF", "effort": 9},
                    {"name": "c", "format": "WEBP"},
                ]
            }
        )
    )

    assert [v.effort for v in config.variants] == [2, 9, None]
    assert default_config().variants[1].effort is None  # the built-in pipeline: default

"""Decoding: working modes, orientation, colour profiles, limits and broken files."""

from __future__ import annotations

import pytest
from imaging_factory import (
    BLUE,
    INPUT_MODES,
    RED,
    animated_gif,
    corners,
    in_mode,
    noise,
    png_declaring,
    srgb_profile,
    swapped_primaries_profile,
    to_bytes,
    with_orientation,
)
from PIL import ExifTags, Image, ImageFile

from prism.errors import PermanentError, Reason
from prism.imaging import decode, decode_source
from support.images import pixel

LIMIT = 50_000_000
WORKING_MODES = {"RGB", "RGBA", "L", "LA"}


def test_a_one_pixel_png_loads() -> None:
    image = decode(to_bytes(Image.new("RGB", (1, 1), RED), "PNG"), max_pixels=LIMIT)

    assert (image.size, image.mode, image.getpixel((0, 0))) == ((1, 1), "RGB", RED)


@pytest.mark.parametrize(
    ("mode", "format", "expected"),
    [
        ("RGB", "PNG", "RGB"),
        ("RGBA", "PNG", "RGBA"),
        ("L", "PNG", "L"),
        ("LA", "PNG", "LA"),
        ("P", "PNG", "RGBA"),  # palette with a transparent entry
        ("P", "GIF", "RGBA"),
        ("1", "PNG", "L"),
        ("1", "BMP", "L"),
        ("I;16", "PNG", "L"),
        ("I;16", "TIFF", "L"),
        ("CMYK", "JPEG", "RGB"),
        ("CMYK", "TIFF", "RGB"),
        ("RGBA", "WEBP", "RGBA"),
        ("RGBA", "AVIF", "RGBA"),
    ],
)
def test_every_input_mode_becomes_a_working_mode(mode: str, format: str, expected: str) -> None:
    image = decode(to_bytes(in_mode(mode), format), max_pixels=LIMIT)

    assert image.mode == expected
    assert image.size == (40, 20)
    image.tobytes()  # fully loaded, usable pixels


def test_palette_transparency_survives_as_alpha() -> None:
    image = decode(to_bytes(in_mode("P"), "PNG"), max_pixels=LIMIT)

    assert image.getpixel((2, 2)) == (*RED, 255)
    assert pixel(image, (38, 2))[3] == 0


def test_sixteen_bit_samples_are_scaled_not_clipped() -> None:
    wide = Image.new("I;16", (3, 1), 0)
    wide.putpixel((1, 0), 32768)
    wide.putpixel((2, 0), 65535)

    image = decode(to_bytes(wide, "PNG"), max_pixels=LIMIT)

    assert [image.getpixel((x, 0)) for x in range(3)] == [0, 128, 255]


def test_rgb_with_a_transparent_colour_key_gets_alpha() -> None:
    data = to_bytes(corners(), "PNG", transparency=(255, 255, 255))

    image = decode(data, max_pixels=LIMIT)

    assert image.mode == "RGBA"
    assert image.getpixel((1, 1)) == (*RED, 255)
    assert pixel(image, (30, 10))[3] == 0


def test_animated_gif_gives_its_first_frame() -> None:
    image = decode(animated_gif(frames=3), max_pixels=LIMIT)

    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == RED


# Where the red top-left corner of the *stored* picture must end up once upright.
ORIENTATION_CORNER = {
    1: "top-left",
    2: "top-right",  # mirrored
    3: "bottom-right",  # 180
    4: "bottom-left",  # mirrored vertically
    5: "top-left",  # transposed
    6: "top-right",  # stored turned 90 counter-clockwise: turn it clockwise
    7: "bottom-right",  # transverse
    8: "bottom-left",  # turn counter-clockwise
}


CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def _corner_colour(image: Image.Image, corner: str) -> tuple[int, ...]:
    x = 1 if corner.endswith("left") else image.width - 2
    y = 1 if corner.startswith("top") else image.height - 2
    pixel = image.getpixel((x, y))
    assert isinstance(pixel, tuple)
    return pixel


def _is_red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


@pytest.mark.parametrize("orientation", sorted(ORIENTATION_CORNER))
def test_exif_orientation_is_applied_and_removed(orientation: int) -> None:
    stored = corners((60, 40))

    image = decode(with_orientation(stored, orientation), max_pixels=LIMIT)

    assert image.size == ((40, 60) if orientation >= 5 else (60, 40))
    assert image.getexif().get(ExifTags.Base.Orientation) is None
    red_corners = [c for c in CORNERS if _is_red(_corner_colour(image, c))]
    assert red_corners == [ORIENTATION_CORNER[orientation]]


def test_orientation_6_photo_comes_out_upright() -> None:
    image = decode(with_orientation(corners((300, 200)), 6), max_pixels=LIMIT)

    assert image.size == (200, 300)
    assert _is_red(_corner_colour(image, "top-right"))
    assert "exif" not in image.info


def test_jpeg_draft_decodes_smaller_but_never_below_the_needed_size() -> None:
    data = to_bytes(noise((4000, 3000)), "JPEG", quality=80)

    image = decode(data, max_pixels=LIMIT, needed_size=(256, 256))

    assert image.width < 4000
    assert image.width >= 256 and image.height >= 256
    assert image.size == (500, 375)  # the 1/8 DCT scale


def test_jpeg_draft_picks_the_smallest_scale_that_still_covers() -> None:
    data = to_bytes(noise((4000, 3000)), "JPEG", quality=80)

    assert decode(data, max_pixels=LIMIT, needed_size=(1000, 1000)).size == (2000, 1500)
    assert decode(data, max_pixels=LIMIT, needed_size=(2001, 100)).size == (4000, 3000)
    assert decode(data, max_pixels=LIMIT).size == (4000, 3000)


def test_jpeg_draft_accounts_for_orientations_that_swap_axes() -> None:
    # Stored 800x400, upright 400x800; a 100x200 (upright) need allows 1/4: 200x100 stored.
    data = with_orientation(noise((800, 400)), 6)

    image = decode(data, max_pixels=LIMIT, needed_size=(100, 200))

    assert image.size == (100, 200)


def test_draft_does_not_apply_to_other_formats() -> None:
    data = to_bytes(noise((400, 300)), "PNG")

    assert decode(data, max_pixels=LIMIT, needed_size=(10, 10)).size == (400, 300)


def test_embedded_icc_profile_is_converted_to_srgb() -> None:
    data = to_bytes(Image.new("RGB", (8, 8), RED), "PNG", icc_profile=swapped_primaries_profile())

    image = decode(data, max_pixels=LIMIT)

    assert image.getpixel((4, 4)) == BLUE
    assert "icc_profile" not in image.info


def test_srgb_profile_leaves_pixels_alone() -> None:
    data = to_bytes(Image.new("RGB", (8, 8), RED), "JPEG", icc_profile=srgb_profile())

    image = decode(data, max_pixels=LIMIT)

    assert _is_red(_corner_colour(image, "top-left"))


def test_metadata_is_dropped() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Camera"
    data = to_bytes(noise((16, 16)), "JPEG", exif=exif.tobytes(), comment=b"secret")

    image = decode(data, max_pixels=LIMIT)

    assert image.info == {}
    assert dict(image.getexif()) == {}


@pytest.mark.parametrize("format", ["JPEG", "PNG", "GIF", "BMP"])
def test_truncated_file_is_truncated(format: str) -> None:
    data = to_bytes(noise((200, 150)), format)

    with pytest.raises(PermanentError) as caught:
        decode(data[: len(data) * 3 // 4], max_pixels=LIMIT)

    assert caught.value.reason is Reason.TRUNCATED


def test_truncated_images_are_not_loaded_leniently() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_refuses_to_run_if_someone_enabled_lenient_truncated_loading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)

    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        decode(to_bytes(noise((10, 10)), "PNG"), max_pixels=LIMIT)


def test_corrupt_pixel_data_is_corrupt() -> None:
    data = bytearray(to_bytes(noise((64, 64)), "PNG"))
    # Scramble the compressed pixel stream inside the IDAT chunk (keeps the length).
    start = data.index(b"IDAT") + 4 + 16
    data[start : start + 200] = bytes(200)

    with pytest.raises(PermanentError) as caught:
        decode(bytes(data), max_pixels=LIMIT)

    assert caught.value.reason in (Reason.CORRUPT, Reason.TRUNCATED)


def test_huge_declared_size_is_refused_before_allocating() -> None:
    # 100,000 x 100,000 would need 10 GB; the file is 67 bytes.
    with pytest.raises(PermanentError) as caught:
        decode(png_declaring(100_000, 100_000), max_pixels=LIMIT)

    assert caught.value.reason is Reason.DECOMPRESSION_BOMB


def test_size_above_the_configured_limit_is_too_large() -> None:
    with pytest.raises(PermanentError) as caught:
        decode(png_declaring(5000, 5000), max_pixels=1_000_000)

    assert caught.value.reason is Reason.TOO_LARGE
    assert "5000x5000" in caught.value.detail


def test_limit_is_inclusive() -> None:
    image = decode(to_bytes(noise((100, 10)), "PNG"), max_pixels=1000)

    assert image.size == (100, 10)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.EMPTY_FILE),
        (b"hello, world\n" * 10, Reason.UNSUPPORTED_FORMAT),
    ],
)
def test_decode_shares_probes_reasons(data: bytes, reason: Reason) -> None:
    with pytest.raises(PermanentError) as caught:
        decode(data, max_pixels=LIMIT)
    assert caught.value.reason is reason


def test_input_modes_list_is_covered() -> None:
    # Guard for the table above: every mode the factory can make decodes to a working mode.
    for mode in INPUT_MODES:
        format = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
        assert decode(to_bytes(in_mode(mode), format), max_pixels=LIMIT).mode in WORKING_MODES


def test_decode_source_notes_the_metadata_it_drops() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Camera"
    exif[ExifTags.Base.Artist] = "Ann"
    data = to_bytes(noise((16, 16)), "JPEG", exif=exif.tobytes(), comment=b"note")

    source = decode_source(data, max_pixels=LIMIT)

    assert source.metadata.present == {"exif", "comment"}
    assert source.metadata.keepable == {"artist": "Ann"}
    assert source.image.info == {}


def test_decode_source_describes_the_upload_as_stored() -> None:
    source = decode_source(with_orientation(corners((60, 40)), 6), max_pixels=LIMIT)

    assert (source.info.format, source.info.width, source.info.height) == ("JPEG", 60, 40)
    assert source.image.size == (40, 60)  # upright


def test_still_variants_never_keep_frames() -> None:
    source = decode_source(animated_gif(frames=3), max_pixels=LIMIT, variants=[])

    assert source.frames is None
    assert not source.info.frames_exact  # not even counted: a still needs one frame

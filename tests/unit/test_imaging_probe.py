"""Format detection from bytes alone, and the reasons for rejecting an upload."""

from __future__ import annotations

import io
import random

import pytest
from imaging_factory import (
    animated,
    animated_gif,
    animation_frames,
    noise,
    png_declaring,
    swapped_primaries_profile,
    to_bytes,
)
from PIL import Image

from prism.config import Animation
from prism.errors import PermanentError, Reason
from prism.imaging import (
    ALLOWED_FORMATS,
    SNIFF_BYTES,
    ImageInfo,
    check_limits,
    probe,
    probe_header,
    sniff_format,
)

# Only bytes ever reach probe(): there is no file name, so an extension cannot mislead it.
DETECTABLE = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF", "TIFF")


@pytest.mark.parametrize("format", DETECTABLE)
def test_probe_detects_format_and_header_dimensions(format: str) -> None:
    data = to_bytes(noise((33, 17)), format)

    info = probe(data)

    assert (info.format, info.width, info.height, info.frames) == (format, 33, 17, 1)


@pytest.mark.parametrize("format", DETECTABLE)
def test_sniff_format_recognises_each_signature(format: str) -> None:
    data = to_bytes(noise((8, 8)), format)

    assert sniff_format(data[:SNIFF_BYTES]) == format


def test_allowed_formats_exclude_postscript_and_pdf() -> None:
    assert {"EPS", "PDF", "PS"}.isdisjoint(ALLOWED_FORMATS)
    assert set(DETECTABLE) <= set(ALLOWED_FORMATS)


def test_an_eps_file_is_not_even_recognised() -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"

    assert sniff_format(eps) is None
    with pytest.raises(PermanentError) as caught:
        probe(eps)
    assert caught.value.reason is Reason.UNSUPPORTED_FORMAT


@pytest.mark.parametrize(
    "data",
    [
        b"Just some notes.\nNot an image at all.\n" * 5,
        random.Random(7).randbytes(4096),
        b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n",
    ],
    ids=["text", "random-bytes", "pdf"],
)
def test_non_images_are_unsupported_and_skipped(data: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        probe(data)

    assert caught.value.reason is Reason.UNSUPPORTED_FORMAT
    assert caught.value.skipped
    assert sniff_format(data) is None


def test_empty_file() -> None:
    with pytest.raises(PermanentError) as caught:
        probe(b"")
    assert caught.value.reason is Reason.EMPTY_FILE


def test_png_signature_followed_by_garbage_is_corrupt() -> None:
    data = to_bytes(Image.new("RGB", (4, 4)), "PNG")[:8] + random.Random(1).randbytes(300)

    assert sniff_format(data) == "PNG"
    with pytest.raises(PermanentError) as caught:
        probe(data)
    assert caught.value.reason is Reason.CORRUPT
    assert not caught.value.skipped


def test_probe_reads_only_the_header() -> None:
    # Pixel data cut in half: decoding would fail, but the header is intact.
    data = to_bytes(noise((300, 200)), "PNG")

    info = probe(data[: len(data) // 2])

    assert (info.format, info.width, info.height) == ("PNG", 300, 200)


def test_probe_reports_the_mode() -> None:
    assert probe(to_bytes(Image.new("RGBA", (3, 3)), "PNG")).mode == "RGBA"
    assert probe(to_bytes(Image.new("L", (3, 3)), "JPEG")).mode == "L"
    assert probe(to_bytes(Image.new("CMYK", (3, 3)), "JPEG")).mode == "CMYK"


def test_probe_counts_animation_frames() -> None:
    info = probe(animated_gif(frames=3))

    assert (info.format, info.frames) == ("GIF", 3)


def test_multi_picture_jpeg_is_reported_as_one_jpeg() -> None:
    primary, preview = noise((64, 48)), noise((16, 12))
    data = to_bytes(primary, "MPO", save_all=True, append_images=[preview])
    assert Image.open(io.BytesIO(data)).format == "MPO"  # what Pillow calls it

    info = probe(data)

    assert (info.format, info.width, info.height, info.frames) == ("JPEG", 64, 48, 1)


def test_declared_size_beyond_pillows_bomb_limit_is_a_decompression_bomb() -> None:
    with pytest.raises(PermanentError) as caught:
        probe(png_declaring(100_000, 100_000))
    assert caught.value.reason is Reason.DECOMPRESSION_BOMB


def test_sniff_format_copes_with_very_short_prefixes() -> None:
    assert sniff_format(b"") is None
    assert sniff_format(b"\xff") is None
    assert sniff_format(b"\xff\xd8\xff") == "JPEG"


# --- weak signatures ------------------------------------------------------------------
def test_text_starting_with_bm_is_not_a_bmp() -> None:
    data = b"BMW service history\n" * 20

    assert sniff_format(data) is None
    with pytest.raises(PermanentError) as caught:
        probe(data)
    assert caught.value.reason is Reason.UNSUPPORTED_FORMAT


def test_a_real_bmp_is_still_a_bmp() -> None:
    for mode in ("1", "L", "P", "RGB", "RGBA"):
        data = to_bytes(noise((9, 7)).convert(mode), "BMP")
        assert sniff_format(data[:SNIFF_BYTES]) == "BMP", mode


def test_heif_brands_are_not_taken_for_avif() -> None:
    avif = to_bytes(noise((8, 8)), "AVIF")
    heic = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicmiaf" + bytes(40)

    assert sniff_format(avif[:SNIFF_BYTES]) == "AVIF"
    assert sniff_format(heic) == ("HEIF" if "HEIF" in ALLOWED_FORMATS else None)


# --- probing a prefix -----------------------------------------------------------------
@pytest.mark.parametrize("format", ["JPEG", "PNG", "GIF", "BMP", "TIFF"])
def test_probe_header_reads_dimensions_from_a_prefix(format: str) -> None:
    data = to_bytes(noise((640, 480)), format)
    assert len(data) > 8192

    info = probe_header(data[:4096])

    assert info is not None
    assert (info.format, info.width, info.height) == (format, 640, 480)


@pytest.mark.parametrize("format", ["WEBP", "AVIF"])
def test_probe_header_cannot_tell_for_webp_and_avif(format: str) -> None:
    data = to_bytes(noise((640, 480)), format)

    assert probe_header(data[: len(data) // 2]) is None
    assert probe_header(data, complete=True) == probe(data)


def test_probe_header_returns_none_when_jpeg_metadata_fills_the_prefix() -> None:
    # A 60 KB ICC profile comes before the frame header.
    profile = bytearray(swapped_primaries_profile())
    big_profile = bytes(profile) + bytes(60_000)
    data = to_bytes(noise((64, 48)), "JPEG", icc_profile=big_profile)

    assert probe_header(data[:4096]) is None
    info = probe_header(data, complete=True)
    assert info is not None and info.width == 64


def test_probe_header_of_a_gif_prefix_counts_a_lower_bound_of_frames() -> None:
    data = animated("GIF", animation_frames(20))

    partial = probe_header(data[: len(data) // 2])
    whole = probe_header(data, complete=True)

    assert partial is not None and whole is not None
    assert 1 <= partial.frames < 20 and not partial.frames_exact
    assert (whole.frames, whole.frames_exact) == (20, True)


def test_probe_header_knows_apng_frames_from_the_header() -> None:
    data = animated("PNG", animation_frames(7))

    info = probe_header(data[:200])

    assert info is not None and (info.frames, info.frames_exact) == (7, True)


def test_probe_header_refuses_non_images_from_the_first_bytes() -> None:
    with pytest.raises(PermanentError) as caught:
        probe_header(b"%PDF-1.7\n" + bytes(100))
    assert caught.value.reason is Reason.UNSUPPORTED_FORMAT


def test_probe_header_needs_enough_bytes_to_say_unsupported() -> None:
    assert probe_header(b"%PDF") is None
    assert probe_header(b"") is None


# --- limits ---------------------------------------------------------------------------
def info(width: int = 100, height: int = 100, frames: int = 1, exact: bool = True) -> ImageInfo:
    return ImageInfo("GIF", width, height, "P", frames, exact)


def test_check_limits_pixels() -> None:
    check_limits(info(100, 100), max_pixels=10_000)
    with pytest.raises(PermanentError) as caught:
        check_limits(info(100, 101), max_pixels=10_000)
    assert caught.value.reason is Reason.TOO_LARGE


def test_check_limits_frames_only_when_preserving() -> None:
    preserve = Animation(policy="preserve", max_frames=10)

    check_limits(info(frames=500), max_pixels=10**6)  # a still needs one frame
    check_limits(info(frames=500), max_pixels=10**6, animation=Animation(max_frames=10))
    check_limits(info(frames=10), max_pixels=10**6, animation=preserve)
    with pytest.raises(PermanentError) as caught:
        check_limits(info(frames=11, exact=False), max_pixels=10**6, animation=preserve)
    assert caught.value.reason is Reason.TOO_MANY_FRAMES
    assert "at least 11 frames" in caught.value.detail


def test_check_limits_total_pixels() -> None:
    budget = Animation(policy="preserve", max_total_pixels=100_000)

    check_limits(info(frames=10), max_pixels=10**6, animation=budget)
    with pytest.raises(PermanentError) as caught:
        check_limits(info(frames=11), max_pixels=10**6, animation=budget)
    assert caught.value.reason is Reason.TOO_MANY_FRAMES


def test_a_configured_limit_above_pillows_bomb_ceiling_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Restored after the test: the pipeline only ever raises this process-wide setting.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)
    data = png_declaring(15_000, 15_000)  # 225 MP: above Pillow's 179 MP ceiling

    with pytest.raises(PermanentError) as caught:
        probe(data)
    assert caught.value.reason is Reason.DECOMPRESSION_BOMB

    assert probe(data, max_pixels=250_000_000).width == 15_000
    assert Image.MAX_IMAGE_PIXELS == 250_000_000
    # Lower limits never lower the ceiling for others, and twice it is still a bomb.
    probe(data, max_pixels=1_000_000)
    assert Image.MAX_IMAGE_PIXELS == 250_000_000
    with pytest.raises(PermanentError) as caught:
        probe(png_declaring(30_000, 30_000), max_pixels=250_000_000)
    assert caught.value.reason is Reason.DECOMPRESSION_BOMB

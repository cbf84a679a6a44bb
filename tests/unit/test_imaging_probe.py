"""Format detection from bytes alone, and the reasons for rejecting an upload."""

from __future__ import annotations

import io
import random

import pytest
from imaging_factory import animated_gif, noise, png_declaring, to_bytes
from PIL import Image

from prism.errors import PermanentError, Reason
from prism.imaging import ALLOWED_FORMATS, SNIFF_BYTES, probe, sniff_format

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

"""Conformance: broken, disguised and hostile uploads are refused with the right reason.

Never a crash, never a grey half-image, never a decoder outside the allow-list. Reasons
in ``SKIP_REASONS`` (not an image for us) are recorded as skipped, the rest as failed.
"""

from __future__ import annotations

import random

import pytest
from imaging_factory import animated, animation_frames, noise, png_declaring, to_bytes
from PIL import ImageFile

from prism.config import Variant
from prism.errors import PermanentError, Reason
from prism.imaging import decode_source, probe, probe_header, sniff_format

LIMIT = 50_000_000
VARIANTS = [Variant(name="v", animation={"policy": "preserve"})]  # type: ignore[arg-type]


def refusal(data: bytes) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        decode_source(data, max_pixels=LIMIT, variants=VARIANTS)
    return caught.value


@pytest.mark.parametrize("format", ["JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files_are_refused_not_padded(format: str, keep: float) -> None:
    data = to_bytes(noise((120, 90)), format)

    error = refusal(data[: int(len(data) * keep)])

    assert error.reason in (Reason.TRUNCATED, Reason.CORRUPT)
    assert not error.skipped


def test_truncated_animation_keeps_its_first_frame_only_as_a_still() -> None:
    data = animated("GIF", animation_frames(8))
    cut = data[: len(data) // 2]
    # The header still declares frames Pillow can find; which ones decode is found out
    # per frame (see test_conformance_animation). The first is intact.
    source = decode_source(cut, max_pixels=LIMIT, variants=[Variant(name="v")])
    assert source.image.size == (40, 30)


@pytest.mark.xfail(
    strict=True,
    reason="libjpeg only warns when a scan ends at an early EOI marker and fills the rest "
    "with grey; Pillow does not surface its warnings (python-pillow/Pillow#9106)",
)
def test_jpeg_ending_early_with_an_end_marker_is_refused() -> None:
    data = bytearray(to_bytes(noise((64, 64)), "JPEG"))
    start = data.index(b"\xff\xda") + 20  # inside the entropy-coded scan
    data[start:] = b"\xff\xd9"  # end of image right away: most of the scan is missing

    assert refusal(bytes(data)).reason in (Reason.TRUNCATED, Reason.CORRUPT)


@pytest.mark.parametrize("side", [65_535, 100_000])
def test_huge_declared_dimensions_are_refused_from_the_header(
    side: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pixels(*args: object) -> None:
        raise AssertionError("pixel memory was allocated")

    # Pillow allocates pixel memory when it loads an image: refuse before that.
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_pixels)
    monkeypatch.setattr(ImageFile.ImageFile, "load_prepare", no_pixels)

    assert refusal(png_declaring(side, side)).reason is Reason.DECOMPRESSION_BOMB


def test_declared_size_over_the_configured_limit_is_too_large() -> None:
    with pytest.raises(PermanentError) as caught:
        decode_source(png_declaring(8000, 8000), max_pixels=10_000_000)
    assert caught.value.reason is Reason.TOO_LARGE


NOT_IMAGES = {
    "text": b"Just some notes.\nNot an image at all.\n" * 5,
    "text-starting-with-BM": b"BMW service history, 2019-2024\n" * 10,
    "bm-with-a-bogus-header": b"BM" + bytes(100),
    "random-bytes": random.Random(7).randbytes(4096),
    "pdf": b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n",
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64),
    "zip": b"PK\x03\x04" + bytes(60),
}


@pytest.mark.parametrize("name", sorted(NOT_IMAGES))
def test_non_images_are_unsupported_and_skipped(name: str) -> None:
    data = NOT_IMAGES[name]

    error = refusal(data)

    assert error.reason is Reason.UNSUPPORTED_FORMAT
    assert error.skipped
    assert sniff_format(data) is None


def heif_with_brands(major: bytes, compatible: bytes) -> bytes:
    """The start of an ISO-BMFF (HEIF/AVIF family) file: an ``ftyp`` box, then junk."""
    box = major + b"\x00\x00\x00\x00" + compatible
    return (8 + len(box)).to_bytes(4, "big") + b"ftyp" + box + b"\x00\x00\x00\x08meta" + bytes(200)


@pytest.mark.parametrize(
    ("major", "compatible"),
    [(b"heic", b"mif1heic"), (b"mif1", b"mif1heicmiaf"), (b"msf1", b"msf1hevc")],
    ids=["heic", "mif1-heic", "msf1-hevc"],
)
def test_heif_is_unsupported_not_corrupt_without_the_optional_reader(
    major: bytes, compatible: bytes
) -> None:
    from prism.imaging import HEIF_SUPPORTED

    if HEIF_SUPPORTED:
        pytest.skip("pillow-heif is installed: HEIF is a supported format here")
    data = heif_with_brands(major, compatible)

    assert refusal(data).reason is Reason.UNSUPPORTED_FORMAT


def test_avif_brands_with_a_broken_body_are_corrupt() -> None:
    data = heif_with_brands(b"avif", b"mif1avifmiaf")

    error = refusal(data)

    assert sniff_format(data) == "AVIF"
    assert error.reason is Reason.CORRUPT


@pytest.mark.parametrize("format", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF", "TIFF"])
def test_a_wrong_extension_does_not_matter(format: str) -> None:
    # Uploads are identified by content only: "photo.jpg" holding a PNG is a PNG.
    data = to_bytes(noise((20, 10)), format)

    assert probe(data).format == format
    assert decode_source(data, max_pixels=LIMIT).image.size == (20, 10)


def test_prefix_probe_refuses_a_bomb_before_download() -> None:
    prefix = png_declaring(100_000, 100_000)[:64]

    with pytest.raises(PermanentError) as caught:
        probe_header(prefix)
    assert caught.value.reason is Reason.DECOMPRESSION_BOMB


def test_empty_file() -> None:
    assert refusal(b"").reason is Reason.EMPTY_FILE

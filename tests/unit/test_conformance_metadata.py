"""Conformance: outputs carry no EXIF, GPS, XMP, IPTC, comments or profile by default;
a variant can keep the EXIF Copyright and Artist; the stripped kinds are reported."""

from __future__ import annotations

from typing import Any

import pytest
from imaging_factory import OUTPUT_FORMATS, noise, open_bytes, srgb_profile, to_bytes
from PIL import ExifTags, Image, PngImagePlugin

from prism.config import Variant, parse_config
from prism.imaging import decode_source, render_variant

LIMIT = 10**7
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
# What Pillow can write an EXIF block into; GIF and BMP have no place for one.
EXIF_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF")


def camera_exif(*, owner: bool = True) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Camera Maker"
    exif[ExifTags.Base.Model] = "Model X"
    exif[ExifTags.Base.Orientation] = 1
    if owner:
        exif[ExifTags.Base.Copyright] = "(c) 2026 Ann Example"
        exif[ExifTags.Base.Artist] = "Ann Example"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 1.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 2.0)
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "2026:05:01 12:00:00"
    details[ExifTags.Base.BodySerialNumber] = "SN-123456"
    return exif.tobytes()


def phone_photo(**exif: Any) -> bytes:
    """A JPEG with everything a phone or editor leaves in it."""
    return to_bytes(
        noise((48, 32)),
        "JPEG",
        exif=camera_exif(**exif),
        xmp=XMP,
        comment=b"shot at home",
        icc_profile=srgb_profile(),
    )


def render(data: bytes, **fields: Any) -> tuple[Image.Image, tuple[str, ...]]:
    variant = Variant.model_validate({"name": "v", **fields})
    source = decode_source(data, max_pixels=LIMIT, variants=[variant])
    rendered = render_variant(source, variant, None)
    return open_bytes(rendered.data), rendered.stripped


def assert_no_metadata(image: Image.Image) -> None:
    exif = image.getexif()
    assert dict(exif) == {}
    assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
    for key in ("exif", "xmp", "icc_profile", "comment", "photoshop"):
        assert key not in image.info, key
    assert not getattr(image, "text", None)


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
def test_default_strips_everything_and_says_so(format: str) -> None:
    image, stripped = render(phone_photo(), format=format)

    assert_no_metadata(image)
    assert stripped == ("exif", "gps", "xmp", "icc", "comment")


@pytest.mark.parametrize("format", EXIF_FORMATS)
def test_copyright_and_artist_can_be_kept(format: str) -> None:
    image, stripped = render(
        phone_photo(), format=format, metadata={"keep": ["copyright", "artist"]}
    )

    exif = image.getexif()
    assert dict(exif) == {
        ExifTags.Base.Copyright: "(c) 2026 Ann Example",
        ExifTags.Base.Artist: "Ann Example",
    }
    assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert "xmp" not in image.info and "comment" not in image.info
    # The camera fields went, so EXIF is still reported (in part) stripped.
    assert stripped == ("exif", "gps", "xmp", "icc", "comment")


def test_keeping_only_copyright_drops_the_artist() -> None:
    image, _ = render(phone_photo(), format="JPEG", metadata={"keep": ["copyright"]})

    assert dict(image.getexif()) == {ExifTags.Base.Copyright: "(c) 2026 Ann Example"}


@pytest.mark.parametrize("format", ["GIF", "BMP"])
def test_formats_without_exif_keep_nothing(format: str) -> None:
    image, stripped = render(phone_photo(), format=format, metadata={"keep": ["copyright"]})

    assert_no_metadata(image)
    assert "exif" in stripped


def test_exif_is_not_reported_stripped_when_all_of_it_was_kept() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Copyright] = "(c) Ann"
    data = to_bytes(noise((16, 16)), "JPEG", exif=exif.tobytes())

    _, kept = render(data, metadata={"keep": ["copyright"]})
    _, dropped = render(data)

    assert kept == ()
    assert dropped == ("exif",)


def test_plain_image_reports_nothing_stripped() -> None:
    _, stripped = render(to_bytes(noise((16, 16)), "PNG"))

    assert stripped == ()


def test_png_text_and_xmp_chunks_are_stripped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "private note")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    data = to_bytes(noise((16, 16)), "PNG", pnginfo=info, exif=camera_exif())

    image, stripped = render(data, format="PNG")

    assert_no_metadata(image)
    assert stripped == ("exif", "gps", "xmp", "comment")


def test_keep_is_inherited_from_the_pipeline_and_overridable() -> None:
    config = parse_config(
        """
        metadata: {keep: [copyright, artist]}
        variants:
          - {name: inherits}
          - {name: strips, metadata: {keep: []}}
        """
    )
    inherits, strips = config.variants
    source = decode_source(phone_photo(), max_pixels=LIMIT, variants=config.variants)

    kept = open_bytes(render_variant(source, inherits, None).data).getexif()
    stripped = open_bytes(render_variant(source, strips, None).data).getexif()

    assert set(kept) == {ExifTags.Base.Copyright, ExifTags.Base.Artist}
    assert dict(stripped) == {}

"""Still WebPs decoded by libwebp into one buffer (``webp_still``): the same pixels as
Pillow's reader, everything Pillow's reader declines left to it."""

from __future__ import annotations

import sys

import pytest
from imaging_factory import (
    adobe_rgb_profile,
    animated,
    animation_frames,
    half_transparent,
    noise,
    to_bytes,
)
from PIL import Image, ImageChops

from prism.config import Thumbnail, Variant
from prism.errors import PermanentError, Reason
from prism.imaging import decode, decode_source
from prism.imaging.probe import open_image
from prism.imaging.webp_still import (
    LOSSLESS_FACTOR,
    LOSSY_ALPHA_FACTOR,
    LOSSY_FACTOR,
    PILLOW_READER_FACTOR,
    can_decode_still,
    decode_still,
    footprint_factor,
)

LIMIT = 50_000_000
# ``prism.imaging`` exports a function named ``decode``, which hides the module's name.
DECODE_MODULE = sys.modules["prism.imaging.decode"]

pytestmark = pytest.mark.skipif(
    not can_decode_still(), reason="this Pillow's WebP module does not expose libwebp"
)


def _variants() -> list[Variant]:
    # Rendered from 120 px at most: a larger picture is shrunk (band by band) first.
    return [
        Variant(name="v", transforms=[Thumbnail(op="fit", width=120, height=120)], format="JPEG")
    ]


def _photo(size: tuple[int, int] = (300, 200)) -> Image.Image:
    return Image.merge(
        "RGB",
        (
            noise(size, "L"),
            Image.linear_gradient("L").resize(size),
            noise(size, "L").transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        ),
    )


def _with_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(image.size))
    return rgba


def _orientation(turn: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = turn
    return exif.tobytes()


STILLS = {
    "lossy": to_bytes(_photo(), "WEBP", quality=80),
    "lossy with alpha": to_bytes(_with_alpha(_photo()), "WEBP", quality=80),
    "lossless": to_bytes(_photo(), "WEBP", lossless=True),
    "lossless with alpha": to_bytes(half_transparent((300, 200)), "WEBP", lossless=True),
    "turned by EXIF": to_bytes(_photo(), "WEBP", exif=_orientation(6)),
    "Adobe RGB profile": to_bytes(_photo(), "WEBP", icc_profile=adobe_rgb_profile()),
}


def _pillow_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DECODE_MODULE, "decode_still", lambda _data, _image: None)


@pytest.mark.parametrize("name", STILLS)
@pytest.mark.parametrize("how", ["decode", "decode_source"])
def test_the_pixels_are_pillows(name: str, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = STILLS[name]

    def read() -> Image.Image:
        if how == "decode":
            return decode(data, max_pixels=LIMIT)
        return decode_source(data, max_pixels=LIMIT, variants=_variants()).image

    ours = read()
    _pillow_reads(monkeypatch)
    pillows = read()

    assert (ours.mode, ours.size) == (pillows.mode, pillows.size)
    assert ImageChops.difference(ours, pillows).getbbox() is None
    if name == "turned by EXIF" and how == "decode":
        assert ours.size == (200, 300)  # upright


def test_the_picture_shares_one_buffer_in_the_mode_pillow_reads() -> None:
    opaque = open_image(STILLS["lossy"], max_pixels=LIMIT)
    clear = open_image(STILLS["lossy with alpha"], max_pixels=LIMIT)

    opaque_picture = decode_still(STILLS["lossy"], opaque)
    clear_picture = decode_still(STILLS["lossy with alpha"], clear)

    assert opaque_picture is not None and clear_picture is not None
    assert (opaque.mode, opaque_picture.mode) == ("RGB", "RGBX")
    assert (clear.mode, clear_picture.mode) == ("RGBA", "RGBA")
    assert opaque_picture.readonly and clear_picture.readonly  # the buffer, not a copy
    assert opaque_picture.info.keys() == opaque.info.keys()


def test_an_animation_is_left_to_pillow() -> None:
    data = animated("WEBP", animation_frames(3))
    image = open_image(data, max_pixels=LIMIT)

    assert decode_still(data, image) is None
    assert decode(data, max_pixels=LIMIT).size == animation_frames(3)[0].size  # frame one


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_still_is_refused_with_pillows_reason(keep: float) -> None:
    data = STILLS["lossy"]
    cut = data[: int(len(data) * keep)]

    with pytest.raises(PermanentError) as caught:
        decode_source(cut, max_pixels=LIMIT, variants=_variants())

    assert caught.value.reason in (Reason.TRUNCATED, Reason.CORRUPT)


def test_a_corrupt_still_is_refused() -> None:
    data = bytearray(STILLS["lossless"])
    data[40:400] = bytes(360)  # the lossless bitstream's transforms and codes, zeroed

    with pytest.raises(PermanentError) as caught:
        decode_source(bytes(data), max_pixels=LIMIT, variants=_variants())

    assert caught.value.reason in (Reason.TRUNCATED, Reason.CORRUPT)


def _factor(data: bytes) -> float:
    return footprint_factor(data, open_image(data, max_pixels=LIMIT))


def test_the_footprint_factor_follows_the_decoder_and_the_bitstream() -> None:
    assert _factor(STILLS["lossy"]) == LOSSY_FACTOR
    assert _factor(STILLS["lossy with alpha"]) == LOSSY_ALPHA_FACTOR
    assert _factor(STILLS["lossless"]) == LOSSLESS_FACTOR
    assert _factor(STILLS["lossless with alpha"]) == LOSSLESS_FACTOR
    assert _factor(animated("WEBP", animation_frames(2))) == PILLOW_READER_FACTOR

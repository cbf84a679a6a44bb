"""Admission: the object's size, and the header of a prefix, against the limits."""

from __future__ import annotations

import pytest
from imaging_factory import animated, animation_frames, noise, png_declaring, to_bytes

from prism.config import Animation, Limits, Thumbnail, Variant
from prism.errors import PermanentError, Reason
from prism.imaging import PROBE_BYTES, admit_header, check_size, decode_footprint

LIMITS = Limits(max_source_bytes=1000, max_source_pixels=10_000)


def test_check_size() -> None:
    check_size(None, LIMITS, "in/a.jpg")  # not known yet
    check_size(1000, LIMITS, "in/a.jpg")
    with pytest.raises(PermanentError) as caught:
        check_size(1001, LIMITS, "in/a.jpg")
    assert caught.value.reason is Reason.TOO_LARGE
    assert caught.value.detail == "in/a.jpg is 1001 bytes; the limit is 1000"
    with pytest.raises(PermanentError) as caught:
        check_size(0, LIMITS, "in/a.jpg")
    assert caught.value.reason is Reason.EMPTY_FILE


def test_admit_header_refuses_too_many_pixels_from_a_prefix() -> None:
    data = png_declaring(101, 100)

    admit_header(data, complete=True, limits=Limits(max_source_pixels=10_100), animation=None)
    with pytest.raises(PermanentError) as caught:
        admit_header(data, complete=True, limits=LIMITS, animation=None)
    assert caught.value.reason is Reason.TOO_LARGE


def test_admit_header_passes_when_the_prefix_cannot_tell() -> None:
    data = to_bytes(noise((640, 480)), "WEBP")  # 307,200 pixels: above the limit

    admit_header(data[: len(data) // 2], complete=False, limits=LIMITS, animation=None)


def test_admit_header_counts_frames_only_when_preserving() -> None:
    data = animated("PNG", animation_frames(7))
    assert len(data) < PROBE_BYTES

    admit_header(data, complete=True, limits=LIMITS, animation=None)
    with pytest.raises(PermanentError) as caught:
        admit_header(
            data,
            complete=True,
            limits=LIMITS,
            animation=Animation(policy="preserve", max_frames=6),
        )
    assert caught.value.reason is Reason.TOO_MANY_FRAMES


def _variant(preserve: bool = False) -> Variant:
    policy = Animation(policy="preserve" if preserve else "first_frame")
    return Variant(
        name="v",
        transforms=[Thumbnail(op="thumbnail", width=64, height=64)],
        format="WEBP",
        animation=policy,
    )


def test_the_decode_footprint_comes_from_the_header_and_the_format() -> None:
    image = noise((100, 50))
    png = decode_footprint(to_bytes(image, "PNG"), max_pixels=10_000, variants=[_variant()])
    webp = decode_footprint(to_bytes(image, "WEBP"), max_pixels=10_000, variants=[_variant()])
    animated_webp = decode_footprint(
        animated("WEBP", animation_frames(2)), max_pixels=100_000, variants=[_variant()]
    )
    assert png == int(100 * 50 * 4 * 1.25)
    # A still WebP is decoded into its own buffer (about 1-2x); an animated one, even for
    # its first frame only, by Pillow's reader (about 4x the decoded size).
    assert webp == int(100 * 50 * 4 * 1.3)  # lossy, no alpha
    frame = animation_frames(2)[0].size
    assert animated_webp == int(frame[0] * frame[1] * 4 * 4.1)


def test_the_decode_footprint_counts_frames_only_when_they_are_kept() -> None:
    gif = animated("GIF", animation_frames(4))
    still = decode_footprint(gif, max_pixels=100_000, variants=[_variant()])
    kept = decode_footprint(gif, max_pixels=100_000, variants=[_variant(preserve=True)])
    assert kept == 4 * still


def test_the_decode_footprint_refuses_what_decode_would() -> None:
    with pytest.raises(PermanentError) as caught:
        decode_footprint(b"not an image at all", max_pixels=10_000, variants=[_variant()])
    assert caught.value.reason is Reason.UNSUPPORTED_FORMAT
    with pytest.raises(PermanentError) as caught:
        decode_footprint(to_bytes(noise((200, 100)), "PNG"), max_pixels=10_000, variants=[])
    assert caught.value.reason is Reason.TOO_LARGE

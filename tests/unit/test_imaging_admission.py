"""Admission: the object's size, and the header of a prefix, against the limits."""

from __future__ import annotations

import pytest
from imaging_factory import animated, animation_frames, noise, png_declaring, to_bytes

from prism.config import Animation, Limits
from prism.errors import PermanentError, Reason
from prism.imaging import PROBE_BYTES, admit_header, check_size

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

"""Conformance: animated GIF, WebP, APNG and AVIF uploads follow the animation policy.

``first_frame`` (the default) gives a still of the first frame; ``preserve`` keeps every
frame, its duration and the loop count in GIF and WEBP outputs, with transforms and the
watermark applied to each frame. Frame limits are enforced from the header, before any
frame is decoded.
"""

from __future__ import annotations

from typing import Any

import pytest
from imaging_factory import RED, WHITE, animated, animation_frames, close, open_bytes, read_frames
from PIL import Image, ImageFile, WebPImagePlugin

from prism.config import Variant, Watermark
from prism.errors import PermanentError, Reason
from prism.imaging import decode_source, probe, render_variant
from support.images import pixel

LIMIT = 10**7
INPUT_FORMATS = ("GIF", "WEBP", "PNG", "AVIF")
PRESERVE = {"policy": "preserve"}


def variant(**fields: Any) -> Variant:
    return Variant.model_validate({"name": "v", "quality": 90, **fields})


def render(data: bytes, spec: Variant, watermark: Watermark | None = None) -> bytes:
    source = decode_source(data, max_pixels=LIMIT, variants=[spec])
    return render_variant(source, spec, watermark).data


def red_square_x(frame: Any, y: int = 8) -> int:
    """Left edge of the red square (in row ``y``) of an RGBA frame."""
    for x in range(frame.width):
        r, g, b, a = frame.getpixel((x, y))
        if a > 128 and r > 180 and g < 80 and b < 80:
            return x
    raise AssertionError("no red square")


@pytest.mark.parametrize("input_format", INPUT_FORMATS)
def test_probe_counts_frames_from_the_header(input_format: str) -> None:
    info = probe(animated(input_format, animation_frames(5)))

    assert (info.frames, info.width, info.height) == (5, 40, 30)


@pytest.mark.parametrize("output_format", ["GIF", "WEBP"])
@pytest.mark.parametrize("input_format", INPUT_FORMATS)
def test_preserve_keeps_frames_durations_and_loop(input_format: str, output_format: str) -> None:
    data = animated(input_format, animation_frames(4), durations=[100, 200, 300, 400], loop=0)

    output = render(data, variant(format=output_format, animation=PRESERVE))

    frames = read_frames(output)
    assert [duration for _, duration in frames] == [100, 200, 300, 400]
    assert [red_square_x(frame) for frame, _ in frames] == [0, 6, 12, 18]
    assert open_bytes(output).info.get("loop") == 0


@pytest.mark.parametrize("output_format", ["GIF", "WEBP"])
def test_transforms_apply_to_every_frame(output_format: str) -> None:
    data = animated("GIF", animation_frames(3, size=(80, 60)))
    spec = variant(
        format=output_format,
        animation=PRESERVE,
        transforms=[
            {"op": "thumbnail", "width": 40, "height": 40},
            {"op": "flip", "direction": "horizontal"},
        ],
    )

    frames = read_frames(render(data, spec))

    assert [frame.size for frame, _ in frames] == [(40, 30)] * 3
    # Halved and mirrored: the square's right edge moves left from x = 40 - 4.
    assert [red_square_x(frame, y=4) for frame, _ in frames] == [36, 33, 30]


@pytest.mark.parametrize("output_format", ["GIF", "WEBP"])
def test_watermark_is_on_every_frame_in_the_same_place(output_format: str) -> None:
    data = animated("GIF", animation_frames(3, size=(120, 90)))
    spec = variant(format=output_format, animation=PRESERVE)
    mark = Watermark(text="Prism", opacity=1.0, scale=0.2, color="black", position="bottom-left")

    frames = read_frames(render(data, spec, mark))

    corners = [frame.crop((0, 45, 60, 90)).convert("L") for frame, _ in frames]
    darkest = [corner.getextrema()[0] for corner in corners]
    assert all(isinstance(value, int) and value < 60 for value in darkest)  # dark ink on white
    assert all(corner.tobytes() == corners[0].tobytes() for corner in corners)


@pytest.mark.parametrize("input_format", ["GIF", "WEBP", "PNG"])
def test_transparent_animation_keeps_clear_pixels_clear(input_format: str) -> None:
    data = animated(input_format, animation_frames(3, alpha=True))

    for output_format in ("GIF", "WEBP"):
        frames = read_frames(render(data, variant(format=output_format, animation=PRESERVE)))
        for index, (frame, _) in enumerate(frames):
            # The square moved on: where it was in the previous frame is clear again.
            assert pixel(frame, (38, 25))[3] == 0, (output_format, index)
            assert red_square_x(frame) == 6 * index


@pytest.mark.parametrize("input_format", INPUT_FORMATS)
@pytest.mark.parametrize("output_format", ["GIF", "WEBP", "JPEG", "PNG"])
def test_first_frame_is_the_default(input_format: str, output_format: str) -> None:
    output = render(animated(input_format, animation_frames(4)), variant(format=output_format))

    image = open_bytes(output)
    assert getattr(image, "n_frames", 1) == 1
    pixel = image.convert("RGB").getpixel((4, 8))
    assert isinstance(pixel, tuple) and close(pixel, RED, 40)
    assert close(image.convert("RGB").getpixel((30, 20)), WHITE, 20)  # type: ignore[arg-type]


@pytest.mark.parametrize("output_format", ["JPEG", "PNG", "AVIF", "BMP"])
def test_preserve_gives_still_formats_the_first_frame(output_format: str) -> None:
    spec = variant(format=output_format, animation=PRESERVE)
    source = decode_source(animated("GIF", animation_frames(4)), max_pixels=LIMIT, variants=[spec])

    rendered = render_variant(source, spec, None)

    assert rendered.frames == 1
    assert getattr(open_bytes(rendered.data), "n_frames", 1) == 1


def test_rendered_variant_reports_the_frame_count() -> None:
    spec = variant(format="WEBP", animation=PRESERVE)
    source = decode_source(animated("GIF", animation_frames(5)), max_pixels=LIMIT, variants=[spec])

    assert render_variant(source, spec, None).frames == 5


def test_gif_without_a_loop_plays_once() -> None:
    data = animated("GIF", animation_frames(3), loop=None)

    gif = open_bytes(render(data, variant(format="GIF", animation=PRESERVE)))
    webp = open_bytes(render(data, variant(format="WEBP", animation=PRESERVE)))

    assert "loop" not in gif.info
    assert webp.info["loop"] == 1


@pytest.mark.parametrize("input_format", INPUT_FORMATS)
def test_too_many_frames_is_refused_before_decoding(
    input_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = animated(input_format, animation_frames(12))
    spec = variant(format="GIF", animation={"policy": "preserve", "max_frames": 10})

    def no_decoding(*args: object) -> None:
        raise AssertionError("a frame was decoded")

    for reader in (Image.Image, ImageFile.ImageFile, WebPImagePlugin.WebPImageFile):
        monkeypatch.setattr(reader, "load", no_decoding)
    with pytest.raises(PermanentError) as caught:
        decode_source(data, max_pixels=LIMIT, variants=[spec])

    assert caught.value.reason is Reason.TOO_MANY_FRAMES
    assert "12 frames" in caught.value.detail


def test_total_pixel_budget_is_enforced() -> None:
    data = animated("GIF", animation_frames(10))  # 10 x 40 x 30 = 12,000 pixels
    spec = variant(format="GIF", animation={"policy": "preserve", "max_total_pixels": 11_999})

    with pytest.raises(PermanentError) as caught:
        decode_source(data, max_pixels=LIMIT, variants=[spec])

    assert caught.value.reason is Reason.TOO_MANY_FRAMES


def test_frame_limits_do_not_apply_to_first_frame_stills() -> None:
    data = animated("GIF", animation_frames(12))
    spec = variant(animation={"policy": "first_frame", "max_frames": 10})

    source = decode_source(data, max_pixels=LIMIT, variants=[spec])

    assert source.frames is None and source.image.size == (40, 30)


def test_one_decode_serves_preserving_and_still_variants() -> None:
    data = animated("WEBP", animation_frames(3))
    moving = variant(name="moving", format="WEBP", animation=PRESERVE)
    still = variant(name="still", format="WEBP")
    source = decode_source(data, max_pixels=LIMIT, variants=[moving, still])

    assert render_variant(source, moving, None).frames == 3
    assert getattr(open_bytes(render_variant(source, still, None).data), "n_frames", 1) == 1


def test_a_broken_later_frame_fails_the_preserving_variant_only() -> None:
    data = animated("GIF", animation_frames(6))
    spec = variant(format="GIF", animation=PRESERVE)
    cut = data[: len(data) - 40]  # the last frame's data is cut short
    source = decode_source(cut, max_pixels=LIMIT, variants=[spec])  # first frame is intact

    with pytest.raises(PermanentError) as caught:
        render_variant(source, spec, None)
    assert caught.value.reason in (Reason.TRUNCATED, Reason.CORRUPT)
    assert render_variant(source, variant(format="PNG"), None).frames == 1


def test_preserve_inherited_by_still_formats_does_not_count_frames() -> None:
    # A pipeline-wide "preserve" also reaches its JPEG variants, which need one frame.
    spec = variant(format="JPEG", animation={"policy": "preserve", "max_frames": 10})

    source = decode_source(animated("GIF", animation_frames(12)), max_pixels=LIMIT, variants=[spec])

    assert source.frames is None

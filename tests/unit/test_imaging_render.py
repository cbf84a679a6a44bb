"""Rendering a variant end to end, from one shared source image."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from imaging_factory import (
    RED,
    animated,
    animation_frames,
    corners,
    noise,
    open_bytes,
    to_bytes,
)
from PIL import Image

from prism.config import Variant, Watermark, default_config
from prism.imaging import (
    RenderedVariant,
    combined_needed_size,
    decode,
    decode_source,
    needed_size,
    render_variant,
)


def variant(**fields: Any) -> Variant:
    return Variant.model_validate({"name": "v", **fields})


def snapshot(image: Image.Image) -> tuple[Any, ...]:
    return (image.mode, image.size, image.tobytes(), dict(image.info))


def test_render_returns_the_encoded_output_and_its_description() -> None:
    rendered = render_variant(
        noise((400, 300)),
        variant(transforms=[{"op": "thumbnail", "width": 256, "height": 256}], format="webp"),
        None,
    )

    assert isinstance(rendered, RenderedVariant)
    assert (rendered.width, rendered.height) == (256, 192)
    assert (rendered.format, rendered.content_type) == ("WEBP", "image/webp")
    image = open_bytes(rendered.data)
    assert (image.format, image.size) == ("WEBP", (256, 192))


WATERMARK = Watermark(text="Prism", opacity=1.0, scale=0.1)
LOGO = Image.new("RGBA", (20, 10), (*RED, 255))
CASES = [
    (variant(), None, None),
    (variant(format="PNG"), None, None),  # nothing to change: the source itself is encodable
    (variant(transforms=[{"op": "fit", "width": 500, "height": 500}], format="WEBP"), None, None),
    (variant(transforms=[{"op": "thumbnail", "width": 500, "height": 500}]), None, None),
    (
        variant(transforms=[{"op": "thumbnail", "width": 50, "height": 50}], format="PNG"),
        None,
        None,
    ),
    (variant(transforms=["grayscale", {"op": "rotate", "degrees": 90}], format="GIF"), None, None),
    (variant(transforms=[{"op": "blur", "sigma": 2}], format="AVIF"), WATERMARK, None),
    (variant(format="JPEG"), WATERMARK, None),
    (variant(format="BMP"), Watermark(image="logo.png", opacity=1.0), LOGO),
]


@pytest.mark.parametrize(("spec", "watermark", "logo"), CASES)
def test_render_does_not_modify_its_source(
    spec: Variant, watermark: Watermark | None, logo: Image.Image | None
) -> None:
    source = Image.new("RGBA", (120, 80), (0, 0, 0, 0))
    source.paste(corners((60, 80)).convert("RGBA"), (0, 0))
    before = snapshot(source)

    render_variant(source, spec, watermark, logo)

    assert snapshot(source) == before
    # Image.save stores its options on the image it saves: that must never be the source.
    assert not hasattr(source, "encoderinfo")


def test_watermark_is_applied() -> None:
    source = noise((300, 200))
    spec = variant(format="PNG")

    plain = open_bytes(render_variant(source, spec, None).data)
    marked = open_bytes(render_variant(source, spec, WATERMARK).data)

    assert plain.tobytes() == source.tobytes()
    assert marked.tobytes() != source.tobytes()
    assert marked.crop((0, 0, 150, 100)).tobytes() == source.crop((0, 0, 150, 100)).tobytes()


def test_parallel_renders_of_one_source_match_sequential_ones() -> None:
    source = decode(to_bytes(noise((640, 480)), "JPEG"), max_pixels=10**7)
    variants = [
        variant(name=f"v{i}", format=fmt, quality=quality, transforms=transforms)
        for i, (fmt, quality, transforms) in enumerate(
            [
                ("JPEG", 80, [{"op": "thumbnail", "width": 256, "height": 256}]),
                ("JPEG", 60, []),
                ("WEBP", 85, [{"op": "resize", "width": 300, "height": 300}]),
                ("PNG", 85, ["grayscale"]),
                ("JPEG", 95, []),
                ("WEBP", 50, []),
            ]
        )
    ]
    expected = [render_variant(source, v, WATERMARK).data for v in variants]

    with ThreadPoolExecutor(max_workers=len(variants)) as pool:
        for _ in range(3):
            results = list(pool.map(lambda v: render_variant(source, v, WATERMARK).data, variants))
            assert results == expected


def test_default_pipeline_from_one_decode() -> None:
    config = default_config()
    data = to_bytes(noise((3000, 2000)), "JPEG", quality=85)
    size = combined_needed_size(needed_size(v.transforms) for v in config.variants)
    source = decode(data, max_pixels=config.limits.max_source_pixels, needed_size=size)

    outputs = {
        v.name: render_variant(source, v, config.effective_watermark(v)) for v in config.variants
    }

    assert {name: (r.width, r.height, r.format) for name, r in outputs.items()} == {
        "thumbnail": (256, 171, "JPEG"),
        "web": (1280, 853, "WEBP"),
        "large": (1920, 1280, "JPEG"),
    }


def test_an_image_passed_directly_is_rendered_as_a_plain_still() -> None:
    rendered = render_variant(noise((40, 30)), variant(format="PNG"), None)

    assert (rendered.width, rendered.height, rendered.frames, rendered.stripped) == (
        40,
        30,
        1,
        (),
    )


def test_decode_source_serves_every_variant_from_one_decode() -> None:
    variants = [
        variant(name="cover", transforms=[{"op": "cover", "width": 100, "height": 100}]),
        variant(name="fit", transforms=[{"op": "fit", "width": 400, "height": 400}]),
    ]
    data = to_bytes(noise((2000, 1000)), "JPEG", quality=70)

    source = decode_source(data, max_pixels=10**7, variants=variants)

    # Kept at the largest size a variant renders from: the fit's 400x200, which also
    # covers the cover's need (200x100). Decoded at 1/4 (500x250), then shrunk.
    assert source.image.size == (400, 200)
    assert source.upright_size == (2000, 1000)
    assert source.info.width == 2000 and source.frames is None
    sizes = [render_variant(source, v, None) for v in variants]
    assert [(r.width, r.height) for r in sizes] == [(100, 100), (400, 200)]


def test_render_does_not_modify_an_animated_source() -> None:
    spec = variant(format="GIF", animation={"policy": "preserve"})
    source = decode_source(animated("GIF", animation_frames(3)), max_pixels=10**7, variants=[spec])
    before = snapshot(source.image)

    for _ in range(2):
        assert render_variant(source, spec, WATERMARK).frames == 3

    assert snapshot(source.image) == before


def test_parallel_animated_renders_match() -> None:
    specs = [
        variant(name=f"v{i}", format=fmt, animation={"policy": "preserve"}, transforms=t)
        for i, (fmt, t) in enumerate(
            [
                ("GIF", []),
                ("WEBP", [{"op": "cover", "width": 20, "height": 20}]),
                ("GIF", ["grayscale"]),
            ]
        )
    ]
    source = decode_source(animated("WEBP", animation_frames(4)), max_pixels=10**7, variants=specs)
    expected = [render_variant(source, s, WATERMARK).data for s in specs]

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert (
            list(pool.map(lambda s: render_variant(source, s, WATERMARK).data, specs)) == expected
        )

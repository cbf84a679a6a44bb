"""Decoding reduced: the size each variant needs, the one image kept for all of them,
and the band-by-band shrink that keeps large uploads from being copied whole."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from imaging_factory import corners, noise, to_bytes, with_orientation
from PIL import Image, ImageChops, ImageFilter, ImageStat
from pydantic import TypeAdapter

from prism.config import Transform, Variant, default_config
from prism.imaging import (
    apply_transforms,
    decode,
    decode_source,
    fit_size,
    geometry,
    normalize_mode,
    render_variant,
)
from prism.imaging.transforms import reduced_size

_TRANSFORMS = TypeAdapter(list[Transform])
LIMIT = 10**8


def ops(*items: dict[str, Any] | str) -> list[Transform]:
    return _TRANSFORMS.validate_python([{"op": i} if isinstance(i, str) else i for i in items])


def variant(name: str, *transforms: dict[str, Any] | str, **fields: Any) -> Variant:
    return Variant.model_validate(
        {"name": name, "transforms": [{"op": t} if isinstance(t, str) else t for t in transforms]}
        | fields
    )


def fit(width: int, height: int, **extra: Any) -> dict[str, Any]:
    return {"op": "fit", "width": width, "height": height, **extra}


def smooth(size: tuple[int, int]) -> Image.Image:
    """A large picture that is quick to make, encode and decode."""
    return Image.linear_gradient("L").resize(size).convert("RGB")


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size and a.mode == b.mode
    return statistics.fmean(ImageStat.Stat(ImageChops.difference(a, b)).mean)


# --- what each variant needs ----------------------------------------------------------
@pytest.mark.parametrize(
    ("transforms", "expected"),
    [
        ([fit(1920, 1920)], (1920, 1440)),  # its output, not the box
        ([fit(256, 256)], (256, 192)),
        ([fit(1920, 1920, upscale=True)], (1920, 1440)),
        ([fit(9000, 9000, upscale=True)], None),  # larger than the picture: all of it
        ([fit(9000, 9000)], None),
        ([{"op": "contain", "width": 400, "height": 400}], (400, 300)),
        ([{"op": "cover", "width": 400, "height": 400}], (534, 400)),  # covers the box
        ([{"op": "cover", "width": 800, "height": 100}], (800, 600)),
        ([{"op": "resize", "width": 300, "height": 100}], (300, 225)),
        ([{"op": "rotate", "degrees": 90}, fit(100, 400)], (133, 100)),  # 100x133 upright
        (["grayscale", {"op": "flip", "direction": "vertical"}, fit(800, 800)], (800, 600)),
        ([{"op": "blur", "sigma": 2}, fit(256, 256)], None),  # the radius is in pixels
        ([fit(256, 256), {"op": "sharpen"}], (256, 192)),
        ([], None),
        (["grayscale"], None),
    ],
)
def test_reduced_size_of_an_8000x6000_picture(
    transforms: list[Any], expected: tuple[int, int] | None
) -> None:
    assert reduced_size(ops(*transforms), (8000, 6000)) == expected


def test_a_thumbnail_of_a_reduced_copy_has_the_pictures_dimensions() -> None:
    # 2725x2225 fits 256x256 as 256x209; a 1363x1113 copy on its own would give 256x209
    # too, but a 1000x817 one 256x209 and a 999x815 one 256x209 (rounding): the size
    # given wins, whatever the copy's own rounding.
    for copy in [(1363, 1113), (1000, 817), (999, 815), (2000, 1632)]:
        result = apply_transforms(noise(copy), ops(fit(256, 256)), size=(2725, 2225))
        assert result.size == fit_size((2725, 2225), (256, 256))


def test_the_size_given_turns_with_a_rotation() -> None:
    result = apply_transforms(
        noise((400, 300)), ops({"op": "rotate", "degrees": 90}, fit(100, 100)), size=(4000, 3000)
    )

    assert result.size == fit_size((3000, 4000), (100, 100))


# --- one decode, kept at the largest variant's size -----------------------------------
def test_default_pipeline_keeps_the_large_variants_size() -> None:
    variants = default_config().variants
    data = to_bytes(smooth((4000, 3000)), "JPEG", quality=80)

    source = decode_source(data, max_pixels=LIMIT, variants=variants)

    # 1920x1440 is the largest output; the JPEG is decoded at 1/2 (2000x1500), then shrunk.
    assert source.image.size == (1920, 1440)
    assert source.upright_size == (4000, 3000)
    sizes = [render_variant(source, v, None) for v in variants]
    assert [(r.width, r.height) for r in sizes] == [(256, 192), (1280, 960), (1920, 1440)]


def test_jpeg_draft_is_chosen_from_the_output_not_the_box(monkeypatch: pytest.MonkeyPatch) -> None:
    drafted: list[tuple[int, int]] = []
    original = Image.Image.resize

    def spy(self: Image.Image, size: Any, *args: Any, **kwargs: Any) -> Image.Image:
        drafted.append(self.size)
        return original(self, size, *args, **kwargs)

    data = to_bytes(smooth((4000, 3000)), "JPEG", quality=80)
    monkeypatch.setattr(Image.Image, "resize", spy)

    decode_source(data, max_pixels=LIMIT, variants=[variant("v", fit(900, 900))])

    # A 900x900 box needs 900x675 of this picture: the 1/4 scale (1000x750) has it.
    assert drafted[0] == (1000, 750)


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_sideways_jpeg_is_drafted_and_shrunk_in_its_stored_orientation(
    orientation: int,
) -> None:
    data = with_orientation(noise((800, 400)), orientation)  # upright 400x800

    source = decode_source(data, max_pixels=LIMIT, variants=[variant("v", fit(100, 100))])

    assert source.image.size == (50, 100)
    assert source.upright_size == (400, 800)
    assert render_variant(source, variant("v", fit(100, 100)), None).height == 100


@pytest.mark.parametrize("format", ["PNG", "WEBP", "TIFF", "BMP", "GIF"])
def test_other_formats_are_shrunk_after_decoding(format: str) -> None:
    data = to_bytes(noise((600, 400)), format)

    source = decode_source(data, max_pixels=LIMIT, variants=[variant("v", fit(300, 300))])

    assert source.image.size == (300, 200)
    assert source.info.width == 600


def test_a_variant_that_needs_the_full_size_keeps_it_for_all() -> None:
    variants = [variant("small", fit(64, 64)), variant("same", format="PNG")]
    data = to_bytes(noise((400, 300)), "PNG")

    source = decode_source(data, max_pixels=LIMIT, variants=variants)

    assert source.image.size == (400, 300) and source.size is None


def test_decode_for_a_logo_is_not_shrunk() -> None:
    data = to_bytes(noise((600, 400)), "PNG")

    assert decode(data, max_pixels=LIMIT, needed_size=(10, 10)).size == (600, 400)


@pytest.mark.parametrize(
    "size", [(2725, 2225), (3000, 2000), (1999, 1001), (4032, 3024), (1080, 1920), (801, 799)]
)
def test_output_dimensions_do_not_depend_on_the_reduced_decode(size: tuple[int, int]) -> None:
    variants = [
        *default_config().variants,
        variant("square", {"op": "cover", "width": 300, "height": 300}),
        variant("banner", {"op": "contain", "width": 600, "height": 200}),
        variant("exact", {"op": "resize", "width": 333, "height": 111}),
    ]
    data = to_bytes(smooth(size), "JPEG", quality=70)
    full = decode(data, max_pixels=LIMIT)

    source = decode_source(data, max_pixels=LIMIT, variants=variants)

    if max(size) > 1920:  # the test means something: the decode was reduced
        assert source.image.size != full.size
    for spec in variants:
        # What ``render_variant`` encodes, without the encoding.
        reduced = apply_transforms(source.image, spec.transforms, size=source.size)
        assert reduced.size == apply_transforms(full, spec.transforms).size, spec.name


def test_rendering_a_source_unchanged_encodes_a_view_not_the_shared_image() -> None:
    spec = variant("same", format="PNG")
    source = decode_source(to_bytes(corners((60, 40)), "PNG"), max_pixels=LIMIT, variants=[spec])

    rendered = render_variant(source, spec, None)

    assert (rendered.width, rendered.height) == (60, 40)
    assert not hasattr(source.image, "encoderinfo")  # ``save`` never touched it


# --- the band-by-band shrink ----------------------------------------------------------
def _photo(mode: str = "RGB") -> Image.Image:
    """Noise softened like a photo's detail (raw noise makes Lanczos clip at every pixel,
    so the order of its two passes shows; real pictures do not)."""
    return noise((300, 200)).filter(ImageFilter.GaussianBlur(1.5)).convert(mode)


def _rgba() -> Image.Image:
    image = _photo("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((300, 200)))
    return image


def _palette() -> Image.Image:
    image = _photo().quantize(15)
    image.paste(15, (40, 30, 200, 120))  # a transparent window, as in a cut-out
    image.info["transparency"] = 15
    return image


def _colour_key() -> Image.Image:
    image = _photo()
    image.paste((0, 0, 0), (40, 30, 200, 120))
    image.info["transparency"] = (0, 0, 0)
    return image


def _sixteen_bit() -> Image.Image:
    return (
        Image.linear_gradient("L")
        .resize((300, 200))
        .convert("I")
        .point(lambda v: v * 257)
        .convert("I;16")
    )


@pytest.mark.parametrize(
    ("name", "make", "convert"),
    [
        ("rgb", _photo, None),
        ("l", lambda: _photo("L"), None),
        ("cmyk", lambda: _photo("CMYK"), None),
        ("rgba", _rgba, None),
        ("la", lambda: _rgba().convert("LA"), None),
        ("palette", _palette, normalize_mode),
        ("colour key", _colour_key, normalize_mode),
        ("16-bit", _sixteen_bit, normalize_mode),
    ],
)
@pytest.mark.parametrize("target", [(150, 100), (97, 61), (20, 13), (299, 199)])
def test_shrinking_in_bands_matches_one_piece(
    name: str,
    make: Any,
    convert: Any,
    target: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = make()
    whole = geometry.resize(convert(image) if convert else image, target)

    monkeypatch.setattr(geometry, "ONE_PIECE_PIXELS", 2_000)
    monkeypatch.setattr(geometry, "BAND_PIXELS", 2_000)  # bands of a few rows
    banded = geometry.shrink(image, target, convert)

    assert banded.size == target and banded.mode == whole.mode
    if "A" in whole.mode:  # colour under (almost) no alpha is noise: compare what shows
        banded, whole = banded.convert(whole.mode[:-1] + "a"), whole.convert(whole.mode[:-1] + "a")
    assert mean_difference(banded, whole) < 0.25, name
    assert image.size == (300, 200)  # the source is left alone


def test_small_images_are_shrunk_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    original = Image.Image.crop

    def crop(self: Image.Image, *args: Any) -> Image.Image:
        calls.append(args)
        return original(self, *args)

    monkeypatch.setattr(Image.Image, "crop", crop)

    geometry.shrink(_rgba(), (150, 100))

    assert calls == []  # below ONE_PIECE_PIXELS: no bands


def test_large_rgba_is_premultiplied_one_band_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    converted: list[tuple[int, int]] = []
    original = Image.Image.convert

    def spy(self: Image.Image, mode: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if mode == "RGBa":
            converted.append(self.size)
        return original(self, mode, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", spy)
    monkeypatch.setattr(geometry, "ONE_PIECE_PIXELS", 6_000)
    monkeypatch.setattr(geometry, "BAND_PIXELS", 6_000)

    geometry.shrink(_rgba(), (150, 100))

    assert len(converted) > 1
    assert all(height < 200 for _width, height in converted)  # never the whole image

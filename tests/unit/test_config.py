import pytest

from prism.config import ConfigError, Grayscale, Thumbnail, Watermark, default_config, parse_config


def test_default_config_has_thumbnail_and_web_variants() -> None:
    config = default_config()
    names = [variant.name for variant in config.variants]
    assert names[:2] == ["thumbnail", "web"]
    assert config.variants[0].format == "JPEG"
    assert config.variants[1].format == "WEBP"
    assert config.variants[0].transforms == [Thumbnail(op="thumbnail", width=256, height=256)]


def test_shorthand_transforms_and_format_aliases() -> None:
    config = parse_config(
        """
        variants:
          - name: grey
            format: jpg
            transforms: [grayscale, {op: fit, width: 10, height: 20}]
        """
    )
    variant = config.variants[0]
    assert variant.format == "JPEG"
    assert variant.extension == "jpg"
    assert variant.transforms[0] == Grayscale(op="grayscale")
    assert variant.transforms[1] == Thumbnail(op="fit", width=10, height=20)


def test_json_is_accepted() -> None:
    config = parse_config('{"variants": [{"name": "a", "format": "png", "quality": 50}]}')
    assert config.variants[0].format == "PNG"
    assert config.variants[0].quality == 50


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("variants: []", "variants"),
        ("variants: [{name: a, format: tiff}]", "variants.0.format"),
        ("variants: [{name: a, quality: 0}]", "variants.0.quality"),
        ("variants: [{name: a}, {name: a}]", "repeated: a"),
        ("variants: [{name: a, transforms: [{op: rotate, degrees: 45}]}]", "degrees"),
        ("variants: [{name: a, transforms: [{op: explode}]}]", "transforms"),
        ("variants: [{name: 'a/b'}]", "variants.0.name"),
        ("variants: [{name: a, colour: red}]", "colour"),
        ("watermark: {opacity: 0.5}\nvariants: [{name: a}]", "exactly one of 'text' or 'image'"),
        ("watermark: {text: a, color: blurple}\nvariants: [{name: a}]", "unknown colour"),
        ("- just a list", "expected a mapping"),
        ("variants: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_configs_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as excinfo:
        parse_config(text, "my.yaml")
    assert str(excinfo.value).startswith("my.yaml: ")
    assert message in str(excinfo.value)


def test_effective_watermark_inherits_overrides_and_disables() -> None:
    config = parse_config(
        """
        watermark: {text: Pipeline}
        variants:
          - {name: inherits}
          - {name: own, watermark: {text: Own, position: center}}
          - {name: none, watermark: false}
        """
    )
    inherits, own, none = config.variants
    assert config.effective_watermark(inherits) == Watermark(text="Pipeline")
    assert config.effective_watermark(own) == Watermark(text="Own", position="center")
    assert config.effective_watermark(none) is None

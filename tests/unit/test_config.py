import pytest

from prism.config import (
    Animation,
    Autocontrast,
    ConfigError,
    Contain,
    Cover,
    Grayscale,
    Metadata,
    Sharpen,
    Thumbnail,
    Watermark,
    config_to_json,
    default_config,
    parse_config,
)


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


def test_variants_inherit_background_metadata_and_animation() -> None:
    config = parse_config(
        """
        background: "#102030"
        metadata: {keep: [copyright]}
        animation: {policy: preserve, max_frames: 50}
        variants:
          - {name: inherits}
          - name: own
            background: black
            metadata: {keep: []}
            animation: {policy: first_frame}
        """
    )
    inherits, own = config.variants

    assert inherits.background == "#102030"
    assert inherits.metadata == Metadata(keep=["copyright"])
    assert inherits.animation == Animation(policy="preserve", max_frames=50)
    assert own.background == "black"
    assert own.metadata == Metadata(keep=[])
    assert own.animation == Animation(policy="first_frame")


def test_defaults_are_white_strip_everything_and_first_frame() -> None:
    variant = parse_config("variants: [{name: a}]").variants[0]

    assert variant.background == "white"
    assert variant.metadata == Metadata(keep=[])
    assert variant.animation == Animation(policy="first_frame", max_frames=300)
    assert variant.animation.max_total_pixels == 100_000_000


def test_resolved_config_round_trips_through_json() -> None:
    config = parse_config(
        """
        background: "#abcdef"
        variants:
          - name: a
            transforms:
              - {op: cover, width: 100, height: 50, gravity: {x: 0.25, y: 0.75}}
              - {op: pad, width: 120, height: 60, background: transparent, gravity: north}
              - sharpen
              - {op: contrast, value: 0.2}
              - {op: autocontrast, cutoff: 1}
              - equalize
        """
    )

    assert parse_config(config_to_json(config)) == config


def test_new_transforms_parse_with_their_defaults() -> None:
    (variant,) = parse_config(
        "variants: [{name: a, transforms: [sharpen, autocontrast, equalize,"
        " {op: cover, width: 10, height: 10}, {op: contain, width: 10, height: 10}]}]"
    ).variants

    sharpen, autocontrast, _, cover, contain = variant.transforms
    assert sharpen == Sharpen(op="sharpen", radius=2.0, percent=150, threshold=3)
    assert autocontrast == Autocontrast(op="autocontrast", cutoff=0)
    assert cover == Cover(op="cover", width=10, height=10, gravity="center", upscale=False)
    assert contain == Contain(op="contain", width=10, height=10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("background: nope\nvariants: [{name: a}]", "unknown colour"),
        ("variants: [{name: a, background: transparent}]", "unknown colour"),
        ("variants: [{name: a, metadata: {keep: [gps]}}]", "keep"),
        ("variants: [{name: a, animation: {policy: all}}]", "policy"),
        ("variants: [{name: a, animation: {max_frames: 0}}]", "max_frames"),
        (
            "variants: [{name: a, transforms: [{op: cover, width: 1, height: 1, gravity: up}]}]",
            "gravity",
        ),
        (
            "variants: [{name: a, transforms: [{op: cover, width: 1, height: 1,"
            " gravity: {x: 2, y: 0}}]}]",
            "gravity",
        ),
        ("variants: [{name: a, transforms: [{op: contrast, value: 3}]}]", "value"),
        ("variants: [{name: a, transforms: [{op: sharpen, radius: 0}]}]", "radius"),
        ("watermark: {text: a, spacing: -1}\nvariants: [{name: a}]", "spacing"),
    ],
)
def test_invalid_new_fields_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config(text, "my.yaml")
    assert message in str(excinfo.value)

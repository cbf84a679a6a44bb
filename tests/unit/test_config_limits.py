"""Every size a pipeline config can have is bounded before it costs anything (issue 10).

The text is checked against ``MAX_CONFIG_BYTES`` (what the SSM Advanced parameter of the
deployed stack holds) before it is parsed, wherever it comes from: ``parse_config``, the
parameter a function reads, and a file the CLI reads. The YAML's nesting and aliases are
bounded from the parser's events, the variant count before any variant is validated, and
every number, string and list a worker acts on by the model.
"""

from __future__ import annotations

import asyncio
import codecs
import re
from pathlib import Path

import pytest

from prism.config import (
    MAX_CONFIG_BYTES,
    MAX_CONFIG_DEPTH,
    MAX_CONFIG_NODES,
    MAX_PIXELS,
    MAX_SOURCE_BYTES,
    MAX_TRANSFORMS,
    MAX_VARIANTS,
    ConfigError,
    check_config_size,
    parse_config,
)
from prism.pipeline_source import config_from_parameter
from prism_cli.config_files import load_config, read_config_file
from prism_cli.errors import UserError
from prism_cli.jobs.stack_config import write_config_text
from prism_cli.jobs.target import REQUIRED_OUTPUTS, StackTarget
from prism_cli.main import main

ONE_VARIANT = "variants: [{name: a}]\n"
LIMIT_TEXT = "the limit is 8,192 (what an SSM Advanced parameter holds)"


def padded(text: str, size: int, filler: str = "x") -> str:
    """``text`` and a YAML comment of ``filler`` making it ``size`` UTF-8 bytes."""
    room = size - len(text.encode()) - len("#\n")
    width = len(filler.encode())
    assert room >= 0 and room % width == 0
    return f"{text}#{filler * (room // width)}\n"


def many_variants(count: int, variant: str = "{{name: v{i}}}") -> str:
    return "variants:\n" + "".join(f"  - {variant.format(i=i)}\n" for i in range(count))


def refused(text: str, source: str = "my.yaml") -> str:
    with pytest.raises(ConfigError) as excinfo:
        parse_config(text, source)
    message = str(excinfo.value)
    assert message.startswith(f"{source}: ") and "\n" not in message.strip()
    return message


# --- the size of the text -------------------------------------------------------------------------
def test_the_limit_is_what_an_ssm_advanced_parameter_holds() -> None:
    assert MAX_CONFIG_BYTES == 8192


def test_a_huge_config_is_refused_by_its_size_before_it_is_parsed() -> None:
    # The case: 6 MB, 60,000 variants. The error is the size error (not the variant
    # count, not a validation error), so nothing was parsed or validated.
    huge = many_variants(
        60_000,
        "{{name: v{i}, format: JPEG, quality: 80, background: white,"
        " transforms: [grayscale, sharpen, blur]}}",
    )
    assert len(huge) > 6_000_000

    message = refused(huge, "pipeline.yaml")

    assert message == f"pipeline.yaml: the config is {len(huge):,} bytes; {LIMIT_TEXT}"


def test_an_oversize_config_that_is_not_even_yaml_gets_the_size_error() -> None:
    assert "the config is 9,000 bytes" in refused(padded("variants: [unclosed\n", 9000))


def test_8192_bytes_exactly_are_accepted_and_8193_refused() -> None:
    at_limit = padded(ONE_VARIANT, MAX_CONFIG_BYTES)
    assert len(at_limit.encode()) == MAX_CONFIG_BYTES
    assert parse_config(at_limit).variants[0].name == "a"

    over = padded(ONE_VARIANT, MAX_CONFIG_BYTES + 1)
    assert f"the config is 8,193 bytes; {LIMIT_TEXT}" in refused(over)


def test_the_size_is_counted_in_utf8_bytes_not_characters() -> None:
    at_limit = padded(ONE_VARIANT, MAX_CONFIG_BYTES, "é")
    assert len(at_limit.encode()) == MAX_CONFIG_BYTES < 2 * len(at_limit)
    parse_config(at_limit)

    over = padded(ONE_VARIANT + " ", MAX_CONFIG_BYTES + 1, "é")
    assert len(over) < MAX_CONFIG_BYTES
    assert "the config is 8,193 bytes" in refused(over)
    with pytest.raises(ConfigError, match="8,193 bytes"):
        check_config_size(over.encode(), "raw")


def test_a_parameter_value_is_checked_before_anything_reads_it() -> None:
    over = padded(ONE_VARIANT, MAX_CONFIG_BYTES + 1)
    with pytest.raises(ConfigError) as excinfo:
        config_from_parameter(over, "SSM parameter /prism/pipeline-config")
    assert str(excinfo.value) == (
        f"SSM parameter /prism/pipeline-config: the config is 8,193 bytes; {LIMIT_TEXT}"
    )
    assert config_from_parameter(padded(ONE_VARIANT, MAX_CONFIG_BYTES), "p").variants[0].name == "a"


# --- the YAML's shape -----------------------------------------------------------------------------
BILLION_LAUGHS = (
    'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    + "".join(
        f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + ONE_VARIANT
)


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded() -> None:
    assert len(BILLION_LAUGHS) < 1000  # 9**9 (387 million) strings once expanded
    assert f"more than {MAX_CONFIG_NODES:,} YAML nodes (aliases expanded)" in refused(
        BILLION_LAUGHS
    )


def test_an_alias_bomb_inside_the_variants_is_refused_too() -> None:
    bomb = "variants:\n  - &v0 {name: a}\n" + "".join(
        f"  - &v{i} [{', '.join([f'*v{i - 1}'] * 4)}]\n" for i in range(1, 9)
    )
    assert "YAML nodes" in refused(bomb)


def test_an_alias_that_refers_to_itself_is_refused() -> None:
    assert "alias *v refers to itself" in refused("variants: &v [{name: a, transforms: *v}]")


def test_deep_nesting_is_refused_from_the_parser_events() -> None:
    # PyYAML builds nodes recursively: 3,000 levels used to raise RecursionError.
    deep = "variants: " + "[" * 3000 + "]" * 3000
    assert f"nested more than {MAX_CONFIG_DEPTH} levels deep" in refused(deep)
    json_deep = '{"variants": ' + '{"a": ' * 40 + "1" + "}" * 41
    assert "levels deep" in refused(json_deep)


def test_anchors_and_merge_keys_within_the_bounds_still_work() -> None:
    config = parse_config(
        """
        variants:
          - &web
            name: web
            format: WEBP
            quality: 70
            transforms: &box [{op: fit, width: 800, height: 800}]
          - {<<: *web, name: web-small, quality: 50}
          - {name: jpeg, transforms: *box}
        """
    )
    web, small, jpeg = config.variants
    assert (small.format, small.quality, small.transforms) == ("WEBP", 50, web.transforms)
    assert jpeg.transforms == web.transforms


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        # Constructors raise ValueError (not a YAMLError) for these: it used to escape.
        ("output_prefix: 2024-13-01\n" + ONE_VARIANT, "month must be in 1..12"),
        ("limits: {max_source_bytes: " + "9" * 5000 + "}\n" + ONE_VARIANT, "5000 digits"),
    ],
)
def test_values_yaml_cannot_construct_are_config_errors(text: str, fragment: str) -> None:
    message = refused(text)
    assert "not valid YAML/JSON" in message and fragment in message


# --- the variant count ----------------------------------------------------------------------------
def test_51_variants_get_the_count_error_before_any_variant_is_validated() -> None:
    # Every variant is invalid: had they been validated, their errors would be listed.
    invalid = many_variants(MAX_VARIANTS + 1, "{{name: 'v/{i}', format: tiff, quality: 0}}")

    message = refused(invalid)

    assert message == "my.yaml: variants: Value error, at most 50 variants, not 51"


def test_50_variants_are_accepted() -> None:
    assert len(parse_config(many_variants(MAX_VARIANTS)).variants) == MAX_VARIANTS


def test_transforms_are_counted_before_they_are_validated() -> None:
    assert MAX_TRANSFORMS == 20
    ok = "variants: [{name: a, transforms: [" + ", ".join(["grayscale"] * 20) + "]}]"
    assert len(parse_config(ok).variants[0].transforms) == 20
    over = "variants: [{name: a, transforms: [" + ", ".join(["explode"] * 21) + "]}]"
    assert refused(over) == (
        "my.yaml: variants.0.transforms: Value error, at most 20 transforms, not 21"
    )


# --- the bounds on values -------------------------------------------------------------------------
def config_with(field: str) -> str:
    """A one-variant config with ``field`` (a YAML fragment) in its place."""
    top, _, rest = field.partition("::")
    if top == "variant":
        return f"variants: [{{name: a, {rest}}}]\n"
    if top == "transform":
        return f"variants: [{{name: a, transforms: [{rest}]}}]\n"
    return f"{field}\n{ONE_VARIANT}"


@pytest.mark.parametrize(
    ("accepted", "refused_field", "named"),
    [
        (
            f"limits: {{max_source_bytes: {MAX_SOURCE_BYTES}}}",
            f"limits: {{max_source_bytes: {MAX_SOURCE_BYTES + 1}}}",
            "limits.max_source_bytes: Input should be less than or equal to 536870912",
        ),
        (
            f"limits: {{max_source_pixels: {MAX_PIXELS}}}",
            "limits: {max_source_pixels: 1000000000000}",
            "limits.max_source_pixels: Input should be less than or equal to 500000000",
        ),
        (
            f"animation: {{max_total_pixels: {MAX_PIXELS}}}",
            f"animation: {{max_total_pixels: {MAX_PIXELS + 1}}}",
            "animation.max_total_pixels: Input should be less than or equal to 500000000",
        ),
        (
            "animation: {max_frames: 10000}",
            "animation: {max_frames: 10001}",
            "animation.max_frames: Input should be less than or equal to 10000",
        ),
        (
            "transform::{op: resize, width: 20000, height: 1}",
            "transform::{op: resize, width: 20001, height: 1}",
            "variants.0.transforms.0.resize.width: Input should be less than or equal to 20000",
        ),
        (
            "variant::format: AVIF, effort: 10",
            "variant::format: AVIF, effort: 1000000000000",
            "variants.0: Value error, effort for AVIF must be 0-10",
        ),
        (
            "variant::metadata: {keep: [copyright, artist]}",
            "variant::metadata: {keep: [copyright, artist, artist]}",
            "variants.0.metadata.keep: List should have at most 2 items",
        ),
        (
            "output_prefix: " + "p" * 256,
            "output_prefix: " + "é" * 129,  # 129 characters, 258 bytes
            "output_prefix: Value error, at most 256 bytes (UTF-8), not 258",
        ),
        (
            "output_key: '{stem}_{variant}" + "x" * 496 + "'",
            "output_key: '{stem}_{variant}" + "é" * 249 + "'",  # 265 characters
            "output_key: Value error, at most 512 bytes (UTF-8), not 514",
        ),
        (
            "watermark: {text: " + "t" * 200 + "}",
            "watermark: {text: " + "t" * 201 + "}",
            "watermark.text: String should have at most 200 characters",
        ),
        (
            "watermark: {image: s3://" + "b" * 63 + "/" + "k" * 1024 + "}",
            "watermark: {image: s3://" + "b" * 63 + "/" + "k" * 1025 + "}",
            "watermark.image: Value error, at most 1,093 bytes (UTF-8), not 1,094",
        ),
        (
            "watermark: {text: a, color: auto}",
            "watermark: {text: a, color: '" + "#" * 101 + "'}",
            "watermark.color: String should have at most 100 characters",
        ),
        (
            "background: white",
            "background: '" + "w" * 101 + "'",
            "background: String should have at most 100 characters",
        ),
        (
            "transform::{op: pad, width: 1, height: 1, background: transparent}",
            "transform::{op: pad, width: 1, height: 1, background: '" + "w" * 101 + "'}",
            "variants.0.transforms.0.pad.background: String should have at most 100 characters",
        ),
    ],
)
def test_each_bound_is_accepted_at_and_refused_past_with_the_field_named(
    accepted: str, refused_field: str, named: str
) -> None:
    parse_config(config_with(accepted))
    assert named in refused(config_with(refused_field))


# --- files the CLI reads (prism run --config, stack up --config, config set) ----------------------
def test_a_config_file_over_the_limit_is_a_user_error_naming_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(many_variants(60_000))
    size = big.stat().st_size

    with pytest.raises(UserError) as excinfo:
        read_config_file(big)

    assert str(excinfo.value) == f"{big}: the config is {size:,} bytes; {LIMIT_TEXT}"
    with pytest.raises(UserError, match=r"big\.yaml: the config is"):
        load_config(big)  # what prism run and prism stack up call


def test_a_config_file_is_checked_exactly_and_a_bom_is_not_counted(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(padded(ONE_VARIANT, MAX_CONFIG_BYTES + 1))
    with pytest.raises(UserError, match=r"pipeline\.yaml: the config is 8,193 bytes; the limit"):
        read_config_file(config)

    at_limit = padded(ONE_VARIANT, MAX_CONFIG_BYTES)
    config.write_bytes(codecs.BOM_UTF8 + at_limit.encode())
    assert read_config_file(config) == at_limit


def test_a_config_file_is_never_read_past_the_limit() -> None:
    # /dev/zero never ends: reading it all would never finish.
    with pytest.raises(UserError) as excinfo:
        read_config_file(Path("/dev/zero"))
    assert str(excinfo.value) == f"/dev/zero: the config is more than 8,192 bytes; {LIMIT_TEXT}"


def test_config_set_refuses_an_oversize_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(padded(ONE_VARIANT, 20_000))

    assert main(["config", "set", str(big)]) == 2  # the file is read before any stack is

    err = capsys.readouterr().err
    assert err == f"prism: error: {big}: the config is 20,000 bytes; {LIMIT_TEXT}\n"


def test_an_oversize_config_never_reaches_the_stack_parameter() -> None:
    # write_config_text validates before any AWS call (and there is no stack here).
    target = StackTarget("test", {name: "x" for name in REQUIRED_OUTPUTS})
    over = padded(ONE_VARIANT, MAX_CONFIG_BYTES + 1)
    with pytest.raises(UserError, match=re.escape(f"the config is 8,193 bytes; {LIMIT_TEXT}")):
        asyncio.run(write_config_text(target, over))

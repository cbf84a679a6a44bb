"""The output-format table is the one place a format's facts live."""

from __future__ import annotations

from typing import get_args

import pytest

from prism.config import Variant
from prism.imaging.encode import _PREPARERS
from prism.output_formats import FORMATS, FormatSpec, OutputFormat, canonical_name


def test_the_literal_and_the_table_name_the_same_formats() -> None:
    assert list(get_args(OutputFormat)) == list(FORMATS)
    assert all(name == spec.name for name, spec in FORMATS.items())


def test_encoder_preparers_are_for_formats_in_the_table() -> None:
    assert set(_PREPARERS) <= set(FORMATS)


def test_aliases_are_upper_case_and_name_no_other_format() -> None:
    aliases = [alias for spec in FORMATS.values() for alias in spec.aliases]
    assert all(alias == alias.upper() for alias in aliases)
    assert len(set(aliases)) == len(aliases)
    assert not set(aliases) & set(FORMATS)


@pytest.mark.parametrize(
    ("given", "name"), [("jpg", "JPEG"), (" Jpeg ", "JPEG"), ("webp", "WEBP"), ("tiff", "TIFF")]
)
def test_canonical_name(given: str, name: str) -> None:
    assert canonical_name(given) == name


@pytest.mark.parametrize("spec", FORMATS.values(), ids=list(FORMATS))
def test_a_variant_takes_its_extension_and_content_type_from_the_table(spec: FormatSpec) -> None:
    variant = Variant.model_validate({"name": "v", "format": spec.name.lower()})

    assert variant.format == spec.name
    assert (variant.extension, variant.content_type) == (spec.extension, spec.content_type)

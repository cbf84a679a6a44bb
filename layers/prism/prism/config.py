"""The pipeline configuration: which variants to render, and how.

A pipeline config is a YAML or JSON document validated here. It knows nothing of AWS:
the deployed stack reads it from the SSM parameter named in ``template.yaml``, local runs
from a file (``prism run --config``), and both fall back to ``default_pipeline.yaml``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from PIL import ImageColor
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

OutputFormat = Literal["JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF"]
Position = Literal["top-left", "top-right", "bottom-left", "bottom-right", "center"]

# File extension written for each output format.
EXTENSIONS: dict[str, str] = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "AVIF": "avif",
}
CONTENT_TYPES: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "AVIF": "image/avif",
}


class ConfigError(ValueError):
    """The pipeline config is not valid; the message says where and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- transforms -------------------------------------------------------------------------
Dimension = Annotated[int, Field(gt=0, le=20_000)]


class Resize(_Model):
    """Resize to exactly ``width`` x ``height`` (aspect ratio not kept)."""

    op: Literal["resize"]
    width: Dimension
    height: Dimension


class Thumbnail(_Model):
    """Fit inside ``width`` x ``height``, keeping the aspect ratio; never upscales."""

    op: Literal["thumbnail", "fit"]
    width: Dimension
    height: Dimension


class Grayscale(_Model):
    op: Literal["grayscale"]


class Blur(_Model):
    """Gaussian blur; ``sigma`` is the standard deviation in output pixels."""

    op: Literal["blur"]
    sigma: float = Field(default=2.0, gt=0, le=100)


class Brighten(_Model):
    """Change brightness by ``value`` (-1 = black, 0 = unchanged, +1 = twice as bright)."""

    op: Literal["brighten"]
    value: float = Field(ge=-1, le=1)


class Rotate(_Model):
    """Rotate clockwise by a multiple of 90 degrees (lossless, no resampling)."""

    op: Literal["rotate"]
    degrees: Literal[90, 180, 270]


class Flip(_Model):
    op: Literal["flip"]
    direction: Literal["horizontal", "vertical"]


Transform = Annotated[
    Resize | Thumbnail | Grayscale | Blur | Brighten | Rotate | Flip,
    Field(discriminator="op"),
]


# --- watermark --------------------------------------------------------------------------
class Watermark(_Model):
    """A text or image (logo) watermark.

    Sizes are relative to the image so that a mark stays legible on a 256 px thumbnail and
    unobtrusive on a 4000 px photo: ``scale`` is the text height, or the logo width, as a
    fraction of the image's shorter side; ``margin`` likewise.
    """

    text: str | None = Field(default=None, min_length=1, max_length=200)
    # Key of a logo object in the input bucket, or ``s3://bucket/key``.
    image: str | None = Field(default=None, min_length=1)
    position: Position = "bottom-right"
    opacity: float = Field(default=0.5, ge=0, le=1)
    scale: float = Field(default=0.05, gt=0, le=1)
    margin: float = Field(default=0.02, ge=0, le=0.5)
    color: str = "white"

    @field_validator("color")
    @classmethod
    def _known_colour(cls, value: str) -> str:
        try:
            ImageColor.getrgb(value)
        except ValueError as exc:
            message = f"unknown colour {value!r} (use a name like 'white' or '#rrggbb')"
            raise ValueError(message) from exc
        return value

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Watermark:
        if (self.text is None) == (self.image is None):
            raise ValueError("a watermark needs exactly one of 'text' or 'image'")
        return self


# --- variants and the pipeline ---------------------------------------------------------
class Variant(_Model):
    """One named output: transforms applied in order, then encoded as ``format``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    transforms: list[Transform] = Field(default_factory=list)
    format: OutputFormat = "JPEG"
    quality: int = Field(default=85, ge=1, le=100)
    # None inherits the pipeline-wide watermark; False turns it off for this variant.
    watermark: Watermark | Literal[False] | None = None

    @field_validator("format", mode="before")
    @classmethod
    def _normalise_format(cls, value: Any) -> Any:
        if isinstance(value, str):
            upper = value.strip().upper()
            return {"JPG": "JPEG"}.get(upper, upper)
        return value

    @field_validator("transforms", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        # Allow ``- grayscale`` as shorthand for ``- op: grayscale``.
        if isinstance(value, list):
            return [{"op": item} if isinstance(item, str) else item for item in value]
        return value

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


class Limits(_Model):
    """Bounds on what a worker accepts, so one upload cannot exhaust a Lambda."""

    max_source_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    max_source_pixels: int = Field(default=100_000_000, gt=0)


class PipelineConfig(_Model):
    version: Literal[1] = 1
    # Prefix (folder) for every output key in the output bucket; may be empty.
    output_prefix: str = ""
    watermark: Watermark | None = None
    variants: list[Variant] = Field(min_length=1, max_length=50)
    limits: Limits = Field(default_factory=Limits)

    @field_validator("output_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")

    @model_validator(mode="after")
    def _unique_names(self) -> PipelineConfig:
        names = [variant.name for variant in self.variants]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def effective_watermark(self, variant: Variant) -> Watermark | None:
        """The watermark that applies to ``variant``: its own, none, or the pipeline's."""
        if variant.watermark is False:
            return None
        return variant.watermark or self.watermark


def parse_config(text: str, source: str = "pipeline config") -> PipelineConfig:
    """Parse YAML or JSON text (JSON is YAML) into a validated config."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'variants' list")
    try:
        return PipelineConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc


def default_config_text() -> str:
    return resources.files("prism").joinpath("default_pipeline.yaml").read_text(encoding="utf-8")


def default_config() -> PipelineConfig:
    return parse_config(default_config_text(), "default_pipeline.yaml")


def config_to_json(config: PipelineConfig) -> str:
    return json.dumps(config.model_dump(mode="json", exclude_defaults=False))

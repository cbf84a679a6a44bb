"""The pipeline configuration: which variants to render, and how.

A pipeline config is a YAML or JSON document validated here. It knows nothing of AWS:
the deployed stack reads it from the SSM parameter named in ``template.yaml``, local runs
from a file (``prism run --config``), and both fall back to ``default_pipeline.yaml``.

Every size is bounded before it can cost anything: the text (``MAX_CONFIG_BYTES``, the
same locally and deployed) before it is parsed, the YAML's nesting and alias expansion
from the parser's events before any object is built, the number of variants before any
variant is validated, and every number, string and list a worker acts on.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from PIL import ImageColor
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from prism.keys import (
    DEFAULT_OUTPUT_KEY,
    MAX_KEY_BYTES,
    OutputKeyTemplateError,
    check_output_key_template,
    manifest_key,
    output_key,
)
from prism.output_formats import FORMATS, OutputFormat, canonical_name

Position = Literal["top-left", "top-right", "bottom-left", "bottom-right", "center"]

# --- bounds -----------------------------------------------------------------------------
# The largest config, in UTF-8 bytes: what an SSM Advanced parameter holds (8 KB), where
# the deployed stack keeps it. Files get no more, so a config that runs locally deploys.
MAX_CONFIG_BYTES = 8192
# YAML nodes in a config, each alias counted as the nodes it stands for: 8 KB without
# aliases hold at most ~4,100, so this leaves room for anchors yet stops an alias bomb
# ("billion laughs") before it is expanded.
MAX_CONFIG_NODES = 10_000
# How deeply collections nest; a config needs 6 (the top mapping > variants > a variant >
# transforms > a transform > gravity). PyYAML builds nodes recursively, so a deep
# "[[[[...]]]]" would otherwise exhaust Python's stack (RecursionError).
MAX_CONFIG_DEPTH = 32
# Variants of one pipeline: each is a message, a render and an output per upload.
MAX_VARIANTS = 50
# Transforms in one variant: every kind once (13) with room to repeat a few; each is a
# pass over the image, within the worker's timeout.
MAX_TRANSFORMS = 20
# Bytes of an upload a worker accepts: it holds the whole object in memory, so 512 MiB
# plus a MAX_PIXELS decode (2.5 GB) fits the largest worker (10,240 MB).
MAX_SOURCE_BYTES = 512 * 1024 * 1024
# Pixels of an upload (an animation's, frames included): 500 MP is 2 GB decoded as RGBA,
# 2.5 GB with the decode footprint, within the largest worker's decode budget (60 % of
# 10,240 MB). Prism raises Pillow's bomb ceiling to the configured limit, so an unbounded
# one would switch the ceiling off.
MAX_PIXELS = 500_000_000
# Characters of a colour: Pillow's own bound on a colour specifier.
MAX_COLOUR_CHARS = 100
# The output prefix, in UTF-8 bytes: a quarter of S3's 1,024-byte key, so that with the
# layout (MAX_LAYOUT_BYTES) at least 255 bytes are left for the source's own path.
MAX_OUTPUT_PREFIX_BYTES = 256
# The output key layout, in UTF-8 bytes: half of S3's key.
MAX_LAYOUT_BYTES = 512
MAX_PUBLIC_URL_BYTES = 512
# A watermark logo's location: "s3://", a bucket name (at most 63 characters), "/" and a
# key (at most 1,024 bytes).
MAX_LOGO_LOCATION_BYTES = len("s3://") + 63 + 1 + MAX_KEY_BYTES
# Characters of a Cache-Control or Content-Disposition value: S3 takes a whole request
# header of 8 KB, and a policy or a filename needs far less than this.
MAX_HEADER_CHARS = 1024
# Bytes (keys and values) of an output's user metadata: S3 holds 2 KB of user-defined
# metadata per object, and Prism's own keys (RESERVED_METADATA_PREFIX) take up to 256 of it.
MAX_USER_METADATA_BYTES = 2048 - 256


class ConfigError(ValueError):
    """The pipeline config is not valid; the message says where and why."""


def config_too_large(source: str, size: int | None) -> ConfigError:
    """The error for a config of ``size`` UTF-8 bytes (None: unknown, but too many)."""
    what = f"{size:,} bytes" if size is not None else f"more than {MAX_CONFIG_BYTES:,} bytes"
    return ConfigError(
        f"{source}: the config is {what}; the limit is {MAX_CONFIG_BYTES:,} "
        "(what an SSM Advanced parameter holds)"
    )


def check_config_size(text: str | bytes, source: str = "pipeline config") -> None:
    """Refuse a config larger than ``MAX_CONFIG_BYTES`` (UTF-8), before it is parsed."""
    if isinstance(text, str):
        if len(text) <= MAX_CONFIG_BYTES // 4:  # at most 4 bytes a character
            return
        size = len(text.encode("utf-8", errors="surrogatepass"))
    else:
        size = len(text)
    if size > MAX_CONFIG_BYTES:
        raise config_too_large(source, size)


def _utf8_at_most(limit: int) -> AfterValidator:
    """A string of at most ``limit`` bytes in UTF-8 (what S3 counts in a key)."""

    def check(value: str) -> str:
        size = len(value.encode("utf-8", errors="surrogatepass"))
        if size > limit:
            raise ValueError(f"at most {limit:,} bytes (UTF-8), not {size:,}")
        return value

    return AfterValidator(check)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_colour(value: str) -> str:
    try:
        ImageColor.getrgb(value)
    except ValueError as exc:
        raise ValueError(
            f"unknown colour {value!r} (use a name like 'white' or '#rrggbb')"
        ) from exc
    return value


def _colour_or_transparent(value: str) -> str:
    return value if value == "transparent" else _known_colour(value)


# A Pillow colour: a name ("white") or "#rgb" / "#rrggbb".
Colour = Annotated[str, Field(max_length=MAX_COLOUR_CHARS), AfterValidator(_known_colour)]
# A padding colour: any ``Colour``, or "transparent" (kept in PNG, WEBP, AVIF and GIF).
PadColour = Annotated[
    str, Field(max_length=MAX_COLOUR_CHARS), AfterValidator(_colour_or_transparent)
]
DEFAULT_BACKGROUND = "white"


# --- transforms -------------------------------------------------------------------------
# Output pixels a side: 20,000 x 20,000 is 400 MP, within MAX_PIXELS.
Dimension = Annotated[int, Field(gt=0, le=20_000)]


class Resize(_Model):
    """Resize to exactly ``width`` x ``height`` (aspect ratio not kept)."""

    op: Literal["resize"]
    width: Dimension
    height: Dimension


class Thumbnail(_Model):
    """Fit inside ``width`` x ``height``, keeping the aspect ratio; upscales only if asked."""

    op: Literal["thumbnail", "fit"]
    width: Dimension
    height: Dimension
    upscale: bool = False


class FocalPoint(_Model):
    """A point of interest, as fractions of the upright image: (0, 0) is top-left."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)


# Which part of the image to keep when cropping (cover), or where it sits when padded (contain).
Gravity = (
    Literal[
        "center",
        "north",
        "south",
        "east",
        "west",
        "northeast",
        "northwest",
        "southeast",
        "southwest",
    ]
    | FocalPoint
)
# ``cover`` may also find the part to keep: ``entropy`` (the most detailed part) or
# ``attention`` (edges, saturation and skin tones); a flat image is cropped at the centre.
CoverGravity = Gravity | Literal["entropy", "attention"]


class Cover(_Model):
    """Fill ``width`` x ``height`` exactly, cropping what sticks out (keeping ``gravity``).

    Without ``upscale`` an image smaller than the box is only cropped to the box's aspect
    ratio, never enlarged.
    """

    op: Literal["cover"]
    width: Dimension
    height: Dimension
    gravity: CoverGravity = "center"
    upscale: bool = False


class Contain(_Model):
    """Fit inside ``width`` x ``height`` and pad to exactly that size with ``background``.

    ``background`` defaults to the variant's background; "transparent" pads with alpha
    (flattened onto the variant's background in JPEG and BMP). ``gravity`` places the image
    in the box.
    """

    op: Literal["contain", "pad"]
    width: Dimension
    height: Dimension
    gravity: Gravity = "center"
    background: PadColour | None = None
    upscale: bool = False


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


class Contrast(_Model):
    """Change contrast by ``value`` (-1 = flat grey, 0 = unchanged, +1 = twice the contrast)."""

    op: Literal["contrast"]
    value: float = Field(ge=-1, le=1)


class Sharpen(_Model):
    """Unsharp mask: ``radius`` in output pixels, ``percent`` strength, ``threshold`` in levels."""

    op: Literal["sharpen"]
    radius: float = Field(default=2.0, gt=0, le=50)
    percent: int = Field(default=150, ge=0, le=500)
    threshold: int = Field(default=3, ge=0, le=255)


class Autocontrast(_Model):
    """Stretch the histogram to the full range, ignoring ``cutoff`` percent at each end."""

    op: Literal["autocontrast"]
    cutoff: float = Field(default=0, ge=0, lt=50)


class Equalize(_Model):
    """Equalize the histogram of each channel."""

    op: Literal["equalize"]


class Rotate(_Model):
    """Rotate clockwise by a multiple of 90 degrees (lossless, no resampling)."""

    op: Literal["rotate"]
    degrees: Literal[90, 180, 270]


class Flip(_Model):
    op: Literal["flip"]
    direction: Literal["horizontal", "vertical"]


Transform = Annotated[
    Resize
    | Thumbnail
    | Cover
    | Contain
    | Grayscale
    | Blur
    | Brighten
    | Contrast
    | Sharpen
    | Autocontrast
    | Equalize
    | Rotate
    | Flip,
    Field(discriminator="op"),
]


# --- watermark --------------------------------------------------------------------------
class Watermark(_Model):
    """A text or image (logo) watermark.

    Sizes are relative to the image so that a mark stays legible on a 256 px thumbnail and
    unobtrusive on a 4000 px photo: ``scale`` is the text height, or the logo width, as a
    fraction of the image's shorter side; ``margin`` likewise.
    """

    # A line of text drawn once (or tiled); longer would not fit across an image.
    text: str | None = Field(default=None, min_length=1, max_length=200)
    # Key of a logo object in the input bucket, or ``s3://bucket/key`` (an S3 location).
    image: Annotated[str, _utf8_at_most(MAX_LOGO_LOCATION_BYTES)] | None = Field(
        default=None, min_length=1
    )
    position: Position = "bottom-right"
    opacity: float = Field(default=0.5, ge=0, le=1)
    scale: float = Field(default=0.05, gt=0, le=1)
    margin: float = Field(default=0.02, ge=0, le=0.5)
    # A colour, or "auto": white or black, whichever contrasts with what lies under the mark.
    color: str = Field(default="white", max_length=MAX_COLOUR_CHARS)
    # Repeat the mark over the whole image, ``spacing`` (a fraction of the shorter side)
    # apart; ``position`` and ``margin`` are then ignored.
    tile: bool = False
    spacing: float = Field(default=0.15, ge=0, le=2)

    @field_validator("color")
    @classmethod
    def _colour_or_auto(cls, value: str) -> str:
        return value if value == "auto" else _known_colour(value)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Watermark:
        if (self.text is None) == (self.image is None):
            raise ValueError("a watermark needs exactly one of 'text' or 'image'")
        return self


# --- metadata and animation -------------------------------------------------------------
class Metadata(_Model):
    """What outputs keep of the source's metadata. Everything else (EXIF with GPS, XMP,
    IPTC, comments, the ICC profile after conversion to sRGB) is always stripped."""

    # EXIF Copyright and Artist, written to JPEG, PNG, WEBP and AVIF outputs (two fields,
    # so a longer list only repeats them).
    keep: list[Literal["copyright", "artist"]] = Field(default_factory=list, max_length=2)


class Animation(_Model):
    """What happens to animated GIF, WebP, PNG (APNG) and AVIF uploads.

    ``first_frame`` renders a still of the first frame. ``preserve`` keeps every frame
    (with its duration and the loop count) in GIF and WEBP outputs; other output formats
    get the first frame. Sources beyond ``max_frames`` or ``max_total_pixels`` (width x
    height x frames) are rejected with ``too_many_frames`` when they would be preserved.
    """

    policy: Literal["first_frame", "preserve"] = "first_frame"
    # Every frame is a decode and, in GIF and WEBP outputs, an encoded frame held in memory.
    max_frames: int = Field(default=300, gt=0, le=10_000)
    # The decode budget reserves all frames' pixels at once: bounded like a still's.
    max_total_pixels: int = Field(default=100_000_000, gt=0, le=MAX_PIXELS)


# --- HTTP headers of outputs ------------------------------------------------------------
# What an output is served with unless the config says otherwise: outputs are cacheable
# for a year, unchanged (see docs/image-handling.md for when that needs versioned keys).
DEFAULT_CACHE_CONTROL = "public, max-age=31536000, immutable"
# User metadata keys Prism writes itself (prism-run, prism-run-order, prism-variant on
# outputs; prism-job on uploads): a config's keys may not start with it.
RESERVED_METADATA_PREFIX = "prism-"
_METADATA_KEY = re.compile(r"[a-z0-9-]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")


def _header_text(value: str) -> str:
    """An HTTP header value as S3 stores it: printable ASCII (so no CR or LF), without
    leading or trailing spaces (which HTTP drops)."""
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise ValueError("only printable ASCII characters (no line breaks, tabs or accents)")
    if value != value.strip(" "):
        raise ValueError("no leading or trailing spaces")
    return value


def _user_metadata(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if not _METADATA_KEY.fullmatch(key):
            raise ValueError(f"key {key!r}: only lowercase letters, digits and '-'")
        if key.startswith(RESERVED_METADATA_PREFIX):
            raise ValueError(f"key {key!r}: keys starting {RESERVED_METADATA_PREFIX!r} are Prism's")
        try:
            _header_text(item)
        except ValueError as exc:
            raise ValueError(f"value of {key!r}: {exc}") from None
    size = sum(len(key) + len(item) for key, item in value.items())
    if size > MAX_USER_METADATA_BYTES:
        raise ValueError(
            f"at most {MAX_USER_METADATA_BYTES:,} bytes of keys and values, not {size:,}"
        )
    return value


# A Cache-Control or Content-Disposition value, written as is.
HeaderValue = Annotated[
    str, Field(min_length=1, max_length=MAX_HEADER_CHARS), AfterValidator(_header_text)
]
# An output's S3 user metadata (served as ``x-amz-meta-<key>`` headers).
UserMetadata = Annotated[dict[str, str], AfterValidator(_user_metadata)]


# --- variants and the pipeline ---------------------------------------------------------
class Variant(_Model):
    """One named output: transforms applied in order, then encoded as ``format``.

    ``background``, ``metadata``, ``animation``, ``cache_control``, ``content_disposition``
    and ``user_metadata`` left unset inherit the pipeline's (resolved when the pipeline
    config is parsed, so a variant carries all it needs).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    transforms: list[Transform] = Field(default_factory=list, max_length=MAX_TRANSFORMS)
    format: OutputFormat = "JPEG"
    quality: int = Field(default=85, ge=1, le=100)
    # How hard the encoder works, for WEBP (0-6: libwebp's ``method``) and AVIF (0-10:
    # 10 - libavif's ``speed``); lower is faster and gives larger files. None: 4 for both,
    # the encoders' own balance. See docs/image-handling.md for what it buys. Bounded by
    # the format's highest effort (``_effort_in_range``).
    effort: int | None = Field(default=None, ge=0)
    # None inherits the pipeline-wide watermark; False turns it off for this variant.
    watermark: Watermark | Literal[False] | None = None
    # What transparency is flattened onto in JPEG and BMP outputs (never black).
    background: Colour | None = None
    metadata: Metadata | None = None
    animation: Animation | None = None
    # HTTP headers and S3 user metadata of the output (None: no header, or no metadata,
    # when the variant is not part of a parsed pipeline config).
    cache_control: HeaderValue | None = None
    content_disposition: HeaderValue | None = None
    user_metadata: UserMetadata | None = None

    @field_validator("format", mode="before")
    @classmethod
    def _normalise_format(cls, value: Any) -> Any:
        return canonical_name(value) if isinstance(value, str) else value

    @field_validator("transforms", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        # Allow ``- grayscale`` as shorthand for ``- op: grayscale``.
        if isinstance(value, list):
            _at_most(value, MAX_TRANSFORMS, "transforms")
            return [{"op": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _effort_in_range(self) -> Variant:
        if self.effort is None:
            return self
        effort = FORMATS[self.format].effort
        if effort is None:
            takes = ", ".join(name for name, spec in FORMATS.items() if spec.effort)
            raise ValueError(f"effort applies to {takes} outputs only, not {self.format}")
        if self.effort > effort.highest:
            raise ValueError(f"effort for {self.format} must be 0-{effort.highest}")
        return self

    @property
    def extension(self) -> str:
        return FORMATS[self.format].extension

    @property
    def content_type(self) -> str:
        return FORMATS[self.format].content_type


def _at_most(items: list[Any], limit: int, what: str) -> None:
    """Refuse a list longer than ``limit`` before any item of it is validated."""
    if len(items) > limit:
        raise ValueError(f"at most {limit} {what}, not {len(items):,}")


class Limits(_Model):
    """Bounds on what a worker accepts, so one upload cannot exhaust a Lambda."""

    max_source_bytes: int = Field(default=100 * 1024 * 1024, gt=0, le=MAX_SOURCE_BYTES)
    max_source_pixels: int = Field(default=100_000_000, gt=0, le=MAX_PIXELS)


class PipelineConfig(_Model):
    version: Literal[1] = 1
    # Prefix (folder) for every output key in the output bucket; may be empty.
    output_prefix: Annotated[str, _utf8_at_most(MAX_OUTPUT_PREFIX_BYTES)] = ""
    # Layout of output keys below the prefix (placeholders: see prism.keys).
    output_key: Annotated[str, _utf8_at_most(MAX_LAYOUT_BYTES)] = Field(
        default=DEFAULT_OUTPUT_KEY, min_length=1
    )
    watermark: Watermark | None = None
    # Defaults for every variant; declared before ``variants``, which inherit them.
    background: Colour = DEFAULT_BACKGROUND
    metadata: Metadata = Field(default_factory=Metadata)
    animation: Animation = Field(default_factory=Animation)
    cache_control: HeaderValue = DEFAULT_CACHE_CONTROL
    content_disposition: HeaderValue | None = None  # None: no Content-Disposition header
    user_metadata: UserMetadata = Field(default_factory=dict)
    variants: list[Variant] = Field(min_length=1, max_length=MAX_VARIANTS)
    limits: Limits = Field(default_factory=Limits)
    # Write each source's responsive manifest (docs/manifest.md) next to its variants.
    manifest: bool = True
    # Copy the variants of an upload whose bytes were rendered before with the same
    # variant spec, instead of rendering them again (prism.dedupe).
    dedupe: bool = False
    # Where the output bucket is served (a CDN), e.g. "https://img.example.com/": the
    # manifest's URLs and srcsets are this followed by the output key. Empty: bare keys.
    public_url: Annotated[str, _utf8_at_most(MAX_PUBLIC_URL_BYTES)] = ""

    @field_validator("variants", mode="before")
    @classmethod
    def _few_enough_variants(cls, value: Any) -> Any:
        # Counted before any variant is validated, so that a huge list is refused at once.
        if isinstance(value, list):
            _at_most(value, MAX_VARIANTS, "variants")
        return value

    @field_validator("output_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value:
            return value
        if not value.startswith(("https://", "http://")) or any(
            c.isspace() or c in "\"'<>" for c in value
        ):
            raise ValueError("must be an http(s) URL without spaces or quotes, or empty")
        return value if value.endswith("/") else value + "/"

    @field_validator("output_key")
    @classmethod
    def _usable_layout(cls, value: str) -> str:
        try:
            return check_output_key_template(value)
        except OutputKeyTemplateError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("variants")
    @classmethod
    def _inherit_defaults(cls, variants: list[Variant], info: ValidationInfo) -> list[Variant]:
        # Resolved here so that each variant task (and so the worker) sees the effective
        # values without knowing the pipeline config.
        inherited = {
            name: info.data[name]
            for name in (
                "background",
                "metadata",
                "animation",
                "cache_control",
                "content_disposition",
                "user_metadata",
            )
            if name in info.data  # absent when that field itself failed validation
        }
        return [
            variant.model_copy(
                update={
                    name: value
                    for name, value in inherited.items()
                    if getattr(variant, name) is None
                }
            )
            for variant in variants
        ]

    @model_validator(mode="after")
    def _unique_names(self) -> PipelineConfig:
        names = [variant.name for variant in self.variants]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def output_key_for(self, source_key: str, variant: Variant, upload_prefix: str) -> str:
        """Where ``variant`` of the source at ``source_key`` is written in the output bucket."""
        return output_key(
            source_key,
            variant,
            upload_prefix=upload_prefix,
            output_prefix=self.output_prefix,
            template=self.output_key,
        )

    def manifest_key_for(self, source_key: str, upload_prefix: str) -> str | None:
        """Where the source's manifest is written (None: manifests are switched off)."""
        if not self.manifest:
            return None
        return manifest_key(
            source_key,
            upload_prefix=upload_prefix,
            output_prefix=self.output_prefix,
            template=self.output_key,
        )

    def effective_watermark(self, variant: Variant) -> Watermark | None:
        """The watermark that applies to ``variant``: its own, none, or the pipeline's."""
        if variant.watermark is False:
            return None
        return variant.watermark or self.watermark


def _check_yaml_shape(text: str, source: str) -> None:
    """Refuse, from the parser's events (before any node or object is built), a document
    nested deeper than ``MAX_CONFIG_DEPTH`` or standing for more than ``MAX_CONFIG_NODES``
    nodes once its aliases are expanded (each alias counts as the nodes of its anchor)."""
    anchored: dict[str, int] = {}  # anchor -> the nodes it stands for
    # The collections not yet ended, outermost first: [anchor, nodes so far, itself included].
    open_collections: list[list[Any]] = []
    total = 0

    def count(nodes: int) -> None:
        nonlocal total
        total += nodes
        if total > MAX_CONFIG_NODES:
            raise ConfigError(
                f"{source}: more than {MAX_CONFIG_NODES:,} YAML nodes (aliases expanded); "
                "a pipeline config needs far fewer"
            )

    def add(nodes: int, anchor: str | None = None) -> None:
        count(nodes)
        if anchor is not None:
            anchored[anchor] = nodes
        if open_collections:
            open_collections[-1][1] += nodes

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in anchored:
                add(anchored[event.anchor])
            elif any(anchor == event.anchor for anchor, _ in open_collections):
                raise ConfigError(f"{source}: alias *{event.anchor} refers to itself")
            else:
                add(1)  # undefined: the composer refuses it
        elif isinstance(event, yaml.ScalarEvent):
            add(1, event.anchor)
        elif isinstance(event, yaml.CollectionStartEvent):
            count(1)
            open_collections.append([event.anchor, 1])
            if len(open_collections) > MAX_CONFIG_DEPTH:
                raise ConfigError(
                    f"{source}: nested more than {MAX_CONFIG_DEPTH} levels deep; "
                    "a pipeline config needs far fewer"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, nodes = open_collections.pop()
            if anchor is not None:
                anchored[anchor] = nodes
            if open_collections:  # already in the total; now in its parent's count too
                open_collections[-1][1] += nodes


def parse_config(text: str, source: str = "pipeline config") -> PipelineConfig:
    """Parse YAML or JSON text (JSON is YAML) into a validated config.

    The text's size is checked first, then the YAML's shape, then the variant count: a
    config too large for the stack costs nothing to refuse."""
    check_config_size(text, source)
    try:
        _check_yaml_shape(text, source)
        document = yaml.safe_load(text)
    except ConfigError:
        raise
    # ValueError: from a constructor, for a date like 2024-13-01 or a 5,000-digit number.
    except (yaml.YAMLError, ValueError) as exc:
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

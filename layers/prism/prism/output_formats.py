"""Every fact about each output format, in the one table that config validation, output
keys, encoding, metadata and animation read. A new format is an entry here, plus a
preparer in ``prism.imaging.encode`` if its writer needs options.

Outside ``prism.imaging`` and free of Pillow so that ``prism.config`` can import it:
importing anything in ``prism.imaging`` runs its ``__init__``, which imports the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The names in ``FORMATS``, for pydantic and mypy (``test_output_formats`` keeps them equal).
OutputFormat = Literal["JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF"]


@dataclass(frozen=True)
class Effort:
    """How hard a format's encoder may work (a variant's ``effort``): 0 is the fastest and
    largest, ``highest`` the slowest and smallest; ``default`` when a variant sets none."""

    highest: int
    default: int


@dataclass(frozen=True)
class FormatSpec:
    name: OutputFormat  # Pillow's name for the writer
    extension: str  # of output keys (``{ext}``), without the dot
    content_type: str
    aliases: tuple[str, ...] = ()  # other names a config (or ``encode``) accepts, upper case
    alpha: bool = True  # keeps transparency; else it is flattened onto the background
    exif: bool = False  # the writer takes an EXIF block (kept copyright/artist fields)
    animated: bool = False  # keeps every frame when the animation policy is ``preserve``
    effort: Effort | None = None  # the encoder takes an effort (else ``effort`` is refused)


FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec("JPEG", "jpg", "image/jpeg", aliases=("JPG",), alpha=False, exif=True),
        FormatSpec("PNG", "png", "image/png", exif=True),
        # effort: libwebp's ``method`` (0-6; 4 is libwebp's and Pillow's default).
        FormatSpec("WEBP", "webp", "image/webp", exif=True, animated=True, effort=Effort(6, 4)),
        FormatSpec("GIF", "gif", "image/gif", animated=True),
        FormatSpec("BMP", "bmp", "image/bmp", alpha=False),
        # effort: 10 - libavif's ``speed`` (0-10); 4 is speed 6, libavif's default balance.
        FormatSpec("AVIF", "avif", "image/avif", exif=True, effort=Effort(10, 4)),
    )
}
_ALIASES = {alias: spec.name for spec in FORMATS.values() for alias in spec.aliases}


def canonical_name(name: str) -> str:
    """``name`` in upper case, an alias replaced by its format's name; unknown names stay."""
    upper = name.strip().upper()
    return _ALIASES.get(upper, upper)

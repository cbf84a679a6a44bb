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
class FormatSpec:
    name: OutputFormat  # Pillow's name for the writer
    extension: str  # of output keys (``{ext}``), without the dot
    content_type: str
    aliases: tuple[str, ...] = ()  # other names a config (or ``encode``) accepts, upper case
    alpha: bool = True  # keeps transparency; else it is flattened onto the background
    exif: bool = False  # the writer takes an EXIF block (kept copyright/artist fields)
    animated: bool = False  # keeps every frame when the animation policy is ``preserve``


FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec("JPEG", "jpg", "image/jpeg", aliases=("JPG",), alpha=False, exif=True),
        FormatSpec("PNG", "png", "image/png", exif=True),
        FormatSpec("WEBP", "webp", "image/webp", exif=True, animated=True),
        FormatSpec("GIF", "gif", "image/gif", animated=True),
        FormatSpec("BMP", "bmp", "image/bmp", alpha=False),
        FormatSpec("AVIF", "avif", "image/avif", exif=True),
    )
}
_ALIASES = {alias: spec.name for spec in FORMATS.values() for alias in spec.aliases}


def canonical_name(name: str) -> str:
    """``name`` in upper case, an alias replaced by its format's name; unknown names stay."""
    upper = name.strip().upper()
    return _ALIASES.get(upper, upper)

"""What metadata a source carried, what an output may keep of it, and what it loses.

Outputs carry no metadata by default: no EXIF (camera, dates, serial numbers), no GPS, no
XMP or IPTC, no comments, no ICC profile (pixels are converted to sRGB first). A variant
may keep the EXIF Copyright and Artist fields (``metadata: {keep: [copyright, artist]}``).
The kinds a rendered output lost are reported so the processing log can say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from PIL import ExifTags, Image

from prism.output_formats import FORMATS, OutputFormat

# The kinds of metadata reported as stripped, in this order.
KINDS = ("exif", "gps", "xmp", "iptc", "icc", "comment")

KEEPABLE_TAGS: Mapping[str, int] = {
    "copyright": ExifTags.Base.Copyright,
    "artist": ExifTags.Base.Artist,
}

# Base-IFD tags that describe the picture, its maker or its owner (TIFF files also list
# their layout here, which is not metadata). The Exif and GPS sub-IFDs count as a whole.
_DESCRIPTIVE_TAGS = frozenset(
    {
        ExifTags.Base.ImageDescription,
        ExifTags.Base.Make,
        ExifTags.Base.Model,
        ExifTags.Base.Software,
        ExifTags.Base.DateTime,
        ExifTags.Base.Artist,
        ExifTags.Base.HostComputer,
        ExifTags.Base.Copyright,
        ExifTags.Base.XPTitle,
        ExifTags.Base.XPComment,
        ExifTags.Base.XPAuthor,
        ExifTags.Base.XPKeywords,
        ExifTags.Base.XPSubject,
    }
)
_TIFF_XMP, _TIFF_IPTC, _TIFF_PHOTOSHOP = 700, 33723, 34377
_PNG_XMP_KEY = "XML:com.adobe.xmp"


@dataclass(frozen=True)
class SourceMetadata:
    # The kinds (see ``KINDS``) the source carried.
    present: frozenset[str] = frozenset()
    # The keepable EXIF fields the source had, by name ("copyright", "artist").
    keepable: Mapping[str, str] = field(default_factory=dict)
    # EXIF beyond the keepable fields (camera, dates, the Exif sub-IFD...).
    other_exif: bool = False

    def exif_for(self, keep: Sequence[str], format: OutputFormat) -> bytes | None:
        """The EXIF block an output in ``format`` keeps, or None for none at all."""
        kept = {name: self.keepable[name] for name in keep if name in self.keepable}
        if not kept or not FORMATS[format].exif:
            return None
        exif = Image.Exif()
        for name, value in kept.items():
            exif[KEEPABLE_TAGS[name]] = value
        return exif.tobytes()

    def stripped(self, keep: Sequence[str], format: OutputFormat) -> tuple[str, ...]:
        """The kinds of metadata the source had and an output in ``format`` does not."""
        kinds = set(self.present)
        all_kept = self.exif_for(keep, format) is not None and set(self.keepable) <= set(keep)
        if all_kept and not self.other_exif:
            kinds.discard("exif")
        return tuple(kind for kind in KINDS if kind in kinds)


def read_metadata(image: Image.Image) -> SourceMetadata:
    """The metadata of a loaded (not yet converted) image: call before it is transposed."""
    try:
        exif = image.getexif()
        gps = bool(exif.get_ifd(ExifTags.IFD.GPSInfo))
        sub_ifd = bool(exif.get_ifd(ExifTags.IFD.Exif))
        tags = dict(exif)
    except Exception:  # unreadable EXIF is not kept, and its kinds cannot be listed
        gps, sub_ifd, tags = False, False, {}
    keepable = {name: _text(tags[tag]) for name, tag in KEEPABLE_TAGS.items() if tags.get(tag)}
    keepable_tags = set(KEEPABLE_TAGS.values())
    other_exif = sub_ifd or any(
        tag in _DESCRIPTIVE_TAGS and tag not in keepable_tags for tag in tags
    )
    info = image.info
    text = getattr(image, "text", None) or {}  # PNG text chunks
    present = {
        "exif": other_exif or bool(keepable),
        "gps": gps,
        "xmp": bool(info.get("xmp")) or _PNG_XMP_KEY in text or _TIFF_XMP in tags,
        "iptc": "photoshop" in info or _TIFF_IPTC in tags or _TIFF_PHOTOSHOP in tags,
        "icc": bool(info.get("icc_profile")),
        "comment": bool(info.get("comment")) or any(key != _PNG_XMP_KEY for key in text),
    }
    return SourceMetadata(
        present=frozenset(kind for kind, found in present.items() if found),
        keepable=keepable,
        other_exif=other_exif,
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    return str(value).rstrip("\x00")

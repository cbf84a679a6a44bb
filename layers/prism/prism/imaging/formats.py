"""Which decoders an upload may reach, and recognising a format from a file's first bytes.

Detection is Pillow's own signature checks, restricted to ``ALLOWED_FORMATS`` so that no
other decoder (EPS, PDF, exotic plugins) is ever reachable from an upload; the file name
plays no part. Two signatures are too weak on their own and get one more look: BMP's
``BM`` (any text file may start with it) and the ISO-BMFF ``ftyp`` box that AVIF shares
with HEIF (its brands tell them apart).
"""

from __future__ import annotations

import importlib

from PIL import (
    AvifImagePlugin,
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

# Importing the plugins registers exactly these readers with Pillow, nothing else.
_PLUGINS = (
    JpegImagePlugin,
    PngImagePlugin,
    GifImagePlugin,
    WebPImagePlugin,
    BmpImagePlugin,
    AvifImagePlugin,
    TiffImagePlugin,
)


def _register_heif() -> bool:
    """Register pillow-heif's HEIF/HEIC reader if that optional package is installed.

    Opt-in because its wheels bundle x265 (GPL) and HEVC is patent-encumbered; see
    docs/image-handling.md. Thumbnails, depth and auxiliary images are never needed.
    """
    try:
        pillow_heif = importlib.import_module("pillow_heif")
    except ImportError:
        return False
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    return True


HEIF_SUPPORTED = _register_heif()

# Raster formats accepted from uploads. TIFF is the one extra: a mainstream photo/scan
# interchange format with a core Pillow reader. Never EPS/PS/PDF (they run Ghostscript).
# HEIF comes last: Pillow's AVIF reader also claims (and then refuses) HEIF files.
ALLOWED_FORMATS: tuple[str, ...] = (
    "JPEG",
    "PNG",
    "GIF",
    "WEBP",
    "BMP",
    "AVIF",
    "TIFF",
    *(("HEIF",) if HEIF_SUPPORTED else ()),
)

# How many leading bytes ``sniff_format`` wants: Pillow's signatures need 16, the BMP
# header size field ends at 18, and the brands of an ``ftyp`` box follow its first 16.
SNIFF_BYTES = 64

# DIB header sizes of the BMP variants Pillow reads; anything else is not a BMP for us.
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})


def sniff_format(prefix: bytes) -> str | None:
    """The allowed format whose signature ``prefix`` (the first bytes of a file) carries.

    A cheap pre-filter using the plugins' own signature checks; a match does not promise
    that the rest of the file is readable. Pass at least ``SNIFF_BYTES`` bytes (or the
    whole file, if shorter).
    """
    head = prefix[:16]
    for name in ALLOWED_FORMATS:
        _factory, accept = Image.OPEN[name]
        # A string result means "recognised, but this Pillow cannot read it".
        if accept is None or accept(head) is not True:
            continue
        if name == "BMP" and not _is_bmp(prefix):
            continue
        if name in ("AVIF", "HEIF") and _isobmff_kind(prefix) != name:
            continue
        return name
    return None


def _is_bmp(prefix: bytes) -> bool:
    return len(prefix) >= 18 and int.from_bytes(prefix[14:18], "little") in _BMP_HEADER_SIZES


def _isobmff_kind(prefix: bytes) -> str | None:
    """AVIF or HEIF from the brands of a leading ``ftyp`` box; None if neither."""
    box_size = int.from_bytes(prefix[:4], "big")
    end = min(len(prefix), max(box_size, 16))
    # The major brand, then (after a 4-byte minor version) the compatible brands.
    brands = {prefix[8:12]} | {prefix[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEVC_BRANDS:
        return "HEIF"
    return None

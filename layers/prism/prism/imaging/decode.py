"""Decode an upload once into an upright, sRGB, metadata-free image in a working mode.

Every variant of a source is rendered from the one image returned here, so this is where
the expensive and easy-to-get-wrong steps happen: bounded memory (pixel limits checked from
the header, JPEG DCT scaling through ``draft``), EXIF orientation, ICC profiles, and the
zoo of Pillow modes reduced to RGB, RGBA, L or LA.
"""

from __future__ import annotations

import contextlib
import io

from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps

from prism.errors import PermanentError, Reason
from prism.imaging.probe import as_permanent_error, open_image

WORKING_MODES = frozenset({"RGB", "RGBA", "L", "LA"})

# EXIF orientations 5-8 turn the stored image by 90 degrees: its width becomes the height.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


def decode(
    data: bytes, *, max_pixels: int, needed_size: tuple[int, int] | None = None
) -> Image.Image:
    """Decode ``data`` into a fully loaded, upright image in mode RGB, RGBA, L or LA.

    ``needed_size`` is the smallest size (upright width, height) the caller will resize to;
    JPEGs are then decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still covers it.
    Animated images yield their first frame. Raises ``PermanentError`` with EMPTY_FILE,
    UNSUPPORTED_FORMAT, CORRUPT, TRUNCATED, TOO_LARGE or DECOMPRESSION_BOMB.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A process-wide switch that would turn truncated uploads into grey-padded outputs.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    image = open_image(data)
    width, height = image.size
    if width * height > max_pixels:
        raise PermanentError(
            Reason.TOO_LARGE,
            f"{width}x{height} is {width * height} pixels; the limit is {max_pixels}",
        )
    try:
        if needed_size is not None:
            _draft(image, needed_size)
        image.load()
        _upright(image)
        converted = _to_srgb(image)
    except MemoryError:
        raise
    except Exception as exc:
        raise as_permanent_error(exc) from exc
    try:
        converted = normalize_mode(converted)
    except ValueError as exc:
        raise PermanentError(
            Reason.UNSUPPORTED_FORMAT, f"pixel mode {converted.mode}: {exc}"
        ) from exc
    # Outputs carry no metadata (EXIF with GPS, comments, XMP, the now-applied ICC profile).
    with contextlib.suppress(Exception):
        converted.getexif().clear()  # the parsed copy Pillow caches next to ``info``
    converted.info = {}
    return converted


def _draft(image: ImageFile.ImageFile, needed_size: tuple[int, int]) -> None:
    """Ask the JPEG decoder for the smallest DCT scale still >= ``needed_size``."""
    if image.format not in ("JPEG", "MPO"):
        return
    width, height = needed_size
    orientation = 1
    with contextlib.suppress(Exception):
        orientation = int(image.getexif().get(ExifTags.Base.Orientation, 1))
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width  # ``draft`` works on the stored (sideways) image
    image.draft(None, (width, height))


def _upright(image: ImageFile.ImageFile) -> None:
    """Apply the EXIF orientation to the pixels and drop the tag.

    Runs before any conversion, which would lose the EXIF block. Broken EXIF must not cost
    the picture: it is then kept as stored.
    """
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except MemoryError:
        raise
    except Exception:
        return


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert colour images with an embedded ICC profile to sRGB.

    Outputs are written without a profile, so anything else (Display P3 phone photos,
    Adobe RGB, CMYK print files) must be converted first or its colours shift. A profile
    that lcms cannot use is ignored rather than failing the image.
    """
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if ImageCms.getProfileDescription(source_profile).strip().startswith("sRGB"):
            return image
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(
            image, source_profile, ImageCms.createProfile("sRGB"), outputMode=output_mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    assert converted is not None  # only None when converting in place
    return converted


def normalize_mode(image: Image.Image) -> Image.Image:
    """``image`` in RGB, RGBA, L or LA; the same object when it already is one.

    Raises ``ValueError`` for a mode Pillow cannot convert (e.g. LAB).
    """
    mode = image.mode
    if mode in ("RGB", "L") and "transparency" in image.info:
        return image.convert(mode + "A")  # a tRNS colour key becomes real alpha
    if mode in WORKING_MODES:
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I"):
        # 16-bit samples (PNG/TIFF): scale to 8 bits; a plain convert would clip at 255.
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if mode == "F":
        _low, high = image.getextrema()
        if isinstance(high, float | int) and high <= 1.0:  # floats in 0..1
            image = image.point(lambda value: value * 255)
        return image.convert("L")
    if mode == "La":
        return image.convert("LA")
    if "A" in image.getbands() or mode == "RGBa":
        return image.convert("RGBA")
    return image.convert("RGB")  # CMYK without a profile, YCbCr, RGBX, HSV, ...

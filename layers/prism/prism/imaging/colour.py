"""Colour: embedded ICC profiles to sRGB, and Pillow's zoo of modes to four working modes.

Outputs carry no profile, and an untagged image is read as sRGB. So everything else
(Display P3 phone photos, Adobe RGB, CMYK print files, CIELAB) is converted *before* the
profile is dropped, or its colours shift. CMYK JPEGs arrive in Adobe's inverted polarity;
Pillow's JPEG reader undoes that (and libjpeg turns YCCK into CMYK), so what reaches
this module is plain CMYK.
"""

from __future__ import annotations

import io

from PIL import Image, ImageCms

WORKING_MODES = frozenset({"RGB", "RGBA", "L", "LA"})

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_LAB = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
# Modes a colour profile is converted from (after palettes are expanded).
_PROFILED_MODES = frozenset({"RGB", "RGBA", "CMYK"})


def to_srgb(image: Image.Image) -> Image.Image:
    """``image`` in sRGB: converted through its embedded ICC profile, if it has one.

    Returns ``image`` itself when there is nothing to convert: no profile, an sRGB one,
    grayscale, or a profile lcms cannot use (a broken profile must not cost the picture;
    CMYK then falls back to Pillow's plain conversion in ``normalize_mode``).
    """
    if image.mode == "LAB":
        # CIELAB (TIFF) is device-independent: convert it whatever the profile says.
        return _convert(image, _LAB, "RGB") or image
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    if image.mode in ("P", "PA") and profile.profile.xcolor_space.strip() == "RGB":
        # A palette PNG with an RGB profile: expand the palette, keeping the profile.
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    if image.mode not in _PROFILED_MODES:
        return image  # grayscale profiles: gray stays gray
    if ImageCms.getProfileDescription(profile).strip().startswith("sRGB"):
        return image
    return _convert(image, profile, "RGBA" if image.mode == "RGBA" else "RGB") or image


def _convert(
    image: Image.Image, profile: ImageCms.ImageCmsProfile, mode: str
) -> Image.Image | None:
    try:
        converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    assert converted is not None  # only None when converting in place
    return converted


def normalize_mode(image: Image.Image) -> Image.Image:
    """``image`` in RGB, RGBA, L or LA; the same object when it already is one.

    Raises ``ValueError`` for a mode Pillow cannot convert.
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
    if mode == "I;16":
        # 16-bit samples (PNG/TIFF): scale to 8 bits (65535 -> 255, 32768 -> 128); a
        # plain convert would clip everything above 255 to white. Scaled in 16 bits: the
        # same values as through 32-bit "I" below, at half the memory and CPU.
        return image.point(lambda value: value * (1 / 256)).convert("L")
    if mode.startswith("I"):
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if mode == "F":
        _low, high = image.getextrema()
        if isinstance(high, float | int) and high <= 1.0:  # floats in 0..1
            image = image.point(lambda value: value * 255)
        return image.convert("L")
    if mode == "La":
        return image.convert("LA")
    if mode == "LAB":
        return to_srgb(image)
    if "A" in image.getbands() or mode == "RGBa":
        return image.convert("RGBA")
    return image.convert("RGB")  # CMYK without a profile, YCbCr, RGBX, HSV, ...

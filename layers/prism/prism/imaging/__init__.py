"""Prism's imaging core: pure Pillow, no AWS.

probe the bytes -> decode once -> for each variant: transforms -> watermark -> encode.
"""

from prism.imaging.decode import decode, normalize_mode
from prism.imaging.encode import encode, flatten
from prism.imaging.probe import ALLOWED_FORMATS, SNIFF_BYTES, ImageInfo, probe, sniff_format
from prism.imaging.render import RenderedVariant, render_variant
from prism.imaging.transforms import (
    apply_transforms,
    combined_needed_size,
    fit_size,
    needed_size,
)
from prism.imaging.watermark import apply_watermark, watermark_position

__all__ = [
    "ALLOWED_FORMATS",
    "SNIFF_BYTES",
    "ImageInfo",
    "RenderedVariant",
    "apply_transforms",
    "apply_watermark",
    "combined_needed_size",
    "decode",
    "encode",
    "fit_size",
    "flatten",
    "needed_size",
    "normalize_mode",
    "probe",
    "render_variant",
    "sniff_format",
    "watermark_position",
]

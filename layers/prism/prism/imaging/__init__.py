"""Prism's imaging core: pure Pillow, no AWS.

probe the bytes -> decode once -> for each variant: transforms -> watermark -> encode.
What each kind of input becomes is described in docs/image-handling.md.
"""

from prism.imaging.admission import (
    PROBE_BYTES,
    admit_header,
    admit_prefix,
    check_limits,
    check_size,
    decode_footprint,
    needs_probe,
)
from prism.imaging.animation import Frames, source_animation
from prism.imaging.colour import normalize_mode, to_srgb
from prism.imaging.decode import Source, covers, decode, decode_source
from prism.imaging.encode import encode, flatten
from prism.imaging.formats import ALLOWED_FORMATS, HEIF_SUPPORTED, SNIFF_BYTES, sniff_format
from prism.imaging.geometry import fit_size
from prism.imaging.metadata import SourceMetadata
from prism.imaging.probe import ImageInfo, probe, probe_header
from prism.imaging.render import RenderedVariant, render_variant
from prism.imaging.transforms import apply_transforms, combined_needed_size, needed_size
from prism.imaging.watermark import apply_watermark, watermark_position

__all__ = [
    "ALLOWED_FORMATS",
    "HEIF_SUPPORTED",
    "PROBE_BYTES",
    "SNIFF_BYTES",
    "Frames",
    "ImageInfo",
    "RenderedVariant",
    "Source",
    "SourceMetadata",
    "admit_header",
    "admit_prefix",
    "apply_transforms",
    "apply_watermark",
    "check_limits",
    "check_size",
    "combined_needed_size",
    "covers",
    "decode",
    "decode_footprint",
    "decode_source",
    "encode",
    "fit_size",
    "flatten",
    "needed_size",
    "needs_probe",
    "normalize_mode",
    "probe",
    "probe_header",
    "render_variant",
    "sniff_format",
    "source_animation",
    "to_srgb",
    "watermark_position",
]

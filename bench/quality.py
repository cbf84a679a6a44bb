"""How far each approach's pixels are from a direct Lanczos resize of the full decode.

    .venv/bin/python bench/quality.py [--corpus DIR]

Prism decodes a JPEG at the DCT scale just above what its largest variant needs, and
renders every variant from one image kept at that variant's size (a resize chain). This
measures what that costs: the mean absolute difference (0-255 per channel) of each
variant from the reference, the full-size decode (upright, sRGB) resized once with
Lanczos and no reducing gap; before encoding ("pixels") and after ("encoded", the
output decoded again; "reference encoded" is the reference through the same encoder
settings: the floor). The same figures for the textbook script (Pillow's ``thumbnail``,
reducing gap 2.0) and pyvips give the scale.

The corpus's 48 MP photo is an upscale, which DCT scaling handles unusually well, so
the table adds a 48 MP JPEG tiled from a real photo (generated in memory).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import workloads
from PIL import Image, ImageChops, ImageStat
from workloads import MAX_PIXELS, VARIANTS, decode, pyvips

from prism.config import Variant
from prism.imaging import apply_transforms, fit_size
from prism.imaging.encode import flatten
from prism.imaging.prepare import prepare
from prism.imaging.probe import open_image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif"}
TEXTURE_PHOTO = "photo_2725x2225.jpg"

Pixels = Callable[[bytes, Sequence[Variant]], list[Image.Image]]


def _box(variant: Variant) -> tuple[int, int]:
    box = variant.transforms[0]
    return box.width, box.height  # type: ignore[union-attr]  # thumbnail variants only


def reference(data: bytes, variants: Sequence[Variant]) -> list[Image.Image]:
    """The full decode, upright and sRGB, resized once per variant (exact Lanczos)."""
    image = open_image(data, max_pixels=MAX_PIXELS)
    image.load()
    full = prepare(image)
    outputs = []
    for variant in variants:
        size = fit_size(full.size, _box(variant))
        outputs.append(full if size == full.size else full.resize(size, Image.Resampling.LANCZOS))
    return outputs


def prism(data: bytes, variants: Sequence[Variant]) -> list[Image.Image]:
    """What Prism encodes: one decode for all variants, then each one's transforms."""
    source = decode(data, variants)
    return [
        apply_transforms(source.image, variant.transforms, size=source.size) for variant in variants
    ]


def textbook(data: bytes, variants: Sequence[Variant]) -> list[Image.Image]:
    """The textbook script's pixels (``convert("RGB")``: alpha dropped, not flattened)."""
    return workloads.textbook_pixels(data, variants)


def vips(data: bytes, variants: Sequence[Variant]) -> list[Image.Image]:
    """pyvips' pixels, from the same chain as ``workloads.pyvips_decode_once``."""
    order = sorted(range(len(variants)), key=lambda i: _box(variants[i]), reverse=True)
    outputs: dict[int, Image.Image] = {}
    image = None
    for index in order:
        width, height = _box(variants[index])
        if image is None:
            image = pyvips().Image.thumbnail_buffer(data, width, height=height, size="down")
        else:
            image = image.thumbnail_image(width, height=height, size="down")
        image = image.copy_memory()
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[image.bands]
        outputs[index] = Image.frombytes(mode, (image.width, image.height), image.write_to_memory())
    return [outputs[index] for index in range(len(variants))]


def mean_difference(image: Image.Image, expected: Image.Image, *, keep_alpha: bool = True) -> float:
    """Mean absolute difference per channel (0-255); alpha flattened onto white unless
    ``keep_alpha`` is False, when both are compared as plain RGB (colour under alpha)."""
    if image.size != expected.size:
        return float("nan")
    if keep_alpha:  # JPEG outputs were flattened onto white: so is everything else
        image, expected = flatten(image), flatten(expected)
    image, expected = image.convert("RGB"), expected.convert("RGB")
    return statistics.fmean(ImageStat.Stat(ImageChops.difference(image, expected)).mean)


def tiled_photo(texture: Path, size: tuple[int, int] = (8000, 6000)) -> bytes:
    """A JPEG (q90) of ``size`` tiled from a real photo: full-resolution detail."""
    buffer = io.BytesIO()
    workloads.tiled(texture, size).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def saved_as_textbook(images: Sequence[Image.Image], variants: Sequence[Variant]) -> list[bytes]:
    """Each picture saved as the textbook script saves: Pillow's defaults at the variant's
    quality (JPEGs flattened onto white)."""
    outputs = []
    for image, variant in zip(images, variants, strict=True):
        buffer = io.BytesIO()
        working = flatten(image) if variant.format == "JPEG" else image
        working.save(buffer, variant.format, quality=variant.quality)
        outputs.append(buffer.getvalue())
    return outputs


def _decoded(outputs: Sequence[bytes]) -> list[Image.Image]:
    images = []
    for data in outputs:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            images.append(image.copy())
    return images


def measure(uploads: dict[str, bytes]) -> list[dict[str, Any]]:
    pixels: dict[str, Pixels] = {"prism": prism, "textbook": textbook}
    encoders: dict[str, Callable[[bytes], list[bytes]]] = {
        "prism": workloads.prism_sequential,
        "textbook": workloads.textbook,
    }
    if pyvips() is not None:
        pixels["pyvips"] = vips
        encoders["pyvips"] = workloads.pyvips_decode_once
    rows = []
    for name, data in uploads.items():
        expected = reference(data, VARIANTS)
        results = {approach: make(data, VARIANTS) for approach, make in pixels.items()}
        encoded = {approach: _decoded(make(data)) for approach, make in encoders.items()}
        floor = _decoded(saved_as_textbook(expected, VARIANTS))
        for index, variant in enumerate(VARIANTS):
            row: dict[str, Any] = {
                "photo": name,
                "variant": f"{variant.name} {'x'.join(map(str, expected[index].size))}",
                "reference encoded": mean_difference(floor[index], expected[index]),
            }
            for approach in pixels:
                alpha = approach != "textbook"
                row[f"{approach} pixels"] = mean_difference(
                    results[approach][index], expected[index], keep_alpha=alpha
                )
                row[f"{approach} encoded"] = mean_difference(
                    encoded[approach][index], expected[index], keep_alpha=alpha
                )
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    names = [key for key in rows[0] if key not in ("photo", "variant")]
    header = ["photo", "variant", *names]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "--:|" * len(names)]
    for row in rows:
        cells = [row["photo"], row["variant"], *(f"{row[name]:.2f}" for name in names)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of photos")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"No photo corpus at {args.corpus}: skipping (pass --corpus DIR).")
        return 0
    print(report(corpus_uploads(args.corpus)))
    return 0


def corpus_uploads(corpus: Path) -> dict[str, bytes]:
    """The corpus photos, plus a 48 MP JPEG tiled from ``TEXTURE_PHOTO`` if it is there."""
    photos = sorted(p for p in corpus.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    uploads = {photo.name: photo.read_bytes() for photo in photos}
    if (corpus / TEXTURE_PHOTO).is_file():
        uploads[f"tiled 8000x6000 JPEG from {TEXTURE_PHOTO}"] = tiled_photo(corpus / TEXTURE_PHOTO)
    return uploads


EXPLANATION = (
    "Mean absolute difference per channel (0-255) from the full decode resized once with "
    "Lanczos: of the pixels before encoding, and of the outputs decoded again. The textbook "
    "compares as plain RGB (it drops alpha); everything else is flattened onto white."
)


def report(uploads: dict[str, bytes]) -> str:
    return table(measure(uploads)) + "\n" + EXPLANATION


if __name__ == "__main__":
    sys.exit(main())

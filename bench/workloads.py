"""What the benchmarks time and measure: a textbook Pillow script, pyvips, and Prism.

Every workload turns one upload (bytes) into the default pipeline's variants (bytes), in
the pipeline's order, so all of them do the same job: thumbnail 256 JPEG, web 1280 WebP,
large 1920 JPEG, at the qualities ``default_pipeline.yaml`` sets.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from PIL import Image

from prism.budget import MemoryBudget
from prism.config import Thumbnail, Variant, default_config
from prism.imaging import Source, decode_footprint, decode_source, render_variant
from prism.imaging.encode import resolved_effort, webp_method
from prism.settings import Settings

CONFIG = default_config()
VARIANTS: Sequence[Variant] = CONFIG.variants
MAX_PIXELS = CONFIG.limits.max_source_pixels


def with_effort(effort: int, variants: Sequence[Variant] = VARIANTS) -> list[Variant]:
    """``variants`` with ``effort`` set on those whose format takes one (the WebP)."""
    return [
        variant.model_copy(update={"effort": effort})
        if variant.format in ("WEBP", "AVIF")
        else variant
        for variant in variants
    ]


def _box(variant: Variant) -> tuple[int, int]:
    box = variant.transforms[0] if variant.transforms else None
    assert isinstance(box, Thumbnail), "the anchors only know thumbnail variants"
    return box.width, box.height


# --- anchor A: the textbook Pillow script -------------------------------------------------
def textbook(data: bytes, variants: Sequence[Variant] = VARIANTS) -> list[bytes]:
    """The textbook Pillow script: open, ``convert("RGB")``, then per variant
    ``copy().thumbnail(LANCZOS)`` and ``save`` at the variant's quality (Pillow's other
    defaults: WebP method 4, no JPEG optimize). One full decode, no draft, one thread;
    no orientation or colour profile handling, and alpha is dropped."""
    outputs = []
    for variant, resized in zip(variants, textbook_pixels(data, variants), strict=True):
        buffer = io.BytesIO()
        resized.save(buffer, variant.format, quality=variant.quality)
        outputs.append(buffer.getvalue())
    return outputs


def textbook_pixels(data: bytes, variants: Sequence[Variant] = VARIANTS) -> list[Image.Image]:
    """The textbook script's resized pictures, before they are saved."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    outputs = []
    for variant in variants:
        resized = image.copy()
        resized.thumbnail(_box(variant), Image.Resampling.LANCZOS)
        outputs.append(resized)
    return outputs


def tiled(texture: Path, size: tuple[int, int]) -> Image.Image:
    """A picture of ``size`` tiled from a real photo, so it has (and compresses like)
    full-resolution detail."""
    with Image.open(texture) as photo:
        photo.load()
        canvas = Image.new("RGB", size)
        for x in range(0, size[0], photo.width):
            for y in range(0, size[1], photo.height):
                canvas.paste(photo, (x, y))
    return canvas


# --- anchor B: pyvips, decode once --------------------------------------------------------
@functools.cache
def pyvips() -> Any:
    """The pyvips module, set up for the bench; None when it (or libvips) is missing.
    Imported on first use: libvips adds about 17 MB to a process."""
    try:
        import pyvips
    except (ImportError, OSError):  # the module, or libvips itself, is missing
        return None
    pyvips.cache_set_max(0)  # every round must do the work: no cached operations
    pyvips.concurrency_set(int(os.environ.get("BENCH_VIPS_THREADS", "1")))  # one thread
    return pyvips


def pyvips_version() -> str | None:
    vips = pyvips()
    if vips is None:
        return None
    libvips = ".".join(str(vips.version(part)) for part in range(3))
    return f"pyvips {vips.__version__} (libvips {libvips})"


def pyvips_decode_once(data: bytes, variants: Sequence[Variant] = VARIANTS) -> list[bytes]:
    """libvips' own pipeline: ``thumbnail_buffer`` (shrink-on-load, orientation, colour
    profile to sRGB) for the largest variant, then ``thumbnail_image`` of that result for
    the next smaller one, and so on; same formats, qualities and WebP effort, metadata
    stripped. One thread (``BENCH_VIPS_THREADS`` to change)."""
    vips = pyvips()
    assert vips is not None, "pyvips is not installed (pip install 'prism-pipeline[bench]')"
    order = sorted(range(len(variants)), key=lambda i: _box(variants[i]), reverse=True)
    outputs: dict[int, bytes] = {}
    image = None
    for index in order:
        variant = variants[index]
        width, height = _box(variant)
        if image is None:
            image = vips.Image.thumbnail_buffer(data, width, height=height, size="down")
        else:
            image = image.thumbnail_image(width, height=height, size="down")
        # libvips is lazy: without this, every save would decode the upload again.
        image = image.copy_memory()
        if variant.format == "WEBP":
            effort = webp_method(resolved_effort("WEBP", variant.effort))
            outputs[index] = image.webpsave_buffer(Q=variant.quality, effort=effort, strip=True)
        else:
            flat = image.flatten(background=[255, 255, 255]) if image.hasalpha() else image
            outputs[index] = flat.jpegsave_buffer(Q=variant.quality, strip=True)
    return [outputs[index] for index in range(len(variants))]


# --- Prism's worker path ------------------------------------------------------------------
def decode(data: bytes, variants: Sequence[Variant] = VARIANTS) -> Source:
    """Prism's decode for ``variants``: kept at the largest size they render from."""
    return decode_source(data, max_pixels=MAX_PIXELS, variants=variants)


def render(source: Source, variant: Variant) -> bytes:
    return render_variant(source, variant, None).data


def prism_sequential(data: bytes, variants: Sequence[Variant] = VARIANTS) -> list[bytes]:
    """Decode once, then render each variant in turn, on one thread."""
    source = decode(data, variants)
    return [render(source, variant) for variant in variants]


def prism_threaded(
    data: bytes, pool: Executor, variants: Sequence[Variant] = VARIANTS
) -> list[bytes]:
    """Decode once, then render the variants on ``pool``, as the worker does."""
    source = decode(data, variants)
    return list(pool.map(functools.partial(render, source), variants))


async def prism_batch(
    uploads: Sequence[bytes], pool: Executor, variants: Sequence[Variant] = VARIANTS
) -> list[list[bytes]]:
    """Several uploads at once, scheduled as the worker schedules a batch (largest first): up to
    ``Settings.source_concurrency`` sources at once, each reserving its decode footprint
    from a ``Settings.source_memory_mb`` budget before it is decoded on ``pool``; then each
    of its variants is rendered on ``pool``, while the next source is decoded."""
    loop = asyncio.get_running_loop()
    sources = asyncio.Semaphore(Settings.source_concurrency)
    memory = MemoryBudget(Settings.source_memory_mb * 1024 * 1024)

    async def one(data: bytes) -> list[bytes]:
        async with sources:
            footprint = await loop.run_in_executor(
                pool,
                functools.partial(decode_footprint, data, max_pixels=MAX_PIXELS, variants=variants),
            )
            async with memory.reserve(footprint):
                source = await loop.run_in_executor(pool, decode, data, variants)
                return list(
                    await asyncio.gather(
                        *(loop.run_in_executor(pool, render, source, v) for v in variants)
                    )
                )

    # The worker starts a batch's largest uploads first.
    order = sorted(range(len(uploads)), key=lambda index: -len(uploads[index]))
    results = await asyncio.gather(*(one(uploads[index]) for index in order))
    by_index = dict(zip(order, results, strict=True))
    return [by_index[index] for index in range(len(uploads))]


def run_batch(
    uploads: Sequence[bytes], pool: Executor, variants: Sequence[Variant] = VARIANTS
) -> list[list[bytes]]:
    """``prism_batch`` in an event loop of its own, from synchronous code."""
    results: list[list[bytes]] = []

    async def batch() -> None:
        # Returns nothing: Python 3.11's asyncio.run formats the repr of the result of the
        # coroutine it runs, twice, when it restores the SIGINT handler (fixed in 3.12,
        # python/cpython#112559). For the corpus's outputs that is 2.5 MB of bytes turned
        # into text, about 30 ms inside every timed batch.
        results.extend(await prism_batch(uploads, pool, variants))

    asyncio.run(batch())
    return results

"""What the benchmarks time and measure: a textbook Pillow script, and Prism's imaging core.

Every workload turns one upload (bytes) into the default pipeline's variants (bytes), so
the baseline and Prism do the same job: thumbnail 256 JPEG, web 1280 WebP, large 1920 JPEG,
at the qualities ``default_pipeline.yaml`` sets.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Sequence
from concurrent.futures import Executor

from PIL import Image, ImageOps

from prism.config import Thumbnail, Variant, default_config
from prism.imaging import Source, decode_source, render_variant

CONFIG = default_config()
VARIANTS: Sequence[Variant] = CONFIG.variants
MAX_PIXELS = CONFIG.limits.max_source_pixels


def naive(data: bytes, variants: Sequence[Variant] = VARIANTS) -> list[bytes]:
    """Baseline A, the textbook Pillow pass: per variant, open, full decode, exif_transpose,
    Lanczos thumbnail, save. One full decode per variant, one thread."""
    outputs = []
    for variant in variants:
        box = variant.transforms[0]
        assert isinstance(box, Thumbnail), "the baseline only knows thumbnail variants"
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()  # full size: no draft
            image = ImageOps.exif_transpose(opened)
        # JPEG stores RGB, WebP RGB or RGBA: Pillow's plain convert (no ICC, alpha dropped).
        wanted = "RGBA" if variant.format != "JPEG" and image.mode == "RGBA" else "RGB"
        if image.mode != wanted:
            image = image.convert(wanted)
        image.thumbnail((box.width, box.height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, variant.format, quality=variant.quality)
        outputs.append(buffer.getvalue())
    return outputs


def decode(data: bytes, variants: Sequence[Variant] = VARIANTS) -> Source:
    """Prism's decode for ``variants``: a JPEG is drafted to the largest size they need."""
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


def prism_decode_per_variant(data: bytes, variants: Sequence[Variant] = VARIANTS) -> list[bytes]:
    """Prism without decode-once: each variant decodes the upload itself (drafted to its
    own size), one thread."""
    return [render(decode(data, [variant]), variant) for variant in variants]


async def prism_batch(
    uploads: Sequence[bytes], pool: Executor, variants: Sequence[Variant] = VARIANTS
) -> list[list[bytes]]:
    """Several uploads at once, scheduled as the worker schedules a batch: every source
    is decoded on ``pool``, then each of its variants is rendered on ``pool``."""
    loop = asyncio.get_running_loop()

    async def one(data: bytes) -> list[bytes]:
        source = await loop.run_in_executor(pool, decode, data, variants)
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(pool, render, source, variant) for variant in variants)
            )
        )

    return list(await asyncio.gather(*(one(data) for data in uploads)))

"""What ``prism.imaging.placeholder.placeholder()`` costs per call.

    .venv/bin/python bench/placeholder_cost.py [--corpus DIR] [--repeat N]

Prints the median of ``--repeat`` calls (after one warm-up, ``time.perf_counter``) on a
generated 256x256 photo-like image (noise over gradients), on a generated 4000x3000 one
(RGB, then RGBA), and on each JPEG of the corpus (default ../shared/corpus; skipped when
absent) decoded with ``prism.imaging.decode(..., needed_size=(256, 256))`` and reduced to
256 px on its long side. The target is under 5 ms for 256x256. For each corpus photo it
also prints how far (mean absolute sRGB level over a 32x32 decode) its hash is from a hash
of a 128x128 working grid: the price of the small grid ``placeholder.GRID``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import blurhash  # type: ignore[import-untyped]
from PIL import Image

from prism.imaging import decode
from prism.imaging import placeholder as lqip

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
TARGET_MS = 5.0


def photo_like(size: tuple[int, int]) -> Image.Image:
    """Noise over two crossing gradients, so every component has something to encode."""
    gradient = Image.linear_gradient("L").resize(size)
    crossing = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(size)
    return Image.merge("RGB", (gradient, Image.effect_noise(size, 48), crossing))


def median_ms(image: Image.Image, repeat: int) -> float:
    lqip.placeholder(image)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        lqip.placeholder(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def grid_error(image: Image.Image) -> float:
    """Mean |difference| between the decodes of this hash and of a 128x128-grid hash."""
    saved = lqip.GRID
    try:
        lqip.GRID = 128
        reference = lqip.placeholder(image).blurhash
    finally:
        lqip.GRID = saved
    ours = lqip.placeholder(image).blurhash
    a: list[int] = [c for row in blurhash.decode(ours, 32, 32) for pixel in row for c in pixel]
    b: list[int] = [c for row in blurhash.decode(reference, 32, 32) for pixel in row for c in pixel]
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def corpus_images(corpus: Path) -> list[tuple[str, Image.Image]]:
    images = []
    for path in sorted(corpus.iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg"):
            continue
        image = decode(path.read_bytes(), max_pixels=10**9, needed_size=(256, 256))
        image.thumbnail((256, 256), Image.Resampling.BOX)
        images.append((path.name, image))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of JPEGs")
    parser.add_argument("--repeat", type=int, default=50, help="calls per image (median)")
    args = parser.parse_args()

    print(f"placeholder(): median of {args.repeat} calls, working grid {lqip.GRID} px")
    small = median_ms(photo_like((256, 256)), args.repeat)
    verdict = "ok" if small < TARGET_MS else f"OVER the {TARGET_MS:g} ms target"
    print(f"  generated 256x256 RGB      {small:7.2f} ms  ({verdict})")
    large = photo_like((4000, 3000))
    print(f"  generated 4000x3000 RGB    {median_ms(large, max(5, args.repeat // 5)):7.2f} ms")
    # Pillow premultiplies alpha over the whole picture before reducing it: most of this.
    large.putalpha(Image.linear_gradient("L").resize(large.size))
    print(f"  generated 4000x3000 RGBA   {median_ms(large, max(5, args.repeat // 5)):7.2f} ms")

    if not args.corpus.is_dir():
        print(f"No photo corpus at {args.corpus}: skipping it (pass --corpus DIR).")
        return
    for name, image in corpus_images(args.corpus):
        ms = median_ms(image, args.repeat)
        label = f"{name} ({image.width}x{image.height} {image.mode})"
        print(f"  {label:<44} {ms:7.2f} ms  grid error {grid_error(image):4.1f} levels")


if __name__ == "__main__":
    main()

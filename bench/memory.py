"""Peak memory (RSS) of the worker's imaging path for the largest inputs it accepts.

    .venv/bin/python bench/memory.py [--corpus DIR] [--batch N] [--json OUT]

Inputs: the corpus's 48 MP JPEG, and uploads at the configured pixel limit generated in a
temporary folder from a corpus photo: an RGB JPEG, an RGBA PNG (no DCT scaling, 4 bytes
a pixel) and a 16-bit grayscale PNG. Each measurement runs in a fresh subprocess, so
peaks do not mix, and reads ``ru_maxrss`` after the imports and after the work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import workloads
from PIL import Image

from prism.config import Limits

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
LARGEST_PHOTO = "large_8000x6000.jpg"
TEXTURE_PHOTO = "photo_2725x2225.jpg"
THREADS = 2
# ru_maxrss is in KiB on Linux (Lambda), in bytes on macOS.
_RSS_UNIT = 1 / 1024 if sys.platform == "darwin" else 1.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT / 1024


def lambda_memory_mb() -> int:
    """The worker's configured memory: the WorkerMemorySize default in template.yaml."""
    # Imported here: cfn-lint is large, and the measuring children do not need it.
    from cfnlint.decode import cfn_yaml

    template: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
    return int(template["Parameters"]["WorkerMemorySize"]["Default"])


# --- one measurement, in its own process ------------------------------------------------
def child(mode: str, path: Path, batch: int) -> dict[str, float]:
    """Run one workload on ``path`` and return the process's RSS before and after (MB)."""
    # Both modes import what the worker imports, so their starting points are the same.
    import prism.worker  # noqa: F401

    start = peak_rss_mb()
    # The worker holds each upload's bytes while it decodes; a batch holds several.
    uploads = [path.read_bytes() for _ in range(batch if mode == "prism-batch" else 1)]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        work: dict[str, Callable[[], object]] = {
            "naive": lambda: workloads.naive(uploads[0]),
            "prism": lambda: workloads.prism_threaded(uploads[0], pool),
            # Scheduled as the worker schedules an SQS batch with ``batch`` sources.
            "prism-batch": lambda: asyncio.run(workloads.prism_batch(uploads, pool)),
        }
        work[mode]()
    return {"start_mb": start, "peak_mb": peak_rss_mb()}


def run_child(*args: str) -> str:
    """The last line ``memory.py *args`` prints, run in a fresh process.

    Linux carries a process's ``ru_maxrss`` across fork and exec, so this process must
    never grow: it only starts children (which also generate the inputs).
    """
    command = [sys.executable, __file__, *args]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stderr}")
    return completed.stdout.splitlines()[-1]


def measure(mode: str, path: Path, batch: int) -> dict[str, float]:
    result: dict[str, float] = json.loads(
        run_child("--child", mode, str(path), "--batch", str(batch))
    )
    return result


# --- inputs ----------------------------------------------------------------------------
def limit_size(max_pixels: int) -> tuple[int, int]:
    """The largest square within the pixel limit (10000 x 10000 for 100 MP)."""
    side = math.isqrt(max_pixels)
    return side, side


def generate_inputs(texture: Path, folder: Path, size: tuple[int, int]) -> list[Path]:
    """Uploads of ``size`` tiled from a real photo, so they compress like photos do."""
    with Image.open(texture) as photo:
        photo.load()
        canvas = Image.new("RGB", size)
        for x in range(0, size[0], photo.width):
            for y in range(0, size[1], photo.height):
                canvas.paste(photo, (x, y))
    name = f"{size[0]}x{size[1]}"
    jpeg, rgba, gray16 = (
        folder / f"generated_{name}.jpg",
        folder / f"generated_{name}_rgba.png",
        folder / f"generated_{name}_gray16.png",
    )
    canvas.save(jpeg, quality=90)
    canvas.convert("RGBA").save(rgba, compress_level=1)
    # 16-bit samples: 0-255 spread over 0-65535.
    canvas.convert("L").convert("I").point(lambda v: v * 257).convert("I;16").save(
        gray16, compress_level=1
    )
    return [jpeg, rgba, gray16]


# --- report -------------------------------------------------------------------------------
def benchmark(inputs: list[Path], batch: int) -> list[dict[str, Any]]:
    rows = []
    for path in inputs:
        with Image.open(path) as image:  # reads the header only
            described = f"{image.format} {image.width}x{image.height} {image.mode}"
        print(f"measuring {path.name}...", flush=True)
        naive = measure("naive", path, batch)
        naive_imaging = naive["peak_mb"] - naive["start_mb"]
        for mode in ("naive", "prism", "prism-batch"):
            result = naive if mode == "naive" else measure(mode, path, batch)
            imaging = result["peak_mb"] - result["start_mb"]
            rows.append(
                {
                    "input": path.name,
                    "image": described,
                    "file_mb": path.stat().st_size / 2**20,
                    "mode": mode if mode != "prism-batch" else f"prism, {batch} at once",
                    **result,
                    "imaging_mb": imaging,
                    "imaging_vs_naive": imaging / naive_imaging,
                }
            )
    return rows


def table(rows: list[dict[str, Any]], memory_mb: int) -> str:
    lines = [
        "| input | image | path | start MB | peak | imaging MB (peak - start) | vs naive |",
        "|---|---|---|--:|---|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['input']} ({row['file_mb']:.1f} MB) | {row['image']} | {row['mode']} "
            f"| {row['start_mb']:.0f} | {row['peak_mb']:.0f} MB of {memory_mb} MB "
            f"({row['peak_mb'] / memory_mb:.0%}) | {row['imaging_mb']:.0f} "
            f"| {row['imaging_vs_naive']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of photos")
    parser.add_argument("--batch", type=int, default=2, help="uploads at once in the batch case")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=2, metavar=("PHOTO", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.batch)))
        return 0
    if args.generate:
        size = limit_size(Limits().max_source_pixels)
        paths = generate_inputs(Path(args.generate[0]), Path(args.generate[1]), size)
        print(json.dumps([str(path) for path in paths]))
        return 0
    photos = [args.corpus / LARGEST_PHOTO, args.corpus / TEXTURE_PHOTO]
    if not all(photo.is_file() for photo in photos):
        print(f"No {LARGEST_PHOTO} and {TEXTURE_PHOTO} in {args.corpus}: skipping.")
        return 0
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as folder:
        size = limit_size(Limits().max_source_pixels)
        print(f"generating {size[0]}x{size[1]} uploads (about 20 s)...", flush=True)
        generated = json.loads(run_child("--generate", str(photos[1]), folder))
        Image.MAX_IMAGE_PIXELS = None  # big on purpose; only headers are read here
        rows = benchmark([photos[0], *map(Path, generated)], max(1, args.batch))
    memory_mb = lambda_memory_mb()  # after the children: cfn-lint is large
    print(table(rows, memory_mb))
    print(
        f"{THREADS} threads render the default pipeline's 3 variants; start = RSS after "
        "the worker's imports; each row is a fresh process."
    )
    if args.json:
        result = {"lambda_memory_mb": memory_mb, "threads": THREADS, "rows": rows}
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

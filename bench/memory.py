"""Peak memory (RSS) of the worker's imaging path, and of the anchors, for the largest
inputs Prism accepts.

    .venv/bin/python bench/memory.py [--corpus DIR] [--batch N] [--json OUT]

Inputs: the corpus's 48 MP JPEG, and uploads at the configured pixel limit generated in a
temporary folder from a corpus photo: an RGB JPEG, an RGBA PNG (no DCT scaling, 4 bytes
a pixel), a 16-bit grayscale PNG and a WebP. Each measurement runs in a fresh subprocess,
so peaks do not mix, and reads ``ru_maxrss`` after the imports and after the work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import warnings
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
# Bytes a pixel takes in Pillow's memory, by mode (RGB is stored as 4 bytes, like RGBA).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
# Every approach, in the order of the table.
MODES = ("textbook", "pyvips", "prism-1t", "prism", "prism-batch")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT / 1024


def lambda_memory_mb() -> int:
    """The worker's configured memory, as template.yaml resolves it (the local stack's
    reading of the template)."""
    from prism_cli.local.template import load_template

    return load_template(ROOT / "template.yaml").function("WorkerFunction").memory_size


def describe(path: Path) -> dict[str, Any]:
    """The upload's header, and what it takes decoded at full size in Pillow's memory.
    (Opening a WebP reads all of it: only the children do this, after measuring.)"""
    with warnings.catch_warnings():  # big on purpose (not above twice Pillow's ceiling)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(path)
    with image:
        return {
            "image": f"{image.format} {image.width}x{image.height} {image.mode}",
            "decoded_mb": image.width * image.height * _PIXEL_BYTES.get(image.mode, 4) / 2**20,
        }


def warm_worker_environment() -> dict[str, str]:
    """What a measuring child runs with: Lambda's task root, and a region for the clients."""
    return {
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "worker"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }


# --- one measurement, in its own process ------------------------------------------------
def child(mode: str, path: Path, batch: int, *, bare: bool = False) -> dict[str, Any]:
    """Run one workload on ``path`` and return the process's RSS before and after (MB),
    and what the upload is (read once the peak is taken).

    Every mode starts as a warm worker, so their starting points are the same (pyvips
    adds libvips to its own); ``bare``: as a process with only the imaging path's imports
    (Pillow, ``prism.imaging`` and its config), as a script that only makes images runs.
    """
    if not bare:
        import prism.worker  # noqa: F401
        from prism.aws.clients import open_clients

        async def open_once() -> None:
            async with open_clients():  # their service models stay loaded, as in a container
                pass

        asyncio.run(open_once())

    if mode == "pyvips":
        workloads.pyvips()
    start = peak_rss_mb()
    # The worker holds each upload's bytes while it decodes; a batch holds several.
    uploads = [path.read_bytes() for _ in range(batch if mode == "prism-batch" else 1)]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        work: dict[str, Callable[[], object]] = {
            "textbook": lambda: workloads.textbook(uploads[0]),
            "pyvips": lambda: workloads.pyvips_decode_once(uploads[0]),
            "prism-1t": lambda: workloads.prism_sequential(uploads[0]),
            "prism": lambda: workloads.prism_threaded(uploads[0], pool),
            # Scheduled as the worker schedules an SQS batch with ``batch`` sources.
            "prism-batch": lambda: workloads.run_batch(uploads, pool),
        }
        work[mode]()
    peak = peak_rss_mb()
    return {"start_mb": start, "peak_mb": peak, **describe(path)}


def run_child(*args: str) -> str:
    """The last line ``memory.py *args`` prints, run in a fresh process.

    Linux carries a process's ``ru_maxrss`` across fork and exec, so this process must
    never grow: it only starts children (which also generate the inputs, open them and
    try pyvips).
    """
    command = [sys.executable, __file__, *args]
    environment = {**os.environ, **warm_worker_environment()}
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, env=environment
    )
    if completed.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stderr}")
    return completed.stdout.splitlines()[-1]


def measure(mode: str, path: Path, batch: int, *, bare: bool = False) -> dict[str, Any]:
    flags = ["--bare"] if bare else []
    result: dict[str, Any] = json.loads(
        run_child("--child", mode, str(path), "--batch", str(batch), *flags)
    )
    return result


# --- inputs ----------------------------------------------------------------------------
def limit_size(max_pixels: int) -> tuple[int, int]:
    """The largest square within the pixel limit (10000 x 10000 for 100 MP)."""
    side = math.isqrt(max_pixels)
    return side, side


def generate_inputs(texture: Path, folder: Path, size: tuple[int, int]) -> list[Path]:
    """Uploads of ``size`` tiled from a real photo, so they compress like photos do."""
    canvas = workloads.tiled(texture, size)
    name = f"{size[0]}x{size[1]}"
    jpeg, rgba, gray16, webp = (
        folder / f"generated_{name}.jpg",
        folder / f"generated_{name}_rgba.png",
        folder / f"generated_{name}_gray16.png",
        folder / f"generated_{name}.webp",
    )
    canvas.save(jpeg, quality=90)
    canvas.save(webp, quality=80, method=0)
    canvas = canvas.convert("RGBA")
    canvas.save(rgba, compress_level=1)
    # 16-bit samples: 0-255 spread over 0-65535.
    canvas.convert("L").convert("I").point(lambda v: v * 257).convert("I;16").save(
        gray16, compress_level=1
    )
    return [jpeg, rgba, gray16, webp]


# --- report -------------------------------------------------------------------------------
def benchmark(
    inputs: list[Path], batch: int, modes: tuple[str, ...], *, bare: bool = False
) -> list[dict[str, Any]]:
    rows = []
    for path in inputs:
        print(f"measuring {path.name}{' in bare processes' if bare else ''}...", flush=True)
        results = {mode: measure(mode, path, batch, bare=bare) for mode in modes}
        textbook_imaging = results["textbook"]["peak_mb"] - results["textbook"]["start_mb"]
        for mode, result in results.items():
            imaging = result["peak_mb"] - result["start_mb"]
            rows.append(
                {
                    "input": path.name,
                    "file_mb": path.stat().st_size / 2**20,
                    "mode": mode if mode != "prism-batch" else f"prism, {batch} at once",
                    **result,
                    "imaging_mb": imaging,
                    "imaging_vs_decoded": imaging / result["decoded_mb"],
                    "imaging_vs_textbook": imaging / textbook_imaging,
                }
            )
    return rows


def table(rows: list[dict[str, Any]], memory_mb: int) -> str:
    lines = [
        "| input | path | start MB | peak | imaging MB (peak - start) | vs decoded | vs textbook |",
        "|---|---|--:|---|--:|--:|--:|",
    ]
    previous = None
    for row in rows:
        label = ""
        if row["input"] != previous:
            label = (
                f"{row['input']} ({row['image']}, {row['file_mb']:.1f} MB; "
                f"decoded {row['decoded_mb']:.0f} MB)"
            )
            previous = row["input"]
        lines.append(
            f"| {label} | {row['mode']} | {row['start_mb']:.0f} "
            f"| {row['peak_mb']:,.0f} MB of {memory_mb} MB ({row['peak_mb'] / memory_mb:.0%}) "
            f"| {row['imaging_mb']:,.0f} | {row['imaging_vs_decoded']:.2f}x "
            f"| {row['imaging_vs_textbook']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of photos")
    parser.add_argument("--batch", type=int, default=2, help="uploads at once in the batch case")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=2, metavar=("PHOTO", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--has-pyvips", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.has_pyvips:
        print(json.dumps(workloads.pyvips() is not None))
        return 0
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.batch, bare=args.bare)))
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
    has_pyvips = json.loads(run_child("--has-pyvips"))
    modes = MODES if has_pyvips else tuple(mode for mode in MODES if mode != "pyvips")
    if not has_pyvips:
        print("pyvips is not installed: its rows are left out.", flush=True)
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as folder:
        size = limit_size(Limits().max_source_pixels)
        print(f"generating {size[0]}x{size[1]} uploads (about 30 s)...", flush=True)
        generated = json.loads(run_child("--generate", str(photos[1]), folder))
        rows = benchmark([photos[0], *map(Path, generated)], max(1, args.batch), modes)
    bare_rows = benchmark([photos[0]], max(1, args.batch), modes, bare=True)
    memory_mb = lambda_memory_mb()
    print(table(rows, memory_mb))
    print(
        "textbook and pyvips: one thread; prism-1t: one thread; prism: the variants on "
        f"{THREADS} threads, as the worker renders them. start = RSS of a warm worker "
        "(its imports and clients, in Lambda's environment); each row is a fresh process; "
        "decoded = the upload at full size in Pillow's memory (RGB takes 4 bytes a pixel)."
    )
    print()
    print(table(bare_rows, memory_mb))
    print(
        "The same in bare processes: only the imaging path's imports (Pillow, prism.imaging "
        "and its config; pyvips adds libvips), no worker and no clients, as a script that "
        "only makes images runs. A worker container's own imports and clients are the "
        "difference between the two start columns."
    )
    if args.json:
        result = {
            "lambda_memory_mb": memory_mb,
            "threads": THREADS,
            "rows": rows,
            "bare_rows": bare_rows,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

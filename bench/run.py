"""Speed of Prism's imaging core against a textbook Pillow script, measured in the same run.

    .venv/bin/python bench/run.py [--corpus DIR] [--repeat N] [--threads N] [--json OUT]

Each figure is the median of ``--repeat`` runs after one warm-up (``time.perf_counter``).
Ratios are baseline time / Prism time: above 1 means Prism is faster. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import PIL
from workloads import (
    naive,
    prism_batch,
    prism_decode_per_variant,
    prism_sequential,
    prism_threaded,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
STAT = Path("/proc/stat")
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif"}


def median_ms(jobs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median wall time in ms of each workload, after one untimed warm-up of each.

    The workloads take turns in every round, so a change in machine load during the run
    hits them all alike rather than skewing one ratio.
    """
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    for round_ in range(repeat + 1):
        for name, work in jobs.items():
            started = time.perf_counter()
            work()
            if round_:  # round 0 is the warm-up
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(times) for name, times in samples.items()}


def measure_photo(data: bytes, pool: Executor, repeat: int) -> dict[str, float]:
    return median_ms(
        {
            "baseline_ms": lambda: naive(data),
            "prism_1t_ms": lambda: prism_sequential(data),
            "prism_2t_ms": lambda: prism_threaded(data, pool),
            "prism_per_variant_ms": lambda: prism_decode_per_variant(data),
        },
        repeat,
    )


def ratios(row: dict[str, Any]) -> dict[str, float]:
    return {
        "ratio_1t": row["baseline_ms"] / row["prism_1t_ms"],
        "ratio_2t": row["baseline_ms"] / row["prism_2t_ms"],
        # How much decode-once saves over decoding for each variant, both inside Prism.
        "decode_once_gain": row["prism_per_variant_ms"] / row["prism_1t_ms"],
    }


def cpu_seconds() -> tuple[float, float]:
    """CPU time used so far by the whole machine (0 where /proc is missing) and by us."""
    machine = 0.0
    if STAT.exists():
        # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
        ticks = [int(field) for field in STAT.read_text().split("\n", 1)[0].split()[1:9]]
        machine = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    own = resource.getrusage(resource.RUSAGE_SELF)
    return machine, own.ru_utime + own.ru_stime


def find_photos(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def benchmark(photos: list[Path], repeat: int, threads: int) -> dict[str, Any]:
    started, (machine_before, own_before) = time.perf_counter(), cpu_seconds()
    uploads = {photo.name: photo.read_bytes() for photo in photos}
    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for name, data in uploads.items():
            row: dict[str, Any] = {"photo": name, **measure_photo(data, pool, repeat)}
            rows.append(row | ratios(row))
        every = list(uploads.values())
        at_once = median_ms(
            {
                "baseline_sequential_ms": lambda: [naive(data) for data in every],
                f"prism_batch_{threads}t_ms": lambda: asyncio.run(prism_batch(every, pool)),
            },
            repeat,
        )
    elapsed, (machine_after, own_after) = time.perf_counter() - started, cpu_seconds()
    # Other work on the machine skews absolute times more than ratios: say how much ran.
    others = max(0.0, (machine_after - machine_before) - (own_after - own_before))
    keys = ("baseline_ms", "prism_1t_ms", "prism_2t_ms", "prism_per_variant_ms")
    totals: dict[str, Any] = {key: sum(row[key] for row in rows) for key in keys}
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "seconds": elapsed,
            "other_processes_cpu_seconds": others,
        },
        "repeat": repeat,
        "threads": threads,
        "photos": rows,
        "totals": totals | ratios(totals),
        "corpus_at_once": at_once
        | {"ratio": at_once["baseline_sequential_ms"] / at_once[f"prism_batch_{threads}t_ms"]},
    }


def table(result: dict[str, Any]) -> str:
    threads = result["threads"]
    lines = [
        f"| photo | baseline ms | prism-1t ms | ratio | prism-{threads}t ms | ratio "
        "| per-variant decode ms | decode-once gain |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in [*result["photos"], {"photo": "**total**", **result["totals"]}]:
        lines.append(
            f"| {row['photo']} | {row['baseline_ms']:,.0f} | {row['prism_1t_ms']:,.0f} "
            f"| {row['ratio_1t']:.2f}x | {row['prism_2t_ms']:,.0f} | {row['ratio_2t']:.2f}x "
            f"| {row['prism_per_variant_ms']:,.0f} | {row['decode_once_gain']:.2f}x |"
        )
    at_once = result["corpus_at_once"]
    lines.append(
        f"\nWhole corpus at once: baseline one photo after another "
        f"{at_once['baseline_sequential_ms']:,.0f} ms; Prism, all photos on a {threads}-thread "
        f"pool as the worker schedules a batch, {at_once[f'prism_batch_{threads}t_ms']:,.0f} ms "
        f"({at_once['ratio']:.2f}x)."
    )
    machine = result["machine"]
    lines.append(
        f"Median of {result['repeat']} runs after a warm-up; {machine['cpus']} CPUs, "
        f"Python {machine['python']}, Pillow {machine['pillow']}; other processes used "
        f"{machine['other_processes_cpu_seconds']:.1f} CPU-s during the "
        f"{machine['seconds']:.0f} s run."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of photos")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--threads", type=int, default=2, help="Prism's thread pool size")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"No photo corpus at {args.corpus}: skipping (pass --corpus DIR).")
        return 0
    photos = find_photos(args.corpus)
    if not photos:
        print(f"No photos in {args.corpus}: skipping.")
        return 0
    result = benchmark(photos, max(1, args.repeat), max(1, args.threads))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

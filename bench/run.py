"""Speed of Prism's imaging path against independent anchors, measured in the same run.

    .venv/bin/python bench/run.py [--corpus DIR] [--repeat N] [--threads N] [--effort N]
                                  [--json OUT]

Anchors: the textbook Pillow script and pyvips (decode once, thumbnail chain), both on
one thread. Each figure is the median of ``--repeat`` interleaved rounds after one
warm-up (``time.perf_counter``). Ratios are anchor time / Prism time: above 1 means
Prism is faster. See bench/README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import PIL
import quality
from PIL import Image
from workloads import (
    VARIANTS,
    prism_sequential,
    prism_threaded,
    pyvips,
    pyvips_decode_once,
    pyvips_version,
    run_batch,
    textbook,
    with_effort,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
STAT = Path("/proc/stat")
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif"}
NO_PYVIPS = (
    "pyvips is not installed: its column is left out "
    "(apt-get install libvips42; pip install 'prism-pipeline[bench]')."
)

Outputs = list[bytes]


def timed_rounds(
    jobs: dict[str, Callable[[], Outputs]], repeat: int
) -> tuple[dict[str, float], dict[str, Outputs]]:
    """Median wall time in ms of each workload, after one untimed warm-up of each, and
    each workload's outputs (from the warm-up).

    The workloads take turns in every round, so a change in machine load during the run
    hits them all alike rather than skewing one ratio.
    """
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    outputs: dict[str, Outputs] = {}
    for round_ in range(repeat + 1):
        for name, work in jobs.items():
            started = time.perf_counter()
            result = work()
            elapsed = (time.perf_counter() - started) * 1000
            if round_:  # round 0 is the warm-up
                samples[name].append(elapsed)
            else:
                outputs[name] = result
    return {name: statistics.median(times) for name, times in samples.items()}, outputs


def describe(outputs: Outputs) -> list[dict[str, Any]]:
    """Format, size and bytes of each output."""
    described = []
    for data in outputs:
        with Image.open(io.BytesIO(data)) as image:  # the header only
            described.append({"format": image.format, "size": list(image.size), "bytes": len(data)})
    return described


def workloads(
    data: bytes, pool: Executor, threads: int, effort: int | None
) -> dict[str, Callable[[], Outputs]]:
    jobs: dict[str, Callable[[], Outputs]] = {"textbook": lambda: textbook(data)}
    if pyvips() is not None:
        jobs["pyvips"] = lambda: pyvips_decode_once(data)
    jobs["prism_1t"] = lambda: prism_sequential(data)
    jobs[f"prism_{threads}t"] = lambda: prism_threaded(data, pool)
    if effort is not None:
        variants = with_effort(effort)
        jobs[f"prism_1t_effort{effort}"] = lambda: prism_sequential(data, variants)
        if pyvips() is not None:
            jobs[f"pyvips_effort{effort}"] = lambda: pyvips_decode_once(data, variants)
    return jobs


def measure_photo(
    name: str, data: bytes, pool: Executor, repeat: int, threads: int, effort: int | None
) -> dict[str, Any]:
    medians, outputs = timed_rounds(workloads(data, pool, threads, effort), repeat)
    return {
        "photo": name,
        "ms": medians,
        "outputs": {job: describe(result) for job, result in outputs.items()},
    }


def ratio_pairs(jobs: Sequence[str], threads: int, effort: int | None) -> list[tuple[str, str]]:
    """(anchor, Prism workload) pairs: anchor ms / Prism ms is the speed-up."""
    prism = ["prism_1t", f"prism_{threads}t"]
    pairs = [("textbook", job) for job in prism]
    if "pyvips" in jobs:
        pairs += [("pyvips", job) for job in prism]
    if effort is not None:
        tuned = f"prism_1t_effort{effort}"
        pairs.append(("textbook", tuned))
        if "pyvips" in jobs:
            pairs += [("pyvips", tuned), (f"pyvips_effort{effort}", tuned)]
    if "pyvips" in jobs:
        pairs.append(("textbook", "pyvips"))
    return pairs


def geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(value) for value in values))


def cpu_seconds() -> tuple[float, float]:
    """CPU time used so far by the whole machine (0 where /proc is missing) and by us."""
    machine = 0.0
    if STAT.exists():
        # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
        ticks = [int(field) for field in STAT.read_text().split("\n", 1)[0].split()[1:9]]
        machine = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    own = resource.getrusage(resource.RUSAGE_SELF)
    return machine, own.ru_utime + own.ru_stime


class MachineLoad:
    """What else ran during a measurement, from its start to :meth:`figures`: other work
    on the machine skews absolute times more than ratios, so each report says how much."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._machine, self._own = cpu_seconds()
        self._load = os.getloadavg()[0]

    def figures(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._started
        machine, own = cpu_seconds()
        others = max(0.0, (machine - self._machine) - (own - self._own))
        return {
            "seconds": elapsed,
            "other_processes_cpu_seconds": others,
            "other_processes_busy_cpus": others / elapsed if elapsed else 0.0,
            "loadavg_1min_before_after": [self._load, os.getloadavg()[0]],
        }


def load_clause(figures: dict[str, Any]) -> str:
    """:meth:`MachineLoad.figures` as the sentence the reports end with."""
    before, after = figures["loadavg_1min_before_after"]
    return (
        f"Machine load: other processes used {figures['other_processes_cpu_seconds']:.1f} "
        f"CPU-s during the {figures['seconds']:.0f} s run "
        f"({figures['other_processes_busy_cpus']:.2f} CPUs busy on average; 1-min load "
        f"average {before:.2f} before, {after:.2f} after)."
    )


def find_photos(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def benchmark(photos: list[Path], repeat: int, threads: int, effort: int | None) -> dict[str, Any]:
    load = MachineLoad()
    uploads = {photo.name: photo.read_bytes() for photo in photos}
    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for name, data in uploads.items():
            rows.append(measure_photo(name, data, pool, repeat, threads, effort))
        every = list(uploads.values())
        with ThreadPoolExecutor(max_workers=1) as one_thread:
            at_once, _ = timed_rounds(
                {
                    "textbook_sequential": lambda: [out for d in every for out in textbook(d)],
                    "prism_batch_1t": lambda: _batch(every, one_thread),
                    f"prism_batch_{threads}t": lambda: _batch(every, pool),
                },
                repeat,
            )
    load_figures = load.figures()
    jobs = list(rows[0]["ms"])
    pairs = ratio_pairs(jobs, threads, effort)
    for row in rows:
        row["ratios"] = {f"{a}/{b}": row["ms"][a] / row["ms"][b] for a, b in pairs}
        row["dimensions_match"] = _dimensions_match(row["outputs"])
    summary = {
        "geomean_ms": {job: geomean([row["ms"][job] for row in rows]) for job in jobs},
        "geomean_ratios": {
            key: geomean([row["ratios"][key] for row in rows]) for key in rows[0]["ratios"]
        },
        "total_bytes": {
            job: sum(out["bytes"] for row in rows for out in row["outputs"][job]) for job in jobs
        },
    }
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "pyvips": pyvips_version(),
            **load_figures,
        },
        "repeat": repeat,
        "threads": threads,
        "effort": effort,
        "variants": [f"{v.name} {v.format} q{v.quality}" for v in VARIANTS],
        "photos": rows,
        "summary": summary,
        "corpus_at_once": at_once
        | {
            "ratio": at_once["textbook_sequential"] / at_once[f"prism_batch_{threads}t"],
            "thread_scaling": at_once["prism_batch_1t"] / at_once[f"prism_batch_{threads}t"],
        },
    }


def _batch(uploads: list[bytes], pool: Executor) -> list[bytes]:
    return [out for outs in run_batch(uploads, pool) for out in outs]


def _dimensions_match(outputs: dict[str, list[dict[str, Any]]]) -> bool:
    sizes = {tuple(tuple(out["size"]) for out in described) for described in outputs.values()}
    return len(sizes) == 1


def _label(job: str) -> str:
    return job.replace("_", "-").replace("effort", "effort ")


def speed_table(result: dict[str, Any]) -> str:
    rows, summary = result["photos"], result["summary"]
    jobs = list(rows[0]["ms"])
    ratios = list(rows[0]["ratios"])
    header = ["photo", *(f"{_label(job)} ms" for job in jobs)]
    header += [_ratio_label(key) for key in ratios]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "--:|" * (len(header) - 1)]
    for row in rows:
        cells = [row["photo"] + ("" if row["dimensions_match"] else " (sizes differ!)")]
        cells += [f"{row['ms'][job]:,.0f}" for job in jobs]
        cells += [f"{row['ratios'][key]:.2f}x" for key in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**geomean**"]
    cells += [f"**{summary['geomean_ms'][job]:,.0f}**" for job in jobs]
    cells += [f"**{summary['geomean_ratios'][key]:.2f}x**" for key in ratios]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio_label(key: str) -> str:
    anchor, prism = key.split("/")
    return f"{_label(prism)} vs {_label(anchor)}"


def bytes_table(result: dict[str, Any]) -> str:
    """Output bytes of every workload, per photo and variant, against the textbook's."""
    rows = result["photos"]
    jobs = list(rows[0]["ms"])
    header = ["photo", "variant", "size", *(f"{_label(job)} B" for job in jobs)]
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|" + "--:|" * len(jobs)]
    for row in rows:
        for index, variant in enumerate(VARIANTS):
            base = row["outputs"]["textbook"][index]
            cells = [row["photo"], f"{variant.name} {variant.format}", _size(base)]
            for job in jobs:
                out = row["outputs"][job][index]
                size = "" if out["size"] == base["size"] else f" ({_size(out)}!)"
                change = "" if job == "textbook" else f" ({out['bytes'] / base['bytes'] - 1:+.1%})"
                cells.append(f"{out['bytes']:,}{change}{size}")
            lines.append("| " + " | ".join(cells) + " |")
    totals = result["summary"]["total_bytes"]
    cells = ["**all photos**", "", ""]
    for job in jobs:
        change = "" if job == "textbook" else f" ({totals[job] / totals['textbook'] - 1:+.1%})"
        cells.append(f"**{totals[job]:,}**{change}")
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _size(output: dict[str, Any]) -> str:
    return "x".join(str(side) for side in output["size"])


def report(result: dict[str, Any]) -> str:
    machine, threads = result["machine"], result["threads"]
    lines = [
        f"Variants: {', '.join(result['variants'])}.",
        "",
        speed_table(result),
        "",
        bytes_table(result),
    ]
    at_once = result["corpus_at_once"]
    lines.append(
        f"\nWhole corpus at once: the textbook script one photo after another "
        f"{at_once['textbook_sequential']:,.0f} ms; Prism, all photos on a {threads}-thread "
        f"pool as the worker schedules a batch, {at_once[f'prism_batch_{threads}t']:,.0f} ms "
        f"({at_once['ratio']:.2f}x); the same batch on one thread {at_once['prism_batch_1t']:,.0f}"
        f" ms: {threads} threads are {at_once['thread_scaling']:.2f}x one thread."
    )
    if pyvips() is None:
        lines.append(NO_PYVIPS)
    lines.append(
        f"Median of {result['repeat']} interleaved rounds after a warm-up; {machine['cpus']} "
        f"CPUs, Python {machine['python']}, Pillow {machine['pillow']}"
        f"{', ' + machine['pyvips'] if machine['pyvips'] else ''}. {load_clause(machine)}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of photos")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per figure (median)")
    parser.add_argument("--threads", type=int, default=2, help="Prism's thread pool size")
    parser.add_argument(
        "--effort",
        type=int,
        default=2,
        help="also time Prism (and pyvips) with this WebP effort on the web variant (-1: do not)",
    )
    parser.add_argument(
        "--no-quality",
        action="store_true",
        help="skip the pixel comparison with a direct resize (bench/quality.py, ~15 s)",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"No photo corpus at {args.corpus}: skipping (pass --corpus DIR).")
        return 0
    photos = find_photos(args.corpus)
    if not photos:
        print(f"No photos in {args.corpus}: skipping.")
        return 0
    if pyvips() is None:
        print(NO_PYVIPS, flush=True)
    effort = args.effort if args.effort >= 0 else None
    result = benchmark(photos, max(1, args.repeat), max(1, args.threads), effort)
    print(report(result))
    if not args.no_quality:
        print("\nPixels against a direct Lanczos resize of the full decode (bench/quality.py):\n")
        uploads = quality.corpus_uploads(args.corpus)
        rows = quality.measure(uploads)
        result["quality"] = rows
        print(quality.table(rows) + "\n" + quality.EXPLANATION)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

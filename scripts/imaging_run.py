"""Pure imaging: the renders of a ``prism run``, done in one process with no stack at all.

Generates the same images as ``scripts/load_run.py`` (same ``--count``, ``--folders`` and
``--seed``), or takes ``--inputs DIR``, or ``--copies`` copies of every photo in
``--corpus DIR`` (``make bench``: the shared corpus ten times, 60 photos), and renders
every file with the worker's imaging path: ``prism.imaging.decode_source`` once per file,
then ``render_variant`` for each variant of the pipeline (the built-in one, or
``--config``), on a pool of ``--threads`` threads (one file per task, its variants in
turn). Files are read from disk; outputs are not written. Prints the wall time, the time
per image and the load average, for comparing with ``load_run.py`` (``--compare`` runs
that too, on the same folder, and prints the ratio and the CPU time each took: what the
run spends beyond the renders is the local stack's requests, see the README's "Local runs
at scale").

    .venv/bin/python scripts/imaging_run.py --count 60 --threads 4
    .venv/bin/python scripts/imaging_run.py --count 60 --threads 4 --compare --workers 4
    .venv/bin/python scripts/imaging_run.py --corpus ../shared/corpus --threads 2 \
        --compare --workers 2

Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_run  # the sibling script: same generator, same prism run

from prism.config import PipelineConfig, default_config, parse_config
from prism.errors import PermanentError
from prism.imaging import decode_source, render_variant
from prism_cli.jobs.inputs import scan_folders


def render_file(path: Path, config: PipelineConfig) -> int:
    """Every variant of ``path``; the number of output bytes (0 if it is rejected)."""
    data = path.read_bytes()
    max_pixels = config.limits.max_source_pixels
    try:
        source = decode_source(data, max_pixels=max_pixels, variants=config.variants)
        del data
        return sum(
            len(render_variant(source, variant, config.effective_watermark(variant)).data)
            for variant in config.variants
        )
    except PermanentError:
        return 0


def render_all(files: list[Path], config: PipelineConfig, threads: int) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (all threads) and output bytes of rendering ``files`` on
    ``threads`` threads."""
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda path: render_file(path, config), files))
    return time.perf_counter() - started, time.process_time() - cpu, total


def copy_corpus(corpus: Path, copies: int, folder: Path) -> list[Path]:
    """``copies`` copies of every image ``prism run`` would take from ``corpus``, under
    distinct names."""
    photos = sorted(file.path for file in scan_folders([corpus]).files)
    folder.mkdir(parents=True)
    files = []
    for copy in range(copies):
        for photo in photos:
            files.append(folder / f"{copy:02d}_{photo.name}")
            shutil.copyfile(photo, files[-1])
    return files


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--folders", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inputs", type=Path, help="render this folder instead of generating")
    parser.add_argument("--corpus", type=Path, help="or copies of the photos in this folder")
    parser.add_argument("--copies", type=int, default=10, help="copies of each --corpus photo")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many rounds")
    parser.add_argument("--compare", action="store_true", help="also time prism run on it")
    parser.add_argument("--workers", type=int, default=4, help="prism run --workers")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    config = parse_config(args.config.read_text(), str(args.config)) if args.config else None
    config = config or default_config()
    if args.corpus is not None and not args.corpus.is_dir():
        print(f"No photo corpus at {args.corpus}: skipping the end-to-end comparison.")
        return 0
    root = Path(tempfile.mkdtemp(prefix="prism-imaging-"))
    try:
        if args.inputs is not None:
            inputs = args.inputs
            files = [file.path for file in scan_folders([inputs]).files]
        elif args.corpus is not None:
            inputs = root / "photos"
            files = copy_corpus(args.corpus, args.copies, inputs)
            if not files:
                print(f"No photos in {args.corpus}: skipping the end-to-end comparison.")
                return 0
        else:
            inputs = root / "photos"
            files = load_run.generate(inputs, args.count, args.folders, args.seed)
        render_file(files[0], config)  # warm-up: imports and Pillow's plugins
        rounds = [render_all(files, config, args.threads) for _ in range(max(1, args.repeat))]
        wall, cpu, _ = min(rounds)
        figures: dict[str, object] = {
            "files": len(files),
            "threads": args.threads,
            "imaging_seconds": round(wall, 3),
            "imaging_cpu_seconds": round(cpu, 3),
            "imaging_ms_per_image": round(wall / len(files) * 1000, 2),
            "load_after_imaging": load_average(),
        }
        print(
            f"pure imaging: {len(files)} images on {args.threads} threads in {wall:.2f} s "
            f"({wall / len(files) * 1000:.1f} ms/image, {cpu:.1f} CPU-s); load {load_average()}",
            flush=True,
        )
        code = 0
        if args.compare:
            out = root / "out"
            cpu_before = children_cpu_seconds()
            run_code, run_wall, peak = load_run.run_prism(inputs, out, args.workers, None)
            run_cpu = children_cpu_seconds() - cpu_before
            figures.update(
                run_cpu_seconds=round(run_cpu, 3),
                run_exit=run_code,
                run_seconds=round(run_wall, 3),
                run_ms_per_image=round(run_wall / len(files) * 1000, 2),
                run_peak_rss_mib=round(peak),
                ratio=round(run_wall / wall, 3),
                load_after_run=load_average(),
            )
            print(
                f"prism run: exit {run_code}, {run_wall:.2f} s wall "
                f"({run_wall / len(files) * 1000:.1f} ms/image), peak RSS {peak:.0f} MiB; "
                f"ratio {run_wall / wall:.2f}x (target 1.15x); {run_cpu:.1f} CPU-s, "
                f"{(run_cpu - cpu) / len(files) * 1000:.0f} ms of CPU per image beyond the "
                f"renders; load {load_average()}"
            )
            code = 0 if run_code == 0 else 1
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        return code
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

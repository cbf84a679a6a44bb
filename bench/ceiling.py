"""How fast Prism's imaging path could be at most, against the same anchors as run.py.

    .venv/bin/python bench/ceiling.py [--corpus DIR] [--repeat 5] [--json OUT]

The **floor** is Prism's own decode of an upload (draft included) plus the encodes of its
finished variants at the variants' settings, the pictures having been resized beforehand:
a pipeline whose resizing, orientation and colour conversion cost nothing. Its time,
divided into the textbook script's (and pyvips'), is the most any render of these
variants could gain with this decoder and these encoders, so it bounds run.py's ratios
from above. "floor, textbook encoders" is the same without JPEG's Huffman optimisation
(the one encoder setting Prism adds): what that choice costs. Single thread, interleaved
rounds (run.timed_rounds), median after a warm-up.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import quality
from run import (
    DEFAULT_CORPUS,
    NO_PYVIPS,
    MachineLoad,
    Outputs,
    find_photos,
    geomean,
    load_clause,
    timed_rounds,
)
from workloads import VARIANTS, decode, prism_sequential, pyvips, pyvips_decode_once, textbook

from prism.config import Variant
from prism.imaging.encode import encode


def floor_job(
    data: bytes, variants: Sequence[Variant], *, optimize: bool = True
) -> Callable[[], Outputs]:
    """Prism's decode, then only the encodes of pictures resized beforehand."""
    finished = quality.prism(data, variants)

    def work() -> Outputs:
        decode(data, variants)
        if not optimize:  # the textbook script's save: Pillow's defaults at each quality
            return quality.saved_as_textbook(finished, variants)
        return [
            encode(image, v.format, v.quality, effort=v.effort)
            for image, v in zip(finished, variants, strict=True)
        ]

    return work


def measure(photos: list[Path], repeat: int) -> dict[str, Any]:
    load = MachineLoad()
    rows: list[dict[str, Any]] = []
    for photo in photos:
        data = photo.read_bytes()
        jobs: dict[str, Callable[[], Outputs]] = {
            "textbook": functools.partial(textbook, data),
            "prism": functools.partial(prism_sequential, data),
            "floor": floor_job(data, VARIANTS),
            "floor_textbook_encoders": floor_job(data, VARIANTS, optimize=False),
        }
        if pyvips() is not None:
            jobs["pyvips"] = functools.partial(pyvips_decode_once, data)
        ms, _ = timed_rounds(jobs, repeat)
        rows.append({"photo": photo.name, "ms": ms})
    load_figures = load.figures()
    jobs_measured = list(rows[0]["ms"])
    return {
        "photos": rows,
        "geomean_ms": {job: geomean([row["ms"][job] for row in rows]) for job in jobs_measured},
        **load_figures,
    }


def table(result: dict[str, Any]) -> str:
    anchors = [a for a in ("textbook", "pyvips") if a in result["geomean_ms"]]
    paths = ["prism", "floor", "floor_textbook_encoders"]
    header = ["photo", *(f"{job} ms" for job in [*anchors, *paths])]
    header += [f"{anchor} / {path}" for anchor in anchors for path in paths]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|--:" * (len(header) - 1) + "|"]
    for row in [*result["photos"], {"photo": "**geomean**", "ms": result["geomean_ms"]}]:
        ms = row["ms"]
        cells = [row["photo"], *(f"{ms[job]:,.0f}" for job in [*anchors, *paths])]
        cells += [f"{ms[anchor] / ms[path]:.2f}x" for anchor in anchors for path in paths]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of photos")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per figure (median)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    photos = find_photos(args.corpus) if args.corpus.is_dir() else []
    if not photos:
        print(f"No photos in {args.corpus}: skipping (pass --corpus DIR).")
        return 0
    if pyvips() is None:
        print(NO_PYVIPS, flush=True)
    result = measure(photos, max(1, args.repeat))
    print(table(result))
    print(
        f"Single thread, median of {args.repeat} interleaved rounds after a warm-up. "
        + load_clause(result)
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

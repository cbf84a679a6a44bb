"""Load run: ``prism run`` on 1,000 generated images, timed, with exact counts checked.

Generates ``--count`` images (default 1,000) in ``--folders`` folders (default 10) of a
temporary directory: sizes from 64 to 1024 px, JPEG, PNG, WebP and GIF, and the same file
names in every folder. Runs ``prism run`` on them in a subprocess (the console script of
this venv) and reports its wall time and peak RSS. Then checks ``processing_log.json``:
every file is a source exactly once, done + failed + skipped variants = files x variants,
and nothing was lost (not processed, not finished, interrupted).

    .venv/bin/python scripts/load_run.py                      # 1,000 images, 4 workers
    .venv/bin/python scripts/load_run.py --count 200 --keep   # keep the folders afterwards
    .venv/bin/python scripts/load_run.py --profile py-spy     # also record a py-spy profile

Exit status: 0 when every check passed, 1 otherwise. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

FORMATS = (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"))
# The built-in pipeline renders three variants of every source.
BUILT_IN_VARIANTS = 3
LOST_REASONS = ("not_processed", "not_finished", "interrupted")


def generate(root: Path, count: int, folders: int, seed: int) -> list[Path]:
    """``count`` images over ``folders`` folders; names repeat from folder to folder."""
    rng = random.Random(seed)
    per_folder = -(-count // folders)
    paths: list[Path] = []
    for index in range(count):
        folder = root / f"folder-{index // per_folder:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        number = index % per_folder
        fmt, extension = FORMATS[rng.randrange(len(FORMATS))]
        path = folder / f"photo-{number:03d}.{extension}"
        size = (rng.randint(64, 1024), rng.randint(64, 1024))
        image = Image.linear_gradient("L").resize(size).convert("RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.randrange(size[0]), rng.randrange(size[1])
            box = (x, y, x + rng.randint(8, size[0] // 2 + 8), y + rng.randint(8, size[1] // 2 + 8))
            draw.ellipse(box, fill=tuple(rng.randrange(256) for _ in range(3)))
        if fmt == "GIF":
            image = image.convert("P", palette=Image.Palette.ADAPTIVE)
        image.save(path, fmt)
        paths.append(path)
    return paths


class RssSampler:
    """Peak resident set size of a process and its children, sampled from /proc."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_kib = max(self.peak_kib, _tree_rss_kib(self.pid))


def _tree_rss_kib(pid: int) -> int:
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        pending.extend(int(child) for child in children)
    return total


@dataclass
class Result:
    files: int
    wall_seconds: float
    peak_rss_mib: float
    exit_code: int
    sources: dict[str, int] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def run_prism(
    inputs: Path, out: Path, workers: int, profile: str | None
) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak RSS (MiB) of ``prism run``."""
    prism = Path(sys.executable).with_name("prism")
    command = [str(prism), "run", str(inputs), "--out", str(out), "--workers", str(workers)]
    if profile == "py-spy":
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        command = [py_spy, "record", "--subprocesses", "--threads", "--idle", "--format",
                   "speedscope", "--output", str(out.parent / "profile.speedscope.json"),
                   "--", *command]  # fmt: skip
    elif profile == "cprofile":
        command = [sys.executable, "-m", "cProfile", "-o", str(out.parent / "profile.pstats"),
                   *command[0:1], *command[1:]]  # fmt: skip
    started = time.monotonic()
    with (
        subprocess.Popen(command, stdout=subprocess.DEVNULL) as process,
        RssSampler(process.pid) as sampler,
    ):
        code = process.wait()
    wall = time.monotonic() - started
    # ru_maxrss of the largest child (KiB on Linux), and the sampled tree for py-spy runs.
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return code, wall, max(children_peak, sampler.peak_kib) / 1024


def check_log(out: Path, files: list[Path], inputs: Path, variants_per_file: int) -> Result:
    result = Result(files=len(files), wall_seconds=0, peak_rss_mib=0, exit_code=0)
    log_path = out / "processing_log.json"
    if not log_path.is_file():
        result.problems.append(f"{log_path} was not written")
        return result
    log = json.loads(log_path.read_text(encoding="utf-8"))
    listed: Counter[str] = Counter()
    for bucket in ("successful", "partial", "failed", "skipped"):
        entries = log.get(bucket, [])
        result.sources[bucket] = len(entries)
        listed.update(entry if isinstance(entry, str) else entry["path"] for entry in entries)
    expected = {f"{inputs.name}/{path.relative_to(inputs).as_posix()}" for path in files}
    displayed = {_relative(name, inputs) for name in listed}
    if log.get("interrupted"):
        result.problems.append("the run was interrupted")
    if sum(listed.values()) != len(files):
        result.problems.append(f"{sum(listed.values())} sources in the log, {len(files)} files")
    if twice := [name for name, count in listed.items() if count > 1]:
        result.problems.append(f"{len(twice)} files listed more than once, e.g. {twice[:3]}")
    if missing := expected - displayed:
        result.problems.append(
            f"{len(missing)} files missing from the log, e.g. {sorted(missing)[:3]}"
        )
    statuses = Counter(entry["status"] for entry in log.get("variants", []))
    result.variants = dict(statuses)
    total = sum(statuses.values())
    if total != len(files) * variants_per_file:
        result.problems.append(
            f"{total} variant entries, expected {len(files) * variants_per_file}"
        )
    reasons = Counter(
        entry.get("reason") for entry in log.get("variants", []) if entry.get("reason")
    )
    for entry in log.get("failed", []):
        reasons[entry.get("error", "")] += 1
    if lost := {
        reason: n for reason, n in reasons.items() if any(r in str(reason) for r in LOST_REASONS)
    }:
        result.problems.append(f"lost: {lost}")
    missing_outputs = [
        entry["output"]
        for entry in log.get("variants", [])
        if entry["status"] == "done"
        and not (entry.get("output") and (out / entry["output"]).is_file())
    ]
    if missing_outputs:
        result.problems.append(f"{len(missing_outputs)} done variants without their file")
    return result


def _relative(display: str, inputs: Path) -> str:
    """A log path (as given on the command line) relative to the inputs' parent."""
    marker = f"{inputs.name}/"
    return display[display.index(marker) :] if marker in display else display


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--folders", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    parser.add_argument("--profile", choices=("py-spy", "cprofile"))
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="prism-load-"))
    try:
        inputs = root / "photos"
        started = time.monotonic()
        files = generate(inputs, args.count, args.folders, args.seed)
        size = sum(path.stat().st_size for path in files)
        print(
            f"generated {len(files)} images ({size / 2**20:.0f} MiB) in "
            f"{time.monotonic() - started:.1f} s under {inputs}",
            flush=True,
        )
        out = root / "out"
        code, wall, peak = run_prism(inputs, out, args.workers, args.profile)
        result = check_log(out, files, inputs, BUILT_IN_VARIANTS)
        result.exit_code, result.wall_seconds, result.peak_rss_mib = code, wall, peak
        print(
            f"prism run: exit {code}, {wall:.1f} s wall, peak RSS {peak:.0f} MiB; "
            f"sources {result.sources}; variants {result.variants}"
        )
        for problem in result.problems:
            print(f"  PROBLEM: {problem}")
        if args.profile:
            print(f"profile written next to {out}")
        if args.json:
            args.json.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
        return 0 if not result.problems and code in (0,) else 1
    finally:
        if args.keep or args.profile:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

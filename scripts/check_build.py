"""Check the output of ``sam build`` before it is deployed.

A layer built for the wrong platform deploys fine and then fails on the first import
(``cannot import name '_imaging'``). So this checks every native extension under the
build directory: an ELF shared object for ``--arch`` (arm64 by default), and, where the
file name carries a CPython tag, the Lambda runtime's Python version. It also checks the
250 MB unzipped limit on a function plus its layers.

    python scripts/check_build.py [.aws-sam/build] [--arch arm64] [--python 3.13]

Exit status: 0 clean, 1 problems found, 2 bad usage or no build.
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
from pathlib import Path

# ELF e_machine values (see elf.h).
MACHINES = {"arm64": 183, "x86_64": 62}
# Lambda's limit on a function's code plus all its layers, unzipped.
UNZIPPED_LIMIT = 250 * 1024 * 1024
_CPYTHON_TAG = re.compile(r"\.cpython-(\d)(\d+)-")


def elf_machine(path: Path) -> int | None:
    """The ELF e_machine of ``path``, or None if it is not a 64-bit little-endian ELF."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
        return None
    machine: int = struct.unpack_from("<H", header, 18)[0]
    return machine


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def check(build_dir: Path, arch: str, python: str) -> list[str]:
    problems = []
    extensions = sorted(build_dir.rglob("*.so")) + sorted(build_dir.rglob("*.so.*"))
    for so in extensions:
        where = so.relative_to(build_dir)
        machine = elf_machine(so)
        if machine != MACHINES[arch]:
            problems.append(f"{where}: not an ELF {arch} shared object (e_machine={machine})")
        tag = _CPYTHON_TAG.search(so.name)
        if tag and f"{tag[1]}.{tag[2]}" != python:
            problems.append(f"{where}: built for CPython {tag[1]}.{tag[2]}, not {python}")
    if not any(so.name.startswith("_imaging.") for so in extensions):
        problems.append("Pillow's _imaging extension is missing from the build")

    sizes = {d.name: tree_size(d) for d in sorted(build_dir.iterdir()) if d.is_dir()}
    for name, size in sizes.items():
        print(f"  {name}: {size / 2**20:.1f} MB unzipped")
    if sum(sizes.values()) > UNZIPPED_LIMIT:
        problems.append(
            f"the build is {sum(sizes.values()) / 2**20:.0f} MB unzipped; Lambda allows "
            f"{UNZIPPED_LIMIT // 2**20} MB for a function and its layers"
        )
    print(f"  {len(extensions)} native extension(s) checked")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", nargs="?", default=".aws-sam/build", type=Path)
    parser.add_argument("--arch", choices=sorted(MACHINES), default="arm64")
    parser.add_argument("--python", default="3.13", help="the Lambda runtime's version")
    args = parser.parse_args(argv)
    if not args.build_dir.is_dir():
        print(f"check_build: {args.build_dir} not found; run `make sam-build`", file=sys.stderr)
        return 2

    print(f"check_build: {args.build_dir} (expecting {args.arch}, CPython {args.python})")
    problems = check(args.build_dir, args.arch, args.python)
    for problem in problems:
        print(f"  error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("check_build: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

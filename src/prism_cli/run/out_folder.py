"""``prism run --out``: make sure the output folder can be written before a stack starts.

A run's outputs and log are written at its end; finding out then that ``--out`` is a file,
lies under one, overlaps an input folder or cannot be written would waste the run and end
in a traceback.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from prism_cli.errors import UserError
from prism_cli.jobs.inputs import check_input_folders


def check_folders(folders: Sequence[Path], out: Path) -> list[Path]:
    """The distinct input folders; a UserError for a missing one or an overlapping ``out``."""
    distinct = check_input_folders(folders)
    out_resolved = out.resolve()
    for folder in distinct:
        resolved = folder.resolve()
        if out_resolved == resolved or resolved in out_resolved.parents:
            raise UserError(f"--out {out} must not be inside the input folder {folder}")
        if out_resolved in resolved.parents:
            raise UserError(f"input folder {folder} must not be inside --out {out}")
    return distinct


def prepare_output_folder(out: Path) -> None:
    """Create ``out`` (and its parents) and check that files can be written in it; a
    UserError saying why not otherwise."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    existing = next((parent for parent in out.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir() and not out.exists():
        raise UserError(f"--out {out}: {existing} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Writing is the only reliable test (permissions, read-only mounts, /proc, ACLs).
        with tempfile.TemporaryFile(dir=out, prefix=".prism-write-check-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to --out {out}: {exc.strerror or exc}") from None

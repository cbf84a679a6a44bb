"""``prism run --out``: make sure the output folder fits the inputs before a stack starts
(that it can be written is :func:`prism_cli.jobs.downloads.prepare_output_folder`).

A run's outputs and log are written at its end; finding out then that ``--out`` is a file,
lies under one, overlaps an input folder or cannot be written would waste the run and end
in a traceback.
"""

from __future__ import annotations

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

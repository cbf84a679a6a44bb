"""Find the files ``prism submit`` and ``prism run`` upload, and name them in the input bucket.

Folders are scanned recursively; hidden files and folders are ignored. Files that are not
images in a format the pipeline reads (judged from their first bytes, with the layer's
own ``sniff_format``) are skipped without being uploaded. Each folder becomes a label (its
base name, ``name-2`` when two folders share one) under which its files are uploaded and
their variants written: ``<upload prefix><sub prefix/><label>/<relative path>``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from prism.errors import Reason
from prism.imaging import sniff_format
from prism_cli.errors import UserError
from prism_cli.jobs.processing_log import FailedFile, SkippedFile

# Enough for every signature sniff_format checks.
_SNIFF_BYTES = 64


@dataclass(frozen=True)
class InputFile:
    path: Path  # on disk, absolute
    display: str  # as the user named it: DIR/relative/path
    label: str  # the folder's unique label
    relative: str  # POSIX path below the folder

    def key(self, upload_prefix: str, sub_prefix: str = "") -> str:
        """The object key this file is uploaded under (see :func:`key_prefix`)."""
        return f"{key_prefix(upload_prefix, sub_prefix)}{self.label}/{self.relative}"

    def output_dir(self, out: Path) -> Path:
        """Where this file's variants go: the input's folder structure under ``out``."""
        return out.joinpath(self.label, *PurePosixPath(self.relative).parent.parts)


def key_prefix(upload_prefix: str, sub_prefix: str = "") -> str:
    """The stack's upload prefix as a folder (in its own form, ``uploads/``, with a slash
    added if it has none), then ``sub_prefix`` below it with single slashes at its ends."""
    if upload_prefix and not upload_prefix.endswith("/"):
        upload_prefix += "/"
    sub = sub_prefix.strip("/")
    return upload_prefix + (f"{sub}/" if sub else "")


@dataclass
class Scan:
    files: list[InputFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)


def folder_labels(folders: Sequence[Path]) -> list[str]:
    """A unique label per folder: its base name, then ``name-2``, ``name-3``..."""
    labels: list[str] = []
    for folder in folders:
        base = folder.resolve().name or "root"
        label, n = base, 1
        while label in labels:
            n += 1
            label = f"{base}-{n}"
        labels.append(label)
    return labels


def check_input_folders(folders: Sequence[Path]) -> list[Path]:
    """The distinct input folders; a UserError for a missing one."""
    distinct: list[Path] = []
    for folder in folders:
        if not folder.exists():
            raise UserError(f"input folder not found: {folder}")
        if not folder.is_dir():
            raise UserError(f"not a folder: {folder}")
        if folder.resolve() not in [d.resolve() for d in distinct]:
            distinct.append(folder)
    return distinct


def scan_folders(folders: Sequence[Path]) -> Scan:
    scan = Scan()
    for folder, label in zip(folders, folder_labels(folders), strict=True):
        for directory, subdirectories, filenames in os.walk(folder):
            subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                path = Path(directory, filename)
                relative = path.relative_to(folder).as_posix()
                display = str(Path(folder, relative))
                try:
                    with path.open("rb") as stream:
                        head = stream.read(_SNIFF_BYTES)
                except OSError as exc:
                    scan.failed.append(
                        FailedFile(path=display, error=f"unreadable: {exc.strerror}")
                    )
                    continue
                # Empty files are left to the pipeline, which records them as empty_file.
                if head and sniff_format(head) is None:
                    scan.skipped.append(
                        SkippedFile(path=display, reason=Reason.UNSUPPORTED_FORMAT.value)
                    )
                    continue
                scan.files.append(
                    InputFile(path=path.resolve(), display=display, label=label, relative=relative)
                )
    return scan

"""Outputs on disk, for ``prism run`` and ``prism pull``: the ``--out`` folder, where each
output goes in it, and the downloads, one failure never stopping the others.

An output goes to its key without the config's output prefix (:func:`local_output_path`).

An output can fail to land on disk for reasons of its own (a file name longer than the
file system allows, a full disk, a path taken by a folder); that variant is then logged as
``download_failed`` with the OS's words, and the run still writes its log.

Downloads run on a pool of threads, one GET each, and stream the object to its file in
chunks: an output is never held whole in memory.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from prism_cli.errors import UserError, aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DOWNLOAD_FAILED = "download_failed"
_IO_THREADS = 16
_CHUNK_BYTES = 1024 * 1024


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


def local_output_path(out: Path, output_key: str, output_prefix: str) -> Path | None:
    """Where the output ``output_key`` goes under ``out``: the key without the config's
    output prefix (for the default layout ``out/<label>/<folders>/<stem>_<variant>.<ext>``).
    None for a key that would leave ``out``."""
    relative = output_key
    prefix = output_prefix.strip("/")
    if prefix and relative.startswith(prefix + "/"):
        relative = relative[len(prefix) + 1 :]
    parts = [part for part in PurePosixPath(relative).parts if part not in ("", "/")]
    if not parts or any(part in (".", "..") for part in parts):
        return None
    return out.joinpath(*parts)


@dataclass(frozen=True)
class Download:
    key: str  # in the output bucket
    destination: Path


def download_all(
    s3: S3Client, bucket: str, downloads: Sequence[Download], threads: int = _IO_THREADS
) -> dict[Download, str]:
    """Fetch every object to its destination; the error of each one that failed."""

    def fetch(item: Download) -> str | None:
        try:
            body = s3.get_object(Bucket=bucket, Key=item.key)["Body"]
            try:
                _write(body, item.destination)
            finally:
                body.close()
        except OSError as exc:
            name = exc.filename if isinstance(exc.filename, str) else str(item.destination)
            return f"{exc.strerror or exc}: {name}"
        except ClientError as exc:
            return aws_error(exc)
        except BotoCoreError as exc:
            return str(exc)
        return None

    if not downloads:
        return {}
    with ThreadPoolExecutor(min(threads, len(downloads))) as pool:
        results = list(pool.map(fetch, downloads))
    return {item: error for item, error in zip(downloads, results, strict=True) if error}


def _write(body: Any, destination: Path) -> None:
    """Stream ``body`` into ``destination``; no partial file is left if that fails."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with destination.open("wb") as file:
            shutil.copyfileobj(body, file, _CHUNK_BYTES)
    except BaseException:
        with contextlib.suppress(OSError):
            destination.unlink(missing_ok=True)
        raise

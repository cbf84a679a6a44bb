"""Download a local run's outputs into ``--out``, one failure never stopping the others.

An output can fail to land on disk for reasons of its own (a file name longer than the
file system allows, a full disk, a path taken by a folder); that variant is then logged as
``download_failed`` with the OS's words, and the run still writes its log.

Downloads run on a pool of threads, one GET each, and stream the object to its file in
chunks: an output is never held whole in memory.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from prism_cli.errors import aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DOWNLOAD_FAILED = "download_failed"
_IO_THREADS = 16
_CHUNK_BYTES = 1024 * 1024


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

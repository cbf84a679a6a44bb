"""Watermark logos of a local run.

A config names a logo (``watermark: {image: ...}``) as a key in the input bucket, or as
``s3://bucket/key``. A ``prism run`` stack starts empty, so the logo must come from the
user's disk: a key is read as a file path (relative to the config file's folder, then to
the current folder) and uploaded under that same key before the run, outside the upload
prefix so that it is not processed as a photo. Without this, every watermarked variant
would fail with ``watermark_missing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prism.config import PipelineConfig
from prism_cli.errors import UserError
from prism_cli.jobs.s3_urls import is_s3_url


@dataclass(frozen=True)
class Logo:
    key: str  # in the input bucket, as the config names it
    path: Path  # the file on disk


def config_logos(config: PipelineConfig) -> list[str]:
    """Every logo the config's variants use (per-variant watermarks included), in order."""
    images = [
        watermark.image
        for variant in config.variants
        if (watermark := config.effective_watermark(variant)) is not None and watermark.image
    ]
    return list(dict.fromkeys(images))


def find_logos(config: PipelineConfig, config_path: Path | None, upload_prefix: str) -> list[Logo]:
    """The files of the config's logos; a UserError for one that cannot be used locally."""
    return [_find(image, config_path, upload_prefix) for image in config_logos(config)]


def _find(image: str, config_path: Path | None, upload_prefix: str) -> Logo:
    if is_s3_url(image):
        raise UserError(
            f"watermark image {image}: a local run can only use a local file "
            "(name it by its path, relative to the config file)"
        )
    candidates = _candidates(image, config_path)
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        looked = ", ".join(str(path) for path in candidates)
        raise UserError(f"watermark image {image} not found (looked in {looked})")
    if image.startswith(upload_prefix):  # an empty prefix: the whole bucket is processed
        raise UserError(
            f"watermark image {image} is under the upload prefix {upload_prefix!r}, where "
            "every object is processed as a photo; name it by a path outside it"
        )
    return Logo(key=image, path=found.resolve())


def _candidates(image: str, config_path: Path | None) -> Sequence[Path]:
    path = Path(image)
    if path.is_absolute():
        return [path]
    folders = [config_path.resolve().parent] if config_path is not None else []
    folders.append(Path.cwd())
    return list(dict.fromkeys(folder / path for folder in folders))

"""Dedupe on the local stack: a duplicate uploaded in parts (so its ETag differs) is found
by its content, copied server-side with its own headers, and recorded ``reused_from``."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from PIL import Image

import prism.worker
from prism.imaging import decode_source
from prism.records import VariantRecord
from prism_cli.local.stack import LocalStack
from support.cli import prism as run_prism
from support.images import image_bytes
from support.pipeline import output_keys, run_functions, with_processing

pytestmark = pytest.mark.integration

CONFIG = """
dedupe: true
variants:
  - {name: small, transforms: [{op: thumbnail, width: 32, height: 32}], format: jpeg,
     cache_control: "public, max-age=60"}
  - {name: web, transforms: [{op: thumbnail, width: 400, height: 400}], format: webp}
"""


def variants(stack: LocalStack, key: str) -> dict[str, VariantRecord]:
    _, found = with_processing(
        stack, lambda t: t.source_state(stack.bucket_name("InputBucket"), key)
    )
    return found


def test_a_multipart_duplicate_is_copied_by_its_content(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_stack.put_pipeline_config(CONFIG)
    s3, bucket = local_stack.clients.s3, local_stack.bucket_name("InputBucket")
    noise = Image.frombytes("RGB", (1800, 1400), random.Random(7).randbytes(1800 * 1400 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    photo = buffer.getvalue()  # over 5 MB: big enough for two parts
    assert len(photo) > 6 * 1024 * 1024
    s3.put_object(Bucket=bucket, Key="uploads/original.png", Body=photo)
    run_functions(local_stack)

    decoded: list[int] = []
    original_decode = decode_source

    def counting(*args: object, **kwargs: object) -> object:
        decoded.append(1)
        return original_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prism.worker, "decode_source", counting)
    parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(photo), bucket, "uploads/duplicate.png", Config=parts)
    etags = {
        key: s3.head_object(Bucket=bucket, Key=f"uploads/{key}")["ETag"]
        for key in ("original.png", "duplicate.png")
    }
    assert "-" in etags["duplicate.png"] and etags["original.png"] != etags["duplicate.png"]
    run_functions(local_stack)

    assert decoded == []  # every variant was copied
    assert output_keys(local_stack) == {
        "original_small.jpg",
        "original_web.webp",
        "duplicate_small.jpg",
        "duplicate_web.webp",
    }
    out = local_stack.bucket_name("OutputBucket")
    for name, record in variants(local_stack, "uploads/duplicate.png").items():
        assert record.status == "done" and record.reused_from == f"{bucket}/uploads/original.png"
        copy = s3.get_object(
            Bucket=out, Key=f"duplicate_{name}.{'jpg' if name == 'small' else 'webp'}"
        )
        first = s3.get_object(
            Bucket=out, Key=f"original_{name}.{'jpg' if name == 'small' else 'webp'}"
        )
        assert copy["Body"].read() == first["Body"].read()
        assert copy["Metadata"]["prism-run"] == record.run_id  # its own run, not the original's
        assert copy["ContentType"] == first["ContentType"]
    small = s3.head_object(Bucket=out, Key="duplicate_small.jpg")
    assert small["CacheControl"] == "public, max-age=60"


def test_prism_run_copies_a_folders_duplicates(tmp_path: Path) -> None:
    """In one run, a duplicate waits for its original, so it is copied, not rendered at the
    same time; every file's variants are on disk, and the log says which were copied."""
    photos = tmp_path / "photos"
    photos.mkdir()
    data = image_bytes((300, 200), "JPEG", "teal")
    for name in ("a.jpg", "copy.jpg", "second-copy.jpg"):
        (photos / name).write_bytes(data)
    (photos / "other.jpg").write_bytes(image_bytes((300, 200), "JPEG", "orange"))
    config = tmp_path / "pipeline.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "out"

    result = run_prism("run", photos, "--out", out, "--config", config, "-q")

    assert result.returncode == 0, result.stderr
    log = json.loads((out / "processing_log.json").read_text())
    reused = {(Path(v["path"]).name, v["variant"]): v["reused_from"] for v in log["variants"]}
    assert len(reused) == 8
    copied = {path for (path, _), source in reused.items() if source}
    assert copied == {"copy.jpg", "second-copy.jpg"}
    assert all(str(reused[(p, "small")]).endswith("/a.jpg") for p in copied)
    for stem in ("a", "copy", "second-copy"):
        assert (out / "photos" / f"{stem}_small.jpg").read_bytes() == (
            out / "photos" / "a_small.jpg"
        ).read_bytes()

"""Outputs written by the whole event flow carry their variant's HTTP headers and user
metadata next to Prism's own keys (read back with HeadObject from the moto server)."""

from __future__ import annotations

import pytest

from prism.config import DEFAULT_CACHE_CONTROL
from prism_cli.local.stack import LocalStack
from support.images import image_bytes
from support.pipeline import run_functions

pytestmark = pytest.mark.integration

HEADERS = """
content_disposition: inline
user_metadata: {owner: team-a}
variants:
  - {name: thumb, transforms: [{op: thumbnail, width: 40, height: 40}], format: jpeg}
  - name: download
    format: webp
    cache_control: "public, max-age=600"
    content_disposition: 'attachment; filename="photo.webp"'
    user_metadata: {kind: original, owner: team-b}
"""


def test_every_output_has_its_variants_headers_and_prisms_metadata(
    local_stack: LocalStack,
) -> None:
    local_stack.put_pipeline_config(HEADERS)
    local_stack.clients.s3.put_object(
        Bucket=local_stack.bucket_name("InputBucket"),
        Key="uploads/cat.jpg",
        Body=image_bytes((120, 80)),
    )

    run_functions(local_stack, timeout=90)

    s3, bucket = local_stack.clients.s3, local_stack.bucket_name("OutputBucket")
    thumb = s3.head_object(Bucket=bucket, Key="cat_thumb.jpg")
    assert thumb["ContentType"] == "image/jpeg"
    assert thumb["CacheControl"] == DEFAULT_CACHE_CONTROL
    assert thumb["ContentDisposition"] == "inline"
    metadata = thumb["Metadata"]
    assert metadata["owner"] == "team-a" and metadata["prism-variant"] == "thumb"
    assert {"prism-run", "prism-run-order"} <= set(metadata)

    download = s3.head_object(Bucket=bucket, Key="cat_download.webp")
    assert download["ContentType"] == "image/webp"
    assert download["CacheControl"] == "public, max-age=600"
    assert download["ContentDisposition"] == 'attachment; filename="photo.webp"'
    assert download["Metadata"] == {
        "kind": "original",
        "owner": "team-b",
        "prism-variant": "download",
        "prism-run": metadata["prism-run"],
        "prism-run-order": metadata["prism-run-order"],
    }

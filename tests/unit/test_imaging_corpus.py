"""The imaging core on real photos from ``../shared/corpus`` (skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from imaging_factory import open_bytes

from prism.config import Contain, Cover, Resize, Thumbnail, default_config
from prism.imaging import combined_needed_size, decode, needed_size, probe, render_variant

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
PHOTOS = sorted(CORPUS.glob("*.*")) if CORPUS.is_dir() else []
PHOTOS = [path for path in PHOTOS if path.suffix.lower() in {".jpg", ".png", ".webp"}]

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not PHOTOS, reason="photo corpus not present"),
]


@pytest.mark.parametrize("path", PHOTOS, ids=[path.name for path in PHOTOS])
def test_default_pipeline_on_a_real_photo(path: Path) -> None:
    data = path.read_bytes()
    info = probe(data)
    config = default_config()
    size = combined_needed_size(needed_size(v.transforms) for v in config.variants)

    source = decode(data, max_pixels=config.limits.max_source_pixels, needed_size=size)

    assert source.mode in {"RGB", "RGBA", "L", "LA"}
    assert source.width <= info.width and source.height <= info.height
    longest = max(info.width, info.height)
    for variant in config.variants:
        rendered = render_variant(source, variant, None)
        image = open_bytes(rendered.data)
        assert image.size == (rendered.width, rendered.height)
        box = variant.transforms[0]
        assert isinstance(box, Resize | Thumbnail | Cover | Contain), box
        assert max(image.size) == min(longest, max(box.width, box.height))

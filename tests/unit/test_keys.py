import pytest

from prism.config import Variant
from prism.keys import output_key, source_stem

THUMB = Variant(name="thumbnail", format="JPEG")
WEB = Variant(name="web", format="WEBP")


@pytest.mark.parametrize(
    ("key", "prefix", "stem"),
    [
        ("uploads/test.jpg", "uploads/", "test"),
        ("uploads/trips/2024/cat.photo.png", "uploads/", "trips/2024/cat.photo"),
        ("other/cat.jpg", "uploads/", "other/cat"),
        ("noext", "", "noext"),
        ("uploads/.hidden", "uploads/", ".hidden"),
        ("uploads/holiday photos/beach (2)+1 é.jpg", "uploads/", "holiday photos/beach (2)+1 é"),
    ],
)
def test_source_stem(key: str, prefix: str, stem: str) -> None:
    assert source_stem(key, prefix) == stem


def test_output_key_layout() -> None:
    assert output_key("uploads/test.jpg", THUMB, upload_prefix="uploads/") == "test_thumbnail.jpg"
    assert output_key("uploads/test.jpg", WEB, upload_prefix="uploads/") == "test_web.webp"
    assert (
        output_key("uploads/a/b.png", THUMB, upload_prefix="uploads/", output_prefix="/variants/")
        == "variants/a/b_thumbnail.jpg"
    )

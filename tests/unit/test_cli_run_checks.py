"""What ``prism run`` checks before its stack starts: the output folder, the config file,
output keys that would clash, and watermark logos; and where outputs are downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prism.config import parse_config
from prism.keys import COLLISION_FREE_OUTPUT_KEY
from prism_cli.config_files import read_config_file
from prism_cli.errors import UserError
from prism_cli.jobs.downloads import local_output_path, prepare_output_folder
from prism_cli.jobs.inputs import scan_folders
from prism_cli.run.output_keys import check_output_keys
from prism_cli.run.watermark_logos import Logo, find_logos

VARIANTS = "variants:\n  - {name: thumbnail}\n  - {name: web, format: WEBP}\n"


def jpeg_bytes() -> bytes:
    return b"\xff\xd8\xff\xe0" + b"\0" * 60  # enough for the format sniffing of a scan


# --- --out ---------------------------------------------------------------------------------------
def test_out_that_is_a_file_or_under_a_file_is_refused(tmp_path: Path) -> None:
    existing = tmp_path / "out.txt"
    existing.write_text("x")
    with pytest.raises(UserError, match=r"out\.txt is a file, not a folder"):
        prepare_output_folder(existing)
    with pytest.raises(UserError, match=r"out\.txt is a file, not a folder"):
        prepare_output_folder(existing / "deeper" / "out")


def test_out_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot write to --out /proc"):
        prepare_output_folder(Path("/proc"))
    with pytest.raises(UserError, match="cannot write to --out /proc/prism-out"):
        prepare_output_folder(Path("/proc/prism-out"))
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UserError, match="Permission denied"):
            prepare_output_folder(locked / "out")


def test_out_is_created_and_left_empty(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    prepare_output_folder(out)
    assert out.is_dir() and list(out.iterdir()) == []


# --- config files ------------------------------------------------------------------------------
def test_config_that_is_not_utf8_is_a_user_error(tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_text(VARIANTS, encoding="utf-16")
    with pytest.raises(UserError, match=r"utf16.yaml: not UTF-8 text \(it looks like UTF-16\)"):
        read_config_file(utf16)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("# café\n".encode("latin-1") + VARIANTS.encode())
    with pytest.raises(UserError, match="not UTF-8 text, invalid byte at offset 5"):
        read_config_file(latin1)
    with_bom = tmp_path / "bom.yaml"
    with_bom.write_text(VARIANTS, encoding="utf-8-sig")
    assert read_config_file(with_bom) == VARIANTS
    with pytest.raises(UserError, match=r"cannot read config .*missing\.yaml"):
        read_config_file(tmp_path / "missing.yaml")


# --- output keys ----------------------------------------------------------------------------------
def test_files_whose_outputs_clash_are_named_with_the_fix(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("cat.jpg", "cat.png", "dog.jpg", "unique.jpg"):
        (photos / name).write_bytes(jpeg_bytes())
    files = scan_folders([photos]).files
    config = parse_config(VARIANTS)

    with pytest.raises(UserError) as raised:
        check_output_keys(files, config, "uploads/")

    message = str(raised.value)
    assert "2 files would write the same output keys" in message
    assert f"{photos}/cat.jpg, {photos}/cat.png -> photos/cat_thumbnail.jpg" in message
    assert "dog.jpg" not in message and "unique.jpg" not in message
    assert f'output_key: "{COLLISION_FREE_OUTPUT_KEY}"' in message and "rename" in message
    # The suggested layout tells them apart.
    free = parse_config(f'output_key: "{COLLISION_FREE_OUTPUT_KEY}"\n' + VARIANTS)
    check_output_keys(files, free, "uploads/")


def test_a_long_clash_list_is_cut_after_ten_files(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(12):
        for extension in ("jpg", "png"):
            (photos / f"n{index:02d}.{extension}").write_bytes(jpeg_bytes())
    files = scan_folders([photos]).files

    with pytest.raises(UserError) as raised:
        check_output_keys(files, parse_config(VARIANTS), "uploads/")

    message = str(raised.value)
    assert message.startswith("24 files would write the same output keys")
    assert "n04.png" in message and "n05.jpg" not in message
    assert "... 14 more" in message


def test_outputs_are_downloaded_below_out_without_the_output_prefix(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert local_output_path(out, "variants/photos/trip/cat_web.webp", "variants") == (
        out / "photos" / "trip" / "cat_web.webp"
    )
    assert local_output_path(out, "photos/cat.jpg/thumbnail.jpg", "") == (
        out / "photos" / "cat.jpg" / "thumbnail.jpg"
    )
    assert local_output_path(out, "variants/../../etc/passwd", "variants") is None


# --- watermark logos --------------------------------------------------------------------------
def logo_config(image: str, *, per_variant: bool = False) -> str:
    if per_variant:
        return f"variants:\n  - {{name: a}}\n  - {{name: b, watermark: {{image: {image}}}}}\n"
    return f"watermark: {{image: {image}}}\n" + VARIANTS


def test_a_logo_is_found_next_to_the_config_then_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "configs" / "pipeline.yaml"
    (tmp_path / "configs" / "assets").mkdir(parents=True)
    (tmp_path / "configs" / "assets" / "logo.png").write_bytes(b"png")
    (tmp_path / "cwd" / "brand").mkdir(parents=True)
    (tmp_path / "cwd" / "brand" / "mark.png").write_bytes(b"png")
    monkeypatch.chdir(tmp_path / "cwd")

    beside = find_logos(parse_config(logo_config("assets/logo.png")), config_file, "uploads/")
    assert beside == [Logo("assets/logo.png", tmp_path / "configs" / "assets" / "logo.png")]
    here = parse_config(logo_config("brand/mark.png", per_variant=True))
    assert find_logos(here, config_file, "uploads/") == [
        Logo("brand/mark.png", tmp_path / "cwd" / "brand" / "mark.png")
    ]


def test_a_logo_that_cannot_be_used_locally_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config_file = tmp_path / "c" / "pipeline.yaml"
    missing = parse_config(logo_config("assets/logo.png", per_variant=True))
    with pytest.raises(UserError) as raised:
        find_logos(missing, config_file, "uploads/")
    assert str(raised.value) == (
        f"watermark image assets/logo.png not found (looked in "
        f"{tmp_path}/c/assets/logo.png, {tmp_path}/assets/logo.png)"
    )
    with pytest.raises(UserError, match="a local run can only use a local file"):
        find_logos(parse_config(logo_config("s3://brand/logo.png")), config_file, "uploads/")
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "logo.png").write_bytes(b"png")
    with pytest.raises(UserError, match="under the upload prefix 'uploads/'"):
        find_logos(parse_config(logo_config("uploads/logo.png")), config_file, "uploads/")
    assert find_logos(parse_config(VARIANTS), config_file, "uploads/") == []

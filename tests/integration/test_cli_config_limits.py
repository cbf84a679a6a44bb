"""``prism`` refuses a config larger than the deployed stack can hold (issue 10): exit 2 and
one line naming the file, its size and the limit, before anything is started or made."""

from __future__ import annotations

from pathlib import Path

from support.cli import prism, user_error
from support.images import image_file

LIMIT = "the limit is 8,192 (what an SSM Advanced parameter holds)"


def big_config(path: Path) -> Path:
    """The issue's config: 60,000 variants, about 6 MB."""
    path.write_text(
        "variants:\n"
        + "".join(f"  - {{name: v{i}, format: JPEG, quality: 80}}\n" for i in range(60_000))
    )
    return path


def test_run_with_an_oversize_config_is_a_one_line_error(tmp_path: Path) -> None:
    image_file(tmp_path / "in" / "a.jpg", (64, 48), "JPEG", (200, 30, 30))
    big = big_config(tmp_path / "big.yaml")

    result = prism("run", tmp_path / "in", "--out", tmp_path / "out", "--config", big)

    user_error(result, f"{big}: the config is {big.stat().st_size:,} bytes; {LIMIT}")
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_config_set_with_an_oversize_config_is_a_one_line_error(tmp_path: Path) -> None:
    big = big_config(tmp_path / "big.yaml")

    result = prism("config", "set", big, cwd=tmp_path)  # the file is read before any stack

    user_error(result, f"{big}: the config is {big.stat().st_size:,} bytes; {LIMIT}")

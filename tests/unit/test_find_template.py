"""Where ``prism`` finds its template: ``--template``, a checkout from the working directory
upwards, the copy an installed build carries, then the checkout of an editable install."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism_cli.errors import UserError
from prism_cli.local import bundled, template
from prism_cli.local.template import find_template

ROOT = Path(__file__).resolve().parents[2]


def checkout(folder: Path) -> Path:
    (folder / "functions").mkdir(parents=True)
    path = folder / "template.yaml"
    path.write_text("Resources: {}\n")
    return path


def installed(folder: Path) -> Path:
    stack = folder / "site-packages" / "prism_cli" / "_stack"
    return checkout(stack)


def test_explicit_template_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    explicit = tmp_path / "mine.yaml"
    explicit.write_text("Resources: {}\n")
    assert find_template(explicit) == explicit
    with pytest.raises(UserError, match="template not found"):
        find_template(tmp_path / "missing.yaml")


def test_a_checkout_above_the_working_directory_comes_before_the_bundled_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = checkout(tmp_path / "repo")
    (tmp_path / "repo" / "photos" / "2024").mkdir(parents=True)
    bundled_path = installed(tmp_path / "venv")
    monkeypatch.setattr(template, "bundled_template", lambda: bundled_path)
    monkeypatch.chdir(tmp_path / "repo" / "photos" / "2024")
    assert find_template() == mine


def test_template_without_functions_is_not_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "template.yaml").write_text("Resources: {}\n")  # some other SAM project
    bundled_path = installed(tmp_path / "venv")
    monkeypatch.setattr(template, "bundled_template", lambda: bundled_path)
    monkeypatch.chdir(tmp_path)
    assert find_template() == bundled_path


def test_without_a_bundled_copy_the_package_checkout_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An editable install (this test run's) outside its checkout.
    monkeypatch.setattr(template, "bundled_template", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert find_template() == ROOT / "template.yaml"


def test_bundled_template_needs_the_template_and_the_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = tmp_path / "_stack"
    monkeypatch.setattr(bundled, "BUNDLED_STACK", stack)
    assert bundled.bundled_template() is None
    checkout(stack)
    assert bundled.bundled_template() == stack / "template.yaml"
    # A checkout or editable install has no copy.
    assert not (ROOT / "src" / "prism_cli" / "_stack").exists()

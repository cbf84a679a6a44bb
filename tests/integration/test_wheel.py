"""The package as a user installs it: a wheel in a fresh venv, run outside the checkout.

``prism run`` needs the SAM template and the function handlers; an installed build carries
them as package data (``prism_cli/_stack``, copied by ``setup.py``). This test builds the
wheel from a copy of the checkout, checks what it carries, installs it (what
``pipx install .`` installs) into a fresh venv (no system site packages,
so nothing of the checkout or the test venv is visible), and runs ``prism`` from a folder
outside the checkout. The dependencies come from the package index: without a network the
test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from support.images import image_file

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STACK = "prism_cli/_stack"
# Folders of the checkout a build does not read (venvs, build output, caches).
_NOT_COPIED_AT_TOP = {
    ".git",
    ".venv",
    ".sam-venv",
    ".checkov-venv",
    ".aws-sam",
    "build",
    "dist",
    "demo-output",
    ".prism-demo-inputs",
    "bench",
    "docs",
    "tests",
}
_NOT_COPIED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.egg-info", ".mypy_cache", ".pytest_cache", ".ruff_cache"
)
# What pip prints when it cannot reach the index (the test is then skipped, not failed).
_OFFLINE = (
    "Failed to establish a new connection",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
)


def _env() -> dict[str, str]:
    """The environment of a user's shell: no test-session AWS/Prism settings, no venv."""
    dropped = ("AWS_", "PRISM_", "PYTHON", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def _run(
    command: Sequence[str | Path], *, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _pip(command: Sequence[str | Path], *, cwd: Path, what: str) -> None:
    """Run a pip command that needs the index; skip when offline, fail on anything else."""
    result = _run(command, cwd=cwd, timeout=600)
    if result.returncode == 0:
        return
    output = result.stdout + result.stderr
    if any(marker in output for marker in _OFFLINE):
        pytest.skip(f"no network to the package index, needed to {what}")
    pytest.fail(f"cannot {what}:\n{output[-4000:]}")


def _ignore_for_copy(folder: str, names: list[str]) -> set[str]:
    ignored = set(_NOT_COPIED(folder, names))
    if Path(folder) == ROOT:
        ignored |= _NOT_COPIED_AT_TOP & set(names)
    return ignored


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the checkout (setuptools writes build/ and
    *.egg-info into the tree it builds; the checkout's build/ holds other output)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_ignore_for_copy, symlinks=True)
    out = work / "dist"
    _pip(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", source, "-w", out],
        cwd=work,
        what="build the wheel (its build backend comes from the index)",
    )
    (built,) = out.glob("prism_pipeline-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_bin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv with the wheel and its ``local`` extra installed."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    created = _run([sys.executable, "-m", "venv", venv], cwd=venv.parent, timeout=120)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    _pip(
        [python, "-m", "pip", "install", "--quiet", "--retries", "1", str(wheel)],
        cwd=venv.parent,
        what="install the wheel's dependencies",
    )
    return venv / "bin"


def _project_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def test_the_wheel_carries_the_template_and_handlers_unchanged(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read(f"{STACK}/template.yaml") == (ROOT / "template.yaml").read_bytes()
        handlers = sorted(p.relative_to(ROOT) for p in ROOT.glob("functions/*/*.py"))
        assert handlers, "no handlers in functions/"
        for handler in handlers:
            assert archive.read(f"{STACK}/{handler.as_posix()}") == (ROOT / handler).read_bytes()
    # Both packages, with the package data they read at run time.
    for required in (
        "prism/__init__.py",
        "prism/default_pipeline.yaml",
        "prism_cli/main.py",
        "prism_cli/local/bundled.py",
        "prism_cli/run/demo_pipeline.yaml",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_version_of_the_installed_command(venv_bin: Path, tmp_path: Path) -> None:
    result = _run([venv_bin / "prism", "--version"], cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"prism {_project_version()}"


def test_installed_prism_run_works_outside_the_checkout(venv_bin: Path, tmp_path: Path) -> None:
    assert ROOT not in tmp_path.parents
    # The installed package finds its bundled template, not a checkout.
    located = _run(
        [
            venv_bin / "python",
            "-c",
            "from prism_cli.local.template import find_template; print(find_template())",
        ],
        cwd=tmp_path,
        timeout=120,
    )
    assert located.returncode == 0, located.stderr
    template = Path(located.stdout.strip())
    assert template.parent.name == "_stack" and template.parent.parent.name == "prism_cli"
    assert template.read_bytes() == (ROOT / "template.yaml").read_bytes()
    assert ROOT not in template.parents

    photos = tmp_path / "photos"
    image_file(photos / "cat.jpg", (320, 240), "JPEG", (200, 30, 30))
    image_file(photos / "sub" / "dog.png", (200, 300), "PNG", (30, 30, 200))
    out = tmp_path / "out"

    result = _run([venv_bin / "prism", "run", photos, "--out", out], cwd=tmp_path, timeout=300)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    log: dict[str, Any] = json.loads((out / "processing_log.json").read_text())
    assert sorted(log["successful"]) == sorted(
        [str(photos / "cat.jpg"), str(photos / "sub" / "dog.png")]
    )
    assert log["failed"] == []
    done = [v for v in log["variants"] if v["status"] == "done"]
    assert done and {Path(v["output"]).parent.as_posix() for v in done} == {
        "photos",
        "photos/sub",
    }
    for entry in done:
        written = out / entry["output"]
        assert written.is_file() and written.stat().st_size == entry["bytes"], entry

"""Build hook: ship the SAM template and the function handlers inside the ``prism_cli`` package.

Everything else about the distribution is declared in ``pyproject.toml``. ``prism run`` and
``prism stack up`` need ``template.yaml`` and the handlers it names (``CodeUri`` is a folder
relative to the template), so the wheel carries a copy of both as package data::

    prism_cli/_stack/template.yaml
    prism_cli/_stack/functions/<name>/<handler>.py

with the same relative layout as the checkout (see :mod:`prism_cli.local.bundled`). The files
are copied unchanged: the bundled template is byte-identical to ``template.yaml``. Editable
installs copy nothing; they use the checkout itself.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# The folder inside the prism_cli package that holds the copy: keep in step with bundled.py.
STACK_FOLDER = Path("prism_cli", "_stack")
_SKIPPED = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


def stack_files() -> list[Path]:
    """The files to bundle, relative to the checkout: the template and everything in functions/."""
    files = [Path("template.yaml")]
    for path in sorted((ROOT / "functions").rglob("*")):
        relative = path.relative_to(ROOT)
        if path.is_file() and path.suffix != ".pyc" and not _SKIPPED & set(relative.parts):
            files.append(relative)
    return files


class BuildPyWithStack(build_py):
    """``build_py`` that also copies the template and handlers into ``prism_cli/_stack``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for relative in stack_files():
            source = ROOT / relative
            if not source.is_file():
                raise FileNotFoundError(f"cannot bundle {relative}: {source} is missing")
            target = Path(self.build_lib) / STACK_FOLDER / relative
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target), preserve_mode=False)


setup(cmdclass={"build_py": BuildPyWithStack})

"""Conventions every command keeps: an example in its --help, and shell completion."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator

import pytest

from prism import __version__
from prism_cli.main import build_parser, main


def leaf_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
        return
    for action in subparsers:
        for name, child in action.choices.items():
            yield from leaf_parsers(child, (*path, name))


def test_every_command_shows_an_example_in_its_help() -> None:
    missing = [
        " ".join(path)
        for path, parser in leaf_parsers(build_parser())
        if "examples:" not in parser.format_help()
    ]
    assert not missing, f"commands without examples in --help: {missing}"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_know_every_command(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for command in ("run", "demo", "submit", "pull", "jobs", "stack", "event"):
        assert command in script
    if shell == "bash":
        # The script is valid bash: bash parses it without running anything.
        checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert checked.returncode == 0, checked.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"prism {__version__}"

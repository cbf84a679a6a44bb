"""What every command group's parser shares: one-line usage errors and argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn, TypeAlias

from rich.console import Console

from prism_cli.exit_codes import EXIT_USAGE

# One parser builder per command group adds its commands to ``prism``'s subparsers, and sets
# ``handler`` on each: the function main calls with the parsed arguments and the console.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[argparse.Namespace, Console], int]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other user error (argparse would add the usage first).
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def bounded_int(low: int, high: int | None, expected: str, bounds: str) -> Callable[[str], int]:
    """An argument type: a whole number from ``low`` to ``high`` (None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(bounds)
        return value

    return parse


positive_int = bounded_int(1, None, "a whole number", "must be at least 1")


def examples(lines: str) -> str:
    """A command's ``examples:`` epilog (for ``RawDescriptionHelpFormatter``), indented."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines.splitlines())

"""The ``prism`` command as a user runs it: in a fresh process, without the test session's
AWS and Prism settings, and the one-line errors it answers a mistake with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PRISM = (sys.executable, "-m", "prism_cli.main")


def child_env() -> dict[str, str]:
    """The environment without ``AWS_*`` and ``PRISM_*``: the child builds or finds its own
    stack; it must not inherit a test session's endpoint."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PRISM_"))}


def prism(
    *args: str | Path, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``prism args`` to the end (nothing on its stdin); its exit status and output."""
    return subprocess.run(
        [*PRISM, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=child_env(),
        stdin=subprocess.DEVNULL,
    )


def start_prism(
    *args: str | Path, cwd: Path | None = None, ignoring_sigint: bool = False
) -> subprocess.Popen[str]:
    """Start ``prism args`` (nothing on its stdin, its stdout and stderr piped);
    ``ignoring_sigint``: with SIGINT ignored, as a shell script starts a background job."""
    command = [*PRISM, *map(str, args)]
    if ignoring_sigint:
        command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
    return subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def one_line_error(err: str, *fragments: str, prefix: str = "prism: error: ") -> None:
    """``err`` is one line, no traceback, starting with ``prefix`` and naming ``fragments``."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    for fragment in fragments:
        assert fragment in lines[0]


def user_error(
    result: subprocess.CompletedProcess[str], *fragments: str, prefix: str = "prism: error: "
) -> None:
    """The command failed as a user's mistake: exit status 2 and a :func:`one_line_error`."""
    assert result.returncode == 2, result.stderr
    one_line_error(result.stderr, *fragments, prefix=prefix)

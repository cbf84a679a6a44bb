"""``prism run`` on a real pseudo-terminal: the live display stays clean (the functions'
output goes to ``functions.log``), ``--quiet`` shows only the summary, and Ctrl+C (typed,
as the terminal sends it) asks ``Cancel job X? [y/N]`` and does what the answer says.

The command is the terminal's session leader with the pty as its controlling terminal, so
a typed ``\\x03`` is a SIGINT from the terminal, as a user's Ctrl+C is. Nothing waits a
fixed time: each step waits (with a timeout) for the text it needs to appear.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from support.cli import PRISM, child_env
from support.images import image_file

ROOT = Path(__file__).resolve().parents[2]
needs_handlers = pytest.mark.skipif(
    not (ROOT / "functions" / "worker" / "worker_handler.py").is_file(),
    reason="the worker handler is not written yet",
)
ROWS, COLUMNS = 40, 160
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _controlling_terminal() -> None:
    """In the child, after setsid: its stdin (the pty) becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A command on a pseudo-terminal of its own, read as it writes."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.master = master
        self.output = b""
        env = child_env() | {"TERM": "xterm-256color", "COLUMNS": str(COLUMNS)}
        self.process = subprocess.Popen(
            [*PRISM, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            close_fds=True,
            start_new_session=True,
            preexec_fn=_controlling_terminal,
        )
        os.close(slave)
        self.closed = False

    def _read(self, seconds: float) -> bool:
        """Read what comes within ``seconds``; False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer has gone
                return False
            if not chunk:
                return False
            self.output += chunk
        return True

    def expect(self, text: str, timeout: float = 120, after: int = 0) -> int:
        """Wait for ``text`` in the output (from offset ``after``); where it ends."""
        deadline = time.monotonic() + timeout
        needle = text.encode()
        while (found := self.output.find(needle, after)) < 0:
            assert time.monotonic() < deadline, f"no {text!r} in {self.text!r}"
            if not self._read(0.2) and self.process.poll() is not None:
                raise AssertionError(
                    f"exited {self.process.returncode}: no {text!r} in {self.text!r}"
                )
        return found + len(needle)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 180) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.2):  # keep reading: a full terminal blocks the writer
            assert time.monotonic() < deadline, self.text
        code = self.process.wait(max(deadline - time.monotonic(), 1))
        os.close(self.master)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    @property
    def plain(self) -> str:
        return ANSI.sub("", self.text)


def images(folder: Path, count: int, size: tuple[int, int] = (320, 240)) -> Path:
    for index in range(count):
        # Noise compresses badly: slow to encode, so the run lasts long enough to interrupt.
        image_file(folder / f"photo-{index:03d}.jpg", size, noise=True)
    return folder


def read_log(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "processing_log.json").read_text())
    return document


@needs_handlers
@pytest.mark.parametrize("quiet", [False, True], ids=["display", "quiet"])
def test_function_output_goes_to_the_log_not_the_terminal(tmp_path: Path, quiet: bool) -> None:
    photos = images(tmp_path / "photos", 4)
    # A JPEG cut short: it fails in the worker (logged in functions.log too).
    (photos / "broken.jpg").write_bytes((photos / "photo-000.jpg").read_bytes()[:400])
    out = tmp_path / "out"
    terminal = Terminal(
        ["run", str(photos), "--out", str(out), "--workers", "1", *(["-q"] if quiet else [])],
        tmp_path,
    )
    try:
        code = terminal.wait()
    finally:
        terminal.kill()

    assert code == 1, terminal.text  # broken.jpg failed
    assert "Traceback" not in terminal.text
    assert '"_aws"' not in terminal.text and '"level"' not in terminal.text, terminal.text
    function_log = (out / "functions.log").read_text()
    emf = [line for line in function_log.splitlines() if line.startswith('{"_aws"')]
    assert emf and all(json.loads(line)["_aws"] for line in emf)  # whole EMF lines
    assert "RenderDurationByVariant" in function_log  # the per-variant metric, printed at once
    # Each line names the function that logged it, though both run at once in one process.
    functions_by_message: dict[str, set[str]] = {}
    for line in function_log.splitlines():
        if line.startswith('{"level"'):
            logged = json.loads(line)
            function = logged["function_name"].rsplit("-", 1)[-1]  # prism-local-WorkerFunction
            functions_by_message.setdefault(logged["message"], set()).add(function)
    assert functions_by_message["Fanned out upload"] == {"FanoutFunction"}, functions_by_message
    assert functions_by_message["Source rejected"] == {"WorkerFunction"}, functions_by_message
    summary = "4 files successful, 0 files partial, 1 file failed, 0 files skipped;"
    assert summary in terminal.plain
    if quiet:
        assert "Loading" not in terminal.plain and "Uploading" not in terminal.plain
    else:
        assert "Loading" in terminal.plain and "█ done" in terminal.plain


@needs_handlers
@pytest.mark.parametrize("answer", ["y", "n"])
def test_ctrl_c_on_a_terminal_asks_before_cancelling_a_run(tmp_path: Path, answer: str) -> None:
    photos = images(tmp_path / "photos", 24, (800, 600))
    out = tmp_path / "out"
    terminal = Terminal(["run", str(photos), "--out", str(out), "--workers", "1"], tmp_path)
    try:
        shown = terminal.expect("Scanning")  # the live display is up: the job is followed
        terminal.type("\x03")  # Ctrl+C, as the terminal sends it
        asked = terminal.expect("Cancel job job-", after=shown)
        terminal.expect("? [y/N] ", after=asked)
        terminal.type(f"{answer}\n")
        if answer == "y":
            terminal.expect("Cancelling job", after=asked)
        code = terminal.wait()
    finally:
        terminal.kill()

    assert "Traceback" not in terminal.text
    log = read_log(out)
    if answer == "y":
        assert code == 130, terminal.text
        assert log["interrupted"] is True
        assert "Prism run interrupted" in terminal.plain
    else:  # "no" carries on: the run ends as if nothing had happened
        assert code == 0, terminal.text
        assert log["interrupted"] is False
        assert len(log["successful"]) == 24
        assert "Prism run done" in terminal.plain

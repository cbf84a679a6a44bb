"""The functions' log: what the emulated handlers print (Powertools logs, EMF metrics,
warnings, anything on stdout or stderr) goes to a file rather than the terminal the command
draws on.

While :func:`function_output_to` lasts, ``sys.stdout`` and ``sys.stderr`` are proxies that
write to the log, whichever thread writes. The command's own output never goes through
them: its rich console holds the real stdout it was made with, and a live display must not
capture stdout or stderr (``Live(redirect_stdout=False, redirect_stderr=False)``), or the
handlers' lines are drawn over it instead of being logged. Lines are written whole: a
``print()`` from one thread (text, then its newline) is not cut by another thread's line.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TextIO

# One lock for both proxies: stdout and stderr usually share the log file.
_write_lock = threading.RLock()


class _StreamProxy(io.TextIOBase):
    """A stdout/stderr stand-in whose target can change: handlers keep writing to it after
    a run (Powertools binds its logger's stream when a handler module is imported). Each
    thread's text is written a line at a time."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self._lock = _write_lock
        self._partial: dict[int, str] = {}  # per thread: text not yet ended by a newline

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        thread = threading.get_ident()
        with self._lock:
            pending = self._partial.pop(thread, "") + text
            cut = pending.rfind("\n") + 1
            if cut:
                self.target.write(pending[:cut])
            if cut < len(pending):
                self._partial[thread] = pending[cut:]
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self.target.flush()

    def retarget(self, target: TextIO) -> TextIO:
        """Write to ``target`` from now on (what was pending first goes to the old one);
        the old target."""
        with self._lock:
            previous = self.target
            try:
                for text in self._partial.values():
                    previous.write(text + "\n")
                previous.flush()
            except (OSError, ValueError):  # the old target is closed (a test's capture)
                pass
            self._partial.clear()
            self.target = target
        return previous


_proxies: dict[str, _StreamProxy] = {}
_proxy_lock = threading.Lock()


def _proxy(name: str, current: TextIO) -> _StreamProxy:
    with _proxy_lock:
        proxy = _proxies.get(name)
        if proxy is None:
            proxy = _proxies[name] = _StreamProxy(current)
        return proxy


@contextmanager
def function_output_to(path: Path) -> Iterator[None]:
    """Send handler output (Powertools logs, EMF metrics, warnings, stdout and stderr) to
    ``path``, appending (see the module doc)."""
    stdout = _proxy("stdout", sys.stdout)
    stderr = _proxy("stderr", sys.stderr)
    with path.open("a", encoding="utf-8") as log_file:
        stdout_before = stdout.retarget(log_file)
        stderr_before = stderr.retarget(log_file)
        file_handler = logging.StreamHandler(stdout)
        file_handler.setLevel(logging.WARNING)
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root = logging.getLogger()
        root.addHandler(file_handler)
        logging.captureWarnings(True)  # e.g. Powertools' "no metrics to publish"
        try:
            with redirect_stdout(stdout), redirect_stderr(stderr):
                yield
        finally:
            logging.captureWarnings(False)
            root.removeHandler(file_handler)
            stderr.retarget(stderr_before)
            stdout.retarget(stdout_before)

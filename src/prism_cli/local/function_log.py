"""The functions' log: what the emulated handlers print (Powertools logs, EMF metrics,
warnings) goes to a file rather than the terminal the command draws on."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TextIO


class _StreamProxy(io.TextIOBase):
    """A stdout stand-in whose target can change: handlers keep writing to it after a run."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


_stdout_proxy: _StreamProxy | None = None
_proxy_lock = threading.Lock()


@contextmanager
def function_output_to(path: Path) -> Iterator[None]:
    """Send handler output (Powertools logs, EMF metrics, warnings) to ``path``.

    Powertools binds its log stream to ``sys.stdout`` when a handler module is imported,
    so stdout is replaced by a proxy that stays valid after this run.
    """
    global _stdout_proxy
    with _proxy_lock:
        if _stdout_proxy is None:
            _stdout_proxy = _StreamProxy(sys.stdout)
        proxy = _stdout_proxy
    with path.open("a", encoding="utf-8") as log_file:
        previous = proxy.target
        proxy.target = log_file
        file_handler = logging.StreamHandler(log_file)
        file_handler.setLevel(logging.WARNING)
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root = logging.getLogger()
        root.addHandler(file_handler)
        logging.captureWarnings(True)  # e.g. Powertools' "no metrics to publish"
        try:
            with redirect_stdout(proxy):
                yield
        finally:
            logging.captureWarnings(False)
            root.removeHandler(file_handler)
            proxy.target = previous

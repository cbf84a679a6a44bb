"""Ctrl+C as an event the async commands react to, rather than an exception.

While a command uploads or follows a job, SIGINT sets :attr:`Interrupts.event`; the command
decides what it means (ask whether to cancel the job, cancel it, or detach). A Ctrl+C while
the question is on screen, or once ``abort_on_next`` is set, aborts: the main task is
cancelled and the command exits with 130.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from types import TracebackType
from typing import Any, TextIO


def interactive(stdin: TextIO | None = None, stdout: TextIO | None = None) -> bool:
    """Whether a question can be asked: both ends are a terminal."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        return stdin.isatty() and stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


class Interrupts:
    """``async with Interrupts() as interrupts:`` installs the SIGINT handler (main thread only)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.count = 0
        self.abort_on_next = False
        self.aborted = False
        self._asking = False
        self._task: asyncio.Task[object] | None = None
        self._installed = False
        self._previous: Any = None

    async def __aenter__(self) -> Interrupts:
        self._task = asyncio.current_task()
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.getsignal(signal.SIGINT)
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._on_interrupt)
                self._installed = True
            except (NotImplementedError, RuntimeError, ValueError):  # e.g. Windows
                self._installed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
            # Give back whatever handled Ctrl+C before (asyncio would leave Python's default).
            if self._previous is not None:
                signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _on_interrupt(self) -> None:
        self.count += 1
        if self._asking or self.abort_on_next:
            self.abort()
            return
        self.event.set()

    def abort(self) -> None:
        self.aborted = True
        if self._task is not None:
            self._task.cancel()

    def pending(self) -> bool:
        return self.event.is_set()

    def clear(self) -> None:
        self.event.clear()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if Ctrl+C was pressed (now or before)."""
        if self.event.is_set():
            return True
        try:
            await asyncio.wait_for(self.event.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def ask(self, question: str, stream: TextIO | None = None) -> bool:
        """Ask a yes/no question on the terminal (default no); Ctrl+C meanwhile aborts."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()
        out = stream or sys.stdout

        def read() -> None:
            try:
                out.write(question)
                out.flush()
                text = sys.stdin.readline()
            except (OSError, ValueError):
                text = ""
            loop.call_soon_threadsafe(_settle, answer, text)

        self._asking = True
        # A daemon thread: a reader blocked on the terminal must not keep the process alive.
        threading.Thread(target=read, name="prism-ask", daemon=True).start()
        try:
            text = await answer
        finally:
            self._asking = False
        return text.strip().lower() in {"y", "yes"}


def _settle(future: asyncio.Future[str], text: str) -> None:
    if not future.done():
        future.set_result(text)

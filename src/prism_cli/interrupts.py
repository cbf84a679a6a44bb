"""Ctrl+C as an event the commands react to, rather than an exception.

While a command uploads or follows a job, SIGINT sets :attr:`Interrupts.event`; the command
decides what it means (ask whether to cancel the job, cancel it, or detach). A Ctrl+C while
the question is on screen aborts: the main task is cancelled and the command exits with 130.

:class:`Interrupts` is the one owner of SIGINT while a command runs. ``async with`` it
delivers Ctrl+C through the running event loop. ``prism run`` also makes and closes its
stack outside the loop, so it holds one ``with Interrupts(...)`` for the whole run and
enters it again (``async with``) for the job: outside the loop the first Ctrl+C asks for a
clean stop (:meth:`Interrupts.pending`) and the next one aborts (KeyboardInterrupt).

A command started with SIGINT ignored (a background job of a shell script, ``nohup``)
keeps ignoring it, as Python itself and asyncio do: the script's Ctrl+C is not for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import IO, Any, TextIO


def interactive() -> bool:
    """Whether a question can be asked: both ends are a terminal.

    The ends are the process's: stdin, and the stdout it was started with
    (``sys.__stdout__``), whatever stands in for ``sys.stdout`` meanwhile (a local run sends
    ``sys.stdout`` to its functions' log; rich's live display may wrap it), since the
    question goes to the terminal the command draws on."""
    return all(_is_terminal(stream) for stream in (sys.stdin, sys.__stdout__))


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and os.isatty(stream.fileno())
    except (AttributeError, ValueError, OSError):  # replaced, closed or fileless streams
        return False


@contextmanager
def signal_handlers(
    handler: Callable[[int, FrameType | None], Any], *signals: signal.Signals
) -> Iterator[None]:
    """``handler`` for ``signals`` for the duration, the previous handlers back after. Only
    the main thread may set one: elsewhere this does nothing. A signal the process was
    told to ignore stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals if not ignored(sig)}
    try:
        yield
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


def ignored(sig: signal.Signals) -> bool:
    """Whether ``sig`` is ignored (``SIG_IGN``), as a process started so inherits it."""
    return signal.getsignal(sig) is signal.SIG_IGN


class Interrupts:
    """``async with Interrupts() as interrupts:``, or ``with`` around a whole run (see the
    module doc); ``on_stop`` says what a first Ctrl+C outside the event loop does."""

    def __init__(self, on_stop: Callable[[], object] = lambda: None) -> None:
        self.event = asyncio.Event()
        self._on_stop = on_stop
        self._asking = False
        self._task: asyncio.Task[object] | None = None
        self._handlers = ExitStack()
        self._in_loop = False
        self._before_loop: Any = None

    def __enter__(self) -> Interrupts:
        self._handlers.enter_context(signal_handlers(self._outside_loop, signal.SIGINT))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._handlers.close()

    async def __aenter__(self) -> Interrupts:
        self._task = asyncio.current_task()
        if threading.current_thread() is threading.main_thread() and not ignored(signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows
                self._before_loop = signal.getsignal(signal.SIGINT)
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._on_interrupt)
                self._in_loop = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._in_loop:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
            # Give back whatever handled Ctrl+C before (asyncio would leave Python's default).
            if self._before_loop is not None:
                signal.signal(signal.SIGINT, self._before_loop)
            self._in_loop = False
        self._task = None

    def _outside_loop(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        self._on_stop()

    def _on_interrupt(self) -> None:
        if self._asking:
            self.abort()
        else:
            self.event.set()

    def abort(self) -> None:
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

    async def ask(self, question: str, stream: IO[str] | None = None) -> bool:
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

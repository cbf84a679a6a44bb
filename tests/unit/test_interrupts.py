"""Ctrl+C as the commands see it: a real SIGINT sent to this process, outside and inside
the event loop, and a process started with SIGINT ignored, which keeps ignoring it.

``os.kill`` runs the Python-level handler before it returns (CPython checks for signals
sent to its own process at once), so nothing here waits on time.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from prism_cli.interrupts import Interrupts, signal_handlers


def press_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored, as a shell script's background job or ``nohup``'s child starts."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGINT, previous)


def test_outside_the_loop_a_first_ctrl_c_asks_to_stop_and_a_second_aborts() -> None:
    before = signal.getsignal(signal.SIGINT)
    stops: list[str] = []
    with pytest.raises(KeyboardInterrupt), Interrupts(on_stop=lambda: stops.append("stop")) as i:
        press_ctrl_c()
        assert i.pending() and stops == ["stop"]
        press_ctrl_c()
    assert stops == ["stop"]
    assert signal.getsignal(signal.SIGINT) is before


def test_in_the_loop_ctrl_c_is_an_event_and_the_handler_before_comes_back() -> None:
    async def main() -> tuple[bool, object, object]:
        before = signal.getsignal(signal.SIGINT)
        async with Interrupts() as interrupts:
            press_ctrl_c()
            await asyncio.wait_for(interrupts.event.wait(), timeout=30)
            pressed = interrupts.pending()
        return pressed, before, signal.getsignal(signal.SIGINT)

    pressed, before, after = asyncio.run(main())
    assert pressed
    assert after is before


@pytest.mark.usefixtures("sigint_ignored")
def test_a_command_started_with_ctrl_c_ignored_keeps_ignoring_it() -> None:
    stops: list[str] = []
    with Interrupts(on_stop=lambda: stops.append("stop")) as interrupts:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        press_ctrl_c()  # discarded by the kernel: nothing can arrive later
        assert not interrupts.pending()

    async def in_the_loop() -> bool:
        async with Interrupts() as looped:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            press_ctrl_c()
            await asyncio.sleep(0)  # one turn of the loop, where a handled signal would land
            return looped.pending()

    assert asyncio.run(in_the_loop()) is False
    assert stops == []
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


@pytest.mark.usefixtures("sigint_ignored")
def test_the_local_servers_handlers_leave_an_ignored_sigint_alone() -> None:
    caught: list[int] = []
    before_term = signal.getsignal(signal.SIGTERM)
    with signal_handlers(
        lambda signum, frame: caught.append(signum), signal.SIGINT, signal.SIGTERM
    ):
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        press_ctrl_c()
        os.kill(os.getpid(), signal.SIGTERM)  # still the server's way to stop
    assert caught == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before_term

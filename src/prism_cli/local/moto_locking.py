"""The one way the local stack patches moto: once per process, and with each patched
backend operation made atomic by running under a lock (moto's server answers requests on
many threads; its backends assume one)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any


def under_lock(lock: threading.RLock, operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def run(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return operation(*args, **kwargs)

    return run


def lock_methods(cls: type, names: Iterable[str], lock: threading.RLock) -> None:
    """Replace each of ``cls``'s methods ``names`` (those it has) by a locked one."""
    for name in names:
        if hasattr(cls, name):
            setattr(cls, name, under_lock(lock, getattr(cls, name)))


def applied_once(lock: threading.RLock) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """A patch that is applied the first time it is called (under ``lock``), and then
    never again: calling it is idempotent."""

    def decorate(patch: Callable[[], None]) -> Callable[[], None]:
        applied = False

        @functools.wraps(patch)
        def apply() -> None:
            nonlocal applied
            with lock:
                if not applied:
                    patch()
                    applied = True

        return apply

    return decorate

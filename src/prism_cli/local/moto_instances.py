"""Stop moto from keeping every model object it ever made.

Every moto model (``BaseModel``) appends each new instance to its class's
``instances_tracked`` list, for the server's ``/moto-api/data.json`` dashboard and for S3's
reset, which disposes of every ``FakeKey`` ever made. Nothing ever takes them out: every
DynamoDB item, including the copies moto makes of each item a query returns or a write
replaces, every SQS message and the copy handed out on each receive, and every S3 object
with its data, deleted or not, stay in memory for the life of the process. A local run
then grows by some 100 KB per image, however little of it the stack still holds.

Here the lists hold weak references instead: what the backends still hold is tracked
(and listed, and disposed of on a reset) as before, and the rest is freed.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from prism_cli.local.moto_locking import applied_once

_lock = threading.RLock()


class WeakInstances:
    """The live objects of a class, in a list's clothes (``append``, iteration, ``len``).

    Objects that cannot be weakly referenced (``__slots__``) are kept as moto keeps them."""

    def __init__(self, instances: Iterable[Any] = ()) -> None:
        self._refs: dict[int, weakref.ref[Any]] = {}
        self._kept: list[Any] = []
        for instance in instances:
            self.append(instance)

    def append(self, instance: Any) -> None:
        key = id(instance)
        try:
            self._refs[key] = weakref.ref(instance, functools.partial(self._forget, key))
        except TypeError:
            self._kept.append(instance)

    def _forget(self, key: int, ref: weakref.ref[Any]) -> None:
        # Called as the object goes, before its id can be another object's.
        if self._refs.get(key) is ref:
            del self._refs[key]

    def __iter__(self) -> Iterator[Any]:
        live = [ref() for ref in list(self._refs.values())]
        return iter([instance for instance in live if instance is not None] + self._kept)

    def __len__(self) -> int:
        return len(self._refs) + len(self._kept)


@applied_once(_lock)
def track_weakly() -> None:
    """Patch this process's moto models (idempotent)."""
    from moto.core.common_models import BaseModel

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        instance: Any = object.__new__(cls)
        tracked = cls.instances_tracked  # type: ignore[attr-defined]
        if not isinstance(tracked, WeakInstances):
            # A class seen for the first time, or after moto's reset made a new list.
            tracked = WeakInstances(tracked)
            cls.instances_tracked = tracked  # type: ignore[attr-defined]
        tracked.append(instance)
        return instance

    BaseModel.__new__ = __new__  # type: ignore[method-assign]

"""The memory budget of the sources a worker decodes at once."""

from __future__ import annotations

import asyncio

from prism.budget import MemoryBudget


async def test_reservations_that_fit_together_run_together() -> None:
    budget = MemoryBudget(100)
    both_in = asyncio.Event()
    inside = 0

    async def source(amount: int) -> None:
        nonlocal inside
        async with budget.reserve(amount):
            inside += 1
            if inside == 2:
                both_in.set()
            await asyncio.wait_for(both_in.wait(), 5)

    await asyncio.gather(source(40), source(60))
    assert both_in.is_set()


async def test_a_reservation_waits_until_enough_is_given_back() -> None:
    budget = MemoryBudget(100)
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with budget.reserve(70):
            order.append("first in")
            first_in.set()
            await release_first.wait()
            order.append("first out")

    async def second() -> None:
        await first_in.wait()
        async with budget.reserve(70):
            order.append("second in")

    async def releaser() -> None:
        await first_in.wait()
        # Let the second reach its wait: it must not get in while the first holds 70.
        for _ in range(10):
            await asyncio.sleep(0)
        order.append("releasing")
        release_first.set()

    await asyncio.gather(first(), second(), releaser())
    assert order == ["first in", "releasing", "first out", "second in"]


async def test_a_source_larger_than_the_budget_runs_alone() -> None:
    budget = MemoryBudget(100)
    entered: list[int] = []

    async def source(amount: int) -> None:
        async with budget.reserve(amount):
            entered.append(amount)

    # Capped at the whole budget: it gets in once nothing else holds any, never waits forever.
    await asyncio.wait_for(asyncio.gather(source(10_000), source(30)), 5)
    assert sorted(entered) == [30, 10_000]

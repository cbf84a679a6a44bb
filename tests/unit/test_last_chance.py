import asyncio

import pytest

from prism.last_chance import LAST_CHANCE_ATTEMPTS, persistently


def test_a_step_that_fails_a_few_times_still_succeeds() -> None:
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("lost")
        return "recorded"

    assert asyncio.run(persistently(flaky)) == "recorded"
    assert len(attempts) == 3


def test_a_step_that_keeps_failing_raises_after_the_last_attempt() -> None:
    attempts: list[int] = []

    async def broken() -> None:
        attempts.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        asyncio.run(persistently(broken))
    assert len(attempts) == LAST_CHANCE_ATTEMPTS

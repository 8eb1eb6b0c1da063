"""``ivr.aio.wait_for``: a cancellation that arrives as the awaited future
finishes is kept (Python 3.11's ``asyncio.wait_for`` returns the result and
loses it; a background loop then never stops and hangs the shutdown)."""

from __future__ import annotations

import asyncio

import pytest

from ivr import aio


async def test_a_cancel_at_the_moment_the_future_finishes_is_not_lost() -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    outcome: list[str] = []

    async def waiter() -> None:
        outcome.append(await aio.wait_for(asyncio.shield(future), 10))
        await asyncio.sleep(3600)  # where a loop would go on waiting, forever

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # the waiter is waiting
    future.set_result("done")
    task.cancel()  # in the same iteration
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert outcome == []


async def test_it_times_out_like_wait_for() -> None:
    with pytest.raises(TimeoutError):
        await aio.wait_for(asyncio.sleep(10), 0.01)
    assert await aio.wait_for(asyncio.sleep(0, "x"), 1) == "x"
    assert await aio.wait_for(asyncio.sleep(0, "y"), None) == "y"

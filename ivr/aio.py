"""``wait_for`` that never loses a cancellation.

On Python 3.11 (Debian 12's), ``asyncio.wait_for`` returns the result when the
awaited future finishes in the same loop iteration as the task is cancelled,
and the cancellation is lost (CPython gh-86296; 3.12 rebuilt ``wait_for`` on
``asyncio.timeout``). A background loop that swallowed its cancel this way ran
on forever and hung the shutdown that was waiting for it. This is 3.12's
``wait_for``: same arguments, same ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:
    async with asyncio.timeout(timeout):
        return await awaitable

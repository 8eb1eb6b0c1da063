"""Small helpers shared by the integration tests."""

from __future__ import annotations

from typing import Any

from ivr.storage import settings_store


async def set_office_override(runtime: Any, mode: str) -> None:
    """Force office hours open or closed the way staff do: stored, so it holds
    beyond the override cache's few seconds whatever the clock says."""
    async with runtime.sessions.begin() as session:
        await settings_store.set_override(session, mode, by="tests")
    runtime.services.override.set(None if mode == "none" else mode)


async def calls_settled(runtime: Any, timeout: float = 60) -> None:
    """Wait until the server has finished every FastAGI session: a call's
    final save may still be running after the simulated Asterisk hung up."""
    import asyncio

    if runtime.agi.active:
        await asyncio.wait(set(runtime.agi.active), timeout=timeout)

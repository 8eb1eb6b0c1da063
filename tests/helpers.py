"""Small helpers shared by the integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ivr.config import Settings
from ivr.storage import settings_store


def server_settings(data_dir: Path, database_url: str, recordings_dir: Path) -> Settings:
    """Settings for a server under test: ephemeral ports, a short shutdown
    grace, one protocol-desk extension."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        recordings_dir=recordings_dir,
        agi_port=0,
        http_port=0,
        shutdown_grace_seconds=2,
        operator_dial=("Local/100@operator",),
    )


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

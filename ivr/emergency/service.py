"""The emergency parts ``ivr serve`` builds, starts and stops together.

``build_emergency`` makes them from the settings, the session factory and the
AMI client (``None`` when no AMI host is configured: calls are still routed,
alarms still raised, only callbacks wait). ``start`` loads the roster (from the
database, else from the local snapshot) and starts the cache refresher and the
callback loop; ``close`` stops them. Flows reach them as ``services.emergency``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.ami import AMIClient
from ivr.config import Settings
from ivr.emergency import document, store
from ivr.emergency.callbacks import DB_TIMEOUT, CallbackLoop, utcnow
from ivr.emergency.roster import Roster, RosterCache
from ivr.emergency.routing import EmergencyRouter
from ivr.records import STORAGE_ERRORS

SNAPSHOT_FILE = "roster-snapshot.json"


@dataclass
class EmergencyServices:
    roster: RosterCache
    router: EmergencyRouter
    callbacks: CallbackLoop

    async def start(self) -> None:
        await self.roster.start()
        await self.callbacks.start()

    async def close(self) -> None:
        await self.callbacks.close()
        await self.router.close()
        await self.roster.close()


def build_emergency(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    ami: AMIClient | None,
    *,
    clock: Callable[[], datetime] = utcnow,
    instance: str | None = None,
) -> EmergencyServices:
    async def load() -> Roster:
        async with asyncio.timeout(DB_TIMEOUT), sessions() as session:
            return await store.load_roster(session)

    async def probe() -> int:
        async with asyncio.timeout(DB_TIMEOUT), sessions() as session:
            return await store.roster_version(session)

    cache = RosterCache(
        load,
        probe,
        snapshot=settings.data_dir / SNAPSHOT_FILE,
        encode=document.encode_snapshot,
        decode=document.decode_snapshot,
        refresh_seconds=settings.roster_refresh_seconds,
        outage_errors=STORAGE_ERRORS,
    )
    router = EmergencyRouter(settings, cache)
    loop = CallbackLoop(settings, sessions, ami, lambda: router.plan_now(clock()), instance=instance, clock=clock)
    return EmergencyServices(cache, router, loop)

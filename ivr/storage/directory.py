"""The caller directory: who is calling, by normalized number."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.storage.models import Caller, CallerNumber, Office


@dataclass(frozen=True)
class DirectoryMatch:
    caller_id: int
    name: str
    office_id: int | None
    office_name: str | None


async def find_by_number(session: AsyncSession, e164: str) -> DirectoryMatch | None:
    row = (
        await session.execute(
            select(Caller.id, Caller.name, Caller.office_id, Office.name)
            .join(CallerNumber, CallerNumber.caller_id == Caller.id)
            .outerjoin(Office, Office.id == Caller.office_id)
            .where(CallerNumber.e164 == e164, Caller.active.is_(True))
        )
    ).first()
    if row is None:
        return None
    return DirectoryMatch(caller_id=row[0], name=row[1], office_id=row[2], office_name=row[3])


class DirectoryCache:
    """Caller lookups for the call path: answered from memory for ``ttl``
    seconds, so a burst of calls does not queue on the database, and the last
    answer still greets a known caller while the database is down."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl: float = 60.0, timeout: float = 3.0) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self.timeout = timeout
        self._entries: dict[str, tuple[float, DirectoryMatch | None]] = {}

    async def lookup(self, e164: str) -> DirectoryMatch | None:
        """Raises the storage error when the number is not cached and the
        database does not answer in time."""
        now = time.monotonic()
        cached = self._entries.get(e164)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            async with asyncio.timeout(self.timeout), self.sessions() as session:
                match = await find_by_number(session, e164)
        except Exception:
            if cached is not None:
                return cached[1]
            raise
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[e164] = (now, match)
        return match

    def forget(self) -> None:
        """Call after the directory changes (API, import)."""
        self._entries.clear()

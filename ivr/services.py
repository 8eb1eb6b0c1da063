"""What flows may use besides the ``Call``: configuration, the database, the
office calendar and the menus. Built once by the application; no globals."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.ami import AMIClient
from ivr.config import Settings
from ivr.eventbus import EventBus
from ivr.menus import Menu
from ivr.office_hours import OfficeCalendar, OfficeStatus
from ivr.records import STORAGE_ERRORS, Spool
from ivr.storage import settings_store
from ivr.storage.database import WholeWork
from ivr.storage.directory import DirectoryCache

if TYPE_CHECKING:
    from ivr.agenda import AgendaServices
    from ivr.alerts import AlertService
    from ivr.emergency.service import EmergencyServices

log = logging.getLogger("ivr.services")


@dataclass
class OverrideCache:
    """The office-hours override staff set in the web app. Read through a short
    cache so a call never waits on the database for it, and the last known value
    survives a database outage."""

    sessions: async_sessionmaker[AsyncSession]
    ttl: float = 5.0
    value: str | None = None
    _fetched: float = field(default=-1e9)

    async def get(self) -> str | None:
        if time.monotonic() - self._fetched < self.ttl:
            return self.value
        try:
            async with self.sessions() as session:
                self.value = await settings_store.get_override(session)
        except STORAGE_ERRORS as exc:
            log.warning("office override unavailable (%s); using last known", type(exc).__name__)
        self._fetched = time.monotonic()
        return self.value

    def set(self, value: str | None) -> None:
        self.value = value
        self._fetched = time.monotonic()


@dataclass
class Services:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    spool: Spool
    menus: dict[str, Menu]
    calendar: OfficeCalendar
    override: OverrideCache
    directory: DirectoryCache
    #: Reads a caller waits on (a ticket looked up by its number), each whole in one go.
    reads: WholeWork
    #: The Asterisk Manager connection; None when no AMI host is configured.
    ami: AMIClient | None = None
    agenda: AgendaServices | None = None
    alerts: AlertService | None = None
    emergency: EmergencyServices | None = None
    #: Calls starting and ending in this process, for the web app's live board.
    events: EventBus = field(default_factory=EventBus)

    async def office_status(self, at: datetime | None = None) -> OfficeStatus:
        return self.calendar.status(at or datetime.now(UTC), override=await self.override.get())

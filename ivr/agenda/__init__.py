"""The leaders' agenda (PRODUCT.md section 3, option 1 of the main menu).

- ``store``: the agenda in the database (repository functions, frozen views);
- ``speech``: the spoken Indonesian of an item and of a day;
- ``prerender``: keeps every read-back rendered before a caller asks;
- ``pins``: PIN access for officers calling from a number not in the directory;
- ``demo``: demo agenda for ``ivr seed --demo``.

The call flow is ``ivr.flows.agenda``; the API is ``ivr.web.agenda_api``.
``AgendaServices`` is what both reach through ``Services.agenda``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ivr.agenda.pins import PinChecker, PinPolicy
from ivr.agenda.prerender import AgendaPrerenderer, Speech
from ivr.agenda.store import DayKey

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from ivr.config import Settings

__all__ = ["AgendaConfig", "AgendaServices", "build_agenda_services"]


@dataclass(frozen=True)
class AgendaConfig:
    """Agenda settings. ``from_settings`` reads ``agenda_*`` fields of
    ``Settings`` when present (``IVR_AGENDA_PIN_LOCKOUT_MINUTES``, ...)."""

    pin_attempts: int = 3
    pin_lockout_minutes: float = 15.0
    pin_window_minutes: float = 30.0
    #: A burst of edits within this many milliseconds is rendered once.
    prerender_debounce_ms: float = 50.0
    prerender_sweep_minutes: float = 60.0
    #: How long a call waits for the database before reading the agenda as
    #: the prerenderer last composed it.
    db_timeout: float = 3.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AgendaConfig:
        defaults = cls()
        values = {
            name: getattr(settings, f"agenda_{name}", getattr(defaults, name)) for name in cls.__dataclass_fields__
        }
        return cls(**values)

    @property
    def pin_policy(self) -> PinPolicy:
        return PinPolicy(
            attempts=self.pin_attempts,
            lockout=dt.timedelta(minutes=self.pin_lockout_minutes),
            window=dt.timedelta(minutes=self.pin_window_minutes),
        )


@dataclass
class AgendaServices:
    sessions: async_sessionmaker[AsyncSession]
    prerenderer: AgendaPrerenderer
    pins: PinChecker
    zone: ZoneInfo
    config: AgendaConfig

    def today(self) -> dt.date:
        return self.prerenderer.today()

    async def start(self) -> None:
        await self.prerenderer.start()

    async def close(self) -> None:
        await self.prerenderer.close()

    def notify_days(self, days: Iterable[DayKey]) -> None:
        self.prerenderer.notify_days(days)

    def stats(self) -> dict[str, Any]:
        return self.prerenderer.stats()


def build_agenda_services(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    speech: Speech,
    *,
    config: AgendaConfig | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> AgendaServices:
    config = config or AgendaConfig.from_settings(settings)
    prerenderer = AgendaPrerenderer(
        sessions,
        speech,
        settings.zone,
        clock=clock,
        debounce=config.prerender_debounce_ms / 1000,
        sweep_interval=config.prerender_sweep_minutes * 60,
    )
    pins = PinChecker(sessions, config.pin_policy, clock=clock)
    return AgendaServices(sessions, prerenderer, pins, settings.zone, config)

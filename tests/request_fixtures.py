"""Fixtures for the requests, tracking and alert tests (issue 4).

A running ``ivr serve`` runtime (``conftest.runtime``) with the demo data, the
office open, and the flows of menu options 0, 2 and 3 in place. ``wire``
applies the wiring those flows need where the application does not provide
it yet (``actions.py`` entries, ``Services.alerts``, the ``alert`` script);
once the application does, it changes nothing.

Import what you use into the test module (``from request_fixtures import ...``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fake_ami import FakeAMI
from sqlalchemy import select

from ivr.alerts import AlertService
from ivr.config import Settings
from ivr.flows import FlowRegistry, alert, operator, submit, track
from ivr.seed import seed_demo
from ivr.simulator import CallRecord, place_call
from ivr.speech.audio import wav_info
from ivr.storage import models, settings_store
from ivr.storage.request_models import UrgentAlert

REGISTERED = "081234567890"  # Budi Santoso, Dinas Komunikasi dan Informatika (demo data)
SAME_OFFICE = "0286 591234"  # not in the demo data: an unknown landline
OTHER_OFFICE = "081298765432"  # Siti Aminah, Dinas Pendidikan dan Kebudayaan
DESK_NO_ANSWER = {"*": "NOANSWER"}
DIGIT_WORDS = ["nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan"]


@dataclass
class Stored:
    call: models.Call
    ticket: models.Ticket
    events: list[models.TicketEvent]
    recordings: list[models.Recording]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def data(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.kind == kind]


class Center:
    """The call center under test: place calls, read what was stored."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    @property
    def settings(self) -> Settings:
        settings: Settings = self.runtime.settings
        return settings

    def today(self) -> date:
        return datetime.now(self.settings.zone).date()

    async def call(self, *, keys: list[str], caller: str | None = REGISTERED, **options: Any) -> CallRecord:
        options.setdefault("dial_outcomes", DESK_NO_ANSWER)
        record = await place_call("127.0.0.1", self.runtime.agi.bound_port, caller_id=caller, keys=keys, **options)
        assert record.audio_problems == [], record.render()
        return record

    async def stored(self, uniqueid: str) -> Stored:
        async with self.runtime.sessions() as session:
            call = await session.scalar(select(models.Call).where(models.Call.uniqueid == uniqueid))
            assert call is not None, f"no record for call {uniqueid}"
            ticket = await session.get_one(models.Ticket, call.ticket_id)
            events = list(
                await session.scalars(
                    select(models.TicketEvent)
                    .where(models.TicketEvent.call_id == call.id)
                    .order_by(models.TicketEvent.seq)
                )
            )
            recordings = list(
                await session.scalars(
                    select(models.Recording).where(models.Recording.call_id == call.id).order_by(models.Recording.id)
                )
            )
        return Stored(call, ticket, events, recordings)

    async def ticket(self, number: str) -> tuple[models.Ticket, list[models.TicketEvent], list[models.Recording]]:
        async with self.runtime.sessions() as session:
            ticket = await session.scalar(select(models.Ticket).where(models.Ticket.number == number))
            assert ticket is not None
            events = list(
                await session.scalars(
                    select(models.TicketEvent)
                    .where(models.TicketEvent.ticket_id == ticket.id)
                    .order_by(models.TicketEvent.at, models.TicketEvent.id)
                )
            )
            recordings = list(
                await session.scalars(select(models.Recording).where(models.Recording.ticket_id == ticket.id))
            )
        return ticket, events, recordings

    async def alerts(self) -> list[UrgentAlert]:
        async with self.runtime.sessions() as session:
            return list(await session.scalars(select(UrgentAlert).order_by(UrgentAlert.id)))

    def assert_8khz_wav(self, relative: str) -> None:
        info = wav_info(self.settings.recordings_root / relative)
        assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)


def spoken_number(heard: list[str]) -> list[str]:
    """The digit words the caller heard, in order."""
    return [t for t in heard if t in DIGIT_WORDS]


def words(number: str) -> list[str]:
    return [DIGIT_WORDS[int(d)] for d in number]


def keyed(day: date) -> str:
    return day.strftime("%d%m%Y")


def recording_path_pattern(number: str, label: str) -> re.Pattern[str]:
    return re.compile(rf"tickets/\d{{4}}/\d{{2}}/\d{{2}}/{number}/\d{{2}}-{label}\.wav")


def in_days(center: Center, days: int) -> date:
    return center.today() + timedelta(days=days)


async def _operator_only(call: Any, services: Any) -> None:
    """A test script: straight to menu option 0 (its office-hours check included)."""
    await call.answer()
    await operator.menu_action(call, services)
    await call.hangup()


def wire(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.flows import main

    for action, flow in (
        ("submit", submit.menu_action),
        ("track", track.menu_action),
        ("operator", operator.menu_action),
    ):
        if main.ACTIONS.get(action) is not flow:
            monkeypatch.setitem(main.ACTIONS, action, flow)
    registry = FlowRegistry()
    registry.add("alert", alert.run)
    registry.add("operator_only", _operator_only)
    for name, handler in runtime.calls.routes(registry).items():
        if name not in runtime.agi.routes:
            monkeypatch.setitem(runtime.agi.routes, name, handler)


@contextlib.asynccontextmanager
async def alert_service(runtime: Any) -> AsyncIterator[AlertService]:
    """The runtime's alert service, or one started here until the application
    builds it (``Services.alerts``)."""
    existing = getattr(runtime.services, "alerts", None)
    if existing is not None:
        yield existing
        return
    service = AlertService(runtime.settings, runtime.sessions, runtime.services.ami)
    runtime.services.alerts = service
    await service.start()
    try:
        yield service
    finally:
        await service.close()
        del runtime.services.alerts


@contextlib.asynccontextmanager
async def open_center(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Center]:
    wire(runtime, monkeypatch)
    async with alert_service(runtime):
        await seed_demo(runtime.sessions, runtime.settings)
        # Open whatever the clock says, and for longer than the override cache lives.
        async with runtime.sessions.begin() as session:
            await settings_store.set_override(session, "open", "test")
        runtime.services.override.set("open")
        yield Center(runtime)


@pytest.fixture
async def center(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Center]:
    async with open_center(runtime, monkeypatch) as opened:
        yield opened


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAMI]:
    async with FakeAMI(auth_fail_delay=0.05) as server:
        yield server


@pytest.fixture
def ami_settings(settings: Settings, fake_ami: FakeAMI) -> Settings:
    return settings.model_copy(
        update={
            "ami_host": fake_ami.host,
            "ami_port": fake_ami.port,
            "ami_username": fake_ami.username,
            "ami_secret": type(settings.ami_secret)(fake_ami.secret),
            "alert_poll_seconds": 0.2,
            "alert_retry_seconds": 1.0,
        }
    )


@pytest.fixture
async def ami_center(ami_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Center]:
    """The call center with AMI to the fake Asterisk Manager (alerts every 0.2 s)."""
    from ivr.app import running

    async with running(ami_settings, migrate=False) as runtime, open_center(runtime, monkeypatch) as opened:
        yield opened

"""Fixtures for the web app and the caller directory tests.

The database is the per-test throwaway one from ``conftest.py`` (``settings``
points at it: a migrated SQLite copy, or a fresh PostgreSQL database when
``IVR_TEST_DATABASE_URL`` is set). Around it, a runtime with everything the
web app reads: real ``Services`` (calendar, override cache, spool) and small
fakes for the TTS health and the calls in progress, since the web app only
asks them for a status and a count.

Import the fixtures you use into the test module (``from web_fixtures
import ...``); pytest then finds them there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.config import Settings
from ivr.office_hours import OfficeCalendar
from ivr.records import CallStore, Spool
from ivr.services import OverrideCache, Services
from ivr.storage.calls import CallSnapshot, EventFacts, RecordingFacts, SavedCall, save_call
from ivr.storage.database import WholeWork, create_engine, session_factory
from ivr.storage.directory import DirectoryCache
from ivr.storage.tokens import ROLES, create_token
from ivr.web.app import create_web_app


@dataclass
class FakeSpeech:
    status: str = "ok"

    def health(self) -> dict[str, Any]:
        return {"status": self.status, "workers": 1, "cache_hits": 0}


@dataclass
class FakeCalls:
    active: dict[str, object] = field(default_factory=dict)


@dataclass
class TestRuntime:
    """The part of ``ivr.app.Runtime`` the web app uses (``ivr.web.WebRuntime``)."""

    __test__ = False

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    speech: FakeSpeech
    services: Services
    calls: FakeCalls


def build_runtime(settings: Settings, engine: AsyncEngine) -> TestRuntime:
    sessions = session_factory(engine)
    services = Services(
        settings=settings,
        sessions=sessions,
        spool=Spool(settings.data_dir / "spool", CallStore(sessions, batch_writes=True)),
        directory=DirectoryCache(sessions),
        reads=WholeWork(sessions, threads=1, name="test-reads"),
        menus={},
        calendar=OfficeCalendar(settings.office_hours, settings.zone),
        override=OverrideCache(sessions),
    )
    return TestRuntime(settings, engine, sessions, FakeSpeech(), services, FakeCalls())


@pytest.fixture
async def web_runtime(settings: Settings) -> AsyncIterator[TestRuntime]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.effective_database_url)
    runtime = build_runtime(settings, engine)
    try:
        yield runtime
    finally:
        await runtime.services.spool.store.close()
        runtime.services.reads.close()
        await engine.dispose()


@pytest.fixture
async def api(aiohttp_client: Any, web_runtime: TestRuntime) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(create_web_app(web_runtime))
    return client


@pytest.fixture
async def tokens(web_runtime: TestRuntime) -> dict[str, str]:
    """One token per role, labelled ``test-<role>``."""
    async with web_runtime.sessions.begin() as session:
        return {role: await create_token(session, role, f"test-{role}") for role in ROLES}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def store_call(
    sessions: async_sessionmaker[AsyncSession],
    uniqueid: str,
    started_at: datetime,
    *,
    caller_number: str = "081234567890",
    caller_e164: str | None = "+6281234567890",
    caller_id: int | None = None,
    office_id: int | None = None,
    events: list[tuple[datetime, str, dict[str, Any]]] = (),  # type: ignore[assignment]
    recordings: list[tuple[str, str, float, datetime]] = (),  # type: ignore[assignment]
    ended_at: datetime | None = None,
    outcome: str = "completed",
    ticket_kind: str = "info",
    ticket_status: str = "open",
) -> SavedCall:
    """A call as the IVR writes it (through ``save_call``)."""
    snapshot = CallSnapshot(
        uniqueid=uniqueid,
        channel="PJSIP/trunk-00000001",
        script="main",
        started_at=started_at,
        linkedid=uniqueid,
        caller_number=caller_number,
        caller_e164=caller_e164,
        caller_id=caller_id,
        office_id=office_id,
        dialed_number="1500123",
        ended_at=ended_at,
        outcome=outcome,
        ticket_kind=ticket_kind,
        ticket_status=ticket_status,
        events=[EventFacts(seq, at, kind, data) for seq, (at, kind, data) in enumerate(events)],
        recordings=[RecordingFacts(kind, path, seconds, at) for kind, path, seconds, at in recordings],
    )
    async with sessions.begin() as session:
        return await session.run_sync(lambda sync_session: save_call(sync_session.connection(), snapshot))

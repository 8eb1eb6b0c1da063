"""Ticket numbers under concurrency: 200 submissions at once get 200 distinct,
valid numbers, on SQLite and on PostgreSQL (``IVR_TEST_DATABASE_URL``).

Numbers come from the database's own id (``ivr.ticket_number.number_for_id``),
so uniqueness rests on the primary key, never on process memory: two ``ivr
serve`` processes on one PostgreSQL database cannot hand out the same number.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers import calls_settled
from request_fixtures import Center, center, in_days
from sqlalchemy import delete, func, select

from ivr import ticket_number
from ivr.records import CallStore
from ivr.storage import models
from ivr.storage.calls import CallSnapshot, SavedCall
from ivr.storage.database import create_engine, session_factory

__all__ = ["center"]  # fixtures used by name

SUBMISSIONS = 200


def _snapshot(index: int) -> CallSnapshot:
    return CallSnapshot(
        uniqueid=f"1796400000.{index}",
        channel=f"PJSIP/trunk-{index:08x}",
        script="main",
        started_at=datetime.now(UTC),
        caller_number="081234567890",
        caller_e164="+6281234567890",
        ticket_kind="request",
        ticket_details={"activity_date": "2026-12-24", "start_time": "09:00"},
    )


async def _all_at_once(store: CallStore, count: int) -> list[SavedCall]:
    go = asyncio.Event()

    async def one(index: int) -> SavedCall:
        await go.wait()
        return await store.save(_snapshot(index))

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    go.set()
    async with asyncio.timeout(60):
        return await asyncio.gather(*tasks)


async def test_200_simultaneous_ticket_creations_get_200_distinct_valid_numbers(database_url: str):
    engine = create_engine(database_url)
    try:
        # As ``ivr serve`` builds it: SQLite writes queue in process, PostgreSQL ones run at once.
        store = CallStore(session_factory(engine), batch_writes=database_url.startswith("sqlite"))
        saved = await _all_at_once(store, SUBMISSIONS)
        numbers = [s.ticket_number for s in saved]
        assert len(set(numbers)) == SUBMISSIONS
        assert all(ticket_number.is_valid(n) for n in numbers)
        assert all(ticket_number.id_for_number(s.ticket_number) == s.ticket_id for s in saved)
        async with session_factory(engine)() as session:
            stored = list(await session.scalars(select(models.Ticket.number)))
        assert sorted(stored) == sorted(numbers)
    finally:
        await engine.dispose()


async def test_a_number_is_never_issued_twice_even_after_a_ticket_is_deleted(database_url: str):
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        store = CallStore(sessions, batch_writes=True)
        first = await store.save(_snapshot(1))
        newest = await store.save(_snapshot(2))
        async with sessions.begin() as session:
            await session.execute(delete(models.Call).where(models.Call.ticket_id == newest.ticket_id))
            await session.execute(delete(models.Ticket).where(models.Ticket.id == newest.ticket_id))
        later = await store.save(_snapshot(3))
        assert later.ticket_number not in (first.ticket_number, newest.ticket_number)
    finally:
        await engine.dispose()


async def test_200_simultaneous_phone_submissions(center: Center, tmp_path: Path):
    """The whole path: 200 callers submit at the same moment over FastAGI."""
    day = in_days(center, 30).strftime("%d%m")
    keys = ["2", "2", day + "#", "0900", "1", "rec:1.5", "1", ""]

    async def one() -> Any:
        return await center.call(keys=keys, timeout=120)

    async with asyncio.timeout(120):
        records = await asyncio.gather(*(one() for _ in range(SUBMISSIONS)))
    await calls_settled(center.runtime)
    async with center.runtime.sessions() as session:
        rows = (
            await session.execute(
                select(models.Call.uniqueid, models.Ticket.number, models.Ticket.kind, models.Ticket.details)
                .join(models.Ticket, models.Ticket.id == models.Call.ticket_id)
                .where(models.Call.uniqueid.in_([r.uniqueid for r in records]))
            )
        ).all()
        recordings = await session.scalar(select(func.count()).select_from(models.Recording))
    assert len(rows) == SUBMISSIONS
    numbers = {number for _, number, _, _ in rows}
    assert len(numbers) == SUBMISSIONS and all(ticket_number.is_valid(n) for n in numbers)
    assert {kind for _, _, kind, _ in rows} == {"notification"}
    assert all(details["start_time"] == "09:00" for *_, details in rows)
    assert recordings == SUBMISSIONS
    # Each caller who heard a number heard their own. When 200 saves arrive at
    # once a save may take longer than a caller is kept waiting (CALLER_WAIT):
    # that caller hears the confirmation without a number (how many depends on
    # the machine's load), and nobody ever hears someone else's.
    heard = {r.uniqueid: "".join(str(DIGITS.index(t)) for t in r.spoken if t in DIGITS)[:8] for r in records}
    assert all(heard[uniqueid] in (number, "") for uniqueid, number, *_ in rows)
    assert any(heard.values())


DIGITS = ["nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan"]

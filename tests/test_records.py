"""Call records: idempotent saving, and the spool that keeps records through a
database outage."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from ivr import ticket_number
from ivr.records import CallRecorder, CallStore, Spool
from ivr.storage import models
from ivr.storage.calls import CallSnapshot, EventFacts
from ivr.storage.database import companion_engines, create_engine, session_factory


def _snapshot(uniqueid: str = "1796312708.17") -> CallSnapshot:
    return CallSnapshot(
        uniqueid=uniqueid,
        channel="Local/main@ivr-in-00000008;2",
        script="main",
        started_at=datetime(2026, 12, 3, 8, 0, tzinfo=UTC),
        caller_number="081234567890",
        caller_e164="+6281234567890",
    )


async def test_saving_twice_creates_nothing_twice(database_url: str, tmp_path: Path):
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    recorder = CallRecorder(_snapshot(), Spool(tmp_path / "spool", CallStore(sessions, batch_writes=True)))
    recorder.add("prompt", prompt="menu.main", text="Untuk ...")
    assert await recorder.checkpoint()
    first_number = recorder.ticket_number
    recorder.add("dtmf", digits="0")
    await recorder.finish("completed")
    await recorder.finish("completed")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(models.Call)) == 1
        assert await session.scalar(select(func.count()).select_from(models.Ticket)) == 1
        kinds = list(await session.scalars(select(models.TicketEvent.kind).order_by(models.TicketEvent.seq)))
        ticket = await session.scalar(select(models.Ticket))
    assert kinds == ["prompt", "dtmf"]
    assert ticket.number == first_number and ticket_number.is_valid(first_number)
    assert ticket.status == "closed"  # an info-only call closes itself
    await engine.dispose()


async def test_database_down_spools_and_replays(database_url: str, tmp_path: Path):
    dead = create_engine("sqlite+aiosqlite:////nonexistent-dir/ivr.sqlite3")
    spool_dir = tmp_path / "spool"
    dead_store = CallStore(session_factory(dead), batch_writes=False)
    recorder = CallRecorder(_snapshot("42.1"), Spool(spool_dir, dead_store))
    assert not await recorder.checkpoint()
    recorder.add("prompt", prompt="goodbye", text="Terima kasih")
    recorder.snapshot.started_at = datetime.now(UTC) - timedelta(seconds=30)
    await recorder.finish("abandoned", "menu:main")
    assert [p.name for p in spool_dir.iterdir()] == ["42.1.json"]
    await dead.dispose()

    engine = create_engine(database_url)
    spool = Spool(spool_dir, CallStore(session_factory(engine), batch_writes=False))
    assert await spool.replay_once() == 1
    assert await spool.replay_once() == 0
    async with session_factory(engine)() as session:
        call = await session.scalar(select(models.Call))
        events = list(await session.scalars(select(models.TicketEvent)))
    assert call.outcome == "abandoned" and call.outcome_step == "menu:main"
    assert round(call.duration_seconds) == 30
    assert [e.kind for e in events] == ["prompt"]
    assert spool.backlog() == 0
    await engine.dispose()


async def test_two_calls_with_the_same_uniqueid_are_never_merged(database_url: str, tmp_path: Path):
    engine = create_engine(database_url)
    store = CallStore(session_factory(engine), batch_writes=False)
    first, second = _snapshot("1796321766.1"), _snapshot("1796321766.1")
    second.channel = "Local/main@ivr-in-00000009;2"
    second.started_at = first.started_at + timedelta(milliseconds=3)
    saved_first, saved_second = await store.save(first), await store.save(second)
    assert saved_first.call_id != saved_second.call_id
    assert saved_first.ticket_number != saved_second.ticket_number
    assert second.uniqueid.startswith("1796321766.1-")
    await store.save(first)  # the first call's own later save still finds it
    async with session_factory(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(models.Call)) == 2
    await engine.dispose()


async def test_a_save_writes_only_what_changed_since_the_last(database_url: str, tmp_path: Path):
    engine = create_engine(database_url)
    store = CallStore(session_factory(engine), batch_writes=True)
    written: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if statement.split()[0] in ("INSERT", "UPDATE"):
            written.append(" ".join(statement.split()[:3]))

    engines = [engine.sync_engine, *companion_engines(engine)]
    for each in engines:
        event.listen(each, "before_cursor_execute", seen)
    snapshot = _snapshot()
    snapshot.events.append(EventFacts(0, snapshot.started_at, "prompt", {"prompt": "menu.main"}))
    saved = await store.save(snapshot)
    written.clear()
    saved = await store.save(snapshot, saved)
    assert written == []  # nothing new: nothing written
    snapshot.events.append(EventFacts(1, snapshot.started_at, "dtmf", {"digits": "2"}))
    saved = await store.save(snapshot, saved)
    assert written == ["INSERT INTO ticket_events"]
    written.clear()
    snapshot.ticket_details["activity"] = "rapat"
    snapshot.outcome = "completed"
    await store.save(snapshot, saved)
    assert written == ["UPDATE calls SET", "UPDATE tickets SET"]
    async with session_factory(engine)() as session:
        ticket = await session.scalar(select(models.Ticket))
        steps = await session.scalar(select(func.count()).select_from(models.TicketEvent))
    assert ticket.details == {"activity": "rapat"} and steps == 2
    for each in engines:
        event.remove(each, "before_cursor_execute", seen)
    await store.close()
    await engine.dispose()


class _WrittenButTimedOut:
    """A store whose second save is written but reported as timed out (the
    waiter gave up while the database was still committing)."""

    def __init__(self, store: CallStore) -> None:
        self.store = store
        self.saves = 0

    async def save(self, snapshot: CallSnapshot, known: Any = None) -> Any:
        self.saves += 1
        saved = await self.store.save(snapshot, known)
        if self.saves == 2:
            raise TimeoutError
        return saved


async def test_a_save_given_up_on_but_written_is_not_written_twice(database_url: str, tmp_path: Path):
    engine = create_engine(database_url)
    spool = Spool(tmp_path / "spool", CallStore(session_factory(engine), batch_writes=True))
    spool.store = _WrittenButTimedOut(spool.store)  # type: ignore[assignment]
    recorder = CallRecorder(_snapshot(), spool)
    recorder.add("prompt", prompt="menu.main", text="Untuk ...")
    assert await recorder.checkpoint()
    recorder.add("dtmf", digits="2")
    assert not await recorder.checkpoint()  # written, but the caller was told it failed
    recorder.add("prompt", prompt="goodbye", text="Terima kasih")
    await recorder.finish("completed")
    async with session_factory(engine)() as session:
        kinds = list(await session.scalars(select(models.TicketEvent.kind).order_by(models.TicketEvent.seq)))
    assert kinds == ["prompt", "dtmf", "prompt"]
    assert not list((tmp_path / "spool").glob("*.json"))
    await engine.dispose()

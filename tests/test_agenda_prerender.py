"""The agenda's background pieces against a real database: the prerenderer
(debounce, coalescing, retries, the sweep, the last-known read-back), the PIN
check and its lockout, and the demo agenda."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr import callerid
from ivr.agenda import store
from ivr.agenda.demo import seed_demo_agenda
from ivr.agenda.pins import PinChecker, PinPolicy, caller_key
from ivr.agenda.prerender import AgendaPrerenderer
from ivr.agenda.speech import day_readback, leader_menu_text
from ivr.speech.normalize import normalize
from ivr.speech.tts import SpeechUnavailable
from ivr.storage.agenda_models import PinLockout
from ivr.storage.database import create_engine, session_factory
from ivr.storage.models import Caller, CallerNumber, Leader

WIB = ZoneInfo("Asia/Jakarta")
NOW = dt.datetime(2025, 12, 15, 10, 0, tzinfo=WIB)
TODAY = NOW.date()
T = dt.time
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class FakeSpeech:
    """The TTS engine's two calls the prerenderer uses; ``fail`` breaks it."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}
        self.rendered: list[str] = []
        self.fail = False

    def cached(self, text: str) -> Path | None:
        return self.files.get(normalize(text))

    async def render(self, text: str, timeout: float | None = None) -> Path:
        await asyncio.sleep(0)
        if self.fail:
            raise SpeechUnavailable("TTS down (test)")
        self.rendered.append(text)
        path = self.files[normalize(text)] = Path(f"/cache/{len(self.files)}.wav")
        return path


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def leader_ids(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sessions.begin() as session:
        titles = [("Bupati", "1"), ("Wakil Bupati", "2"), ("Sekretaris Daerah", "3")]
        rows = [Leader(title=t, name=t, menu_key=k, position=i) for i, (t, k) in enumerate(titles)]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


@pytest.fixture
async def renderer(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[AgendaPrerenderer, FakeSpeech]]:
    speech = FakeSpeech()
    prerenderer = AgendaPrerenderer(sessions, speech, WIB, clock=lambda: NOW, debounce=0.02, retry_after=0.05)
    yield prerenderer, speech
    await prerenderer.close()


async def _idle(prerenderer: AgendaPrerenderer) -> None:
    await asyncio.wait_for(prerenderer.wait_idle(), 10)


async def _create(sessions: async_sessionmaker[AsyncSession], item: store.ItemView) -> store.ItemView:
    async with sessions.begin() as session:
        return await store.create_item(session, item, by="test")


async def _texts(sessions: async_sessionmaker[AsyncSession], leader_id: int, day: dt.date) -> tuple[str, ...]:
    async with sessions() as session:
        return day_readback(await store.load_day(session, leader_id, day)).texts


# -- the prerenderer ----------------------------------------------------------------------


async def test_startup_sweep_renders_the_menu_and_three_days_per_leader(
    renderer: tuple[AgendaPrerenderer, FakeSpeech], leader_ids: list[int], sessions: Any
) -> None:
    prerenderer, speech = renderer
    await prerenderer.start()
    await _idle(prerenderer)
    assert speech.cached(leader_menu_text(prerenderer.leaders)) is not None
    for leader_id in leader_ids:
        for ahead in (0, 1, 2):
            day = TODAY + dt.timedelta(days=ahead)
            texts = await _texts(sessions, leader_id, day)
            assert all(speech.cached(text) for text in texts)
            assert prerenderer.last_known(leader_id, day) is not None
    stats = prerenderer.stats()
    assert stats["status"] == "ok" and stats["sweeps"] == 1 and stats["readbacks_rendered"] == 9
    assert stats["texts_synthesized"] == 10  # nine empty days and the menu


async def test_a_burst_of_changes_is_rendered_once(
    renderer: tuple[AgendaPrerenderer, FakeSpeech], leader_ids: list[int], sessions: Any
) -> None:
    prerenderer, speech = renderer
    await prerenderer.start()
    await _idle(prerenderer)
    speech.rendered.clear()
    bupati = leader_ids[0]
    item = await _create(sessions, store.new_item(bupati, TODAY, T(9, 0), "Rapat", place="Pendopo"))
    async with sessions.begin() as session:
        await store.update_item(session, item.id, {"status": "berlangsung"}, by="test")
    # Notifications within the debounce time (20 ms here), with the event loop
    # running in between, make one batch.
    for _ in range(5):
        prerenderer.notify(item.id)
        prerenderer.notify(leader_id=bupati, day=TODAY)
        await asyncio.sleep(0.001)
    await _idle(prerenderer)
    texts = await _texts(sessions, bupati, TODAY)
    # One batch: the final intro and item, nothing in between.
    assert sorted(speech.rendered) == sorted(texts)
    assert prerenderer.stats()["change_to_cached_p50_ms"] is not None


async def test_an_item_notifies_its_moved_to_and_overnight_days(
    renderer: tuple[AgendaPrerenderer, FakeSpeech], leader_ids: list[int], sessions: Any
) -> None:
    prerenderer, speech = renderer
    await prerenderer.start()
    await _idle(prerenderer)
    bupati = leader_ids[0]
    far = TODAY + dt.timedelta(days=10)
    item = await _create(
        sessions,
        store.new_item(
            bupati,
            far,
            T(21, 0),
            "Malam Budaya",
            end=T(1, 0),
            status="dipindahkan",
            new_date=far + dt.timedelta(days=5),
            new_start=T(20, 0),
        ),
    )
    assert store.affected_days(item) == {
        (bupati, far),
        (bupati, far + dt.timedelta(days=1)),
        (bupati, far + dt.timedelta(days=5)),
    }
    prerenderer.notify(item.id)
    await _idle(prerenderer)
    for day in sorted(day for _, day in store.affected_days(item)):
        texts = await _texts(sessions, bupati, day)
        assert len(texts) == 2 and all(speech.cached(text) for text in texts), day


async def test_a_failed_render_is_retried(leader_ids: list[int], sessions: Any) -> None:
    speech = FakeSpeech()
    speech.fail = True
    prerenderer = AgendaPrerenderer(sessions, speech, WIB, clock=lambda: NOW, debounce=0.01, retry_after=0.5)
    await prerenderer.start()
    await _idle(prerenderer)  # failed work waiting for its retry is not "busy"
    assert prerenderer.stats()["status"] == "degraded"
    assert prerenderer.stats()["failures"] >= 1
    speech.fail = False
    for _ in range(500):  # the retry comes by itself after retry_after
        if prerenderer.stats()["status"] == "ok":
            break
        await asyncio.sleep(0.02)
    assert prerenderer.stats()["status"] == "ok"
    texts = await _texts(sessions, leader_ids[0], TODAY)
    assert all(speech.cached(text) for text in texts)
    await prerenderer.close()


async def test_database_outage_keeps_the_last_known_readback(leader_ids: list[int], sessions: Any) -> None:
    speech = FakeSpeech()
    prerenderer = AgendaPrerenderer(sessions, speech, WIB, clock=lambda: NOW, debounce=0.01, retry_after=0.05)
    await _create(sessions, store.new_item(leader_ids[0], TODAY, T(9, 0), "Rapat Staf"))
    await prerenderer.start()
    await _idle(prerenderer)
    known = prerenderer.last_known(leader_ids[0], TODAY)
    assert known is not None and len(known.items) == 1

    class Down:
        def __call__(self) -> Any:
            raise OperationalError("SELECT 1", {}, Exception("database is down"))

    prerenderer.sessions = Down()  # type: ignore[assignment]
    prerenderer.notify(leader_id=leader_ids[0], day=TODAY)
    await _idle(prerenderer)
    assert prerenderer.stats()["status"] == "degraded"
    assert prerenderer.last_known(leader_ids[0], TODAY) == known
    await prerenderer.close()
    assert prerenderer.stats()["status"] == "down"


# -- the flow's fallback when the database is down --------------------------------------


async def test_flow_reads_the_last_known_agenda_when_the_database_is_down(leader_ids: list[int], sessions: Any) -> None:
    from ivr.agenda import AgendaConfig, AgendaServices
    from ivr.flows.agenda import _readback

    speech = FakeSpeech()
    prerenderer = AgendaPrerenderer(sessions, speech, WIB, clock=lambda: NOW, debounce=0.01)
    await _create(sessions, store.new_item(leader_ids[0], TODAY, T(9, 0), "Rapat Staf"))
    await prerenderer.start()
    await _idle(prerenderer)
    await prerenderer.close()

    def down() -> Any:
        raise OperationalError("SELECT 1", {}, Exception("database is down"))

    services = AgendaServices(down, prerenderer, PinChecker(down), WIB, AgendaConfig())  # type: ignore[arg-type]
    leader = prerenderer.leaders[0]
    readback = await _readback(services, leader, TODAY)
    assert readback == prerenderer.last_known(leader.id, TODAY) and readback is not None
    assert await _readback(services, leader, TODAY + dt.timedelta(days=30)) is None  # never composed


# -- PINs ---------------------------------------------------------------------------------


@pytest.fixture
async def officer(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions.begin() as session:
        caller = Caller(name="Siti Aminah", role="Sekretaris Dinas", pin_hash=FAST_HASHER.hash("2580"))
        caller.numbers = [CallerNumber(raw="081298765432", e164="+6281298765432")]
        session.add(caller)
        await session.flush()
        return caller.id


class Clock:
    def __init__(self) -> None:
        self.now = NOW.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def test_pin_ok_wrong_and_lockout(sessions: Any, officer: int) -> None:
    clock = Clock()
    checker = PinChecker(sessions, PinPolicy(attempts=3, lockout=dt.timedelta(minutes=10)), clock=clock)
    key = "+6281311112222"

    ok = await checker.check(key, "0812-9876-5432", "2580")
    assert ok.ok and ok.caller_id == officer and ok.outcome == "ok"

    outcomes = [(await checker.check(key, "081298765432", pin)).outcome for pin in ("1111", "2222", "3333")]
    assert outcomes == ["wrong", "wrong", "locked"]
    # Locked: even the right PIN is not checked.
    assert (await checker.check(key, "081298765432", "2580")).outcome == "locked"
    assert await checker.locked_until(key) == clock.now + dt.timedelta(minutes=10)
    assert await checker.locked_until("+6281399990000") is None  # another number is not affected

    clock.now += dt.timedelta(minutes=10, seconds=1)
    assert await checker.locked_until(key) is None
    assert (await checker.check(key, "081298765432", "2580")).ok


async def test_failures_add_up_across_calls_within_the_window(sessions: Any, officer: int) -> None:
    clock = Clock()
    checker = PinChecker(sessions, PinPolicy(attempts=3, window=dt.timedelta(minutes=30)), clock=clock)
    key = "withheld"
    assert (await checker.check(key, "081298765432", "0000")).failures == 1
    assert (await checker.check(key, "081298765432", "0001")).failures == 2
    clock.now += dt.timedelta(minutes=31)  # the window passed: counting starts again
    result = await checker.check(key, "081298765432", "0002")
    assert result.failures == 1 and not result.locked
    # A success clears the count.
    assert (await checker.check(key, "081298765432", "2580")).ok
    async with sessions() as session:
        row = await session.scalar(select(PinLockout).where(PinLockout.caller_key == key))
    assert row.failures == 0 and row.locked_until is None


async def test_unknown_numbers_and_malformed_pins_fail_like_wrong_pins(sessions: Any, officer: int) -> None:
    checker = PinChecker(sessions, PinPolicy(attempts=10), hasher=FAST_HASHER)
    for number, pin in (
        ("089900000000", "2580"),
        ("", "2580"),
        ("12", "2580"),
        ("081298765432", ""),
        ("081298765432", "25a0"),
        ("081298765432", "2580" * 10),
    ):
        assert (await checker.check("+6281311112222", number, pin)).outcome == "wrong", (number, pin)


async def test_a_good_pin_with_weak_parameters_is_rehashed(sessions: Any, officer: int) -> None:
    checker = PinChecker(sessions)  # the directory's argon2 parameters
    assert (await checker.check("+6281311112222", "081298765432", "2580")).ok
    async with sessions() as session:
        new_hash = await session.scalar(select(Caller.pin_hash).where(Caller.id == officer))
    assert new_hash != FAST_HASHER.hash("2580") and not checker.hasher.check_needs_rehash(new_hash)
    assert (await checker.check("+6281311112222", "081298765432", "2580")).ok


def test_caller_keys() -> None:
    assert caller_key(callerid.normalize("0812-1111-2222")) == "+6281211112222"
    assert caller_key(callerid.normalize("anonymous")) == "withheld"
    assert caller_key(callerid.normalize("unknown")) == "unknown"


# -- the demo agenda ----------------------------------------------------------------------


async def test_demo_agenda_is_realistic_and_idempotent(sessions: Any, leader_ids: list[int]) -> None:
    async with sessions.begin() as session:
        added = await seed_demo_agenda(session, TODAY)
    async with sessions.begin() as session:
        assert await seed_demo_agenda(session, TODAY) == 0
    assert added >= 12
    statuses = set()
    for leader_id in leader_ids:
        for day in (TODAY, TODAY + dt.timedelta(days=1)):
            async with sessions() as session:
                agenda = await store.load_day(session, leader_id, day)
            assert agenda.items, (leader_id, day)
            statuses.update(item.status for item in agenda.items)
            for text in day_readback(agenda).texts:
                assert text and len(text) < 600 and normalize(text) == text
    assert statuses >= {"terjadwal", "berlangsung", "selesai", "ditunda", "dibatalkan", "dipindahkan", "diwakilkan"}

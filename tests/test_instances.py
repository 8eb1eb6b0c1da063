"""Several ``ivr serve`` instances on one PostgreSQL database (README, "Running
in production"): two real runtimes (``ivr.app.running``) in this process, each
with its own engine and connection pool, its own data folder (spool, journal,
roster snapshot) and its own AMI connection, sharing the database and the
recordings folder as instances behind ``hagi://`` or a TCP balancer do.

What must happen once, happens once:

* migrations: instances started together take turns;
* ticket numbers: distinct under 500 concurrent creations split over both;
* callbacks: each placed once while both run the callback loop
  (``test_callbacks.py::test_two_server_instances_on_one_database_place_each_callback_once``);
* a killed instance's callback work is taken over by the other, and never
  done twice, within the lease it held;
* a background re-render (agenda read-back, greeting) is synthesized by one
  instance; the others find it in the shared, content-addressed TTS cache.

PostgreSQL only: SQLite is the embedded single-instance database.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from subprocess import PIPE, STDOUT
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from fake_ami import FakeAMI
from screening import OfficerPhones, database_down, emergency_desk, until_ticked
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError
from test_callbacks import agi, desk, draft, fake, jobs_of, settings
from web_fixtures import bearer

from ivr import ticket_number
from ivr.agenda import store as agenda_store
from ivr.agenda.speech import day_readback
from ivr.app import prerender_greetings, running
from ivr.config import Settings
from ivr.emergency.callbacks import CLAIM_LEASE, CallbackLoop, utcnow
from ivr.flows.main import greeting_text
from ivr.storage import migrations, models
from ivr.storage.calls import CallSnapshot
from ivr.storage.database import create_engine, session_factory
from ivr.storage.roster_models import EmergencyAlarm, EmergencyCallback
from ivr.storage.tokens import create_token
from ivr.web.app import create_web_app

__all__ = ["desk", "fake", "settings"]  # fixtures used by name

POSTGRES_URL = os.environ.get("IVR_TEST_DATABASE_URL", "")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not POSTGRES_URL,
        reason="several instances share one PostgreSQL database (IVR_TEST_DATABASE_URL); SQLite serves one instance",
    ),
]

CREATIONS = 500


@pytest.fixture
async def second(runtime: Any, settings: Settings, tmp_path: Path) -> Any:
    """Another instance on the same database and recordings, with its own data folder."""
    async with running(settings.model_copy(update={"data_dir": tmp_path / "second"}), migrate=False) as other:
        yield other


class Reader:
    """The test's own connection pool: a killed instance's pool refuses everything."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.sessions = session_factory(self.engine)

    async def alarm_is(self, alarm_id: int, state: str) -> bool:
        async with self.sessions() as session:
            return await session.scalar(select(EmergencyAlarm.state).where(EmergencyAlarm.id == alarm_id)) == state

    async def sending(self, alarm_id: int) -> list[tuple[int, datetime]]:
        """The alarm's callbacks that may be on the wire, with their lease."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(EmergencyCallback.id, EmergencyCallback.lease_until).where(
                    EmergencyCallback.alarm_id == alarm_id, EmergencyCallback.state == "sending"
                )
            )
            return [(job_id, lease_until) for job_id, lease_until in rows]


@pytest.fixture
async def reader(settings: Settings) -> AsyncIterator[Reader]:
    view = Reader(settings.effective_database_url)
    yield view
    await view.engine.dispose()


async def _db_upgrade(url: str, data_dir: Path) -> tuple[int, bytes]:
    """``ivr db upgrade`` in its own process, as an instance's start-up runs it."""
    env = {**os.environ, "IVR_DATABASE_URL": url, "IVR_DATA_DIR": str(data_dir)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "db", "upgrade", env=env, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await process.communicate()
    return await process.wait(), output


async def test_instances_started_together_migrate_one_at_a_time(database_url: str, tmp_path: Path):
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:  # the fixture built the schema from the models: start empty
            await connection.run_sync(models.Base.metadata.drop_all)
        async with asyncio.timeout(120):
            results = await asyncio.gather(*(_db_upgrade(database_url, tmp_path / str(i)) for i in range(3)))
        assert [code for code, _ in results] == [0, 0, 0], results
        async with engine.connect() as connection:
            versions = list(await connection.scalars(text("SELECT version_num FROM alembic_version")))
        head = ScriptDirectory.from_config(migrations.alembic_config(database_url)).get_current_head()
        assert versions == [head]
    finally:
        await engine.dispose()


def _request_snapshot(index: int) -> CallSnapshot:
    return CallSnapshot(
        uniqueid=f"1796500000.{index}",
        channel=f"PJSIP/trunk-{index:08x}",
        script="main",
        started_at=datetime.now(UTC),
        caller_number="081234567890",
        caller_e164="+6281234567890",
        ticket_kind="request",
    )


async def test_500_concurrent_ticket_creations_on_two_instances_get_distinct_numbers(runtime: Any, second: Any):
    assert runtime.engine is not second.engine  # two pools, as two processes have
    stores = [runtime.services.spool.store, second.services.spool.store]
    go = asyncio.Event()

    async def create(index: int) -> Any:
        await go.wait()
        return await stores[index % 2].save(_request_snapshot(index))

    tasks = [asyncio.create_task(create(i)) for i in range(CREATIONS)]
    go.set()
    async with asyncio.timeout(120):
        saved = await asyncio.gather(*tasks)
    numbers = [s.ticket_number for s in saved]
    assert len(set(numbers)) == CREATIONS
    assert all(ticket_number.is_valid(n) for n in numbers)
    async with runtime.sessions() as session:
        stored = list(await session.scalars(select(models.Ticket.number)))
    assert sorted(stored) == sorted(numbers)


# -- a killed instance ----------------------------------------------------------------------


@contextlib.contextmanager
def killed_when(engine: Any, statement_starts: str, marker: str) -> Iterator[asyncio.Event]:
    """From the first statement that starts with ``statement_starts`` and
    mentions ``marker``, this instance's database connections are gone: that
    statement and every later one fail, as when its process dies there."""
    dead = asyncio.Event()

    def refuse(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if not dead.is_set() and statement.startswith(statement_starts) and marker in statement:
            dead.set()
        if dead.is_set():
            raise OperationalError(statement, params, ConnectionResetError("instance killed (test)"))

    event.listen(engine.sync_engine, "before_cursor_execute", refuse)
    try:
        yield dead
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", refuse)


def stop_without_cleanup(loop: CallbackLoop) -> None:
    """Its callback tasks end where they are: no lease released, no outcome written."""
    for task in (loop._task, loop._dispatcher, *loop._inflight):
        if task is not None:
            task.cancel()


def run_ahead(loop: CallbackLoop) -> Callable[[timedelta], None]:
    """Let ``loop`` live ``shift`` ahead of the wall clock (leases run out
    without the test waiting for them)."""
    shift = timedelta()

    def clock() -> datetime:
        return utcnow() + shift

    def advance(by: timedelta) -> None:
        nonlocal shift
        shift = by

    loop.clock = clock
    return advance


async def test_an_instance_killed_holding_a_claim_is_taken_over_once_its_lease_ends(
    runtime: Any, desk: Any, fake: FakeAMI, settings: Settings, tmp_path: Path, reader: Reader
):
    # The first instance claims Rudi's callback and dies before sending it.
    with killed_when(runtime.engine, "UPDATE emergency_callbacks", "sent_at") as dead:
        alarm_id = await desk.callbacks.raise_alarm(draft())
        assert alarm_id is not None
        async with asyncio.timeout(10):
            await dead.wait()
        stop_without_cleanup(desk.callbacks)
        (job,) = await jobs_of(reader, alarm_id)
        assert (job.state, job.lease_owner) == ("claimed", desk.callbacks.instance)

        async with (
            running(settings.model_copy(update={"data_dir": tmp_path / "second"}), migrate=False) as other,
            emergency_desk(other) as other_desk,
            OfficerPhones(fake, agi(other), {"PJSIP/201": [["1"]]}) as phones,
        ):
            assert await other.services.ami.wait_connected(5)
            advance = run_ahead(other_desk.callbacks)
            # While the dead instance's lease holds, nobody else may take the job.
            advance(CLAIM_LEASE - timedelta(seconds=5))
            await other_desk.callbacks.wait_ticks(3)
            assert phones.originates() == []
            # Once it ends, the other instance places the callback within a poll or two.
            advance(CLAIM_LEASE + timedelta(seconds=1))
            lease_ended = asyncio.get_running_loop().time()
            await phones.wait_calls(1, timeout=10)
            assert asyncio.get_running_loop().time() - lease_ended < 3 * settings.emergency_callback_poll_seconds + 2
            await until_ticked(other_desk.callbacks, lambda: reader.alarm_is(alarm_id, "acknowledged"))
            assert [o["Channel"] for o in phones.originates()] == ["PJSIP/201"]
    (job,) = await jobs_of(reader, alarm_id)
    assert job.result == "acknowledged" and job.lease_owner == other_desk.callbacks.instance


async def test_an_instance_killed_mid_originate_is_never_repeated_and_the_next_level_follows(
    runtime: Any, desk: Any, fake: FakeAMI, settings: Settings, tmp_path: Path, reader: Reader
):
    fake.hold_actions = {"originate"}  # Asterisk takes Rudi's callback; the instance dies before any reply
    alarm_id = await desk.callbacks.raise_alarm(draft())
    assert alarm_id is not None
    await fake.wait_action("Originate", count=1)
    with database_down(runtime.engine):
        stop_without_cleanup(desk.callbacks)
        for connection in fake.logged_in:
            connection.abort()
        fake.hold_actions = set()
        async with (
            running(settings.model_copy(update={"data_dir": tmp_path / "second"}), migrate=False) as other,
            emergency_desk(other) as other_desk,
            OfficerPhones(fake, agi(other), {"PJSIP/202": [["1"]]}) as phones,
        ):
            assert await other.services.ami.wait_connected(5)
            advance = run_ahead(other_desk.callbacks)
            ((job_id, lease_until),) = await reader.sending(alarm_id)
            # Until the send's lease ends its outcome may still come: nothing happens.
            advance(lease_until - utcnow() - timedelta(seconds=5))
            await other_desk.callbacks.wait_ticks(3)
            assert len(phones.originates()) == 1
            # Then Rudi's callback is "unknown", never sent again, and Sri's level follows.
            advance(lease_until - utcnow() + timedelta(seconds=1))
            await phones.wait_calls(1, timeout=10)
            await until_ticked(other_desk.callbacks, lambda: reader.alarm_is(alarm_id, "acknowledged"))
            originates = phones.originates()
    assert [o["Channel"] for o in originates] == ["PJSIP/201", "PJSIP/202"]
    assert set(collections.Counter(o["IVR_CALLBACK_JOB"] for o in originates).values()) == {1}
    first, following = await jobs_of(reader, alarm_id)
    assert (first.id, first.result, following.result) == (job_id, "unknown", "acknowledged")


# -- background re-renders ------------------------------------------------------------------


async def test_an_agenda_change_is_rendered_by_one_instance_and_found_by_the_other(
    runtime: Any, second: Any, aiohttp_client: Any
):
    async with runtime.sessions.begin() as session:
        token = await create_token(session, "staff", "test-staff")
        leader = models.Leader(title="Bupati", name="H. Sugeng Riyadi", menu_key="1", position=0)
        session.add(leader)
        await session.flush()
        leader_id = leader.id
    for instance in (runtime, second):  # their start-up sweeps are over
        await instance.services.agenda.prerenderer.wait_idle()
    # The new leader's days and the new leader menu, rendered by the first instance's sweep.
    runtime.services.agenda.prerenderer.sweep()
    await runtime.services.agenda.prerenderer.wait_idle()
    before = {"first": runtime.speech.health()["misses"], "second": second.speech.health()["misses"]}
    day = date.today() + timedelta(days=1)
    activity = f"Rapat koordinasi nomor {random.randrange(10**9)}"  # never rendered before

    api = await aiohttp_client(create_web_app(runtime))
    created = await api.post(
        "/api/agenda",
        json={"leader_id": leader_id, "date": day.isoformat(), "start": "09:00", "activity": activity},
        headers=bearer(token),
    )
    assert created.status == 201, await created.text()
    await runtime.services.agenda.prerenderer.wait_idle()
    async with second.sessions() as session:
        texts = day_readback(await agenda_store.load_day(session, leader_id, day)).texts
    assert any("Rapat koordinasi" in text for text in texts)
    # The instance that took the change rendered it; the other finds every file.
    assert runtime.speech.health()["misses"] > before["first"]
    assert all(second.speech.cached(text) is not None for text in texts)
    # Its own sweep (start-up, hourly, after midnight) finds everything rendered.
    second.services.agenda.prerenderer.sweep()
    await second.services.agenda.prerenderer.wait_idle()
    assert second.speech.health()["misses"] == before["second"]


async def test_a_greeting_rendered_by_one_instance_is_not_rendered_again_by_another(runtime: Any, second: Any):
    office = f"Kelurahan Uji {random.randrange(10**9)}"  # never rendered before
    async with runtime.sessions.begin() as session:
        session.add(models.Office(name=office, kind="kelurahan"))
    before = {"first": runtime.speech.health()["misses"], "second": second.speech.health()["misses"]}
    # What each instance's start-up task does.
    await prerender_greetings(runtime.sessions, runtime.speech)
    await prerender_greetings(second.sessions, second.speech)
    assert runtime.speech.health()["misses"] == before["first"] + 1
    assert second.speech.health()["misses"] == before["second"]
    assert second.speech.cached(greeting_text(office)) is not None

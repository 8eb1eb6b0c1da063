"""Unanswered emergencies: alarms and callbacks over AMI until acknowledged.

The server runs for real (``running()``) with its AMI client logged in to the
fake AMI (``tests/fake_ami.py``); ``OfficerPhones`` answers the Originates as
the officers would, running the ``ack`` flow over FastAGI. Callback intervals
are shortened; every wait is on an event (an Originate arriving, an ``ack``
session ending, a loop pass) with a timeout.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fake_ami import FakeAMI
from pydantic import SecretStr
from screening import (
    OfficerPhones,
    Phone,
    database_down,
    emergency_desk,
    install_roster,
    place_emergency_call,
    until_ticked,
)
from sqlalchemy import select

from ivr.app import running
from ivr.config import Settings
from ivr.emergency.callbacks import AlarmDraft, acknowledge
from ivr.emergency.roster import Level, Officer, Roster, Shift
from ivr.seed import seed_demo
from ivr.storage import models
from ivr.storage.roster_models import EmergencyAlarm, EmergencyCallback

RUDI = Officer("rudi", "Rudi Hartono", ("PJSIP/201",))
SRI = Officer("sri", "Sri Mulyani", ("PJSIP/202",))
ROSTER = Roster(
    (RUDI, SRI),
    (
        Shift(
            "Piket",
            datetime(2020, 1, 1),
            datetime(2020, 1, 2),
            "Asia/Jakarta",
            "daily",
            levels=(Level(("rudi",)), Level(("sri",))),
        ),
    ),
)
INTERVAL = 0.3


@pytest.fixture
async def fake() -> Any:
    async with FakeAMI() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, fake: FakeAMI) -> Settings:
    return settings.model_copy(
        update={
            "ami_host": fake.host,
            "ami_port": fake.port,
            "ami_username": "ivr",
            "ami_secret": SecretStr("ivrsecret"),
            "emergency_callback_interval_seconds": INTERVAL,
            "emergency_callback_rounds": 2,
            "emergency_callback_ring_seconds": 1,
            "emergency_callback_grace_seconds": 0.5,
            "emergency_callback_poll_seconds": 0.5,
        }
    )


@pytest.fixture
async def desk(runtime: Any) -> Any:
    await seed_demo(runtime.sessions, runtime.settings)
    async with emergency_desk(runtime) as desk:
        await install_roster(runtime, desk, ROSTER)
        assert await runtime.services.ami.wait_connected(5)
        yield desk


def draft(**changes: Any) -> AlarmDraft:
    values: dict[str, Any] = {
        "call_uniqueid": f"test-{uuid.uuid4().hex[:10]}",
        "raised_at": datetime.now(UTC),
        "caller_number": "085712345678",
        "caller_e164": "+6285712345678",
        "office_name": "Dinas Kesehatan",
        "caller_spoken": "dr. Rina Kartika, Dinas Kesehatan",
        "callback_digits": "085712345678",
    }
    values.update(changes)
    return AlarmDraft(**values)


async def alarm_row(runtime: Any, alarm_id: int) -> EmergencyAlarm:
    async with runtime.sessions() as session:
        alarm = await session.get(EmergencyAlarm, alarm_id)
        assert alarm is not None
        return alarm


async def jobs_of(runtime: Any, alarm_id: int) -> list[EmergencyCallback]:
    async with runtime.sessions() as session:
        return list(
            await session.scalars(
                select(EmergencyCallback).where(EmergencyCallback.alarm_id == alarm_id).order_by(EmergencyCallback.id)
            )
        )


def agi(runtime: Any) -> tuple[str, int]:
    return "127.0.0.1", runtime.agi.bound_port


async def test_nobody_answers_message_then_callback_acknowledged_on_the_second_round(
    runtime: Any, desk: Any, fake: FakeAMI
):
    nobody = {"PJSIP/201": Phone(status="NOANSWER"), "PJSIP/202": Phone(status="NOANSWER")}
    script = {"PJSIP/201": [[""], ["1"]], "PJSIP/202": [None]}
    async with OfficerPhones(fake, agi(runtime), script) as phones:
        placed = await place_emergency_call(*agi(runtime), phones=nobody, keys=["rec:3", ""], caller_id="081234567890")
        assert len(placed.record.dial_attempts) == 4  # two levels, two rounds, while the caller waited
        await phones.wait_calls(2)  # round 1: Rudi heard it without pressing 1; round 2: Rudi pressed 1
        first, second = phones.calls
        assert first[2].spoken[0] == (
            "Ini panggilan dari Call Center Protokol tentang keadaan darurat yang belum tertangani."
        )
        assert first[2].spoken[1].startswith("Panggilan darurat dari Budi Santoso, Dinas Komunikasi dan Informatika")
        assert "Berikut pesan dari penelepon." in first[2].spoken
        assert first[2].spoken[-1].startswith("Anda belum mengonfirmasi.")
        assert "Terima kasih, konfirmasi Anda telah kami catat." in second[2].spoken
        read_back = second[2].spoken[second[2].spoken.index("Nomor penelepon adalah") + 1 :][:12]
        assert read_back == [
            "nol",
            "delapan",
            "satu",
            "dua",
            "tiga",
            "empat",
            "lima",
            "enam",
            "tujuh",
            "delapan",
            "sembilan",
            "nol",
        ]

        async with runtime.sessions() as session:
            alarm = await session.scalar(
                select(EmergencyAlarm).where(EmergencyAlarm.call_uniqueid == placed.record.uniqueid)
            )
        assert alarm is not None
        assert await _state(runtime, alarm.id, "acknowledged")  # the ack flow saved it before it hung up
        await desk.callbacks.wait_ticks(2)
        originates = phones.originates()
    # exactly three callbacks: Rudi, Sri, Rudi again; nothing after the acknowledgement
    assert [o["Channel"] for o in originates] == ["PJSIP/201", "PJSIP/202", "PJSIP/201"]
    assert all(o["Context"] == "callcenter-callback" and o["Exten"] == "s" and o["Async"] == "true" for o in originates)
    alarm = await alarm_row(runtime, alarm.id)
    assert alarm.acknowledged_by == "Rudi Hartono" and alarm.acknowledged_via == "phone"
    jobs = await jobs_of(runtime, alarm.id)
    assert [(j.round, j.level, j.result) for j in jobs] == [
        (1, 1, "not acknowledged"),
        (1, 2, "no answer"),
        (2, 1, "acknowledged"),
    ]
    assert jobs[1].due_at - jobs[0].due_at >= timedelta(seconds=INTERVAL)  # level by level, an interval apart
    async with runtime.sessions() as session:
        ticket_id = await session.scalar(
            select(models.Call.ticket_id).where(models.Call.uniqueid == placed.record.uniqueid)
        )
        timeline = list(
            await session.scalars(
                select(models.TicketEvent)
                .where(models.TicketEvent.ticket_id == ticket_id, models.TicketEvent.kind.in_(("callback", "alarm")))
                .order_by(models.TicketEvent.id)
            )
        )
    assert [(e.kind, e.data.get("result") or e.data.get("action")) for e in timeline] == [
        ("alarm", "raised"),
        ("callback", "not acknowledged"),
        ("callback", "no answer"),
        ("alarm", "acknowledged"),
        ("callback", "acknowledged"),
    ]


async def _state(runtime: Any, alarm_id: int, state: str) -> bool:
    return (await alarm_row(runtime, alarm_id)).state == state


async def test_ami_down_when_a_callback_is_due_it_waits_then_is_placed_once(runtime: Any, desk: Any, fake: FakeAMI):
    fake.reject_connections = True
    for conn in fake.logged_in:
        conn.abort()
    assert await runtime.services.ami.wait_state("connecting", 5)
    async with OfficerPhones(fake, agi(runtime), {"PJSIP/201": [["1"]]}) as phones:
        alarm_id = await desk.callbacks.raise_alarm(draft())
        assert alarm_id is not None
        async with asyncio.timeout(10):
            while not desk.callbacks.waiting_for_ami:
                await desk.callbacks.wait_ticks(1)
        assert phones.originates() == []
        (job,) = await jobs_of(runtime, alarm_id)
        assert job.state == "pending"  # due, not sent, not lost

        fake.reject_connections = False
        await phones.wait_calls(1)
        assert await _state(runtime, alarm_id, "acknowledged")
        await desk.callbacks.wait_ticks(2)
        assert [o["Channel"] for o in phones.originates()] == ["PJSIP/201"]  # once
    (job,) = await jobs_of(runtime, alarm_id)
    assert job.result == "acknowledged" and job.sent_at is not None and job.sent_at >= job.due_at


async def test_ami_dropped_mid_originate_is_never_sent_again(runtime: Any, desk: Any, fake: FakeAMI):
    fake.hold_actions = {"originate"}  # Asterisk takes it and the link dies before any reply
    async with OfficerPhones(fake, agi(runtime), {"PJSIP/202": [["1"]]}) as phones:
        alarm_id = await desk.callbacks.raise_alarm(draft())
        await fake.wait_action("Originate", count=1)
        fake.hold_actions = set()
        for conn in fake.logged_in:
            conn.abort()
        # the outcome of Rudi's callback is unknown: it is not repeated, Sri's level follows
        await phones.wait_calls(1)
        assert await _state(runtime, alarm_id, "acknowledged")
        assert [o["Channel"] for o in phones.originates()] == ["PJSIP/201", "PJSIP/202"]
    first, second = await jobs_of(runtime, alarm_id)
    assert (first.result, second.result) == ("unknown", "acknowledged")
    assert runtime.services.ami.health()["reconnects"] >= 1


async def test_two_server_instances_on_one_database_place_each_callback_once(
    runtime: Any, desk: Any, fake: FakeAMI, settings: Settings, tmp_path: Any
):
    other_settings = settings.model_copy(update={"data_dir": tmp_path / "second"})
    async with running(other_settings, migrate=False) as other, emergency_desk(other) as other_desk:
        assert await other.services.ami.wait_connected(5)
        await other_desk.roster.refresh(force=True)
        assert other_desk.roster.roster.version == desk.roster.roster.version
        async with OfficerPhones(fake, agi(runtime), {}):  # nobody ever answers
            ids = await asyncio.gather(
                *(loop.raise_alarm(draft()) for loop in [desk.callbacks, other_desk.callbacks] * 4)
            )
            # 2 levels x 2 rounds, for each of the 8 alarms
            await fake.wait_action("Originate", count=32, timeout=30)
            for alarm_id in ids:
                await until_ticked(desk.callbacks, lambda alarm_id=alarm_id: _state(runtime, alarm_id, "exhausted"))
            await desk.callbacks.wait_ticks(2)
            await other_desk.callbacks.wait_ticks(2)
            originates = OfficerPhones.originates(_Peek(fake))
    per_job = collections.Counter(o["IVR_CALLBACK_JOB"] for o in originates)
    assert len(per_job) == 32 and set(per_job.values()) == {1}
    assert desk.callbacks.placed + other_desk.callbacks.placed == 32
    by_connection = [sum(b"Action: Originate" in raw for raw in conn.raw_actions) for conn in fake.connections]
    assert sum(by_connection) == 32


class _Peek:
    """Just enough of OfficerPhones for its ``originates`` (after it closed)."""

    def __init__(self, fake: FakeAMI) -> None:
        self.fake = fake


async def test_database_down_the_alarm_is_journaled_and_raised_when_it_is_back(runtime: Any, desk: Any, fake: FakeAMI):
    nobody = {"PJSIP/201": Phone(status="NOANSWER"), "PJSIP/202": Phone(status="NOANSWER")}
    async with OfficerPhones(fake, agi(runtime), {"PJSIP/201": [["1"]]}) as phones:
        with database_down(runtime.engine):
            placed = await place_emergency_call(*agi(runtime), phones=nobody, keys=["rec:3", ""])
            assert len(placed.record.dial_attempts) == 4  # routed from the cached roster
            assert len(desk.callbacks.journal) == 1
        desk.callbacks.wake()
        await phones.wait_calls(1)
        assert len(desk.callbacks.journal) == 0
        async with runtime.sessions() as session:
            alarm = await session.scalar(
                select(EmergencyAlarm).where(EmergencyAlarm.call_uniqueid == placed.record.uniqueid)
            )
        assert alarm is not None and alarm.message_path
        assert await _state(runtime, alarm.id, "acknowledged")
        assert len(phones.originates()) == 1


async def test_officer_answering_after_a_web_acknowledgement_is_told_and_callbacks_stop(
    runtime: Any, desk: Any, fake: FakeAMI
):
    picked_up = asyncio.Event()
    async with OfficerPhones(fake, agi(runtime), {"PJSIP/201": [["1"]]}, gate=picked_up) as phones:
        alarm_id = await desk.callbacks.raise_alarm(draft(callback_digits=""))
        await fake.wait_action("Originate", count=1)
        async with runtime.sessions.begin() as session:
            won, _ = await acknowledge(session, alarm_id, by="token:test-duty", via="web", now=datetime.now(UTC))
        assert won
        picked_up.set()
        await phones.wait_calls(1)
        ((_, _, record),) = phones.calls
        await desk.callbacks.wait_ticks(2)
    assert record.spoken[-1] == "Sudah dikonfirmasi oleh staf protokol melalui aplikasi web."
    (job,) = await jobs_of(runtime, alarm_id)  # no further callbacks
    assert job.result == "already acknowledged"
    alarm = await alarm_row(runtime, alarm_id)
    assert (alarm.state, alarm.acknowledged_via) == ("acknowledged", "web")

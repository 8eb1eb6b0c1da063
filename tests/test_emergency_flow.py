"""Emergency routing end to end: a simulated Asterisk calls the running server,
its Dial runs the officers' screening legs as real FastAGI sessions
(``tests/screening.py``), and the tests check what the caller and the officers
heard and what the ticket holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from screening import (
    EmergencyCall,
    Phone,
    database_down,
    emergency_desk,
    install_roster,
    place_emergency_call,
    spool_replayed,
)
from sqlalchemy import select

from ivr.emergency.roster import Chain, Level, Officer, Roster, Shift
from ivr.seed import seed_demo
from ivr.simulator import Prompt
from ivr.storage import models
from ivr.storage.roster_models import EmergencyAlarm

REGISTERED = "081234567890"  # Budi Santoso, Dinas Komunikasi dan Informatika (demo data)

RUDI = Officer("rudi", "Rudi Hartono", ("PJSIP/201",))
SRI = Officer("sri", "Sri Mulyani", ("PJSIP/202",))
BAYU = Officer("bayu", "Bayu Saputra", ("PJSIP/203", "Local/081311110203@callcenter-mobile"))
KABAG = Officer("kabag", "Kabag Prokompim", ("PJSIP/210",))


def always(*levels: Level, rounds: int = 2) -> Shift:
    """A shift that covers every moment."""
    return Shift(
        "Piket",
        datetime(2020, 1, 1, 0, 0),
        datetime(2020, 1, 2, 0, 0),
        "Asia/Jakarta",
        "daily",
        rounds=rounds,
        levels=levels,
    )


ROSTER = Roster(
    (RUDI, SRI, BAYU, KABAG),
    (always(Level(("rudi", "sri"), "sequential", 20), Level(("bayu",), "sequential", 20)),),
    Chain((Level(("kabag",)),)),
)


@dataclass
class Stored:
    call: models.Call
    ticket: models.Ticket
    events: list[models.TicketEvent]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.kind == kind]

    @property
    def emergency(self) -> dict[str, Any]:
        return self.ticket.details["emergency"]


class Center:
    def __init__(self, runtime: Any, desk: Any) -> None:
        self.runtime = runtime
        self.desk = desk

    async def call(self, phones: dict[str, Phone], **options: Any) -> EmergencyCall:
        options.setdefault("caller_id", REGISTERED)
        placed = await place_emergency_call("127.0.0.1", self.runtime.agi.bound_port, phones=phones, **options)
        assert placed.record.audio_problems == [], placed.record.render()
        for screening in placed.screenings:
            assert screening.record.audio_problems == [], screening.record.render()
        return placed

    async def stored(self, uniqueid: str) -> Stored:
        async with self.runtime.sessions() as session:
            call = await session.scalar(select(models.Call).where(models.Call.uniqueid == uniqueid))
            assert call is not None, f"no record for {uniqueid}"
            ticket = await session.get_one(models.Ticket, call.ticket_id)
            events = list(
                await session.scalars(
                    select(models.TicketEvent)
                    .where(models.TicketEvent.call_id == call.id)
                    .order_by(models.TicketEvent.seq)
                )
            )
        return Stored(call, ticket, events)

    async def alarms(self) -> list[EmergencyAlarm]:
        async with self.runtime.sessions() as session:
            return list(await session.scalars(select(EmergencyAlarm)))


@pytest.fixture
async def center(runtime: Any) -> Any:
    await seed_demo(runtime.sessions, runtime.settings)
    runtime.services.override.set("open")
    async with emergency_desk(runtime) as desk:
        await install_roster(runtime, desk, ROSTER)
        yield Center(runtime, desk)


def dial_targets(placed: EmergencyCall) -> list[tuple[str, ...]]:
    return [a.targets for a in placed.record.dial_attempts]


async def test_first_officer_accepts(center: Center):
    placed = await center.call({"PJSIP/201": Phone(keys=["1"], answer_after=6)})
    assert placed.record.spoken[0] == "Anda akan segera kami sambungkan dengan petugas piket. Mohon tetap di saluran."
    (attempt,) = placed.record.dial_attempts
    assert attempt.targets == ("PJSIP/201",) and attempt.timeout == "20"
    assert attempt.options.startswith("U(callcenterscreen^") and attempt.status == "ANSWER"
    (screening,) = placed.screenings
    assert screening.decision == "ACCEPT"
    heard = screening.record.spoken
    assert heard[0] == "Panggilan darurat dari Budi Santoso, Dinas Komunikasi dan Informatika."
    assert heard[1] == "Tekan 1 untuk menerima, tekan 2 untuk menolak."
    assert heard[-1] == "Anda tersambung dengan penelepon."

    stored = await center.stored(placed.record.uniqueid)
    assert stored.call.outcome == "emergency-answered"
    assert stored.ticket.kind == "emergency" and stored.ticket.priority == "urgent"
    assert stored.emergency["result"] == "answered" and stored.emergency["accepted_by"] == "Rudi Hartono"
    assert stored.emergency["time_to_answer_seconds"] >= 0
    assert stored.emergency["source"] == "shift" and stored.emergency["flags"] == []
    (logged,) = stored.of_kind("emergency-attempt")
    assert logged["outcome"] == "accepted" and logged["target"] == "PJSIP/201"
    assert logged["answered_by"] == "Rudi Hartono" and logged["answered_after_seconds"] == 6
    assert logged["accepted_after_seconds"] is not None
    assert await center.alarms() == []


async def test_first_declines_second_accepts_caller_holds_in_between(center: Center):
    placed = await center.call(
        {"PJSIP/201": Phone(keys=["2"]), "PJSIP/202": Phone(keys=["1"])}, caller_id="085700001111"
    )
    assert dial_targets(placed) == [("PJSIP/201",), ("PJSIP/202",)]
    assert [s.decision for s in placed.screenings] == ["DECLINE", "ACCEPT"]
    # an unknown caller is announced by number, digit by digit
    assert placed.screenings[0].record.spoken[0] == (
        "Panggilan darurat dari nomor nol delapan lima tujuh nol nol nol nol satu satu satu satu."
    )
    assert placed.screenings[0].record.spoken[-1] == "Baik, panggilan dialihkan ke petugas lain."
    assert "Mohon tetap di saluran. Kami sedang menghubungi petugas piket berikutnya." in placed.record.spoken
    stored = await center.stored(placed.record.uniqueid)
    assert [a["outcome"] for a in stored.of_kind("emergency-attempt")] == ["declined", "accepted"]
    assert stored.emergency["accepted_by"] == "Sri Mulyani"


async def test_nobody_accepts_every_outcome_is_on_the_timeline_then_message_and_alarm(center: Center):
    phones = {
        "PJSIP/201": Phone(status="NOANSWER"),
        "PJSIP/202": Phone(status="BUSY"),
        "PJSIP/203": Phone(keys=[""]),  # a voicemail answers: no key, never bridged
        "Local/081311110203@callcenter-mobile": Phone(status="CHANUNAVAIL"),
    }
    placed = await center.call(phones, keys=["rec:4", ""])
    # two rounds of: Rudi, Sri, Bayu (both his phones at once)
    assert len(placed.record.dial_attempts) == 6
    assert dial_targets(placed)[2] == ("PJSIP/203", "Local/081311110203@callcenter-mobile")
    assert {s.decision for s in placed.screenings} == {"TIMEOUT"}
    stored = await center.stored(placed.record.uniqueid)
    outcomes = [a["outcome"] for a in stored.of_kind("emergency-attempt")]
    if outcomes != ["no answer", "busy", "screening timeout"] * 2:
        for e in stored.events:
            print(e.seq, e.kind, {k: v for k, v in e.data.items() if k in ("outcome", "target", "status", "name")})
        print(placed.record.render())
    assert outcomes == ["no answer", "busy", "screening timeout"] * 2
    assert stored.call.outcome == "emergency-unanswered" and stored.emergency["result"] == "unanswered"
    assert "Terima kasih, pesan Anda telah kami terima." in " ".join(placed.record.spoken)
    (alarm,) = await center.alarms()
    assert alarm.ticket_number == stored.ticket.number and alarm.message_path
    assert alarm.caller_spoken == "Budi Santoso, Dinas Komunikasi dan Informatika"
    assert alarm.caller_digits == REGISTERED


async def test_caller_hangs_up_mid_escalation_attempts_stop(center: Center):
    phones = {"PJSIP/201": Phone(status="NOANSWER"), "PJSIP/202": Phone(status="NOANSWER")}
    placed = await center.call(phones, hangup_at_dial=2)
    assert [a.status for a in placed.record.dial_attempts] == ["NOANSWER", "CANCEL"]  # no third Dial
    assert placed.record.hangup_by == "caller"
    stored = await center.stored(placed.record.uniqueid)
    assert stored.call.outcome == "abandoned" and stored.call.outcome_step == "emergency:escalation"
    assert stored.emergency["result"] == "abandoned during escalation"
    assert [a["outcome"] for a in stored.of_kind("emergency-attempt")] == ["no answer", "cancelled"]
    assert stored.ticket.kind == "emergency" and stored.ticket.status == "open"
    # Nobody accepted before the caller gave up: the officers are called back about it.
    (alarm,) = await center.alarms()
    assert alarm.call_uniqueid == placed.record.uniqueid and alarm.message_path is None
    assert alarm.caller_digits == REGISTERED


@pytest.mark.parametrize("mode, keys", [("open", ["9"]), ("closed", ["1"])], ids=["main menu 9", "after hours 1"])
async def test_main_menu_and_after_hours_reach_emergency_routing(center: Center, mode: str, keys: list[str]):
    center.runtime.services.override.set(mode)
    placed = await center.call({"PJSIP/201": Phone(keys=["1"])}, script="main", keys=keys)
    assert dial_targets(placed) == [("PJSIP/201",)]
    stored = await center.stored(placed.record.uniqueid)
    assert stored.call.outcome == "emergency-answered" and stored.ticket.kind == "emergency"


async def test_officer_pressing_1_too_late_is_told_and_the_caller_moves_on(center: Center):
    router = center.desk.router
    real_clock = router.clock
    offset = 0.0
    router.clock = lambda: real_clock() + offset

    async def slow_officer(prompt: Prompt) -> str:
        nonlocal offset
        offset = 3600.0  # the officer sits on it past the attempt's deadline
        return "1"

    try:
        placed = await center.call({"PJSIP/201": Phone(key_source=slow_officer), "PJSIP/202": Phone(keys=["1"])})
    finally:
        router.clock = real_clock
    late, accepted = placed.screenings
    assert late.decision == "LATE"
    assert late.record.spoken[-1] == (
        "Mohon maaf, waktu untuk menerima panggilan ini sudah habis. Penelepon sudah dialihkan ke petugas lain."
    )
    assert accepted.decision == "ACCEPT"
    stored = await center.stored(placed.record.uniqueid)
    first, second = stored.of_kind("emergency-attempt")
    assert first["outcome"] == "screening timeout" and first["detail"] == "the officer pressed 1 too late"
    assert second["outcome"] == "accepted"


async def test_two_officers_accept_at_once_one_wins_the_other_is_told(center: Center):
    await install_roster(
        center.runtime, center.desk, Roster((RUDI, SRI), (always(Level(("rudi", "sri"), "simultaneous", 20)),))
    )
    both_waiting = asyncio.Barrier(2)

    async def press_1_together(prompt: Prompt) -> str:
        async with asyncio.timeout(10):
            await both_waiting.wait()
        return "1"

    phones = {"PJSIP/201": Phone(key_source=press_1_together), "PJSIP/202": Phone(key_source=press_1_together)}
    placed = await center.call(phones, parallel=True)
    (attempt,) = placed.record.dial_attempts
    assert attempt.targets == ("PJSIP/201", "PJSIP/202") and attempt.status == "ANSWER"
    decisions = sorted(s.decision for s in placed.screenings)
    assert decisions == ["ACCEPT", "TAKEN"]
    loser = next(s for s in placed.screenings if s.decision == "TAKEN")
    assert loser.record.spoken[-1] == "Panggilan ini sudah diterima oleh petugas lain. Terima kasih."
    stored = await center.stored(placed.record.uniqueid)
    (logged,) = stored.of_kind("emergency-attempt")
    assert logged["outcome"] == "accepted"
    assert [r["decision"] for r in logged["refused"]] == ["TAKEN"]


async def test_simultaneous_level_rings_the_others_again_after_a_decline(center: Center):
    await install_roster(
        center.runtime,
        center.desk,
        Roster((RUDI, SRI), (always(Level(("rudi", "sri"), "simultaneous", 20), rounds=1),)),
    )
    placed = await center.call({"PJSIP/201": Phone(keys=["2"], answer_after=2), "PJSIP/202": Phone(keys=["1"])})
    assert dial_targets(placed) == [("PJSIP/201", "PJSIP/202"), ("PJSIP/202",)]
    stored = await center.stored(placed.record.uniqueid)
    assert [a["outcome"] for a in stored.of_kind("emergency-attempt")] == ["declined", "accepted"]
    assert stored.emergency["accepted_by"] == "Sri Mulyani"


async def test_invalid_dial_string_is_skipped_and_flagged(center: Center):
    sloppy = Officer("rudi", "Rudi Hartono", ("PJSIP/201,60,tT", "PJSIP/205"))
    await install_roster(center.runtime, center.desk, Roster((sloppy, SRI), (always(Level(("rudi", "sri"))),)))
    placed = await center.call({"PJSIP/205": Phone(keys=["1"])})
    assert dial_targets(placed) == [("PJSIP/205",)]
    stored = await center.stored(placed.record.uniqueid)
    (flag,) = stored.of_kind("roster-flag")
    assert flag["code"] == "invalid-dial-string" and "PJSIP/201,60,tT" in flag["detail"]
    assert stored.emergency["flags"] == [flag]


async def test_empty_roster_rings_the_configured_fallback_and_flags_it(center: Center):
    await install_roster(center.runtime, center.desk, Roster())
    placed = await center.call({"Local/100@operator": Phone(keys=["1"])})
    assert dial_targets(placed) == [("Local/100@operator",)]
    stored = await center.stored(placed.record.uniqueid)
    assert [f["code"] for f in stored.emergency["flags"]] == ["roster-empty", "fallback"]
    assert stored.emergency["source"] == "default" and stored.call.outcome == "emergency-answered"


async def test_database_stopped_during_the_call_routing_goes_on_and_the_record_follows(center: Center):
    runtime = center.runtime
    with database_down(runtime.engine):
        assert not await center.desk.roster.refresh()  # the database is really gone for everyone
        placed = await center.call({"PJSIP/201": Phone(status="NOANSWER"), "PJSIP/202": Phone(keys=["1"])})
        assert dial_targets(placed) == [("PJSIP/201",), ("PJSIP/202",)]  # routed from the cached roster
        assert placed.screenings[0].decision == "ACCEPT"
        assert runtime.services.spool.backlog() >= 1
    await spool_replayed(runtime.services.spool)  # the record is written once the database is back
    stored = await center.stored(placed.record.uniqueid)
    assert [a["outcome"] for a in stored.of_kind("emergency-attempt")] == ["no answer", "accepted"]
    assert stored.emergency["accepted_by"] == "Sri Mulyani"

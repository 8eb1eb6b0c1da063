"""The main job end to end: a simulated Asterisk calls the running server over
FastAGI, and the tests check what the caller heard and what the database holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from helpers import calls_settled, set_office_override
from sqlalchemy import select

from ivr import ticket_number
from ivr.seed import seed_demo
from ivr.simulator import CallRecord, place_call
from ivr.speech.audio import wav_info
from ivr.storage import models

REGISTERED = "081234567890"  # Budi Santoso, Dinas Komunikasi dan Informatika (demo data)
DESK_NO_ANSWER = {"*": "NOANSWER"}


@dataclass
class Stored:
    call: models.Call
    ticket: models.Ticket
    events: list[models.TicketEvent]
    recordings: list[models.Recording]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def prompts(self) -> list[str | None]:
        return [e.data.get("prompt") for e in self.events if e.kind == "prompt"]


class CallCenter:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    async def call(self, *, keys: list[str], caller: str | None = REGISTERED, **options: Any) -> CallRecord:
        options.setdefault("dial_outcomes", DESK_NO_ANSWER)
        record = await place_call("127.0.0.1", self.runtime.agi.bound_port, caller_id=caller, keys=keys, **options)
        assert record.audio_problems == [], record.render()
        return record

    async def stored(self, uniqueid: str) -> Stored:
        await calls_settled(self.runtime)
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
                await session.scalars(select(models.Recording).where(models.Recording.call_id == call.id))
            )
        return Stored(call, ticket, events, recordings)


@pytest.fixture
async def center(runtime: Any) -> CallCenter:
    await seed_demo(runtime.sessions, runtime.settings)
    await set_office_override(runtime, "open")
    return CallCenter(runtime)


async def test_registered_caller_greeted_by_office_leaves_message_when_desk_does_not_answer(center: CallCenter):
    record = await center.call(keys=["0", "rec:3", ""])
    assert record.result == "OK"
    heard = record.spoken
    assert heard[0] == "Selamat datang di Call Center Protokol, rekan dari Dinas Komunikasi dan Informatika."
    assert heard[1].startswith("Untuk mendengarkan agenda pimpinan, tekan 1.")
    assert record.dial_attempts[0].targets == ("Local/100@operator",)

    stored = await center.stored(record.uniqueid)
    assert stored.call.outcome == "completed"
    assert stored.call.caller_e164 == "+6281234567890"
    assert stored.call.caller_id is not None
    assert stored.ticket.kind == "message" and stored.ticket.status == "open"
    assert ticket_number.is_valid(stored.ticket.number)
    # The number read back twice is the ticket's, digit by digit.
    words = ["nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan"]
    spoken_digits = [t for t in heard if t in words]
    expected = [words[int(d)] for d in stored.ticket.number]
    assert spoken_digits == expected + expected

    (recording,) = stored.recordings
    assert recording.kind == "message" and 2.5 <= recording.seconds <= 3.5
    info = wav_info(center.runtime.settings.recordings_root / recording.path)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)

    # The timeline: every prompt with its text, the key, the dial attempt, the recording.
    assert stored.prompts()[:2] == [None, "menu.main"]  # the greeting is a read-back (TTS), then the menu
    texts = [e.data["text"] for e in stored.events if e.kind == "prompt"]
    assert texts == [t for t in heard if t != "[beep]"][: len(texts)]
    assert next(e.data["digits"] for e in stored.events if e.kind == "dtmf") == "0"
    dials = [e.data for e in stored.events if e.kind == "dial"]
    assert dials[-1]["status"] == "NOANSWER"
    assert "record" in stored.kinds()


async def test_unknown_and_withheld_callers_get_the_generic_greeting(center: CallCenter):
    for caller, presentation in (("0899999999", None), (None, None), ("081234567890", 35)):
        record = await center.call(keys=["*", ""], caller=caller, presentation=presentation)
        assert record.spoken[0].startswith("Selamat datang di Call Center Protokol, Bagian Protokol")
        stored = await center.stored(record.uniqueid)
        assert stored.call.caller_id is None
        if presentation == 35:
            assert stored.call.caller_e164 is None  # a withheld number is never matched or shown


async def test_wrong_keys_and_silence_are_counted_separately_then_goodbye(center: CallCenter):
    # two wrong keys and two silences keep the menu going; the third wrong key ends the call
    record = await center.call(keys=["5", "", "7", "", "8"])
    heard = record.spoken
    assert heard.count("Maaf, pilihan tidak tersedia.") == 2
    assert heard.count("Maaf, kami belum menerima pilihan Anda.") == 2
    assert heard[-1] == "Terima kasih telah menghubungi Call Center Protokol. Selamat bertugas."
    stored = await center.stored(record.uniqueid)
    assert stored.call.outcome == "completed" and stored.ticket.status == "closed"
    assert [e.data for e in stored.events if e.kind == "menu"][-1] == {"menu": "main", "no_input": 2, "invalid": 3}


async def test_star_repeats_the_menu_without_counting_a_failure(center: CallCenter):
    record = await center.call(keys=["*", "*", "*", "", "", ""])
    assert record.spoken.count(record.spoken[1]) == 6  # the menu: first, three repeats, two retries
    assert record.spoken.count("Maaf, kami belum menerima pilihan Anda.") == 2


async def test_after_hours_caller_leaves_a_message(center: CallCenter):
    await set_office_override(center.runtime, "closed")
    record = await center.call(keys=["2", "rec:4", ""])
    assert "Saat ini di luar jam layanan Bagian Protokol." in record.spoken
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.kind == "message"
    assert stored.recordings and record.dial_attempts == []
    assert any(e.kind == "office" and e.data["open"] is False for e in stored.events)


async def test_after_hours_anything_else_is_goodbye(center: CallCenter):
    await set_office_override(center.runtime, "closed")
    record = await center.call(keys=["5"])
    assert record.spoken[-1].startswith("Terima kasih telah menghubungi")
    assert record.result == "OK"


async def test_silent_message_is_asked_again_once(center: CallCenter):
    record = await center.call(keys=["0", "rec:0.4", "rec:3", ""])
    assert "Maaf, pesan Anda tidak terdengar. Silakan ulangi sekali lagi." in record.spoken
    stored = await center.stored(record.uniqueid)
    assert "record-rejected" in stored.kinds()
    assert stored.ticket.kind == "message"


async def test_operator_answers(center: CallCenter):
    record = await center.call(keys=["0"], dial_outcomes={"*": "ANSWER:30"})
    stored = await center.stored(record.uniqueid)
    assert stored.call.outcome == "transferred"
    assert record.dial_attempts[0].status == "ANSWER"


# Hang up at every step of the main-menu walk "0, record, no key": each leaves a
# complete record, outcome "abandoned" at the step where the caller left.
HANGUPS = {
    "during the greeting": (["h"], "greeting"),
    "idle, before the menu": (["h!"], "greeting"),
    "during the menu": (["*", "h"], "menu:main"),
    "during the operator prompt": (["0", "h"], "operator"),
    "during the dial": (["0", "h@30"], "operator"),
    "during the recording": (["0", "rec:3:h"], "record:message"),
    "during the confirmation": (["0", "rec:3", "h"], "message-saved"),
}


@pytest.mark.parametrize("keys, step", HANGUPS.values(), ids=HANGUPS.keys())
async def test_hangup_at_every_step_leaves_a_complete_record(center: CallCenter, keys: list[str], step: str):
    record = await center.call(keys=keys)
    assert record.hangup_by == "caller"
    stored = await center.stored(record.uniqueid)
    assert stored.call.outcome == "abandoned"
    assert stored.call.outcome_step == step
    assert stored.call.ended_at is not None and stored.call.duration_seconds is not None
    assert stored.ticket.number and ticket_number.is_valid(stored.ticket.number)
    # every prompt the caller heard before leaving is on the timeline
    heard = [p.text for p in record.prompts if p.found and p.text != "[beep]" and p.path.find("silence") == -1]
    on_record = [e.data["text"] for e in stored.events if e.kind == "prompt"]
    assert on_record[: len(heard)] == heard
    if step == "record:message":
        (recording,) = stored.recordings  # the partial message is kept
        assert recording.seconds > 0


async def test_hanging_up_once_the_ticket_number_was_heard_is_not_abandoning(center: CallCenter):
    record = await center.call(keys=["0", "rec:3", "9", "h"])  # asks to hear it again, then leaves
    assert record.hangup_by == "caller"
    stored = await center.stored(record.uniqueid)
    assert stored.call.outcome == "completed" and stored.ticket.kind == "message"


async def test_unknown_script_gets_noroute(center: CallCenter):
    record = await center.call(keys=[], script="nonsense")
    assert record.result == "NOROUTE"


async def test_emergency_script_goes_straight_to_routing(center: CallCenter):
    record = await center.call(keys=["rec:3", ""], script="emergency")
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.kind == "emergency" and stored.ticket.priority == "urgent"
    assert record.dial_attempts

"""Main-menu option 3 end to end: a ticket submitted by phone, worked by staff
through ``PATCH /api/tickets/{number}``, then tracked by phone. The tests
check what each caller heard (kind, status, the note only for the ticket's own
office or number) and what the database holds (the follow-up on the tracked
ticket's timeline and recordings)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import time, timedelta
from typing import Any

import pytest
from request_fixtures import OTHER_OFFICE, REGISTERED, Center, center, in_days, keyed, words
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from ivr import ticket_number, tickets
from ivr.speech.normalize import say_date, say_time
from ivr.storage.database import companion_engines
from ivr.storage.tokens import create_token
from ivr.web.app import create_web_app

__all__ = ["center"]  # fixtures used by name

INVALID = "Maaf, nomor tiket tidak valid."
UNKNOWN = "Maaf, nomor tiket tersebut tidak terdaftar."
NO_INPUT = "Maaf, kami belum menerima masukan Anda."
RESTRICTED = "Catatan petugas hanya disampaikan kepada instansi atau nomor telepon pengaju."
NOTE = "Mohon hadir pukul 08.30 WIB di Pendopo Dipayudha."
RINA_MOBILE, RINA_LANDLINE = "085712345678", "0286 591234"  # dr. Rina Kartika, Dinas Kesehatan (demo data)
UNREGISTERED = "081311112222"

Patch = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
async def staff(aiohttp_client: Any, center: Center) -> Patch:
    """``PATCH /api/tickets/{number}`` as a protocol staff member."""
    client = await aiohttp_client(create_web_app(center.runtime))
    async with center.runtime.sessions.begin() as session:
        token = await create_token(session, "staff", "test-staff")

    async def patch(number: str, **body: Any) -> dict[str, Any]:
        response = await client.patch(f"/api/tickets/{number}", json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result

    return patch


async def submit_request(center: Center, caller: str | None = REGISTERED, days: int = 12) -> str:
    keys = ["2", "1", keyed(in_days(center, days)), "0830", "1", "rec:3", "1", ""]
    record = await center.call(keys=keys, caller=caller)
    number = (await center.stored(record.uniqueid)).ticket.number
    assert number is not None
    return number


def scheduled(center: Center, days: int = 12) -> str:
    return f"Status: dijadwalkan pada {say_date(in_days(center, days))}, {say_time(time(8, 30))}."


async def test_own_office_hears_kind_scheduled_date_and_the_staff_note(center: Center, staff: Patch):
    number = await submit_request(center)
    await staff(number, status="dijadwalkan", note_for_caller=NOTE)
    record = await center.call(keys=["3", number + "#", "0"])
    heard = record.spoken
    start = heard.index("Tiket nomor")
    assert heard[start + 1 : start + 9] == words(number)
    assert heard[start + 9 : start + 12] == [
        "Permohonan kehadiran pimpinan.",
        scheduled(center),
        f"Catatan dari petugas: {NOTE}",
    ]
    stored = await center.stored(record.uniqueid)
    assert stored.data("track") == [{"number": number, "found": True, "status": "dijadwalkan"}]
    assert stored.ticket.kind == "info" and stored.ticket.details["tracked"] == [number]


async def test_same_office_other_number_hears_the_note_other_office_hears_only_the_status(center: Center, staff: Patch):
    number = await submit_request(center, caller=RINA_MOBILE)
    await staff(number, status="dijadwalkan", note_for_caller=NOTE)
    colleague = await center.call(keys=["3", number + "#", "0"], caller=RINA_LANDLINE)
    assert f"Catatan dari petugas: {NOTE}" in colleague.spoken and scheduled(center) in colleague.spoken
    stranger = await center.call(keys=["3", number + "#", "0"], caller=OTHER_OFFICE)
    assert "Status: dijadwalkan." in stranger.spoken and RESTRICTED in stranger.spoken
    assert not any(NOTE in text or "dijadwalkan pada" in text for text in stranger.spoken)
    withheld = await center.call(keys=["3", number + "#", "0"], caller=RINA_MOBILE, presentation=35)
    assert RESTRICTED in withheld.spoken and not any(NOTE in text for text in withheld.spoken)


async def test_an_unregistered_caller_hears_the_note_on_their_own_number_only(center: Center, staff: Patch):
    number = await submit_request(center, caller=UNREGISTERED)
    await staff(number, status="diproses", note_for_caller="Berkas sedang diperiksa.")
    own = await center.call(keys=["3", number + "#", "0"], caller=UNREGISTERED)
    assert "Status: sedang diproses." in own.spoken
    assert "Catatan dari petugas: Berkas sedang diperiksa." in own.spoken
    other = await center.call(keys=["3", number + "#", "0"], caller=REGISTERED)
    assert "Status: sedang diproses." in other.spoken and RESTRICTED in other.spoken


async def test_every_status_is_spoken(center: Center, staff: Patch):
    number = await submit_request(center)
    expected = {
        "open": "Status: telah diterima dan menunggu tindak lanjut petugas.",
        "diterima": "Status: diterima.",
        "ditolak": "Status: ditolak.",
        "selesai": "Status: selesai.",
    }
    for status, sentence in expected.items():
        if status != "open":
            await staff(number, status=status)
        record = await center.call(keys=["3", number + "#", "0"])
        assert sentence in record.spoken, status


async def test_a_wrong_check_digit_is_caught_at_once_and_the_caller_retries(center: Center):
    number = await submit_request(center)
    wrong = number[:-1] + str((int(number[-1]) + 3) % 10)
    swapped = number[1] + number[0] + number[2:]
    keys = ["3", wrong + "#", (swapped if swapped != number else wrong) + "#", number + "#", "0"]
    record = await center.call(keys=keys)
    assert record.spoken.count(INVALID) == 2
    assert "Status: telah diterima dan menunggu tindak lanjut petugas." in record.spoken
    stored = await center.stored(record.uniqueid)
    assert [r["problem"] for r in stored.data("input-rejected")] == ["check-digit", "check-digit"]


async def test_twenty_digits_nothing_and_an_unknown_number_then_back_to_the_menu(center: Center):
    unknown = ticket_number.number_for_id(9_999_000)
    keys = ["3", "12345678901234567890#", "", unknown + "#"]
    record = await center.call(keys=keys)
    heard = record.spoken
    assert heard.count(INVALID) == 1 and heard.count(NO_INPUT) == 1 and heard.count(UNKNOWN) == 1
    assert heard[-1].startswith("Untuk mendengarkan agenda pimpinan")  # the main menu again
    stored = await center.stored(record.uniqueid)
    assert [(r["keys"], r["problem"]) for r in stored.data("input-rejected")] == [
        ("12345678901234567890", "length"),
        ("", "empty"),
    ]
    assert stored.data("track") == [{"number": unknown, "found": False, "status": None}]


async def test_nine_repeats_the_status(center: Center):
    number = await submit_request(center)
    record = await center.call(keys=["3", number + "#", "9", "0"])
    assert record.spoken.count("Permohonan kehadiran pimpinan.") == 2


async def test_a_follow_up_goes_on_the_tracked_tickets_timeline_and_recordings(center: Center):
    number = await submit_request(center, caller=RINA_MOBILE)
    record = await center.call(keys=["3", number + "#", "1", "rec:4", ""], caller=OTHER_OFFICE)
    heard = record.spoken
    assert "Terima kasih, pesan tindak lanjut Anda telah kami tambahkan pada tiket tersebut." in heard
    assert heard[-1] == "Terima kasih telah menghubungi Call Center Protokol. Selamat bertugas."

    tracked, events, recordings = await center.ticket(number)
    (follow_up,) = [e for e in events if e.kind == "follow_up"]
    (recording,) = [r for r in recordings if r.kind == "follow_up"]
    assert follow_up.data["path"] == recording.path and follow_up.data["recording_id"] == recording.id
    assert follow_up.data["call"] == record.uniqueid and follow_up.data["caller_e164"] == "+6281298765432"
    assert 3.5 <= recording.seconds <= 4.0
    center.assert_8khz_wav(recording.path)
    assert tracked.updated_at >= follow_up.at - timedelta(seconds=1)
    assert tracked.status == "open"  # a follow-up never changes what staff decided
    # The tracking call's own ticket points at the tracked one.
    stored = await center.stored(record.uniqueid)
    assert (stored.ticket.kind, stored.ticket.status) == (tickets.FOLLOW_UP, tickets.CLOSED)
    assert stored.ticket.details["follow_up_of"] == number
    assert follow_up.data["from_ticket"] == stored.ticket.number


async def test_hanging_up_during_the_follow_up_keeps_the_partial_recording(center: Center):
    number = await submit_request(center)
    record = await center.call(keys=["3", number + "#", "1", "rec:2:h"])
    stored = await center.stored(record.uniqueid)
    assert stored.call.outcome == "abandoned" and stored.call.outcome_step == "record:follow-up"
    assert (stored.ticket.kind, stored.ticket.status) == (tickets.FOLLOW_UP, tickets.ABANDONED_WITH_MESSAGE)
    _, events, recordings = await center.ticket(number)
    assert [e.data["seconds"] for e in events if e.kind == "follow_up"] == [pytest.approx(2.0, abs=0.3)]
    assert [r.kind for r in recordings] == ["description", "follow_up"]


async def test_a_silent_follow_up_is_asked_again_then_not_saved(center: Center):
    number = await submit_request(center)
    record = await center.call(keys=["3", number + "#", "1", "rec:0.3", "rec:0:s"])
    assert "Maaf, pesan Anda tidak dapat kami simpan." in record.spoken
    _, events, _ = await center.ticket(number)
    assert not [e for e in events if e.kind == "follow_up"]
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.kind == "info"


async def test_a_lookup_the_database_refuses_is_said_and_the_menu_comes_back(center: Center):
    """Only the lookup fails (the call's own record is still written): on
    SQLite it runs in the reader threads' own engine, which must fail like the
    server's would."""
    engine = center.runtime.engine
    engines = [engine.sync_engine, *companion_engines(engine)]

    def refuse_lookups(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "WHERE tickets.number =" in statement:
            raise OperationalError(statement, params, ConnectionRefusedError("database unreachable (test)"))

    for each in engines:
        event.listen(each, "before_cursor_execute", refuse_lookups)
    try:
        number = ticket_number.number_for_id(9_999_001)
        record = await center.call(keys=["3", number + "#", ""])
    finally:
        for each in engines:
            event.remove(each, "before_cursor_execute", refuse_lookups)
    heard = record.spoken
    assert "Mohon maaf, data tiket sedang tidak dapat dibuka. Silakan coba beberapa saat lagi." in heard
    assert heard[-1].startswith("Untuk mendengarkan agenda pimpinan")  # the main menu again
    stored = await center.stored(record.uniqueid)
    assert stored.data("track") == [{"number": number, "error": "database"}]

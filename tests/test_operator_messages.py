"""Main-menu option 0 and voice messages: the protocol desk is rung as a group
for the configured time; no answer, busy or outside office hours leads to a
voice message on a ticket, stored by date and ticket, whose number is read
back; a caller who hangs up while recording leaves the partial message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from helpers import set_office_override
from request_fixtures import Center, center, open_center, recording_path_pattern, spoken_number, words

from ivr import tickets
from ivr.config import Settings

__all__ = ["center"]  # fixtures used by name

BUSY = "Mohon maaf, operator sedang sibuk."
NO_ANSWER = "Mohon maaf, operator sedang tidak dapat menerima panggilan."
CLOSED = "Saat ini di luar jam layanan operator."
SAVED = "Terima kasih, pesan Anda telah kami terima dan akan segera ditindaklanjuti."


@pytest.fixture
async def desk_group(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Center]:
    """The desk as two phones rung together for 15 seconds."""
    from ivr.app import running

    grouped = settings.model_copy(
        update={"operator_dial": ("Local/201@operator", "Local/202@operator"), "operator_ring_seconds": 15}
    )
    async with running(grouped, migrate=False) as runtime, open_center(runtime, monkeypatch) as opened:
        yield opened


async def test_the_desk_is_rung_as_a_group_for_the_ring_time(desk_group: Center):
    record = await desk_group.call(keys=["0"], dial_outcomes={"Local/202@operator": "ANSWER:20"})
    (attempt,) = record.dial_attempts
    assert attempt.targets == ("Local/201@operator", "Local/202@operator") and attempt.timeout == "15"
    stored = await desk_group.stored(record.uniqueid)
    assert stored.call.outcome == "transferred"


async def test_busy_desk_leads_to_a_message_on_a_ticket_read_back_twice(center: Center):
    record = await center.call(keys=["0", "rec:4", ""], dial_outcomes={"*": "BUSY"})
    heard = record.spoken
    assert BUSY in heard and SAVED in heard
    stored = await center.stored(record.uniqueid)
    assert (stored.ticket.kind, stored.ticket.status) == ("message", "open")
    assert spoken_number(heard) == words(stored.ticket.number) * 2
    (recording,) = stored.recordings
    assert recording_path_pattern(stored.ticket.number, "message").fullmatch(recording.path)
    center.assert_8khz_wav(recording.path)
    assert [d["status"] for d in stored.data("dial")] == ["started", "BUSY"]


async def test_no_answer_leads_to_a_message(center: Center):
    record = await center.call(keys=["0", "rec:3", ""])
    assert NO_ANSWER in record.spoken and SAVED in record.spoken


async def test_outside_office_hours_the_desk_is_not_rung(center: Center):
    # Option 0 reached outside office hours (a menu whose on_failure is the operator, say).
    await set_office_override(center.runtime, "closed")
    record = await center.call(keys=["rec:3", ""], script="operator_only")
    assert record.dial_attempts == []
    assert record.spoken[0] == CLOSED and SAVED in record.spoken
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.kind == "message" and stored.data("operator") == [
        {"available": False, "reason": "outside-hours"}
    ]


async def test_hanging_up_while_leaving_a_message_keeps_it(center: Center):
    record = await center.call(keys=["0", "rec:2.5:h"])
    stored = await center.stored(record.uniqueid)
    assert (stored.ticket.kind, stored.ticket.status) == ("message", tickets.ABANDONED_WITH_MESSAGE)
    (recording,) = stored.recordings
    assert 2.0 <= recording.seconds <= 3.0


async def test_a_message_shorter_than_a_second_is_asked_again_once_then_not_saved(center: Center):
    record = await center.call(keys=["0", "rec:0.5", "rec:0:s"])
    assert "Maaf, pesan Anda tidak terdengar. Silakan ulangi sekali lagi." in record.spoken
    assert "Maaf, pesan Anda tidak dapat kami simpan." in record.spoken
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.kind == "info" and len(stored.data("record-rejected")) == 2

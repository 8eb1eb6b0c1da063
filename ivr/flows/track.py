"""Option 3: track a ticket by its number.

The caller keys the number and ``#``. A wrong check digit is caught at once
("nomor tiket tidak valid") and the caller asked again; an unknown number is
said to be unknown. A known ticket is told: its kind, its status (with the
scheduled date and time for "dijadwalkan"), and the latest note staff wrote
for the caller, read by TTS. Notes and the scheduled date are for the
ticket's own office or own phone number only; anybody else hears the kind and
the bare status. The caller may then record a follow-up, which is added to
the tracked ticket: its timeline and its recordings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select, update

from ivr import keypad, tickets
from ivr.agi.session import CallerHungUp
from ivr.call import Call, Playable, Say, digit_prompts
from ivr.flows.messages import has_recording, record_audible
from ivr.records import STORAGE_ERRORS
from ivr.services import Services
from ivr.speech.normalize import say_date, say_time
from ivr.storage.models import Recording, Ticket, TicketEvent

log = logging.getLogger("ivr.flows.track")

MAX_TRIES = 3
#: More keys than a ticket number has, so that a number keyed too long is
#: refused whole rather than cut to its first 8 digits.
MAX_KEYS = 24
INPUT_TIMEOUT = 6.0
_NUMBER_PROBLEMS = {"empty": "input.none", "never-issued": "track.unknown"}


@dataclass(frozen=True)
class Tracked:
    id: int
    number: str
    kind: str
    status: str
    note: str
    details: dict[str, Any]
    owner: tickets.TicketOwner


async def menu_action(call: Call, services: Services) -> bool:
    """The main menu's "track": True when the call is over (a follow-up was
    left), False back to the menu."""
    return await track(call, services)


async def track(call: Call, services: Services) -> bool:
    ticket = await _ask_ticket(call, services)
    if ticket is None:
        return False
    details_allowed = tickets.may_hear_details(
        ticket.owner, office_id=call.caller.office_id, caller_e164=call.caller.number.e164
    )
    while True:
        call.enter("track:status")
        await call.play(*status_readback(ticket, details_allowed))
        choice = await _options(call)
        if choice == "9":
            continue
        if choice == "1":
            return await _follow_up(call, services, ticket)
        return False


async def _ask_ticket(call: Call, services: Services) -> Tracked | None:
    call.enter("track:number")
    retry: str | None = None
    for _ in range(MAX_TRIES):
        prompts = [retry, "track.enter"] if retry else ["track.enter"]
        answer = await call.read_digits(*prompts, max_digits=MAX_KEYS, timeout=INPUT_TIMEOUT, purpose="ticket-number")
        parsed = keypad.parse_ticket_number(answer.digits)
        if isinstance(parsed, keypad.Problem):
            call.record.add("input-rejected", what="ticket-number", keys=answer.digits, problem=parsed.code)
            retry = _NUMBER_PROBLEMS.get(parsed.code, "track.invalid")
            continue
        try:
            ticket = await load_ticket(services, parsed)
        except STORAGE_ERRORS as exc:
            log.warning("tickets unavailable for tracking: %s", type(exc).__name__)
            call.record.add("track", number=parsed, error="database")
            await call.play("track.unavailable")
            return None
        call.record.add("track", number=parsed, found=ticket is not None, status=ticket.status if ticket else None)
        if ticket is not None:
            call.record.snapshot.ticket_details.setdefault("tracked", [])
            call.record.snapshot.ticket_details["tracked"].append(parsed)
            return ticket
        retry = "track.unknown"
    assert retry is not None
    await call.play(retry)
    return None


_TRACKED_COLUMNS = (
    Ticket.id,
    Ticket.number,
    Ticket.kind,
    Ticket.status,
    Ticket.note_for_caller,
    Ticket.details,
    Ticket.office_id,
    Ticket.caller_e164,
)


async def load_ticket(services: Services, number: str) -> Tracked | None:
    query = select(*_TRACKED_COLUMNS).where(Ticket.number == number)
    ticket = await services.reads.run(lambda connection: connection.execute(query).first(), write=False)
    if ticket is None or ticket.number is None:
        return None
    return Tracked(
        id=ticket.id,
        number=ticket.number,
        kind=ticket.kind,
        status=ticket.status,
        note=(ticket.note_for_caller or "").strip(),
        details=dict(ticket.details or {}),
        owner=tickets.TicketOwner(ticket.office_id, ticket.caller_e164),
    )


def scheduled_at(details: dict[str, Any]) -> tuple[date, time] | None:
    """When a "dijadwalkan" ticket is scheduled: what staff set
    (``scheduled_date``/``scheduled_time`` in the details), else the date and
    time the caller submitted."""
    for day_key, time_key in (("scheduled_date", "scheduled_time"), ("activity_date", "start_time")):
        try:
            return date.fromisoformat(str(details[day_key])), time.fromisoformat(str(details[time_key]))
        except (KeyError, TypeError, ValueError):
            continue
    return None


def scheduled_text(day: date, start: time) -> str:
    return f"Status: dijadwalkan pada {say_date(day)}, {say_time(start)}."


def note_text(note: str) -> str:
    """The read-back of a staff note. The web app may render it when the note
    is written (``SpeechEngine.render(note_text(note))``), so that the caller
    does not wait for synthesis."""
    return f"Catatan dari petugas: {note.strip()}"


def status_readback(ticket: Tracked, details_allowed: bool) -> list[Playable]:
    """What the caller hears about a ticket: its number, kind, status, and
    (for its own office or number) the scheduled date and the staff note."""
    items: list[Playable] = ["track.ticket", *digit_prompts(ticket.number), tickets.kind_prompt(ticket.kind)]
    status_prompt = tickets.status_prompt(ticket.status)
    when = scheduled_at(ticket.details) if ticket.status == tickets.DIJADWALKAN else None
    if details_allowed and when is not None:
        items.append(Say(scheduled_text(*when), fallback=status_prompt))
    else:
        items.append(status_prompt)
    if ticket.note and details_allowed:
        items.append(Say(note_text(ticket.note), fallback="track.note_unavailable"))
    elif ticket.note:
        items.append("track.note_restricted")
    return items


async def _options(call: Call) -> str | None:
    """1 follow-up, 9 hear again, 0 back; None (back) after no valid key."""
    retry: str | None = None
    for _ in range(2):
        prompts = [retry, "track.options"] if retry else ["track.options"]
        answer = await call.read_digits(*prompts, max_digits=1, timeout=INPUT_TIMEOUT, purpose="track-options")
        if answer.digits in ("1", "9", "0"):
            return answer.digits
        retry = "menu.invalid" if answer.digits or not answer.timed_out else "menu.no_input"
    return None


# -- follow-up ------------------------------------------------------------------------


async def _follow_up(call: Call, services: Services, ticket: Tracked) -> bool:
    try:
        result = await record_audible(call, kind="follow_up", label="follow-up", instructions="track.follow_up")
    except CallerHungUp:
        if has_recording(call, "follow_up"):
            call.record.classify(tickets.FOLLOW_UP, status=tickets.ABANDONED_WITH_MESSAGE, follow_up_of=ticket.number)
            if await call.record.checkpoint():
                await _attach(call, services, ticket, call.record.snapshot.recordings[-1].path)
        raise
    if result is None:
        await call.play("message.not_saved")
        return False
    relative = str(result.path.relative_to(call.recordings_dir))
    call.record.classify(tickets.FOLLOW_UP, status=tickets.OPEN, follow_up_of=ticket.number)
    attached = await call.record.checkpoint() and await _attach(call, services, ticket, relative)
    if attached:
        # The follow-up lives on the tracked ticket; this call's ticket only points there.
        call.record.classify(tickets.FOLLOW_UP, status=tickets.CLOSED, follow_up_of=ticket.number)
    call.enter("track:follow-up-saved")
    await call.play("track.follow_up_saved", "goodbye")
    return True


async def _attach(call: Call, services: Services, ticket: Tracked, relative: str) -> bool:
    """Move the follow-up recording onto the tracked ticket and put it on that
    ticket's timeline. The call's own checkpoints never move it back (a
    recording is found by its path and written once)."""
    now = datetime.now(UTC)
    try:
        async with services.sessions.begin() as session:
            recording = await session.scalar(select(Recording).where(Recording.path == relative))
            if recording is None:
                return False
            recording.ticket_id = ticket.id
            # Only the time: the ticket's details are its own call's to write.
            await session.execute(update(Ticket).where(Ticket.id == ticket.id).values(updated_at=now))
            session.add(
                TicketEvent(
                    ticket_id=ticket.id,
                    at=now,
                    kind="follow_up",
                    data={
                        "path": relative,
                        "seconds": round(recording.seconds, 2),
                        "recording_id": recording.id,
                        "call": call.uniqueid,
                        "from_ticket": call.record.ticket_number,
                        "caller_e164": call.caller.number.e164,
                    },
                )
            )
    except STORAGE_ERRORS as exc:
        log.warning("follow-up for %s not attached (%s); it stays on this call's ticket", ticket.number, exc)
        return False
    return True

"""Option 2: submit a request, a notification, or a sudden schedule change.

The conversation: the kind (1 request for a leader to attend, 2 notification
of an activity, 3 sudden schedule change, 0 back); the date (``DDMMYYYY``, or
``DDMM`` for the next such date) and start time (``HHMM``), read back in spoken
Indonesian (1 correct, 2 re-enter); a voice description of up to two minutes
(``#`` or silence ends it), which the caller may hear back, then 1 save, 2
record again; the ticket number read back twice (9 repeats). A sudden schedule
change is urgent: the ticket is flagged and the protocol desk alerted at once
(``ivr.alerts``).

The call's ticket (one per call) becomes the submission only when the caller
confirms it. A caller who hangs up first leaves what they gave on the record:
status ``abandoned``, or ``abandoned-with-message`` when a (partial)
description was recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from ivr import keypad, tickets
from ivr.agi.session import CallerHungUp
from ivr.call import Call, Playable, RecordingResult, Say, digit_prompts
from ivr.flows.messages import has_recording, play_recording, record_audible
from ivr.flows.tickets import read_back_number
from ivr.menus import Menu, choose
from ivr.records import STORAGE_ERRORS
from ivr.services import Services
from ivr.speech.normalize import say_date, say_time
from ivr.storage.models import Ticket

log = logging.getLogger("ivr.flows.submit")

BACK = "back"
KIND_MENU = Menu(
    name="submit_kind",
    prompt="submit.kind",
    options={"1": tickets.REQUEST, "2": tickets.NOTIFICATION, "3": tickets.SCHEDULE_CHANGE, "0": BACK},
    timeout=6,
    max_no_input=3,
    max_invalid=3,
    on_failure=BACK,
)
#: Attempts per input moment (a date, a time, a confirmation) before giving up.
MAX_TRIES = 3
#: Rounds of "2, re-enter" and takes of the description.
MAX_ROUNDS = 3
DESCRIPTION_SECONDS = 120
INPUT_TIMEOUT = 6.0
#: The date prompt asks for DDMMYYYY then "#": more keys than a date has, so
#: the "#" ends this input instead of spilling into the next prompt, and a
#: date keyed too long is refused whole rather than cut to its first 8 digits.
MAX_DATE_KEYS = 12
#: Submissions from one number this close together are flagged as repeats
#: (and both kept: "recorded, not lost").
REPEAT_WINDOW = timedelta(seconds=60)

_DATE_PROBLEMS = {"empty": "input.none", "past": "submit.date_past"}
_TIME_PROBLEMS = {"empty": "input.none", "past": "submit.time_past"}
#: Spoken zone names for the read-back (Indonesia's three zones).
_ZONE_WORDS = {
    "Asia/Jakarta": "Waktu Indonesia Barat",
    "Asia/Pontianak": "Waktu Indonesia Barat",
    "Asia/Makassar": "Waktu Indonesia Tengah",
    "Asia/Jayapura": "Waktu Indonesia Timur",
}


@dataclass
class Submission:
    kind: str
    day: date | None = None
    start: time | None = None
    description: RecordingResult | None = None

    @property
    def urgent(self) -> bool:
        return self.kind == tickets.SCHEDULE_CHANGE

    def details(self, call: Call) -> dict[str, Any]:
        details: dict[str, Any] = {
            "activity_date": self.day.isoformat() if self.day else None,
            "start_time": self.start.strftime("%H:%M") if self.start else None,
        }
        if self.description is not None:
            details["description"] = str(self.description.path.relative_to(call.recordings_dir).with_suffix(".wav"))
            details["description_seconds"] = round(self.description.seconds, 2)
            details["description_truncated"] = self.description.ended_by == "max-length"
        return details


def when_text(day: date, start: time, zone: str) -> str:
    """The read-back of a keyed date and time, in words:
    "Tanggal kegiatan Jumat, lima Desember dua ribu dua puluh enam, pukul
    sembilan lewat tiga puluh menit Waktu Indonesia Barat." """
    zone_words = _ZONE_WORDS.get(zone)
    return f"Tanggal kegiatan {say_date(day)}, {say_time(start)}" + (f" {zone_words}." if zone_words else ".")


async def menu_action(call: Call, services: Services) -> bool:
    """The main menu's "submit": True once submitted (the call ends), False
    back to the menu."""
    return await submit(call, services)


async def submit(call: Call, services: Services) -> bool:
    call.enter("submit:kind")
    kind = await choose(call, KIND_MENU)
    if kind == BACK:
        return False
    draft = Submission(kind)
    call.record.add("submit", kind=kind)
    try:
        if not await _ask_when(call, services, draft):
            call.record.add("submit-cancelled", kind=kind)
            await call.play("submit.cancelled")
            return False
        await _describe(call, draft)
    except CallerHungUp:
        await _abandoned(call, services, draft)
        raise
    except BaseException:
        # Cut off another way (the server shutting down, Asterisk no longer
        # answering, a reply out of protocol): what the caller gave is kept
        # just the same; the alert service's scan raises the urgent alert
        # from the saved ticket, as nothing may be awaited here.
        _keep_what_was_given(call, draft)
        raise
    await _save(call, services, draft)
    return True


# -- date and time -----------------------------------------------------------------


async def _ask_when(call: Call, services: Services, draft: Submission) -> bool:
    zone = services.settings.zone
    for _ in range(MAX_ROUNDS):
        now = datetime.now(zone)
        day = await _ask_date(call, draft.kind, now.date())
        if day is None:
            return False
        start = await _ask_time(call, draft.kind, day, now)
        if start is None:
            return False
        draft.day, draft.start = day, start
        call.enter("submit:confirm-date")
        answer = await _confirm(call, await _when_readback(call, day, start, services.settings.timezone))
        if answer == "1":
            call.record.add("submit-date", date=day.isoformat(), time=start.strftime("%H:%M"))
            return True
        if answer is None:
            return False
    return False


async def _ask_date(call: Call, kind: str, today: date) -> date | None:
    call.enter("submit:date")
    retry: str | None = None
    for _ in range(MAX_TRIES):
        prompts = [retry, "submit.date"] if retry else ["submit.date"]
        answer = await call.read_digits(*prompts, max_digits=MAX_DATE_KEYS, timeout=INPUT_TIMEOUT, purpose="date")
        parsed = keypad.parse_date(answer.digits, today=today, future_only=kind == tickets.REQUEST)
        if not isinstance(parsed, keypad.Problem):
            return parsed
        call.record.add("input-rejected", what="date", keys=answer.digits, problem=parsed.code)
        retry = _DATE_PROBLEMS.get(parsed.code, "submit.date_invalid")
    assert retry is not None
    await call.play(retry)
    return None


async def _ask_time(call: Call, kind: str, day: date, now: datetime) -> time | None:
    call.enter("submit:time")
    retry: str | None = None
    for _ in range(MAX_TRIES):
        prompts = [retry, "submit.time"] if retry else ["submit.time"]
        answer = await call.read_digits(*prompts, max_digits=4, timeout=INPUT_TIMEOUT, purpose="time")
        parsed = keypad.parse_time(answer.digits)
        if (
            not isinstance(parsed, keypad.Problem)
            and kind == tickets.REQUEST
            and datetime.combine(day, parsed, tzinfo=now.tzinfo) < now
        ):
            parsed = keypad.Problem("past")  # a request for today at an hour already gone
        if not isinstance(parsed, keypad.Problem):
            return parsed
        call.record.add("input-rejected", what="time", keys=answer.digits, problem=parsed.code)
        retry = _TIME_PROBLEMS.get(parsed.code, "submit.time_invalid")
    assert retry is not None
    await call.play(retry)
    return None


async def _when_readback(call: Call, day: date, start: time, zone: str) -> list[Playable]:
    """The read-back in words (TTS); without synthesis, the keyed digits
    themselves, which are always pre-rendered."""
    text = when_text(day, start, zone)
    if await call.voice.speech_file(text) is not None:
        return [Say(text)]
    call.record.add("readback-fallback", text=text)
    return [
        "submit.date_is",
        *digit_prompts(day.strftime("%d%m%Y")),
        "submit.time_is",
        *digit_prompts(start.strftime("%H%M")),
    ]


async def _confirm(call: Call, readback: list[Playable]) -> str | None:
    """Read back, then "1 correct, 2 re-enter": returns "1", "2", or None when
    the caller gave neither after ``MAX_TRIES`` askings."""
    retry: list[Playable] = []
    for _ in range(MAX_TRIES):
        answer = await call.read_digits(
            *retry, *readback, "submit.confirm_when", max_digits=1, timeout=INPUT_TIMEOUT, purpose="confirm-date"
        )
        if answer.digits in ("1", "2"):
            return answer.digits
        retry = ["menu.invalid" if answer.digits or not answer.timed_out else "menu.no_input"]
    return None


# -- the description -------------------------------------------------------------


async def _describe(call: Call, draft: Submission) -> None:
    instructions = "submit.describe_change" if draft.urgent else "submit.describe"
    for take in range(1, MAX_ROUNDS + 1):
        result = await record_audible(
            call, kind="description", label="description", instructions=instructions, max_seconds=DESCRIPTION_SECONDS
        )
        if result is None:
            draft.description = None
            await call.play("submit.no_description")
            return
        draft.description = result
        if result.ended_by == "max-length":
            call.record.add("description-truncated", seconds=round(result.seconds, 2))
            await call.play("submit.description_cut")
        if await _review(call, result, can_retake=take < MAX_ROUNDS) == "save":
            return


async def _review(call: Call, result: RecordingResult, *, can_retake: bool) -> str:
    """1 save, 2 record again, 3 hear it back. A caller who goes quiet keeps
    what they recorded ("save")."""
    call.enter("submit:review")
    relative = str(result.path.relative_to(call.recordings_dir))
    retry: str | None = None
    failures = 0
    while failures < MAX_TRIES:
        prompts = [retry, "submit.review"] if retry else ["submit.review"]
        answer = await call.read_digits(*prompts, max_digits=1, timeout=INPUT_TIMEOUT, purpose="review")
        retry = None
        if answer.digits == "1":
            return "save"
        if answer.digits == "2":
            if can_retake:
                call.record.add("description-retake")
                return "retake"
            await call.play("submit.no_more_takes")
            return "save"
        if answer.digits == "3":
            await play_recording(call, relative)
            continue
        failures += 1
        retry = "menu.invalid" if answer.digits or not answer.timed_out else "menu.no_input"
    return "save"


# -- saving ------------------------------------------------------------------------


async def _save(call: Call, services: Services, draft: Submission) -> None:
    call.enter("submit:save")
    details = draft.details(call)
    if draft.description is None:
        details["description"] = None
    details["submitted_at"] = datetime.now(UTC).isoformat()
    repeat_of = await _recent_submission(call, services)
    if repeat_of:
        details["repeat_of"] = repeat_of
    call.record.classify(
        draft.kind,
        status=tickets.OPEN,
        priority=tickets.URGENT if draft.urgent else tickets.NORMAL,
        **details,
    )
    saved = await call.record.checkpoint()
    if draft.urgent and saved:
        await _alert(call, services, details.get("description") or "")
    call.enter("submit:saved")
    await call.play("submit.saved_urgent" if draft.urgent else "submit.saved")
    number = call.record.ticket_number
    if number:
        await read_back_number(call, number)
    else:
        await call.play("submit.number_later")
    await call.play("goodbye")


async def _alert(call: Call, services: Services, recording: str) -> None:
    """Raise the ticket's urgent alert now; should this fail, the alert
    service's scan raises it from the saved ticket."""
    assert call.record.saved is not None
    alerts = services.alerts
    if alerts is None:  # no alert service in this process: another one's scan raises it
        log.warning("no alert service here: ticket %s waits for the scan", call.record.ticket_number)
        return
    alert_id = await alerts.raise_alert(call.record.saved.ticket_id, recording)
    call.record.add("urgent-alert", alert=alert_id, raised=alert_id is not None)


def _keep_what_was_given(call: Call, draft: Submission) -> tuple[bool, dict[str, Any]]:
    """Classify the ticket as the submission it was going to be, abandoned
    (with the description, if one was recorded). Returns (a description was
    recorded, the details)."""
    message = has_recording(call, "description")
    details = draft.details(call)
    if message and draft.description is None:
        last = next(r for r in reversed(call.record.snapshot.recordings) if r.kind == "description")
        details.update(description=last.path, description_seconds=round(last.seconds, 2))
    call.record.classify(
        draft.kind,
        status=tickets.ABANDONED_WITH_MESSAGE if message else tickets.ABANDONED,
        priority=tickets.URGENT if draft.urgent else tickets.NORMAL,
        **details,
    )
    return message, details


async def _abandoned(call: Call, services: Services, draft: Submission) -> None:
    """The caller hung up mid-submission: keep what they gave."""
    message, details = _keep_what_was_given(call, draft)
    if draft.urgent and message and await call.record.checkpoint():
        # A sudden change is urgent even half told: the desk hears what there is.
        await _alert(call, services, str(details.get("description") or ""))


async def _recent_submission(call: Call, services: Services) -> str | None:
    """The number of a submission from the same phone number in the last
    minute, if any (both are kept; staff see the link)."""
    e164 = call.caller.number.e164
    if not e164:
        return None
    now = datetime.now(UTC)
    own = call.record.saved.ticket_id if call.record.saved else None
    try:
        query = (
            select(Ticket.id, Ticket.number, Ticket.details)
            .where(
                Ticket.caller_e164 == e164,
                Ticket.kind.in_(tickets.SUBMISSION_KINDS),
                Ticket.created_at >= now - timedelta(minutes=30),
            )
            .order_by(Ticket.id.desc())
            .limit(20)
        )
        rows = await services.reads.run(lambda connection: connection.execute(query).all(), write=False)
    except STORAGE_ERRORS as exc:
        log.warning("repeat check skipped: %s", type(exc).__name__)
        return None
    for ticket_id, number, details in rows:
        submitted = (details or {}).get("submitted_at")
        if ticket_id == own or not isinstance(submitted, str):
            continue
        try:
            at = datetime.fromisoformat(submitted)
        except ValueError:
            continue
        if now - at <= REPEAT_WINDOW:
            return str(number)
    return None

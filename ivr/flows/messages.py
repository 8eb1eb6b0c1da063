"""Voice recordings in flows: messages, descriptions, follow-ups.

Recordings are stored under the recordings folder by date and ticket,
``tickets/2026/12/03/<ticket number>/02-description.wav``, with names the
server makes (never from caller input), as 8 kHz WAV the way Asterisk records
them, and linked from the ticket with their duration (``record_voice``). A
recording shorter than a second or pure silence is no message: the caller is
asked once more.
"""

from __future__ import annotations

import re
import wave
from datetime import UTC, datetime

from ivr import tickets
from ivr.agi.session import CallerHungUp
from ivr.call import Call, RecordingResult
from ivr.flows.tickets import read_back_number
from ivr.services import Services

MAX_MESSAGE_SECONDS = 120
MIN_MESSAGE_SECONDS = 1.0
#: Peak level under which a recording is taken for silence (16-bit samples).
SILENCE_PEAK = 300
_LABEL = re.compile(r"[^a-z0-9]+")


def recording_name(call: Call, label: str) -> str:
    """A fresh server-made path (without extension) under the recordings folder:
    by the call's date (UTC, like every stored time) and its ticket number, or
    the call's uniqueid while the number is not known yet; numbered within the
    call, so no two recordings of a call share a name."""
    day = call.started_at.astimezone(UTC)
    number = call.record.ticket_number
    folder = number or "call-" + ("".join(ch if ch.isalnum() else "-" for ch in call.uniqueid) or "unknown")
    sequence = len(call.record.snapshot.recordings) + 1
    safe_label = _LABEL.sub("-", label.lower()).strip("-") or "recording"
    return f"tickets/{day:%Y/%m/%d}/{folder}/{sequence:02d}-{safe_label}"


def audible(path: str, seconds: float) -> bool:
    """A message shorter than a second or pure silence is no message."""
    if seconds < MIN_MESSAGE_SECONDS:
        return False
    try:
        import numpy as np

        with wave.open(path, "rb") as handle:
            samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    except (OSError, EOFError, wave.Error):
        return False
    return bool(samples.size) and int(np.abs(samples.astype(np.int32)).max()) > SILENCE_PEAK


async def record_audible(
    call: Call,
    *,
    kind: str,
    label: str,
    instructions: str = "message.instructions",
    max_seconds: int = MAX_MESSAGE_SECONDS,
) -> RecordingResult | None:
    """Record after ``instructions``; when nothing audible came, say so and
    ask once more. Every take stays on the record (a rejected one is marked);
    returns the usable take, or None. A hangup keeps the partial take and
    raises ``CallerHungUp``."""
    if call.record.ticket_number is None and call.record.database_ok:
        # The file goes in its ticket's folder: wait for the call's first save.
        await call.record.checkpoint()
    for attempt in range(2):
        call.enter(f"record:{label}")
        await call.play(instructions)
        result = await call.record_voice(recording_name(call, label), kind=kind, max_seconds=max_seconds)
        if audible(str(result.path), result.seconds):
            return result
        call.record.add("record-rejected", seconds=round(result.seconds, 2), ended_by=result.ended_by)
        if attempt == 0:
            await call.play("message.too_short")
    return None


async def record_message(call: Call, *, kind: str, label: str) -> bool:
    """Record a message, asking once more if nothing audible came. Returns
    whether a usable recording was made."""
    return await record_audible(call, kind=kind, label=label) is not None


async def play_recording(call: Call, relative_path: str, *, escape: str = "") -> str | None:
    """Play a recording back (the caller's own description, or the one the
    desk must hear). Returns the key that interrupted it, if any.

    A hangup raises ``CallerHungUp``."""
    path = (call.recordings_dir / relative_path).with_suffix(".wav")
    if not path.resolve().is_relative_to(call.recordings_dir.resolve()) or not path.is_file():
        call.record.add("error", what="playback", path=relative_path, detail="missing")
        return None
    call.record.add("playback", path=relative_path)
    return await call.play_file(path, escape=escape, during="playback")


def has_recording(call: Call, kind: str) -> bool:
    """Whether the call recorded anything of ``kind`` (a partial take counts)."""
    return any(r.kind == kind and r.seconds > 0 for r in call.record.snapshot.recordings)


async def leave_message(call: Call, services: Services) -> bool:
    try:
        recorded = await record_message(call, kind="message", label="message")
    except CallerHungUp:
        if has_recording(call, "message") and call.record.snapshot.ticket_kind == tickets.INFO:
            call.record.classify(tickets.MESSAGE, status=tickets.ABANDONED_WITH_MESSAGE)
        raise
    if not recorded:
        await call.play("message.not_saved", "goodbye")
        return True
    if call.record.snapshot.ticket_kind == tickets.INFO:  # an emergency stays an emergency
        call.record.classify(tickets.MESSAGE)
    call.record.snapshot.ticket_details["message_at"] = datetime.now(UTC).isoformat()
    await call.record.checkpoint()
    call.enter("message-saved")
    await call.play("message.saved")
    if call.record.ticket_number:
        await read_back_number(call, call.record.ticket_number)
    await call.play("goodbye")
    return True

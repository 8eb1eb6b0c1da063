"""Leaving a voice message: recorded, attached to the call's ticket, number read back."""

from __future__ import annotations

import wave
from datetime import UTC, datetime

from ivr.call import Call
from ivr.flows.tickets import read_back_number
from ivr.services import Services

MAX_MESSAGE_SECONDS = 120
MIN_MESSAGE_SECONDS = 1.0
#: Peak level under which a recording is taken for silence (16-bit samples).
SILENCE_PEAK = 300


def recording_name(call: Call, label: str) -> str:
    """Server-generated path under the recordings folder: by date and call,
    never from caller input."""
    day = call.started_at.astimezone(UTC)
    safe_id = "".join(ch if ch.isalnum() else "-" for ch in call.uniqueid) or "call"
    return f"tickets/{day:%Y/%m/%d}/{safe_id}-{label}"


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


async def record_message(call: Call, *, kind: str, label: str) -> bool:
    """Record a message, asking once more if nothing audible came. Returns
    whether a usable recording was made."""
    for attempt in range(2):
        call.enter(f"record:{label}")
        await call.play("message.instructions")
        result = await call.record_voice(
            f"{recording_name(call, label)}-{attempt + 1}", kind=kind, max_seconds=MAX_MESSAGE_SECONDS
        )
        if audible(str(result.path), result.seconds):
            return True
        call.record.add("record-rejected", seconds=round(result.seconds, 2))
        if attempt == 0:
            await call.play("message.too_short")
    return False


async def leave_message(call: Call, services: Services) -> bool:
    if not await record_message(call, kind="message", label="message"):
        await call.play("message.not_saved", "goodbye")
        return True
    if call.record.snapshot.ticket_kind == "info":  # an emergency stays an emergency
        call.record.classify("message")
    call.record.snapshot.ticket_details["message_at"] = datetime.now(UTC).isoformat()
    await call.record.checkpoint()
    call.enter("message-saved")
    await call.play("message.saved")
    if call.record.ticket_number:
        await read_back_number(call, call.record.ticket_number)
    await call.play("goodbye")
    return True

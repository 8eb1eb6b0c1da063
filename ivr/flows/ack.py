"""``ack``: a duty officer's phone, called back for an unanswered emergency.

The callback loop originates the officer's phone into ``[callcenter-callback]``,
which runs this flow with the job id and its token. The officer hears who
called and when, the caller's message, and "tekan 1 untuk mengonfirmasi"; 9
plays the message again. The first 1 closes the alarm (who, when) and the
officer hears the caller's number to call back; an officer who presses 1 after
someone else did is told who did.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ivr.agi.session import CallerHungUp
from ivr.call import Call, Say, digit_prompts
from ivr.emergency.callbacks import ACKNOWLEDGED, NOT_ACKNOWLEDGED, AckContext
from ivr.flows.emergency import desk_of
from ivr.services import Services
from ivr.speech.normalize import say_time

log = logging.getLogger("ivr.flows.ack")

#: How often the officer may ask to hear the message again (key 9).
MAX_REPLAYS = 2


async def run(call: Call, services: Services) -> None:
    call.enter("ack")
    desk = desk_of(services)
    args = call.environment.args
    job_id = int(args[0]) if args and args[0].isdigit() else None
    token = args[1] if len(args) > 1 else ""
    context = None
    if desk is not None and job_id is not None:
        context = await desk.callbacks.ack_started(job_id, token, call.uniqueid)
    if desk is None or context is None:
        log.warning("callback leg for unknown job %s (or database down)", job_id)
        await call.play("ack.unknown")
        return
    call.record.snapshot.ticket_details["callback"] = {"job": context.job_id, "alarm": context.alarm_id}
    result, detail = NOT_ACKNOWLEDGED, ""
    try:
        result, detail = await _converse(call, services, context)
    except CallerHungUp:
        detail = "the officer hung up"
        raise
    finally:
        if result != ACKNOWLEDGED:
            await desk.callbacks.ack_finished(context, result, detail)


async def _converse(call: Call, services: Services, context: AckContext) -> tuple[str, str]:
    desk = desk_of(services)
    assert desk is not None
    if context.alarm_state == "acknowledged":
        await call.play("ack.already", Say(_by_whom(context.acknowledged_by, context.acknowledged_via)))
        return "already acknowledged", context.acknowledged_by
    when = say_time(context.raised_at.astimezone(services.settings.zone).time())
    await call.play("ack.intro", Say(f"Panggilan darurat dari {context.caller_spoken}, {when}, belum terjawab."))
    for replay in range(MAX_REPLAYS + 1):
        if context.message_path:
            await call.play("ack.message_follows")
            await play_recording(call, services.settings.recordings_root / context.message_path)
        answer = await call.read_digits("ack.press_1", max_digits=1, timeout=8, purpose="ack")
        if answer.digits == "1":
            call.enter("ack:confirm")
            won, who = await desk.callbacks.acknowledge_by_phone(context, context.officer_name)
            if not won:
                await call.play("ack.already", Say(_by_whom(who, "phone")))
                return "already acknowledged", who
            await call.play("ack.confirmed")
            if context.callback_digits:
                await call.play("ack.caller_number", *digit_prompts(context.callback_digits))
                await call.play("ack.caller_number_again", *digit_prompts(context.callback_digits))
            return ACKNOWLEDGED, ""
        if answer.digits != "9" or replay == MAX_REPLAYS:
            break
    await call.play("ack.not_confirmed")
    return NOT_ACKNOWLEDGED, "no 1 from the officer"


def _by_whom(who: str, via: str) -> str:
    if via == "web" or not who:
        return "Sudah dikonfirmasi oleh staf protokol melalui aplikasi web."
    return f"Sudah dikonfirmasi oleh {who}."


#: A WAV with nothing after its header holds no message.
WAV_HEADER_BYTES = 44


def _has_audio(path: Path) -> bool:
    try:
        return path.stat().st_size > WAV_HEADER_BYTES  # one stat: cheap on the call path
    except OSError:
        return False


async def play_recording(call: Call, path: Path) -> None:
    """Play the emergency caller's recorded message to the officer."""
    if not _has_audio(path):
        log.error("recorded message %s is missing", path.name)
        call.record.add("prompt", prompt=None, text="[pesan penelepon tidak ditemukan]", missing=True)
        return
    call.record.add("prompt", prompt=None, text="[pesan penelepon]", recording=path.name)
    await call.play_file(path)

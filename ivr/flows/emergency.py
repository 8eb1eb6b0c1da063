"""Emergency routing: the emergency number, option 9 of the main menu and
option 1 after hours (PRODUCT.md section 3, "Emergency routing").

The caller hears they are being connected; the duty officers are rung one
attempt at a time with screening (``ivr.emergency.routing``), the caller
hearing a holding prompt between attempts. The chain comes from the cached
roster, so none of this waits on the database. Nobody accepting leads to a
message, an "emergency unanswered" ticket and an alarm whose callbacks go on
until an officer acknowledges.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from ivr import callerid, channel_vars
from ivr.agi.session import CallerHungUp
from ivr.call import Call, CallerInfo
from ivr.emergency.callbacks import AlarmDraft
from ivr.emergency.roster import Plan
from ivr.emergency.routing import AttemptResult, EmergencyRouter, try_attempt
from ivr.emergency.service import EmergencyServices
from ivr.flows import operator
from ivr.flows.messages import record_message
from ivr.flows.tickets import read_back_number
from ivr.services import Services
from ivr.speech.normalize import say_digits

log = logging.getLogger("ivr.flows.emergency")

#: The ticket number is read back only if saving the record takes less than this.
CHECKPOINT_WAIT = 3.0
_LABEL_UNSAFE = str.maketrans({ch: " " for ch in ';|&$\\"{}()\r\n\t'})


async def run(call: Call, services: Services) -> None:
    await call.answer()
    await route_emergency(call, services)
    await call.hangup()


def desk_of(services: Services) -> EmergencyServices | None:
    # ``Services.emergency`` is set by ``ivr.app.running``; a Services built
    # without it (older wiring, unit fixtures) still routes via the desk below.
    desk = getattr(services, "emergency", None)
    return desk if isinstance(desk, EmergencyServices) else None


async def route_emergency(call: Call, services: Services) -> None:
    desk = desk_of(services)
    if desk is None:
        log.error("emergency routing is not configured: ringing the protocol desk instead")
        call.enter("emergency")
        call.record.classify("emergency", priority="urgent", emergency={"source": "desk"})
        await operator.connect(call, services)
        return
    router = desk.router
    started = router.clock()
    call.enter("emergency")
    plan = router.plan_now()
    summary: dict[str, Any] = {"result": "in escalation", **plan.summary()}
    call.record.classify("emergency", priority="urgent", emergency=summary)
    call.record.add("emergency", source=plan.source, shift=plan.shift, rounds=plan.rounds)
    for flag in plan.flags:
        call.record.add("roster-flag", **flag.as_dict())
    if plan.flags:
        log.warning("emergency routed with flags: %s", "; ".join(f.detail for f in plan.flags))
    label = who_is_calling(call.caller)
    router.prerender(call.voice, screen_text(label))
    try:
        await call.play("emergency.connecting")
        accepted = await _escalate(call, router, plan, label)
    except CallerHungUp:
        summary["result"] = "abandoned during escalation"
        call.record.classify("emergency", priority="urgent", emergency=summary)
        # A caller who gave up waiting (or was cut off) still had an emergency
        # nobody accepted: the duty officers are called back about it as well.
        await desk.callbacks.raise_alarm(alarm_draft(call, plan, label))
        raise
    if accepted is not None:
        summary.update(
            result="answered",
            accepted_by=accepted.answered_by.name if accepted.answered_by else None,
            time_to_answer_seconds=_time_to_answer(accepted, started),
        )
        call.record.classify("emergency", priority="urgent", emergency=summary)
        call.outcome = "emergency-answered"
        if not accepted.caller_gone:
            call.enter("emergency:after-call")
            await call.play("goodbye")
        return
    summary["result"] = "unanswered"
    call.record.classify("emergency", priority="urgent", emergency=summary)
    call.outcome = "emergency-unanswered"
    await _message_and_alarm(call, desk, plan, label)


async def _escalate(call: Call, router: EmergencyRouter, plan: Plan, label: str) -> AttemptResult | None:
    call.enter("emergency:escalation")
    # Inherited by the officers' legs (the leading "_"): where the decision goes, who is calling.
    await call.set_variable("_" + channel_vars.SCREEN_PARENT, call.environment.channel)
    await call.set_variable("_" + channel_vars.SCREEN_FROM, label)
    dials = 0
    for attempt in plan.attempts():
        if attempt.index:
            await call.play("emergency.please_hold")
        for result in await try_attempt(call, router, attempt, dials + 1):
            dials += 1
            if result.accepted:
                return result
    return None


async def _message_and_alarm(call: Call, desk: EmergencyServices, plan: Plan, label: str) -> None:
    call.enter("emergency:message")
    recorded = False
    try:
        await call.play("emergency.unanswered")
        recorded = await record_message(call, kind="emergency", label="emergency")
        try:
            async with asyncio.timeout(CHECKPOINT_WAIT):
                await call.record.checkpoint()
        except TimeoutError:
            log.warning("call record not saved in %.0fs; the ticket number is not read back", CHECKPOINT_WAIT)
    finally:
        # Raised even when the caller hangs up while recording: an emergency
        # nobody accepted is always followed up.
        await desk.callbacks.raise_alarm(alarm_draft(call, plan, label))
    call.enter("emergency:alarm")
    await call.play("emergency.message_saved" if recorded else "emergency.no_message")
    if call.record.ticket_number:
        await read_back_number(call, call.record.ticket_number)
    await call.play("goodbye")


def _time_to_answer(result: AttemptResult, started: float) -> float | None:
    """From the start of routing to the officer's 1 (or, when the screening
    ran in another process, to the officer picking up)."""
    offset = result.accepted_after if result.accepted_after is not None else result.answered_after
    return None if offset is None else round(result.began + offset - started, 3)


def alarm_draft(call: Call, plan: Plan, label: str) -> AlarmDraft:
    snapshot = call.record.snapshot
    message = next((r for r in reversed(snapshot.recordings) if r.kind == "emergency"), None)
    digits = callerid.spoken_digits_source(call.caller.number) or ""
    return AlarmDraft(
        call_uniqueid=snapshot.uniqueid,
        raised_at=datetime.now(UTC),
        ticket_number=call.record.ticket_number,
        caller_number=snapshot.caller_number,
        caller_e164=snapshot.caller_e164,
        caller_name=call.caller.caller_name or "",
        office_name=call.caller.office_name or "",
        caller_spoken=label,
        callback_digits=digits,
        message_path=message.path if message else None,
        message_seconds=round(message.seconds, 2) if message else 0.0,
        flags=[f.as_dict() for f in plan.flags],
    )


def who_is_calling(caller: CallerInfo) -> str:
    """Who the duty officer hears is calling: the office (and name) from the
    directory, else the number digit by digit, else that it is not known.
    Kept to characters that are harmless in a channel variable and the dialplan."""
    if caller.office_name:
        text = f"{caller.caller_name}, {caller.office_name}" if caller.caller_name else caller.office_name
    else:
        digits = callerid.spoken_digits_source(caller.number)
        if digits:
            text = "nomor " + say_digits(digits)
        elif caller.number.kind == "withheld":
            text = "nomor yang disembunyikan"
        else:
            text = "nomor yang tidak dikenal"
    cleaned = " ".join(text.translate(_LABEL_UNSAFE).split())
    return cleaned[:150]


def screen_text(label: str) -> str:
    return f"Panggilan darurat dari {label}."

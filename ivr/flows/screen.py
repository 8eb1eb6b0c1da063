"""``screen``: runs on a duty officer's leg before Asterisk bridges an emergency.

``Dial(...,U(callcenterscreen^<attempt>^<deadline>))`` answers the officer's
phone and runs ``[callcenterscreen]``, which runs this flow with the attempt
token and deadline as arguments. The officer hears who is calling (inherited
``IVR_SCREEN_FROM``: on this leg the caller ID is the IVR's own) and "tekan 1
untuk menerima, 2 untuk menolak". Only 1 bridges; 2, no key, or a 1 that comes
too late or after another officer's moves the caller on at once. The decision
goes back in ``IVR_SCREEN_DECISION``.
"""

from __future__ import annotations

import logging
import time

from ivr import channel_vars
from ivr.call import Call, Say
from ivr.emergency.routing import ACCEPT, DECLINE, LATE, TAKEN, TIMEOUT, call_of_token, valid_token
from ivr.flows.emergency import desk_of, screen_text
from ivr.services import Services

log = logging.getLogger("ivr.flows.screen")

_AFTER = {ACCEPT: "screen.accepted", DECLINE: "screen.declined", LATE: "screen.too_late", TAKEN: "screen.taken"}


async def run(call: Call, services: Services) -> None:
    call.enter("screen")
    args = call.environment.args
    token = args[0] if args and valid_token(args[0]) else ""
    deadline = float(args[1]) if len(args) > 1 and args[1].isdigit() else 0.0
    call.record.snapshot.ticket_details["screening"] = {"attempt": token, "emergency_call": call_of_token(token)}
    decision = TIMEOUT
    try:
        decision = await _screen(call, services, token, deadline)
    finally:
        # Whatever happened (even a hangup), the dialplan must not bridge unless ACCEPT.
        await call.set_variable(channel_vars.SCREEN_DECISION, decision)
        call.record.add("screen", decision=decision, attempt=token)
        log.info("screening of %s: %s", token or "?", decision)
    after = _AFTER.get(decision)
    if after:
        await call.play(after)


async def _screen(call: Call, services: Services, token: str, deadline: float) -> str:
    if not token:
        log.error("screen flow started without an attempt token: declining")
        return DECLINE
    who = await call.get_variable(channel_vars.SCREEN_FROM) or ""
    intro = Say(screen_text(who), fallback="screen.emergency") if who else "screen.emergency"
    timeout = services.settings.emergency_screen_seconds
    for attempt in range(2):
        answer = await call.read_digits(
            intro, "screen.accept_or_decline", max_digits=1, timeout=timeout, purpose="screen"
        )
        key = answer.digits
        if key == "1":
            return _accept(call, services, token, deadline)
        if key == "2":
            return DECLINE
        if not key:
            return TIMEOUT
        if attempt == 0:
            intro = "menu.invalid"
    return TIMEOUT


def _accept(call: Call, services: Services, token: str, deadline: float) -> str:
    desk = desk_of(services)
    channel = call.environment.channel
    if desk is not None:
        return desk.router.decide_accept(token, deadline, channel)
    return LATE if deadline and time.time() > deadline else ACCEPT

"""Main-menu option 1: the leaders' agenda, read back by voice.

    caller known, or PIN ok  ->  choose a leader (1/2/3, 0 back)
                             ->  the day's items in time order with their status
                                 (any of 1 9 0 * interrupts at once)
                             ->  1 tomorrow, 9 (or *) repeat, 0 back to the main menu

Unknown callers hear that the agenda is for registered offices and may log in
with their registered number and PIN (3 tries per call, then the calling
number is locked out for a while). Read-backs are pre-rendered; on a miss the
call waits a bounded time for synthesis, and otherwise hears a short apology
and returns to the main menu: never silence.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Final, Literal

from ivr.agenda import store
from ivr.agenda.pins import caller_key
from ivr.agenda.speech import DayReadback, day_readback, leader_menu_text
from ivr.agenda.store import LeaderInfo
from ivr.call import Call, Say
from ivr.records import STORAGE_ERRORS
from ivr.services import Services

if TYPE_CHECKING:
    from ivr.agenda import AgendaServices

log = logging.getLogger("ivr.flows.agenda")

#: Keys that interrupt a day's read-back: tomorrow, repeat, back, repeat.
DAY_KEYS: Final = "190*"
MENU_TIMEOUT: Final = 6.0
MAX_FAILURES: Final = 3
PIN_TIMEOUT: Final = 8.0
#: Digits of a registered number as keyed in ("081234567890", "0286591234").
MAX_NUMBER_DIGITS: Final = 16
#: PINs have 4 to 8 digits and the prompt asks for "#" after them: more keys
#: than that, so "#" ends the input instead of spilling into the next prompt.
MAX_PIN_KEYS: Final = 12

Next = Literal["menu", "hangup"]


async def menu_action(call: Call, services: Services) -> bool:
    """Returns True when the call is over, False to go back to the main menu."""
    agenda = services.agenda
    call.enter("agenda")
    if agenda is None:  # not configured in this process
        await call.play("agenda.unavailable")
        return False
    if not await _has_access(call, agenda):
        return False
    leader = await _choose_leader(call, agenda)
    if not isinstance(leader, LeaderInfo):
        return leader == "hangup"
    return await _read_agenda(call, agenda, leader) == "hangup"


# -- access --------------------------------------------------------------------------


async def _has_access(call: Call, agenda: AgendaServices) -> bool:
    caller = call.caller
    if caller.registered or caller.verified_by_pin:
        call.record.add("agenda-access", granted=True, by="pin" if caller.verified_by_pin else "directory")
        return True
    call.enter("agenda:access")
    key = caller_key(caller.number)
    try:
        locked = await agenda.pins.locked_until(key)
    except STORAGE_ERRORS as exc:
        log.warning("PIN lockouts unavailable (%s): no PIN login now", type(exc).__name__)
        call.record.add("agenda-access", granted=False, reason="database")
        await call.play("agenda.registered_only", "agenda.unavailable")
        return False
    await call.play("agenda.registered_only")
    if locked is not None:
        call.record.add("agenda-access", granted=False, reason="locked", until=locked.isoformat())
        await call.play("agenda.pin_locked")
        return False
    offer = await call.read_digits("agenda.pin_offer", max_digits=1, timeout=MENU_TIMEOUT, purpose="pin-offer")
    if offer.digits != "1":
        call.record.add("agenda-access", granted=False, reason="no-pin")
        return False
    return await _pin_login(call, agenda, key)


async def _pin_login(call: Call, agenda: AgendaServices, key: str) -> bool:
    attempts = agenda.pins.policy.attempts
    for attempt in range(1, attempts + 1):
        call.enter("agenda:pin")
        number = await call.read_digits(
            "agenda.pin_number", max_digits=MAX_NUMBER_DIGITS, timeout=PIN_TIMEOUT, purpose="pin-number"
        )
        pin = await _read_secret(call, "agenda.pin_enter")
        if not number.digits and not pin:
            call.record.add("pin", attempt=attempt, result="no-input")
            await call.play("menu.no_input")
            continue
        try:
            result = await agenda.pins.check(key, number.digits, pin)
        except STORAGE_ERRORS as exc:
            log.warning("PIN check unavailable (%s)", type(exc).__name__)
            call.record.add("pin", attempt=attempt, result="unavailable")
            await call.play("agenda.unavailable")
            return False
        call.record.add("pin", attempt=attempt, result=result.outcome, caller=result.caller_id)
        if result.ok:
            call.caller.verified_by_pin = True
            snapshot = call.record.snapshot
            if snapshot.caller_id is None:  # the ticket shows who logged in
                snapshot.caller_id, snapshot.office_id = result.caller_id, result.office_id
            await call.play("agenda.pin_ok")
            return True
        if result.locked:
            await call.play("agenda.pin_wrong", "agenda.pin_locked")
            return False
        await call.play("agenda.pin_wrong")
    return False


async def _read_secret(call: Call, prompt: str) -> str:
    """Collect a PIN; its digits never reach the call's timeline or the logs."""
    answer = await call.read_digits(prompt, max_digits=MAX_PIN_KEYS, timeout=PIN_TIMEOUT, purpose="pin", secret=True)
    return answer.digits


# -- choosing a leader ----------------------------------------------------------------


async def _leaders(agenda: AgendaServices) -> list[LeaderInfo]:
    try:
        async with asyncio.timeout(agenda.config.db_timeout), agenda.sessions() as session:
            leaders = await store.list_leaders(session)
    except STORAGE_ERRORS as exc:
        log.warning("leaders unavailable (%s): using the last known list", type(exc).__name__)
        return list(agenda.prerenderer.leaders)
    agenda.prerenderer.remember_leaders(leaders)
    return leaders


async def _choose_leader(call: Call, agenda: AgendaServices) -> LeaderInfo | Next:
    call.enter("agenda:leader")
    leaders = await _leaders(agenda)
    by_key = {leader.menu_key: leader for leader in leaders if leader.menu_key not in ("0", "*")}
    if not by_key:
        await call.play("agenda.unavailable")
        return "menu"
    prompt = Say(leader_menu_text(leaders), fallback="agenda.choose_leader")
    no_input = invalid = 0
    while True:
        answer = await call.read_digits(prompt, max_digits=1, timeout=MENU_TIMEOUT, purpose="leader")
        if answer.digits in by_key:
            leader = by_key[answer.digits]
            call.record.add("agenda-leader", leader=leader.id, title=leader.title)
            return leader
        if answer.digits == "0":
            return "menu"
        if answer.digits == "*":
            continue
        if answer.digits:
            invalid += 1
            retry = "menu.invalid"
        else:
            no_input += 1
            retry = "menu.no_input"
        if max(invalid, no_input) >= MAX_FAILURES:
            await call.play("goodbye")
            return "hangup"
        await call.play(retry)


# -- the day's read-back --------------------------------------------------------------


async def _readback(agenda: AgendaServices, leader: LeaderInfo, day: dt.date) -> DayReadback | None:
    """Fresh from the database; during an outage, as last pre-rendered."""
    try:
        async with asyncio.timeout(agenda.config.db_timeout), agenda.sessions() as session:
            return day_readback(await store.load_day(session, leader.id, day))
    except store.LeaderNotFound:
        return None
    except STORAGE_ERRORS as exc:
        log.warning("agenda unavailable (%s): reading the last known one", type(exc).__name__)
        return agenda.prerenderer.last_known(leader.id, day)


async def _ready(call: Call, texts: tuple[str, ...]) -> bool:
    """Every text has audio now: cached (the usual case) or synthesized within
    the bounded wait. Asked all at once, so the waits overlap."""
    files = await asyncio.gather(*(call.voice.speech_file(text) for text in texts))
    return all(path is not None for path in files)


async def _read_agenda(call: Call, agenda: AgendaServices, leader: LeaderInfo) -> Next:
    today = agenda.today()
    day = today
    while True:
        tomorrow = day != today
        call.enter("agenda:tomorrow" if tomorrow else "agenda:today")
        readback = await _readback(agenda, leader, day)
        if readback is None or not await _ready(call, readback.texts):
            call.record.add("agenda-readback", leader=leader.id, day=day.isoformat(), ready=False)
            if readback is not None:  # audio missing: have it ready for the next caller
                agenda.prerenderer.notify(leader_id=leader.id, day=day)
            await call.play("agenda.unavailable")
            return "menu"
        call.record.add("agenda-readback", leader=leader.id, day=day.isoformat(), items=len(readback.items))
        options = "agenda.options_tomorrow" if tomorrow else "agenda.options_today"
        says = [Say(text, fallback="agenda.unavailable") for text in readback.texts]
        key = await call.play(*says, options, escape=DAY_KEYS)
        key = await _day_choice(call, key, options)
        if key == "1":
            day = today + dt.timedelta(days=1)
        elif key == "0":
            return "menu"
        elif key is None:
            await call.play("goodbye")
            return "hangup"
        # "9" or "*": the same day again, read afresh.


async def _day_choice(call: Call, key: str | None, options: str) -> str | None:
    """The caller's choice after a read-back; None after too many failures."""
    no_input = invalid = 0
    while True:
        if key is None:
            key = await call.wait_key(MENU_TIMEOUT)
        if key is not None and key in DAY_KEYS:
            return key
        if key is None:
            no_input += 1
            retry = "menu.no_input"
        else:
            invalid += 1
            retry = "menu.invalid"
        if max(no_input, invalid) >= MAX_FAILURES:
            return None
        key = await call.play(retry, options, escape=DAY_KEYS)

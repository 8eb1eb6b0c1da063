r"""Ringing duty officers with call screening, one Dial at a time.

Each attempt is one ``EXEC Dial`` with the pre-bridge subroutine ``U()``: when
an officer's phone answers, Asterisk runs ``[callcenterscreen]`` on the
officer's leg, which runs our ``screen`` flow (``ivr.flows.screen``). Only a
1 there bridges the call, so a mobile voicemail never "answers" an emergency.
Wire view of one attempt, from the caller's FastAGI session::

    >> SET VARIABLE "_IVR_SCREEN_PARENT" "PJSIP/trunk-00000012"
    >> SET VARIABLE "_IVR_SCREEN_FROM" "Dinas Kesehatan"
    >> EXEC "Dial" "PJSIP/201&PJSIP/202,20,U(callcenterscreen^1765432100d12x1^1765432138)"
    << 200 result=0                                  (the officer declined: GOSUB_RESULT=CONTINUE)
    >> GET VARIABLE "DIALSTATUS"
    << 200 result=1 (ANSWER)                         (ANSWER even when declined: README, second round)
    >> GET VARIABLE "SHARED(IVR_SCREEN_DECISION)"
    << 200 result=1 (DECLINE:1765432100d12x1)

``DIALSTATUS`` reads ANSWER whether the officer accepted or declined, so the
decision comes back in a variable of our own: the subroutine copies the
``screen`` flow's ``IVR_SCREEN_DECISION`` onto the caller's channel with
``SHARED()``, suffixed with the attempt's token so that a stale value from an
earlier attempt can never be taken for this one. The officer's leg learns who
is calling from ``IVR_SCREEN_FROM``, which it inherits (the leading ``_``), and
not from its own caller ID (README: on the officer's leg it is the IVR's).

The attempt token (``U()`` argument 1) is the call's uniqueid with ``.`` as
``d``, ``x``, and the attempt's sequence number: ``U()`` arguments and the Dial
options must stay alphanumeric (``ivr.call`` refuses anything else). Argument 2
is the attempt's deadline (epoch seconds): a 1 pressed later is "too late"
wherever the ``screen`` flow runs. In this process, :class:`EmergencyRouter`
also knows which attempts are still open, so a 1 for an attempt the caller
has left, or that another officer accepted first, is refused.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ivr import channel_vars
from ivr.agi.protocol import AGIError
from ivr.agi.session import CallerHungUp
from ivr.call import Call, Voice
from ivr.config import Settings
from ivr.emergency.roster import Attempt, Defaults, Plan, PlannedOfficer, RosterCache, plan

log = logging.getLogger("ivr.emergency.routing")

#: The screening subroutine context (``dialplans/extensions.conf``). No ``-``:
#: ``ivr.call`` lets only letters, digits, ``()`` and ``^`` into Dial options.
SCREEN_SUBROUTINE = "callcenterscreen"

# What the ``screen`` flow decides (IVR_SCREEN_DECISION). Only ACCEPT bridges.
ACCEPT = "ACCEPT"
DECLINE = "DECLINE"
TIMEOUT = "TIMEOUT"
LATE = "LATE"
TAKEN = "TAKEN"
DECISIONS = (ACCEPT, DECLINE, TIMEOUT, LATE, TAKEN)

# Attempt outcomes as the ticket timeline shows them (PRODUCT.md section 3).
ACCEPTED = "accepted"
DECLINED = "declined"
NO_ANSWER = "no answer"
BUSY = "busy"
UNAVAILABLE = "unavailable"
SCREENING_TIMEOUT = "screening timeout"
CANCELLED = "cancelled"

#: Beyond ring time and the officer's decision window, what the screening
#: prompts themselves may take before a 1 counts as too late.
SCREEN_PROMPT_ALLOWANCE = 12.0
#: Once one officer of a simultaneous level declined, the others are rung again
#: for what is left of the level's ring time, if at least this much is left.
MIN_REDIAL_SECONDS = 5
#: How many ended attempts the router remembers (to refuse a late 1 for one).
ENDED_MEMORY = 1000
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}(;\d)?$")
_TOKEN = re.compile(r"^[A-Za-z0-9]{1,60}$")


def attempt_token(uniqueid: str, sequence: int) -> str:
    key = re.sub(r"[^A-Za-z0-9]", "d", uniqueid)[:40] or "call"
    return f"{key}x{sequence}"


def call_of_token(token: str) -> str:
    """The emergency call's uniqueid back from a token (for the screening leg's log)."""
    key, _, _ = token.rpartition("x")
    return key.replace("d", ".")


def valid_token(token: str) -> bool:
    return _TOKEN.match(token) is not None and "x" in token


def dial_string_of_channel(channel: str) -> str:
    """``Local/201@officers-0000002d;1`` -> ``Local/201@officers``; ``PJSIP/201-00000005`` -> ``PJSIP/201``."""
    return _CHANNEL_SUFFIX.sub("", channel)


def classify(dial_status: str, decision: str) -> tuple[str, str]:
    """(outcome, detail) of one screened Dial."""
    if dial_status == "ANSWER":
        return {
            ACCEPT: (ACCEPTED, ""),
            DECLINE: (DECLINED, "the officer pressed 2"),
            TIMEOUT: (SCREENING_TIMEOUT, "no key from the officer"),
            LATE: (SCREENING_TIMEOUT, "the officer pressed 1 too late"),
            TAKEN: (DECLINED, "another officer had accepted"),
        }.get(decision, (SCREENING_TIMEOUT, "the screening leg gave no decision"))
    return {
        "NOANSWER": (NO_ANSWER, ""),
        "BUSY": (BUSY, ""),
        "CONGESTION": (UNAVAILABLE, "congestion"),
        "CHANUNAVAIL": (UNAVAILABLE, "channel unavailable"),
        "CANCEL": (CANCELLED, "the caller hung up"),
    }.get(dial_status, (UNAVAILABLE, dial_status.lower()))


@dataclass
class LiveAttempt:
    """An attempt whose Dial is running in this process."""

    token: str
    call_uniqueid: str
    deadline: float
    open: bool = True
    accepted_by: str | None = None
    accepted_at: float | None = None
    #: Officers' channels whose 1 was refused, with why (LATE or TAKEN).
    refused: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class AttemptResult:
    """One screened Dial, as it goes into the ticket timeline."""

    attempt: Attempt
    officers: tuple[PlannedOfficer, ...]
    targets: tuple[str, ...]
    ring_seconds: int
    started_at: datetime
    #: ``EmergencyRouter.clock()`` when the Dial started.
    began: float
    outcome: str
    detail: str = ""
    dial_status: str = ""
    answered_by: PlannedOfficer | None = None
    #: Seconds from the start of this Dial until the officer's phone picked up.
    answered_after: float | None = None
    #: Seconds from the start of this Dial until the officer pressed 1.
    accepted_after: float | None = None
    refused: list[tuple[str, str]] = field(default_factory=list)
    caller_gone: bool = False

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED

    def event(self) -> dict[str, Any]:
        return {
            "round": self.attempt.round,
            "level": self.attempt.level,
            "mode": self.attempt.mode,
            "officers": [o.name for o in self.officers],
            "target": "&".join(self.targets),
            "ring_seconds": self.ring_seconds,
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "outcome": self.outcome,
            "detail": self.detail,
            "dial_status": self.dial_status,
            "answered_by": self.answered_by.name if self.answered_by else None,
            "answered_after_seconds": self.answered_after,
            "accepted_after_seconds": self.accepted_after,
            "refused": [{"channel": c, "decision": d} for c, d in self.refused],
        }


class EmergencyRouter:
    """Plans emergencies from the cached roster and keeps this process's live attempts.

    ``clock`` is epoch seconds (the deadline crosses processes in the Dial
    string); tests replace it to make an officer's 1 arrive late.
    """

    def __init__(self, settings: Settings, roster: RosterCache, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.roster = roster
        self.clock = clock
        self.attempts: dict[str, LiveAttempt] = {}
        #: Tokens of attempts that ended here lately: a 1 for one of them is too late.
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._prerenders: set[asyncio.Task[Any]] = set()

    @property
    def defaults(self) -> Defaults:
        s = self.settings
        return Defaults(s.emergency_ring_seconds, s.emergency_rounds, tuple(s.emergency_fallback_dial))

    def plan_now(self, at: datetime | None = None) -> Plan:
        return plan(self.roster.roster, at or datetime.now(UTC), self.defaults)

    @property
    def screen_budget(self) -> float:
        return self.settings.emergency_screen_seconds + SCREEN_PROMPT_ALLOWANCE

    # -- the caller's side ------------------------------------------------------
    def open_attempt(self, token: str, call_uniqueid: str, ring_seconds: int) -> LiveAttempt:
        deadline = self.clock() + ring_seconds + self.screen_budget
        live = LiveAttempt(token, call_uniqueid, deadline)
        self.attempts[token] = live
        return live

    def close_attempt(self, token: str) -> LiveAttempt | None:
        live = self.attempts.pop(token, None)
        if live is not None:
            live.open = False
            self._ended[token] = None
            while len(self._ended) > ENDED_MEMORY:
                self._ended.popitem(last=False)
        return live

    # -- the officer's side -----------------------------------------------------
    def decide_accept(self, token: str, deadline: float, channel: str) -> str:
        """An officer pressed 1: ACCEPT, or LATE (past the deadline, or the
        caller already moved on), or TAKEN (another officer accepted first).

        The check and the claim happen without an ``await`` in between, so of
        two officers pressing 1 at once exactly one is accepted. For an attempt
        run by another process only the deadline can be checked here; Asterisk's
        Dial then bridges at most one officer anyway."""
        now = self.clock()
        live = self.attempts.get(token)
        if live is None:
            return LATE if now > deadline or token in self._ended else ACCEPT
        if not live.open or now > min(deadline, live.deadline):
            live.refused.append((channel, LATE))
            return LATE
        if live.accepted_by is not None:
            live.refused.append((channel, TAKEN))
            return TAKEN
        live.accepted_by, live.accepted_at = channel, now
        return ACCEPT

    # -- speech warm-up ------------------------------------------------------------
    def prerender(self, voice: Voice, text: str) -> None:
        """Synthesize what the officer will hear while their phone rings, so the
        screening leg finds it cached. Owned here; cancelled by :meth:`close`."""
        task = asyncio.create_task(self._prerender(voice, text), name="screen-prerender")
        self._prerenders.add(task)
        task.add_done_callback(self._prerenders.discard)

    @staticmethod
    async def _prerender(voice: Voice, text: str) -> None:
        try:
            await voice.speech_file(text)
        except Exception as exc:  # the screening leg falls back to a fixed prompt
            log.info("screening text not pre-rendered: %s", exc)

    async def close(self) -> None:
        tasks = list(self._prerenders)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)


async def _variable(call: Call, name: str) -> str:
    """A channel variable even after a hangup (GET VARIABLE works on a dead channel)."""
    try:
        return await call.get_variable(name) or ""
    except (CallerHungUp, AGIError):
        return ""


def _seconds(value: str) -> int | None:
    return int(value) if value.isdigit() else None


async def screened_dial(
    call: Call,
    router: EmergencyRouter,
    attempt: Attempt,
    officers: tuple[PlannedOfficer, ...],
    ring_seconds: int,
    sequence: int,
) -> AttemptResult:
    """Ring ``officers`` (every dial string at once) with screening, and put
    the attempt on the call's timeline (``emergency-attempt``).

    A caller who hangs up raises ``CallerHungUp`` as everywhere (the attempt is
    on the timeline as "cancelled"), except after an officer accepted: then the
    conversation simply ended, and the result says ``caller_gone``."""
    targets = tuple(dict.fromkeys(d for o in officers for d in o.dial_strings))
    token = attempt_token(call.uniqueid, sequence)
    live = router.open_attempt(token, call.uniqueid, ring_seconds)
    started_at, began = datetime.now(UTC), router.clock()
    options = f"U({SCREEN_SUBROUTINE}^{token}^{int(live.deadline) + 1})"
    result = AttemptResult(attempt, officers, targets, ring_seconds, started_at, began, UNAVAILABLE)
    try:
        try:
            dialled = await call.dial(list(targets), ring_seconds, options=options, purpose="emergency")
        except CallerHungUp:
            if await _decision(call, token) != ACCEPT:
                result.outcome, result.detail = CANCELLED, "the caller hung up"
                call.record.add("emergency-attempt", **result.event())
                raise
            # The caller hung up at the end of the conversation with the officer.
            result.outcome, result.dial_status, result.caller_gone = ACCEPTED, "ANSWER", True
        else:
            result.dial_status = dialled.status
            result.outcome, result.detail = classify(dialled.status, await _decision(call, token))
            if dialled.status == "ANSWER":
                peer = dial_string_of_channel(dialled.peer) if dialled.peer else ""
                number = await _variable(call, "DIALEDPEERNUMBER")
                result.answered_by = attempt.officer_for(peer) or attempt.officer_for(number)
                total = _seconds(await _variable(call, "DIALEDTIME"))
                if total is not None:
                    result.answered_after = float(max(0, total - dialled.answered_seconds))
    except ValueError as exc:  # a target ivr.call refuses: planning should have caught it
        log.error("emergency attempt skipped: %s", exc)
        result.outcome, result.detail = UNAVAILABLE, "invalid dial string"
    finally:
        closed = router.close_attempt(token)
    if closed is not None:
        result.refused = list(closed.refused)
        if closed.accepted_at is not None:
            result.accepted_after = round(closed.accepted_at - began, 3)
    if result.accepted and result.answered_by is None and len(officers) == 1:
        result.answered_by = officers[0]
    call.record.add("emergency-attempt", **result.event())
    return result


async def _decision(call: Call, token: str) -> str:
    value = await _variable(call, f"SHARED({channel_vars.SCREEN_DECISION})")
    decision, _, for_token = value.partition(":")
    return decision if for_token == token and decision in DECISIONS else ""


async def try_attempt(
    call: Call, router: EmergencyRouter, attempt: Attempt, first_sequence: int
) -> list[AttemptResult]:
    """One attempt of the chain. In a simultaneous level, an officer who
    declines (or lets the screening time out) drops out and the others are
    rung again for the rest of the level's ring time: Asterisk's Dial hangs up
    every other phone as soon as one answers, and a voicemail picking up first
    must not cost the level its other officers."""
    results: list[AttemptResult] = []
    remaining = attempt.officers
    began = router.clock()
    ring = attempt.ring_seconds
    while remaining:
        result = await screened_dial(call, router, attempt, remaining, ring, first_sequence + len(results))
        results.append(result)
        if result.accepted or attempt.mode != "simultaneous" or result.dial_status != "ANSWER":
            break
        if result.answered_by is None:
            break  # we cannot tell who declined: ringing them again could loop
        remaining = tuple(o for o in remaining if o.code != result.answered_by.code)
        ring = int(attempt.ring_seconds - (router.clock() - began))
        if ring < MIN_REDIAL_SECONDS:
            break
    return results

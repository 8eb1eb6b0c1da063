"""Representative walks through every flow, and a simulated Asterisk that
breaks a walk at a chosen command.

A walk is a call plan (script, keys, dial outcomes) built against a running
server: some need something to exist first (a ticket to track, an alarm to
acknowledge, an alert to hear), which ``prepare`` creates with an ordinary
call. ``place`` plays the walk with the simulated Asterisk of
``tests/screening.py`` (Dial with the officers' screening legs) and, given a
``Fault``, breaks it at command number ``step`` of the chosen leg:

* ``hangup-before-reply``: the caller hangs up just before Asterisk answers
  the command: ``HANGUP`` arrives first, then the dead-channel reply;
* ``hangup-during``: the caller hangs up while the command plays, records,
  waits or dials (``-1`` result, then ``HANGUP``);
* ``connection-closed``: Asterisk's side of the socket closes without a reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import screening
from helpers import calls_settled, set_office_override
from screening import Phone, ScreeningAsterisk, emergency_desk, install_roster
from sqlalchemy import select

from ivr.emergency.roster import Chain, Level, Officer, Roster, Shift
from ivr.seed import seed_demo
from ivr.simulator import CallRecord, CallSetup, KeyGroup, SimulatedAsterisk
from ivr.storage import models
from ivr.storage.request_models import UrgentAlert
from ivr.storage.roster_models import EmergencyAlarm, EmergencyCallback

REGISTERED = "081234567890"  # Budi Santoso, Dinas Komunikasi dan Informatika (demo data)
PROTOCOL_DESK = "0286591000"
DUTY = Officer("dewi", "Dewi Lestari", ("PJSIP/201",))
HEAD = Officer("kabag", "Kabag Prokompim", ("PJSIP/210",))
ROSTER = Roster(
    (DUTY, HEAD),
    (
        Shift(
            "Piket",
            datetime(2020, 1, 1),
            datetime(2020, 1, 2),
            "Asia/Jakarta",
            "daily",
            rounds=1,
            levels=(Level(("dewi",), "sequential", 20),),
        ),
    ),
    Chain((Level(("kabag",)),)),
)

HANGUP_BEFORE_REPLY = "hangup-before-reply"
HANGUP_DURING = "hangup-during"
CONNECTION_CLOSED = "connection-closed"
VARIANTS = (HANGUP_BEFORE_REPLY, HANGUP_DURING, CONNECTION_CLOSED)
#: Commands that take time on a live channel: a caller can hang up *during* them.
TIMED_VERBS = frozenset(
    {
        "STREAM FILE",
        "GET DATA",
        "GET OPTION",
        "CONTROL STREAM FILE",
        "RECORD FILE",
        "WAIT FOR DIGIT",
        "EXEC Dial",
        "EXEC Playback",
        "EXEC Wait",
        "SAY DIGITS",
        "SAY NUMBER",
    }
)


def verb(command: bytes) -> str:
    """``EXEC Dial ...`` -> ``EXEC Dial``; ``STREAM FILE x ""`` -> ``STREAM FILE``."""
    words = command.decode("utf-8", "replace").replace('"', "").split()
    if not words:
        return ""
    if words[0].upper() == "EXEC":
        return "EXEC " + (words[1] if len(words) > 1 else "")
    two = " ".join(words[:2]).upper()
    return two if two in TIMED_VERBS or two in ("SET VARIABLE", "GET VARIABLE", "GET FULL") else words[0].upper()


@dataclass(frozen=True)
class Fault:
    step: int
    variant: str


class ConnectionDropped(Exception):
    """Raised inside the simulated Asterisk to drop its socket without a reply."""


class FaultInjection:
    """Mixin for a SimulatedAsterisk: breaks the call at ``fault.step``."""

    fault: Fault | None = None

    async def execute(self, raw: bytes) -> bytes:
        sim: Any = self
        if self.fault is None or len(sim.record.commands) != self.fault.step:
            return await super().execute(raw)  # type: ignore[misc]
        if self.fault.variant == CONNECTION_CLOSED:
            sim.record.commands.append(raw)
            raise ConnectionDropped
        if self.fault.variant == HANGUP_DURING:
            sim.caller.groups.appendleft(KeyGroup("hangup", raw="h (fault)"))
            return await super().execute(raw)  # type: ignore[misc]
        sim.caller.groups.appendleft(KeyGroup("hangup_idle", raw="h! (fault)"))
        return sim.idle() + await super().execute(raw)  # type: ignore[misc]

    async def run(self, host: str, port: int, **options: Any) -> CallRecord:
        try:
            return await super().run(host, port, **options)  # type: ignore[misc]
        except ConnectionDropped:
            return self.record  # type: ignore[attr-defined]


class FaultyLeg(FaultInjection, SimulatedAsterisk):
    pass


class FaultyCaller(FaultInjection, ScreeningAsterisk):
    pass


@dataclass
class Plan:
    keys: list[str]
    script: str = "main"
    args: tuple[str, ...] = ()
    caller: str | None = REGISTERED
    office: str = "open"
    dial: dict[str, str] = field(default_factory=lambda: {"*": "NOANSWER"})
    phones: dict[str, Phone] = field(default_factory=dict)


@dataclass(frozen=True)
class Walk:
    name: str
    flow: str  # the registry flow whose steps are broken
    prepare: Callable[[Any], Awaitable[Plan]]
    #: "caller": the call the plan places; "screen": the officer's screening leg.
    leg: str = "caller"


@dataclass
class Placed:
    record: CallRecord  # the leg the fault was injected into
    legs: list[CallRecord]


async def set_up(runtime: Any) -> None:
    """Demo data and a roster with one duty officer, on every moment."""
    await seed_demo(runtime.sessions, runtime.settings)
    async with emergency_desk(runtime) as desk:
        await install_roster(runtime, desk, ROSTER)


async def place(
    runtime: Any, plan: Plan, fault: Fault | None = None, leg: str = "caller", *, pace: float = 0.0, settle: bool = True
) -> Placed:
    if runtime.services.override.value != plan.office:  # stored only on a change: the database may be down
        await set_office_override(runtime, plan.office)
    host, port = "127.0.0.1", runtime.agi.bound_port
    setup = CallSetup(
        script=plan.script, options={"lang": "id"}, args=plan.args, request_host=f"{host}:{port}", caller_id=plan.caller
    )
    caller = FaultyCaller(setup, agi=(host, port), phones=plan.phones, keys=plan.keys, dial_outcomes=plan.dial)
    caller.fault = fault if leg == "caller" else None
    screens: list[FaultyLeg] = []
    token = _SCREEN_LEGS.set((fault if leg == "screen" else None, screens))
    try:
        record = await caller.run(host, port, pace=pace, timeout=120)
    finally:
        _SCREEN_LEGS.reset(token)
    if settle:
        await calls_settled(runtime)
    legs = [record, *(s.record for s in screens)]
    if leg == "screen":
        assert screens, "the walk never reached an officer's screening leg"
        return Placed(screens[0].record, legs)
    return Placed(record, legs)


#: The fault for the first screening leg of the call running in this context,
#: and the list collecting that call's screening legs.
_SCREEN_LEGS: ContextVar[tuple[Fault | None, list[FaultyLeg]] | None] = ContextVar("screen_legs", default=None)


def _screening_leg(*args: Any, **kwargs: Any) -> SimulatedAsterisk:
    """``ScreeningAsterisk`` builds each officer's leg from the name
    ``screening.SimulatedAsterisk``; this stands in for it, so that each call
    (calls run concurrently) collects its own legs and can break the first."""
    current = _SCREEN_LEGS.get()
    if current is None:
        return SimulatedAsterisk(*args, **kwargs)
    fault, screens = current
    made = FaultyLeg(*args, **kwargs)
    made.fault = None if screens else fault
    screens.append(made)
    return made


screening.SimulatedAsterisk = _screening_leg  # type: ignore[misc,assignment]


def keyed(runtime: Any, days: int) -> str:
    return (datetime.now(runtime.settings.zone).date() + timedelta(days=days)).strftime("%d%m%Y")


async def _agenda(runtime: Any) -> Plan:
    # Bupati today, tomorrow, back to the main menu; three wrong keys end the call politely.
    return Plan(["1", "1", "1", "0", "5", "5", "5"])


async def _submit(runtime: Any) -> Plan:
    return Plan(["2", "1", keyed(runtime, 10), "0930", "1", "rec:3", "1", ""])


async def _track(runtime: Any) -> Plan:
    message = await place(runtime, Plan(["0", "rec:2", ""]))
    number = await ticket_of(runtime, message.record.uniqueid)
    return Plan(["3", f"{number}#", "1", "rec:3", ""])


async def operator_message(runtime: Any) -> Plan:
    return Plan(["0", "rec:3", ""])


async def _operator_answers(runtime: Any) -> Plan:
    return Plan(["0"], dial={"*": "ANSWER:30"})


async def _after_hours_message(runtime: Any) -> Plan:
    return Plan(["2", "rec:3", ""], office="closed")


async def emergency_unanswered(runtime: Any) -> Plan:
    return Plan(["rec:3", ""], script="emergency")


async def emergency_accepted(runtime: Any) -> Plan:
    return Plan([], script="emergency", phones={"PJSIP/201": Phone(keys=["1"])})


async def _ack(runtime: Any) -> Plan:
    alarm = await place(runtime, Plan(["rec:3", ""], script="emergency"))
    for _ in range(10):  # the callback loop plans the first job on its next pass
        await runtime.services.emergency.callbacks.wait_ticks(1, timeout=10)
        async with runtime.sessions() as session:
            job = await session.scalar(
                select(EmergencyCallback)
                .join(EmergencyAlarm, EmergencyAlarm.id == EmergencyCallback.alarm_id)
                .where(EmergencyAlarm.call_uniqueid == alarm.record.uniqueid)
                .order_by(EmergencyCallback.id)
            )
        if job is not None:
            break
    assert job is not None, "an unanswered emergency raised no callback job"
    return Plan(["1"], script="ack", args=(str(job.id), job.token), caller=None)


async def _alert(runtime: Any) -> Plan:
    await place(runtime, Plan(["2", "3", keyed(runtime, 0), "1000", "1", "rec:2", "1", ""]))
    async with runtime.sessions() as session:
        alert_id = await session.scalar(select(UrgentAlert.id).order_by(UrgentAlert.id.desc()).limit(1))
    assert alert_id is not None, "a sudden schedule change raised no alert"
    return Plan(["", "", "", "1"], script="alert", args=(str(alert_id),), caller=PROTOCOL_DESK)


WALKS: tuple[Walk, ...] = (
    Walk("main-agenda", "main", _agenda),
    Walk("main-submit", "main", _submit),
    Walk("main-track", "main", _track),
    Walk("main-operator-message", "main", operator_message),
    Walk("main-operator-answers", "main", _operator_answers),
    Walk("main-after-hours-message", "main", _after_hours_message),
    Walk("emergency-unanswered", "emergency", emergency_unanswered),
    Walk("emergency-accepted", "emergency", emergency_accepted),
    Walk("screen-accept", "screen", emergency_accepted, leg="screen"),
    Walk("ack", "ack", _ack),
    Walk("alert", "alert", _alert),
)


def heard(record: Any, *, recordings: bool) -> int:
    """How many prompts and read-backs the caller heard (found, played by
    STREAM FILE or GET DATA; not the beep or the silence under a bare GET
    DATA), with or without the caller's own recordings played back (some flows
    put those on the timeline, some do not)."""
    return sum(
        1
        for p in record.prompts
        if p.found
        and p.command in ("STREAM FILE", "GET DATA")
        and "silence" not in p.path
        and (recordings or "/tickets/" not in p.path)
    )


async def ticket_of(runtime: Any, uniqueid: str) -> str:
    async with runtime.sessions() as session:
        number = await session.scalar(
            select(models.Ticket.number)
            .join(models.Call, models.Call.ticket_id == models.Ticket.id)
            .where(models.Call.uniqueid == uniqueid)
        )
    assert number is not None, f"no ticket for call {uniqueid}"
    return number


@dataclass(frozen=True)
class Recorded:
    """One walk as it went without faults: its commands and how it ended."""

    walk: str
    verbs: tuple[str, ...]
    outcome: str


async def record_walks(runtime: Any, walks: Sequence[Walk] = WALKS) -> list[Recorded]:
    await set_up(runtime)
    recorded = []
    for walk in walks:
        placed = await place(runtime, await walk.prepare(runtime), leg=walk.leg)
        async with runtime.sessions() as session:
            outcome = await session.scalar(
                select(models.Call.outcome).where(models.Call.uniqueid == placed.record.uniqueid)
            )
        recorded.append(Recorded(walk.name, tuple(verb(c) for c in placed.record.commands), outcome or ""))
    return recorded

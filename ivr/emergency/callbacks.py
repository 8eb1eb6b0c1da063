r"""Unanswered emergencies: the alarm, and calling the duty officers back over
AMI, level by level, until one of them acknowledges.

An alarm is raised when nobody accepted an emergency call (after the caller's
message). Its callbacks are **jobs** in ``emergency_callbacks``: one job is
one ``Originate`` to one phone. The callback loop of every ``ivr serve``
process works the same table, so each job must be placed exactly once however
many processes run:

* a job is **created once**: an alarm moves to its next step with a
  conditional ``UPDATE ... WHERE step = <the step we saw>`` in the transaction
  that inserts the step's jobs, and ``(alarm_id, step, slot)`` is unique;
* a job is **claimed once**: ``SELECT ... FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, an atomic ``UPDATE ... WHERE state = 'pending' ... RETURNING``
  on SQLite, each setting ``lease_owner``/``lease_until``;
* a job is **sent once**: it goes ``claimed`` -> ``sending`` (committed)
  before the Originate is written. A ``claimed`` job whose lease ran out (its
  process died before sending) is claimed again; a ``sending`` one never is:
  once the Originate may be on the wire, a lost reply (``AMIConnectionLost``,
  a timeout, a crash) makes the job ``unknown``. If the officer answers, the
  ``ack`` flow still reports it; otherwise the job counts as not
  acknowledged after its ring time plus a grace, and the **next** step follows.
  Re-sending it could ring an officer twice (PROTOCOL.md M8).
* AMI down when a job is due: nothing is claimed; the loop waits for AMI and
  places it then. An Originate refused with ``AMIUnavailable`` (not sent) goes
  back to ``pending``.

One callback on the AMI wire (the fake AMI in the tests speaks the same)::

    >> Action: Originate / ActionID: ivr-5e1f0a-9 / Channel: PJSIP/201
       Context: callcenter-callback / Exten: s / Priority: 1
       CallerID: "Call Center Protokol" <1500> / Timeout: 30000
       Variable: IVR_CALLBACK_JOB=17 / Variable: IVR_CALLBACK_TOKEN=4f0c2a9e1b7d3c55 / Async: true
    << Response: Success / Message: Originate successfully queued
    << Event: OriginateResponse / Response: Success / Reason: 4 / Uniqueid: 1796312906.89

then Asterisk runs ``[callcenter-callback]``, whose ``AGI(.../ack?lang=id,17,4f0c...)``
is our ``ack`` flow: the officer hears the caller's office and message and
presses 1; :func:`acknowledge` closes the alarm and cancels the jobs still pending.

Each process runs two tasks (:class:`CallbackLoop`): the **dispatcher** only
claims what is due and starts its Originates, sleeping until the next due time;
the **bookkeeping loop** writes the Originates' outcomes, expires leases and
moves alarms to their next step. So with hundreds of open alarms, bookkeeping
never delays a callback that is due (``bench/bench_emergency.py`` measures it).
On SQLite this process's write transactions queue on one lock rather than in
SQLite's sleeping busy handler.

When the database is down an alarm cannot be coordinated; it is written to a
local journal (one fsynced JSON file per alarm) and raised when the database
answers again, exactly once (the call's uniqueid is unique).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr import channel_vars
from ivr.ami import AMIActionError, AMIClient, AMIConnectionLost, AMIEncodingError, AMITimeout, AMIUnavailable
from ivr.config import Settings
from ivr.emergency.roster import CallbackStep, Plan
from ivr.records import STORAGE_ERRORS
from ivr.storage import models
from ivr.storage.roster_models import EmergencyAlarm, EmergencyCallback

log = logging.getLogger("ivr.emergency.callbacks")

UNFINISHED = ("pending", "claimed", "sending", "answered", "unknown")
# Results of a callback job, as the ticket timeline shows them.
ACKNOWLEDGED = "acknowledged"
NOT_ACKNOWLEDGED = "not acknowledged"
UNKNOWN = "unknown"
#: OriginateResponse ``Reason`` (AST_CONTROL_*) of a failed callback (ami-originate-fail.txt).
REASONS = {0: "unavailable", 1: "no answer", 3: "no answer", 5: "busy", 8: "unavailable"}

#: A claim not turned into a send within this long may be taken by another process.
CLAIM_LEASE = timedelta(seconds=30)
#: How long beyond the ring time we wait for the OriginateResponse event.
ORIGINATE_EXTRA_SECONDS = 15
#: Database writes the loop does are short; past this the database counts as down.
DB_TIMEOUT = 5.0
#: How many Originates one process has in flight at most.
MAX_IN_FLIGHT = 100
#: Never spin: the loop sleeps at least this long between passes.
MIN_SLEEP = 0.01
#: Alarms moved to their next step per transaction.
ADVANCE_BATCH = 25
#: Originate outcomes written per transaction (the dispatcher waits for at most one).
RESULTS_BATCH = 25


# -- what an alarm is raised from ------------------------------------------------------


@dataclass
class AlarmDraft:
    """An unanswered emergency as the call knows it (JSON-serialisable for the journal)."""

    call_uniqueid: str
    raised_at: datetime
    ticket_number: str | None = None
    caller_number: str = ""
    caller_e164: str | None = None
    caller_name: str = ""
    office_name: str = ""
    #: Who called, as a duty officer hears it ("Dinas Kesehatan", "nomor nol delapan ...").
    caller_spoken: str = ""
    #: The caller's digits to read back to the officer (withheld: empty).
    callback_digits: str = ""
    message_path: str | None = None
    message_seconds: float = 0.0
    flags: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["raised_at"] = self.raised_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlarmDraft:
        data = dict(data)
        data["raised_at"] = datetime.fromisoformat(data["raised_at"])
        return cls(**data)


@dataclass(frozen=True)
class AckContext:
    """What the ``ack`` flow tells the officer it called."""

    job_id: int
    alarm_id: int
    officer_code: str
    officer_name: str
    alarm_state: str
    acknowledged_by: str
    acknowledged_via: str
    caller_spoken: str
    callback_digits: str
    message_path: str | None
    raised_at: datetime
    ticket_number: str | None


@dataclass(frozen=True)
class Job:
    id: int
    alarm_id: int
    step: int
    dial_string: str
    ring_seconds: int
    token: str
    due_at: datetime
    officer_name: str


# -- the journal (database down) ---------------------------------------------------------


class Journal:
    """Operations waiting for the database: one fsynced JSON file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, kind: str, key: str, payload: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        safe = "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in key) or "entry"
        path = self.directory / f"{kind}-{safe}.json"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({"kind": kind, "payload": payload}, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        return path

    def entries(self) -> list[tuple[Path, str, dict[str, Any]]]:
        if not self.directory.exists():
            return []
        out = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                out.append((path, str(data["kind"]), dict(data["payload"])))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("unreadable journal entry %s kept aside: %s", path.name, exc)
                path.rename(path.with_suffix(".bad"))
        return out

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*.json")) if self.directory.exists() else 0


# -- database operations (take the session; the caller commits) -----------------------------


async def _ticket_event(session: AsyncSession, alarm_id: int, kind: str, data: dict[str, Any], at: datetime) -> None:
    """Put an alarm's news on the emergency ticket's timeline (when the call
    record is already in the database; the alarm row keeps it anyway)."""
    ticket_id = await session.scalar(
        select(models.Call.ticket_id)
        .join(EmergencyAlarm, EmergencyAlarm.call_uniqueid == models.Call.uniqueid)
        .where(EmergencyAlarm.id == alarm_id)
    )
    if ticket_id is not None:
        session.add(models.TicketEvent(ticket_id=ticket_id, call_id=None, seq=0, at=at, kind=kind, data=data))


async def create_alarm(session: AsyncSession, draft: AlarmDraft) -> tuple[int, bool]:
    """Insert the alarm unless this call already has one. Returns (id, created)."""
    existing = await session.scalar(
        select(EmergencyAlarm.id).where(EmergencyAlarm.call_uniqueid == draft.call_uniqueid)
    )
    if existing is not None:
        return existing, False
    alarm = EmergencyAlarm(
        call_uniqueid=draft.call_uniqueid,
        ticket_number=draft.ticket_number,
        caller_number=draft.caller_number,
        caller_e164=draft.caller_e164,
        caller_name=draft.caller_name,
        office_name=draft.office_name,
        caller_spoken=draft.caller_spoken,
        caller_digits=draft.callback_digits,
        message_path=draft.message_path,
        message_seconds=draft.message_seconds,
        flags=list(draft.flags),
        raised_at=draft.raised_at,
        state="open",
        step=-1,
    )
    session.add(alarm)
    await session.flush()
    await _ticket_event(session, alarm.id, "alarm", {"action": "raised", "alarm": alarm.id}, draft.raised_at)
    return alarm.id, True


@dataclass(frozen=True)
class Stepping:
    """An open alarm whose current step is over: what moving it on needs."""

    alarm_id: int
    step: int
    raised_at: datetime
    level_started_at: datetime | None
    flags: list[dict[str, str]]


async def alarms_to_advance(session: AsyncSession, limit: int = 500) -> list[Stepping]:
    """Open alarms whose current step has no unfinished job (or none yet)."""
    unfinished = exists().where(
        EmergencyCallback.alarm_id == EmergencyAlarm.id,
        EmergencyCallback.step == EmergencyAlarm.step,
        EmergencyCallback.state.in_(UNFINISHED),
    )
    rows = await session.execute(
        select(
            EmergencyAlarm.id,
            EmergencyAlarm.step,
            EmergencyAlarm.raised_at,
            EmergencyAlarm.level_started_at,
            EmergencyAlarm.flags,
        )
        .where(EmergencyAlarm.state == "open", ~unfinished)
        .order_by(EmergencyAlarm.id)
        .limit(limit)
    )
    return [Stepping(r[0], r[1], r[2], r[3], list(r[4] or [])) for r in rows]


async def advance_alarm(
    session: AsyncSession,
    alarm: Stepping,
    plan: Plan,
    settings: Settings,
    now: datetime,
    steps: Sequence[CallbackStep] | None = None,
) -> str:
    """Create the jobs of the alarm's next step, or mark it ``exhausted``.

    Returns "advanced", "exhausted" or "raced" (another process did it first:
    the conditional update matched nothing and nothing was inserted).
    ``steps`` (``plan.callback_steps(...)``) may be passed in when many alarms
    move on in one pass."""
    if steps is None:
        steps = plan.callback_steps(settings.emergency_callback_rounds)
    flags = list(alarm.flags)
    for flag in plan.flags:
        if flag.as_dict() not in flags:
            flags.append(flag.as_dict())
    changes: dict[str, Any] = {"updated_at": now}
    if flags != alarm.flags:
        changes["flags"] = flags
    following = alarm.step + 1
    guard = (EmergencyAlarm.id == alarm.alarm_id, EmergencyAlarm.state == "open", EmergencyAlarm.step == alarm.step)
    if following >= len(steps):
        done = await session.execute(update(EmergencyAlarm).where(*guard).values(state="exhausted", **changes))
        if _rowcount(done) != 1:
            return "raced"
        await _ticket_event(session, alarm.alarm_id, "alarm", {"action": "exhausted", "alarm": alarm.alarm_id}, now)
        log.warning("emergency alarm %s: callbacks exhausted without an acknowledgement", alarm.alarm_id)
        return "exhausted"
    step = steps[following]
    interval = timedelta(seconds=settings.emergency_callback_interval_seconds)
    if following == 0:
        due = alarm.raised_at + timedelta(seconds=settings.emergency_callback_delay_seconds)
    elif step.first_in_level:
        due = max((alarm.level_started_at or now) + interval, now)
    else:
        due = now
    if step.first_in_level:
        changes["level_started_at"] = due
    moved = await session.execute(update(EmergencyAlarm).where(*guard).values(step=following, **changes))
    if _rowcount(moved) != 1:
        return "raced"
    await session.execute(
        insert(EmergencyCallback),
        [
            {
                "alarm_id": alarm.alarm_id,
                "step": following,
                "slot": slot,
                "round": step.round,
                "level": step.level,
                "officer_code": officer.code,
                "officer_name": officer.name,
                "dial_string": dial_string,
                "ring_seconds": settings.emergency_callback_ring_seconds,
                "due_at": due,
                "state": "pending",
                "token": secrets.token_hex(8),
                "created_at": now,
            }
            for slot, (officer, dial_string) in enumerate(step.targets)
        ],
    )
    return "advanced"


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def claim_due(session: AsyncSession, owner: str, now: datetime, limit: int) -> list[Job]:
    """Lease up to ``limit`` due jobs to ``owner``; no two processes get the same job."""
    due = (EmergencyCallback.state == "pending", EmergencyCallback.due_at <= now)
    values = {"state": "claimed", "lease_owner": owner, "lease_until": now + CLAIM_LEASE}
    if await session.scalar(select(EmergencyCallback.id).where(*due).limit(1)) is None:
        return []  # nothing due: no write (and no SQLite write lock) at all
    if session.get_bind().dialect.name == "postgresql":
        ids = list(
            await session.scalars(
                select(EmergencyCallback.id)
                .where(*due)
                .order_by(EmergencyCallback.due_at, EmergencyCallback.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            await session.execute(update(EmergencyCallback).where(EmergencyCallback.id.in_(ids)).values(**values))
    else:
        # SQLite: one statement, atomic under the database's write lock.
        candidates = (
            select(EmergencyCallback.id)
            .where(*due)
            .order_by(EmergencyCallback.due_at, EmergencyCallback.id)
            .limit(limit)
            .scalar_subquery()
        )
        claimed = await session.execute(
            update(EmergencyCallback)
            .where(EmergencyCallback.id.in_(candidates), EmergencyCallback.state == "pending")
            .values(**values)
            .returning(EmergencyCallback.id)
        )
        ids = list(claimed.scalars())
    if not ids:
        return []
    rows = await session.scalars(select(EmergencyCallback).where(EmergencyCallback.id.in_(ids)))
    return [
        Job(r.id, r.alarm_id, r.step, r.dial_string, r.ring_seconds, r.token, r.due_at, r.officer_name)
        for r in sorted(rows, key=lambda r: (r.due_at, r.id))
    ]


async def mark_sending(
    session: AsyncSession, jobs: Sequence[Job], owner: str, now: datetime, grace: float
) -> list[Job]:
    """The last step before the Originates: from here on these jobs are never
    sent again. Jobs whose alarm was acknowledged meanwhile (or whose lease
    was lost) are not called; returns the ones to call."""
    open_alarms = select(EmergencyAlarm.id).where(EmergencyAlarm.state == "open")
    sending: set[int] = set()
    for ring in sorted({job.ring_seconds for job in jobs}):
        until = now + timedelta(seconds=ring + ORIGINATE_EXTRA_SECONDS + grace + 30)
        marked = await session.execute(
            update(EmergencyCallback)
            .where(
                EmergencyCallback.id.in_([job.id for job in jobs if job.ring_seconds == ring]),
                EmergencyCallback.state == "claimed",
                EmergencyCallback.lease_owner == owner,
                EmergencyCallback.alarm_id.in_(open_alarms),
            )
            .values(state="sending", lease_until=until, sent_at=now)
            .returning(EmergencyCallback.id)
        )
        sending.update(marked.scalars())
    dropped = [job.id for job in jobs if job.id not in sending]
    if dropped:
        await session.execute(
            update(EmergencyCallback)
            .where(
                EmergencyCallback.id.in_(dropped),
                EmergencyCallback.state == "claimed",
                EmergencyCallback.lease_owner == owner,
            )
            .values(state="cancelled", finished_at=now)
        )
    return [job for job in jobs if job.id in sending]


async def not_sent(session: AsyncSession, job_id: int, owner: str) -> None:
    """AMI refused before writing anything (``AMIUnavailable``): the job is due again."""
    await session.execute(
        update(EmergencyCallback)
        .where(
            EmergencyCallback.id == job_id, EmergencyCallback.state == "sending", EmergencyCallback.lease_owner == owner
        )
        .values(
            state="pending", lease_owner="", lease_until=None, sent_at=None, deferrals=EmergencyCallback.deferrals + 1
        )
    )


async def mark_answered(
    session: AsyncSession,
    job_id: int,
    until: datetime,
    *,
    uniqueid: str = "",
    ack_uniqueid: str = "",
    token: str | None = None,
) -> bool:
    """The officer picked up (OriginateResponse, or the ``ack`` flow starting)."""
    conditions = [EmergencyCallback.id == job_id, EmergencyCallback.state.in_(("sending", "unknown", "answered"))]
    if token is not None:
        conditions.append(EmergencyCallback.token == token)
    values: dict[str, Any] = {"state": "answered", "lease_until": until}
    if uniqueid:
        values["originate_uniqueid"] = uniqueid
    if ack_uniqueid:
        values["ack_call_uniqueid"] = ack_uniqueid
    done = await session.execute(update(EmergencyCallback).where(*conditions).values(**values))
    return _rowcount(done) == 1


async def mark_unknown(session: AsyncSession, job_id: int, until: datetime) -> None:
    await session.execute(
        update(EmergencyCallback)
        .where(EmergencyCallback.id == job_id, EmergencyCallback.state == "sending")
        .values(state="unknown", lease_until=until)
    )


async def finish_job(
    session: AsyncSession,
    job_id: int,
    result: str,
    now: datetime,
    *,
    reason: int | None = None,
    detail: str = "",
    states: Sequence[str] = ("sending", "unknown", "answered"),
) -> bool:
    """The job is over (``result``); its ticket gets the line. False if it
    was already over (another path finished it first)."""
    done = await session.execute(
        update(EmergencyCallback)
        .where(EmergencyCallback.id == job_id, EmergencyCallback.state.in_(tuple(states)))
        .values(state="done", result=result, reason=reason, finished_at=now)
        .returning(
            EmergencyCallback.alarm_id,
            EmergencyCallback.round,
            EmergencyCallback.level,
            EmergencyCallback.officer_name,
            EmergencyCallback.dial_string,
            EmergencyCallback.due_at,
            EmergencyCallback.sent_at,
        )
    )
    job = done.first()
    if job is None:
        return False
    data = {
        "job": job_id,
        "alarm": job.alarm_id,
        "round": job.round,
        "level": job.level,
        "officer": job.officer_name,
        "target": job.dial_string,
        "result": result,
        "due_at": job.due_at.isoformat(timespec="milliseconds"),
        "sent_at": job.sent_at.isoformat(timespec="milliseconds") if job.sent_at else None,
    }
    if detail:
        data["detail"] = detail
    await _ticket_event(session, job.alarm_id, "callback", data, now)
    return True


async def expire_leases(session: AsyncSession, now: datetime) -> int:
    """Leases that ran out: a claim never sent is due again; a send whose
    outcome never came is ``unknown`` (never re-sent); an answered callback
    whose ``ack`` flow never reported counts as not acknowledged. Reads first:
    on SQLite a write, even one that changes nothing, takes the database's lock."""
    expired = list(
        await session.execute(
            select(EmergencyCallback.id, EmergencyCallback.state).where(
                EmergencyCallback.state.in_(("claimed", "sending", "unknown", "answered")),
                EmergencyCallback.lease_until < now,
            )
        )
    )
    for job_id, state in expired:
        if state == "claimed":
            await session.execute(
                update(EmergencyCallback)
                .where(
                    EmergencyCallback.id == job_id,
                    EmergencyCallback.state == "claimed",
                    EmergencyCallback.lease_until < now,
                )
                .values(state="pending", lease_owner="", lease_until=None)
            )
        elif state == "answered":
            await finish_job(
                session, job_id, NOT_ACKNOWLEDGED, now, detail="no report from the ack flow", states=("answered",)
            )
        else:
            await finish_job(
                session,
                job_id,
                UNKNOWN,
                now,
                detail="outcome never known; not sent again",
                states=("sending", "unknown"),
            )
    return len(expired)


async def load_for_ack(session: AsyncSession, job_id: int, token: str) -> AckContext | None:
    row = (
        await session.execute(
            select(EmergencyCallback, EmergencyAlarm)
            .join(EmergencyAlarm, EmergencyAlarm.id == EmergencyCallback.alarm_id)
            .where(EmergencyCallback.id == job_id)
        )
    ).first()
    if row is None or not secrets.compare_digest(row[0].token, token):
        return None
    job, alarm = row
    ticket = alarm.ticket_number or await session.scalar(
        select(models.Ticket.number)
        .join(models.Call, models.Call.ticket_id == models.Ticket.id)
        .where(models.Call.uniqueid == alarm.call_uniqueid)
    )
    return AckContext(
        job_id=job.id,
        alarm_id=alarm.id,
        officer_code=job.officer_code,
        officer_name=job.officer_name,
        alarm_state=alarm.state,
        acknowledged_by=alarm.acknowledged_by,
        acknowledged_via=alarm.acknowledged_via,
        caller_spoken=alarm.caller_spoken,
        callback_digits=alarm.caller_digits,
        message_path=alarm.message_path,
        raised_at=alarm.raised_at,
        ticket_number=ticket,
    )


async def acknowledge(
    session: AsyncSession, alarm_id: int, *, by: str, via: str, now: datetime, officer_code: str = ""
) -> tuple[bool, str]:
    """Close the alarm (who, when, how) unless someone already did; cancel the
    callbacks not yet placed. Returns (this one won, who acknowledged)."""
    won = await session.execute(
        update(EmergencyAlarm)
        .where(EmergencyAlarm.id == alarm_id, EmergencyAlarm.state.in_(("open", "exhausted")))
        .values(
            state="acknowledged",
            acknowledged_at=now,
            acknowledged_by=by[:200],
            acknowledged_via=via,
            acknowledged_officer=officer_code[:40],
            updated_at=now,
        )
    )
    if _rowcount(won) == 1:
        await session.execute(
            update(EmergencyCallback)
            .where(EmergencyCallback.alarm_id == alarm_id, EmergencyCallback.state.in_(("pending", "claimed")))
            .values(state="cancelled", finished_at=now)
        )
        await _ticket_event(
            session, alarm_id, "alarm", {"action": "acknowledged", "alarm": alarm_id, "by": by, "via": via}, now
        )
        log.info("emergency alarm %s acknowledged by %s (%s)", alarm_id, by, via)
        return True, by
    who = await session.scalar(select(EmergencyAlarm.acknowledged_by).where(EmergencyAlarm.id == alarm_id))
    return False, who or ""


# -- the loop ----------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


class CallbackLoop:
    """One process's share of the callbacks. Owned by the application
    (``start``/``close``); every Originate it starts is a task it owns."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        ami: AMIClient | None,
        plan_now: Callable[[], Plan],
        *,
        instance: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.ami = ami
        self.plan_now = plan_now
        self.clock = clock
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.journal = Journal(settings.data_dir / "emergency-journal")
        #: True while jobs are due but AMI is not connected (they wait, unsent).
        self.waiting_for_ami = False
        self.placed = 0
        self.ticks = 0
        self._wake = asyncio.Event()
        self._ticked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._dispatch_wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        # SQLite takes one writer at a time and its busy handler *sleeps* while it
        # waits; this process's writers queue here instead (PostgreSQL: no lock).
        self._write_lock: asyncio.Lock | None = (
            asyncio.Lock() if settings.effective_database_url.startswith("sqlite") else None
        )
        #: Outcomes of Originates not yet written: (job, (kind, data), when it came).
        self._results: list[tuple[Job, tuple[str, Any], datetime]] = []
        self._database_ok = True

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"callbacks:{self.instance}")
            self._dispatcher = asyncio.create_task(self.dispatch(), name=f"callback-dispatch:{self.instance}")

    async def close(self) -> None:
        """Stop claiming; let Originates in flight learn their outcome for up to
        ``shutdown_grace_seconds`` (a cancelled one is settled by its lease:
        ``unknown``, never sent again), then cancel what is left."""
        loops = [t for t in (self._task, self._dispatcher) if t is not None]
        for task in loops:
            task.cancel()
        if loops:
            await asyncio.wait(loops, timeout=10)
        self._task = self._dispatcher = None
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=self.settings.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
        try:
            while self._results:
                await self._write_results()
        except STORAGE_ERRORS as exc:
            log.warning("callback outcomes not saved at shutdown (%s); their leases settle them", exc)

    @contextlib.asynccontextmanager
    async def _unit(self) -> AsyncIterator[AsyncSession]:
        """One short write transaction, with a timeout."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            await stack.enter_async_context(asyncio.timeout(DB_TIMEOUT))
            yield await stack.enter_async_context(self.sessions.begin())

    def wake(self) -> None:
        self._wake.set()
        self._dispatch_wake.set()

    async def wait_ticks(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until the loop finished ``count`` more passes (tests and benchmarks)."""
        target = self.ticks + count
        async with asyncio.timeout(timeout):
            while self.ticks < target:
                ticked = self._ticked
                self.wake()
                await ticked.wait()

    # -- what calls use ------------------------------------------------------------
    async def raise_alarm(self, draft: AlarmDraft) -> int | None:
        """Raise the alarm now, or journal it when the database is down. Never raises."""
        try:
            async with self._unit() as session:
                alarm_id, created = await create_alarm(session, draft)
        except STORAGE_ERRORS as exc:
            try:
                path = self.journal.put("alarm", draft.call_uniqueid, draft.to_json())
                log.warning("database down (%s): emergency alarm journaled to %s", type(exc).__name__, path.name)
            except (OSError, TypeError, ValueError):
                log.exception("emergency alarm for %s could not be journaled either", draft.call_uniqueid)
            return None
        if created:
            log.warning("emergency alarm %s raised: nobody accepted call %s", alarm_id, draft.call_uniqueid)
        self.wake()
        return alarm_id

    async def acknowledge_by_phone(self, context: AckContext, officer: str) -> tuple[bool, str]:
        """The officer pressed 1 on a callback. When the database is down the
        acknowledgement is journaled (and the officer told it was recorded)."""
        now = self.clock()
        try:
            async with self._unit() as session:
                won, who = await acknowledge(
                    session, context.alarm_id, by=officer, via="phone", now=now, officer_code=context.officer_code
                )
                if won:
                    await finish_job(
                        session, context.job_id, ACKNOWLEDGED, now, states=("sending", "unknown", "answered", "done")
                    )
        except STORAGE_ERRORS as exc:
            log.warning(
                "database down (%s): acknowledgement of alarm %s journaled", type(exc).__name__, context.alarm_id
            )
            self.journal.put(
                "ack",
                f"{context.alarm_id}-{context.job_id}",
                {
                    "alarm_id": context.alarm_id,
                    "job_id": context.job_id,
                    "by": officer,
                    "officer_code": context.officer_code,
                    "at": now.isoformat(),
                },
            )
            return True, officer
        self.wake()
        return won, who

    async def ack_started(self, job_id: int, token: str, uniqueid: str) -> AckContext | None:
        """The ``ack`` flow connected: what to tell the officer, and the job is
        now ``answered`` (None: unknown job, wrong token, or database down)."""
        now = self.clock()
        until = now + timedelta(seconds=self.settings.emergency_ack_timeout_seconds)
        try:
            async with self._unit() as session:
                context = await load_for_ack(session, job_id, token)
                if context is not None:
                    await mark_answered(session, job_id, until, ack_uniqueid=uniqueid, token=token)
        except STORAGE_ERRORS as exc:
            log.warning("callback %s: database unavailable (%s)", job_id, type(exc).__name__)
            return None
        return context

    async def ack_finished(self, context: AckContext, result: str, detail: str = "") -> None:
        """The ``ack`` flow ended without an acknowledgement: the next step may follow."""
        try:
            async with self._unit() as session:
                await finish_job(session, context.job_id, result, self.clock(), detail=detail)
        except STORAGE_ERRORS as exc:
            # Its lease runs out and it counts as not acknowledged then.
            log.warning("callback %s: result not saved (%s)", context.job_id, type(exc).__name__)
        self.wake()

    # -- the loop --------------------------------------------------------------------
    async def run(self) -> None:
        """The bookkeeping loop: journal, outcomes, leases, next steps."""
        while True:
            delay = self.settings.emergency_callback_poll_seconds
            try:
                delay = await self.tick()
                if not self._database_ok:
                    log.info("callback loop: database back")
                self._database_ok = True
            except STORAGE_ERRORS as exc:
                if self._database_ok:
                    log.warning("callback loop: database unavailable (%s); callbacks wait", type(exc).__name__)
                self._database_ok = False
            except Exception:
                log.exception("callback loop pass failed")
            self.ticks += 1
            ticked, self._ticked = self._ticked, asyncio.Event()
            ticked.set()
            await self._sleep(self._wake, delay)

    async def tick(self) -> float:
        """One bookkeeping pass. Returns seconds until the next one. Placing the
        callbacks is the dispatcher's job (:meth:`dispatch`), so that with
        hundreds of open alarms this work never delays a callback that is due."""
        now = self.clock()
        await self._replay_journal(now)
        await self._write_results()
        async with self._unit() as session:
            await expire_leases(session, now)
        async with asyncio.timeout(DB_TIMEOUT), self.sessions() as session:
            candidates = await alarms_to_advance(session)
        if candidates:
            plan = self.plan_now()
            steps = plan.callback_steps(self.settings.emergency_callback_rounds)
            for start in range(0, len(candidates), ADVANCE_BATCH):
                async with self._unit() as session:
                    for alarm in candidates[start : start + ADVANCE_BATCH]:
                        await advance_alarm(session, alarm, plan, self.settings, self.clock(), steps)
                self._dispatch_wake.set()  # a step may be due at once (the next officer of a level)
        ready = self._ami_ready()
        async with asyncio.timeout(DB_TIMEOUT), self.sessions() as session:
            lease = await session.scalar(
                select(func.min(EmergencyCallback.lease_until)).where(
                    EmergencyCallback.state.in_(("claimed", "sending", "unknown", "answered"))
                )
            )
            due = 0
            if not ready:
                due = (
                    await session.scalar(
                        select(func.count(EmergencyCallback.id)).where(
                            EmergencyCallback.state == "pending", EmergencyCallback.due_at <= now
                        )
                    )
                    or 0
                )
                if due and not self.waiting_for_ami:
                    state = "not configured" if self.ami is None else self.ami.state
                    log.warning("%d emergency callback(s) due but AMI is %s: they wait, none is lost", due, state)
            elif self.waiting_for_ami:
                log.info("AMI back: placing the callbacks that waited")
                self._dispatch_wake.set()
            self.waiting_for_ami = bool(due)
        poll = self.settings.emergency_callback_poll_seconds
        if self._results:
            return MIN_SLEEP
        if lease is None:
            return poll
        return max(MIN_SLEEP, min(poll, (lease - self.clock()).total_seconds()))

    async def dispatch(self) -> None:
        """The dispatcher: claims what is due and starts its Originates, then
        sleeps until the next job is due (or it is woken: a new step, AMI back)."""
        while True:
            delay = self.settings.emergency_callback_poll_seconds
            try:
                if self._ami_ready():  # AMI down: sleep; the bookkeeping loop wakes us when it is back
                    await self._claim_and_place()
                    async with asyncio.timeout(DB_TIMEOUT), self.sessions() as session:
                        upcoming = await session.scalar(
                            select(func.min(EmergencyCallback.due_at)).where(EmergencyCallback.state == "pending")
                        )
                    if upcoming is not None:
                        delay = max(MIN_SLEEP, min(delay, (upcoming - self.clock()).total_seconds()))
            except STORAGE_ERRORS:
                pass  # the bookkeeping loop reports the outage
            except Exception:
                log.exception("callback dispatch failed")
            await self._sleep(self._dispatch_wake, delay)

    def _ami_ready(self) -> bool:
        return self.ami is not None and self.ami.state == "connected"

    async def _claim_and_place(self) -> None:
        """Claim what is due (as many as may be in flight), mark it ``sending``
        in one transaction, and start an Originate for each."""
        while (free := MAX_IN_FLIGHT - len(self._inflight)) > 0:
            async with self._unit() as session:
                jobs = await claim_due(session, self.instance, self.clock(), free)
            if not jobs:
                return
            now = self.clock()
            async with self._unit() as session:
                sending = await mark_sending(
                    session, jobs, self.instance, now, self.settings.emergency_callback_grace_seconds
                )
            for job in sending:
                log.info(
                    "emergency callback %s: alarm %s, %s (%s), %.3fs after due",
                    job.id,
                    job.alarm_id,
                    job.officer_name,
                    job.dial_string,
                    (now - job.due_at).total_seconds(),
                )
                self.placed += 1
                task = asyncio.create_task(self._place(job), name=f"callback-{job.id}")
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _sleep(self, event: asyncio.Event, seconds: float) -> None:
        waits: list[asyncio.Task[Any]] = [asyncio.create_task(event.wait())]
        if self.waiting_for_ami and self.ami is not None:
            waits.append(asyncio.create_task(self.ami.wait_state("connected", max(seconds, MIN_SLEEP))))
        try:
            await asyncio.wait(waits, timeout=max(seconds, MIN_SLEEP), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.wait(waits)
        event.clear()

    async def _replay_journal(self, now: datetime) -> None:
        for path, kind, payload in self.journal.entries():
            async with self._unit() as session:
                if kind == "alarm":
                    try:
                        await create_alarm(session, AlarmDraft.from_json(payload))
                    except IntegrityError:
                        pass  # raised meanwhile: once is enough
                elif kind == "ack":
                    at = datetime.fromisoformat(payload["at"])
                    won, _ = await acknowledge(
                        session,
                        int(payload["alarm_id"]),
                        by=payload["by"],
                        via="phone",
                        now=at,
                        officer_code=payload.get("officer_code", ""),
                    )
                    if won:
                        await finish_job(
                            session,
                            int(payload["job_id"]),
                            ACKNOWLEDGED,
                            at,
                            states=("sending", "unknown", "answered", "done"),
                        )
                else:
                    log.error("unknown journal entry %s kept aside", path.name)
                    path.rename(path.with_suffix(".bad"))
                    continue
            path.unlink()
            log.info("journaled %s %s written to the database", kind, path.stem)

    async def _place(self, job: Job) -> None:
        """One Originate (the job is ``sending``); its outcome is written by the
        loop's next pass, with the others that came back meanwhile."""
        try:
            outcome = await self._originate(job, job.ring_seconds + ORIGINATE_EXTRA_SECONDS)
            self._results.append((job, outcome, self.clock()))
        finally:
            self.wake()

    async def _originate(self, job: Job, wait: float) -> tuple[str, Any]:
        assert self.ami is not None
        settings = self.settings
        try:
            result = await self.ami.originate(
                channel=job.dial_string,
                context=settings.emergency_callback_context,
                exten="s",
                priority=1,
                caller_id=settings.emergency_callback_caller_id or None,
                variables={channel_vars.CALLBACK_JOB: str(job.id), channel_vars.CALLBACK_TOKEN: job.token},
                timeout_ms=job.ring_seconds * 1000,
                wait=wait,
            )
        except AMIUnavailable as exc:
            return "not-sent", str(exc)
        except (AMIConnectionLost, AMITimeout) as exc:
            log.warning("callback %s: outcome unknown (%s); it is not sent again", job.id, exc)
            return "unknown", str(exc)
        except AMIActionError as exc:
            return "failed", (None, exc.message)
        except (AMIEncodingError, ValueError) as exc:
            return "failed", (None, f"invalid dial string: {exc}")
        if result.success:
            return "answered", result.uniqueid or ""
        return "failed", (result.reason, "")

    async def _write_results(self) -> None:
        """Write the outcomes of finished Originates, all in one transaction.
        When the database fails they stay queued; if this process dies first,
        the jobs' leases settle them (``unknown``, never sent again)."""
        if not self._results:
            return
        batch, self._results = self._results[:RESULTS_BATCH], self._results[RESULTS_BATCH:]
        settings = self.settings
        try:
            async with self._unit() as session:
                for job, (kind, data), at in batch:
                    if kind == "not-sent":
                        log.info("callback %s not sent (%s): due again when AMI is back", job.id, data)
                        await not_sent(session, job.id, self.instance)
                    elif kind == "unknown":
                        grace = job.ring_seconds + settings.emergency_callback_grace_seconds
                        await mark_unknown(session, job.id, at + timedelta(seconds=grace))
                    elif kind == "answered":
                        until = at + timedelta(seconds=settings.emergency_ack_timeout_seconds)
                        await mark_answered(session, job.id, until, uniqueid=data)
                    else:
                        reason, detail = data
                        result = REASONS.get(reason, "unavailable") if reason is not None else "unavailable"
                        await finish_job(session, job.id, result, at, reason=reason, detail=detail)
        except BaseException:
            self._results[:0] = batch
            raise
        self.placed -= sum(1 for _, (kind, _), _ in batch if kind == "not-sent")

"""Writing a call's record: the call row, its ticket and its timeline.

A call is saved as a snapshot, idempotently: the call is found by Asterisk's
uniqueid, events by ``(call, seq)`` and recordings by path. The same snapshot
can therefore be written at every checkpoint of the call, and replayed from the
spool after a database outage, without creating anything twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr import ticket_number
from ivr.storage import models


@dataclass
class EventFacts:
    seq: int
    at: datetime
    kind: str
    data: dict[str, Any]


@dataclass
class RecordingFacts:
    kind: str
    path: str
    seconds: float
    created_at: datetime


@dataclass
class CallSnapshot:
    """Everything known about a call so far (plain data, JSON-serialisable)."""

    uniqueid: str
    channel: str
    script: str
    started_at: datetime
    linkedid: str = ""
    caller_number: str = ""
    caller_e164: str | None = None
    caller_name: str = ""
    caller_id: int | None = None
    office_id: int | None = None
    dialed_number: str = ""
    ended_at: datetime | None = None
    outcome: str = "in-progress"
    outcome_step: str = ""
    ticket_kind: str = "info"
    ticket_status: str = "open"
    ticket_priority: str = "normal"
    ticket_details: dict[str, Any] = field(default_factory=dict)
    events: list[EventFacts] = field(default_factory=list)
    recordings: list[RecordingFacts] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return _datetimes_to_text(data)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallSnapshot:
        parse = datetime.fromisoformat
        events = [EventFacts(e["seq"], parse(e["at"]), e["kind"], e["data"]) for e in data.pop("events")]
        recordings = [
            RecordingFacts(r["kind"], r["path"], r["seconds"], parse(r["created_at"])) for r in data.pop("recordings")
        ]
        for key in ("started_at", "ended_at"):
            if data.get(key):
                data[key] = parse(data[key])
        return cls(**data, events=events, recordings=recordings)


def _datetimes_to_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _datetimes_to_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_datetimes_to_text(v) for v in value]
    return value


@dataclass(frozen=True)
class SavedCall:
    call_id: int
    ticket_id: int
    ticket_number: str


async def save_call(session: AsyncSession, snapshot: CallSnapshot) -> SavedCall:
    """Create or update the call, its ticket, and append the events and
    recordings not yet stored. The caller commits."""
    call = await session.scalar(select(models.Call).where(models.Call.uniqueid == snapshot.uniqueid))
    if call is None:
        ticket = models.Ticket(created_at=snapshot.started_at)
        session.add(ticket)
        await session.flush()
        ticket.number = ticket_number.number_for_id(ticket.id)
        call = models.Call(uniqueid=snapshot.uniqueid, started_at=snapshot.started_at, ticket_id=ticket.id)
        session.add(call)
    else:
        ticket = await session.get_one(models.Ticket, call.ticket_id)

    call.linkedid = snapshot.linkedid
    call.channel = snapshot.channel
    call.script = snapshot.script
    call.caller_number = snapshot.caller_number
    call.caller_e164 = snapshot.caller_e164
    call.caller_name = snapshot.caller_name
    call.caller_id = snapshot.caller_id
    call.dialed_number = snapshot.dialed_number
    call.ended_at = snapshot.ended_at
    call.duration_seconds = (
        (snapshot.ended_at - snapshot.started_at).total_seconds() if snapshot.ended_at else None
    )
    call.outcome = snapshot.outcome
    call.outcome_step = snapshot.outcome_step

    # Once staff have acted on the ticket, its status is theirs: a late
    # checkpoint or a spool replay must not undo a staff decision.
    staff_acted = await session.scalar(
        select(exists().where(models.TicketEvent.ticket_id == ticket.id, models.TicketEvent.kind == "staff"))
    )
    if not staff_acted:
        ticket.status = snapshot.ticket_status
    ticket.kind = snapshot.ticket_kind
    ticket.priority = snapshot.ticket_priority
    ticket.details = {**(ticket.details or {}), **snapshot.ticket_details}
    ticket.caller_id = snapshot.caller_id
    ticket.office_id = snapshot.office_id
    ticket.caller_number = snapshot.caller_number
    ticket.caller_e164 = snapshot.caller_e164
    await session.flush()

    stored_seq = await session.scalar(
        select(func.coalesce(func.max(models.TicketEvent.seq), -1)).where(models.TicketEvent.call_id == call.id)
    )
    for facts in snapshot.events:
        if facts.seq > (stored_seq if stored_seq is not None else -1):
            session.add(
                models.TicketEvent(
                    ticket_id=ticket.id, call_id=call.id, seq=facts.seq, at=facts.at, kind=facts.kind, data=facts.data
                )
            )
    if snapshot.recordings:
        known = set(
            await session.scalars(
                select(models.Recording.path).where(models.Recording.path.in_([r.path for r in snapshot.recordings]))
            )
        )
        for rec in snapshot.recordings:
            if rec.path not in known:
                session.add(
                    models.Recording(
                        ticket_id=ticket.id,
                        call_id=call.id,
                        kind=rec.kind,
                        path=rec.path,
                        seconds=rec.seconds,
                        created_at=rec.created_at,
                    )
                )
    await session.flush()
    assert ticket.number is not None
    return SavedCall(call_id=call.id, ticket_id=ticket.id, ticket_number=ticket.number)

"""Writing a call's record: the call row, its ticket and its timeline.

A call is saved as a snapshot, idempotently: the call is found by Asterisk's
uniqueid, events by ``(call, seq)`` and recordings by path. The same snapshot
can therefore be written at every checkpoint of the call, and replayed from the
spool after a database outage, without creating anything twice.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ivr import ticket_number
from ivr.storage import models
from ivr.storage.models import utcnow

log = logging.getLogger("ivr.records")


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
    """What is stored after a save; passed back to the next save of the same
    call so it only writes what is new."""

    call_id: int
    ticket_id: int
    ticket_number: str
    events_stored: int = 0
    recordings_stored: int = 0


async def save_call(session: AsyncSession, snapshot: CallSnapshot, known: SavedCall | None = None) -> SavedCall:
    """Create or update the call and its ticket, and append the events and
    recordings not yet stored. The caller commits.

    With ``known`` (this process saved the call before) it is a handful of
    UPDATE and INSERT statements; without it (first save, or a spool replay
    in another process) the stored state is looked up first."""
    if known is None:
        known = await _stored_state(session, snapshot)
    if known is None:
        ticket = models.Ticket(created_at=snapshot.started_at)
        session.add(ticket)
        await session.flush()
        ticket.number = ticket_number.number_for_id(ticket.id)
        call = models.Call(uniqueid=snapshot.uniqueid, started_at=snapshot.started_at, ticket_id=ticket.id)
        session.add(call)
        await session.flush()
        known = SavedCall(call.id, ticket.id, ticket.number)

    duration = (snapshot.ended_at - snapshot.started_at).total_seconds() if snapshot.ended_at else None
    await session.execute(
        update(models.Call)
        .where(models.Call.id == known.call_id)
        .values(
            linkedid=snapshot.linkedid,
            channel=snapshot.channel,
            script=snapshot.script,
            caller_number=snapshot.caller_number,
            caller_e164=snapshot.caller_e164,
            caller_name=snapshot.caller_name,
            caller_id=snapshot.caller_id,
            dialed_number=snapshot.dialed_number,
            ended_at=snapshot.ended_at,
            duration_seconds=duration,
            outcome=snapshot.outcome,
            outcome_step=snapshot.outcome_step,
        )
    )
    await session.execute(
        update(models.Ticket)
        .where(models.Ticket.id == known.ticket_id)
        .values(
            kind=snapshot.ticket_kind,
            priority=snapshot.ticket_priority,
            details=snapshot.ticket_details,
            caller_id=snapshot.caller_id,
            office_id=snapshot.office_id,
            caller_number=snapshot.caller_number,
            caller_e164=snapshot.caller_e164,
            updated_at=utcnow(),
        )
    )
    # Once staff have acted on the ticket, its status is theirs: a late
    # checkpoint or a spool replay must not undo a staff decision.
    staff_acted = exists().where(models.TicketEvent.ticket_id == known.ticket_id, models.TicketEvent.kind == "staff")
    await session.execute(
        update(models.Ticket)
        .where(models.Ticket.id == known.ticket_id, ~staff_acted)
        .values(status=snapshot.ticket_status)
    )

    # The call goes on appending while we await the database: work on what
    # exists now, and count only that as stored.
    events = list(snapshot.events)
    recordings = list(snapshot.recordings)
    new_events = [e for e in events if e.seq >= known.events_stored]
    if new_events:
        await session.execute(
            insert(models.TicketEvent),
            [
                {
                    "ticket_id": known.ticket_id,
                    "call_id": known.call_id,
                    "seq": e.seq,
                    "at": e.at,
                    "kind": e.kind,
                    "data": e.data,
                }
                for e in new_events
            ],
        )
    new_recordings = recordings[known.recordings_stored :]
    if new_recordings:
        await session.execute(
            insert(models.Recording),
            [
                {
                    "ticket_id": known.ticket_id,
                    "call_id": known.call_id,
                    "kind": r.kind,
                    "path": r.path,
                    "seconds": r.seconds,
                    "created_at": r.created_at,
                }
                for r in new_recordings
            ],
        )
    return SavedCall(
        known.call_id,
        known.ticket_id,
        known.ticket_number,
        events_stored=max((e.seq for e in events), default=known.events_stored - 1) + 1,
        recordings_stored=len(recordings),
    )


async def _stored_state(session: AsyncSession, snapshot: CallSnapshot) -> SavedCall | None:
    row = (
        await session.execute(
            select(models.Call.id, models.Ticket.id, models.Ticket.number, models.Call.started_at, models.Call.channel)
            .join(models.Ticket, models.Ticket.id == models.Call.ticket_id)
            .where(models.Call.uniqueid == snapshot.uniqueid)
        )
    ).first()
    if row is None:
        return None
    if row[3] != snapshot.started_at or row[4] != snapshot.channel:
        # Another call already has this uniqueid (two Asterisk hosts without a
        # ``systemname``, or a restarted one): never merge two calls' records.
        original = snapshot.uniqueid
        snapshot.uniqueid = f"{original}-{secrets.token_hex(3)}"
        log.warning("uniqueid %s already belongs to another call; stored as %s", original, snapshot.uniqueid)
        return None
    stored_seq = await session.scalar(
        select(func.coalesce(func.max(models.TicketEvent.seq), -1)).where(models.TicketEvent.call_id == row[0])
    )
    stored_paths = set(
        await session.scalars(
            select(models.Recording.path).where(models.Recording.path.in_([r.path for r in snapshot.recordings]))
        )
    )
    # Recordings are appended in order, so the stored ones are a prefix.
    stored_recordings = sum(1 for r in snapshot.recordings if r.path in stored_paths)
    return SavedCall(
        row[0],
        row[1],
        row[2],
        events_stored=(stored_seq if stored_seq is not None else -1) + 1,
        recordings_stored=stored_recordings,
    )

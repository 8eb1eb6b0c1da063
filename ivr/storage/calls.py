"""Writing a call's record: the call row, its ticket and its timeline.

A call is saved as a snapshot, idempotently: the call is found by Asterisk's
uniqueid, events by ``(call, seq)`` and recordings by path. The same snapshot
can therefore be written at every checkpoint of the call, and replayed from the
spool after a database outage, without creating anything twice.
"""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, exists, func, insert, select, update

from ivr import ticket_number
from ivr.storage import models

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

    def frozen(self) -> CallSnapshot:
        """A copy the call's later appends and changes do not reach: what one
        save writes (possibly in another thread) while the call goes on."""
        return replace(
            self,
            ticket_details=copy.deepcopy(self.ticket_details),
            events=list(self.events),
            recordings=list(self.recordings),
        )

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
    call so it only writes what is new: rows whose values did not change since
    (``call_row``, ``ticket_row``) are not written again."""

    call_id: int
    ticket_id: int
    ticket_number: str
    events_stored: int = 0
    recordings_stored: int = 0
    call_row: dict[str, Any] | None = None
    ticket_row: dict[str, Any] | None = None


CALLS = models.Call.__table__
TICKETS = models.Ticket.__table__
EVENTS = models.TicketEvent.__table__
RECORDINGS = models.Recording.__table__

# Statements built once, their values bound at execution: building and
# cache-keying a statement for every save cost more than running it. Each runs
# once per batch of saves (an executemany), not once per call: SQLAlchemy's
# fixed cost per execution is larger than its cost per row.
_INSERT_EVENTS = insert(EVENTS)
_INSERT_RECORDINGS = insert(RECORDINGS)
_STORED_CALLS = (
    select(CALLS.c.uniqueid, CALLS.c.id, TICKETS.c.id, TICKETS.c.number, CALLS.c.started_at, CALLS.c.channel)
    .join(TICKETS, TICKETS.c.id == CALLS.c.ticket_id)
    .where(CALLS.c.uniqueid.in_(bindparam("uniqueids", expanding=True)))
)
# ``sort_by_parameter_order``: the ids come back in the order of the rows
# given, whichever way the dialect batches them (one INSERT ... VALUES (...),
# (...) RETURNING on SQLite and PostgreSQL).
_INSERT_TICKETS = insert(TICKETS).returning(TICKETS.c.id, sort_by_parameter_order=True)
_NUMBER_TICKET = update(TICKETS).where(TICKETS.c.id == bindparam("ticket_key")).values(number=bindparam("new_number"))
_INSERT_CALLS = insert(CALLS).returning(CALLS.c.id, sort_by_parameter_order=True)
#: The SET columns are the execution's parameters (a call row).
_UPDATE_CALL = update(CALLS).where(CALLS.c.id == bindparam("call_key"))
#: The SET columns are the execution's parameters (a ticket row) and the
#: status, unless staff have acted on the ticket: then the status is theirs,
#: and a late checkpoint or a spool replay must not undo a staff decision.
_UPDATE_TICKET = (
    update(TICKETS)
    .where(TICKETS.c.id == bindparam("ticket_key"))
    .values(
        status=case(
            (exists().where(EVENTS.c.ticket_id == bindparam("ticket_key"), EVENTS.c.kind == "staff"), TICKETS.c.status),
            else_=bindparam("new_status"),
        )
    )
)


def _call_row(snapshot: CallSnapshot) -> dict[str, Any]:
    duration = (snapshot.ended_at - snapshot.started_at).total_seconds() if snapshot.ended_at else None
    return {
        "linkedid": snapshot.linkedid,
        "channel": snapshot.channel,
        "script": snapshot.script,
        "caller_number": snapshot.caller_number,
        "caller_e164": snapshot.caller_e164,
        "caller_name": snapshot.caller_name,
        "caller_id": snapshot.caller_id,
        "dialed_number": snapshot.dialed_number,
        "ended_at": snapshot.ended_at,
        "duration_seconds": duration,
        "outcome": snapshot.outcome,
        "outcome_step": snapshot.outcome_step,
    }


def _ticket_row(snapshot: CallSnapshot) -> dict[str, Any]:
    return {
        "kind": snapshot.ticket_kind,
        "priority": snapshot.ticket_priority,
        "details": snapshot.ticket_details,
        "caller_id": snapshot.caller_id,
        "office_id": snapshot.office_id,
        "caller_number": snapshot.caller_number,
        "caller_e164": snapshot.caller_e164,
        "status": snapshot.ticket_status,
    }


def save_call(connection: Connection, snapshot: CallSnapshot, known: SavedCall | None = None) -> SavedCall:
    """``save_calls`` for one snapshot."""
    return save_calls(connection, [(snapshot, known)])[0]


def save_calls(connection: Connection, saves: Sequence[tuple[CallSnapshot, SavedCall | None]]) -> list[SavedCall]:
    """Create or update each call and its ticket, and append the events and
    recordings not yet stored, in the caller's transaction; one ``SavedCall``
    per save, in order.

    Synchronous, so that ``ivr.records.CallStore`` can run a whole batch in one
    thread (SQLite) or through ``run_sync`` (PostgreSQL); the snapshots must not
    change meanwhile (``CallSnapshot.frozen``), and a batch holds at most one
    save of a call (a call's saves are queued one behind the other).

    A save with ``known`` (this process saved the call before) writes only what
    changed since; without it (first save, or a spool replay in another
    process) the stored state is looked up first. Each kind of statement runs
    once for the whole batch, with a row per call: a batch costs about seven
    statements however many calls it holds. Core statements on the tables:
    this runs at every checkpoint of every call, and the ORM's unit of work and
    bulk-update bookkeeping cost more than the SQL."""
    knowns: list[SavedCall | None] = [known for _, known in saves]
    lookups = [snapshot for snapshot, known in saves if known is None]
    if lookups:
        stored = _stored_states(connection, lookups)
        knowns = [
            known if known is not None else stored.get(id(snapshot))
            for (snapshot, _), known in zip(saves, knowns, strict=True)
        ]
    rows = [(_call_row(snapshot), _ticket_row(snapshot)) for snapshot, _ in saves]
    to_create = [index for index, known in enumerate(knowns) if known is None]
    if to_create:
        created = _create(connection, [saves[index][0] for index in to_create], [rows[index] for index in to_create])
        for index, saved in zip(to_create, created, strict=True):
            knowns[index] = saved

    call_updates: list[dict[str, Any]] = []
    ticket_updates: list[dict[str, Any]] = []
    new_events: list[dict[str, Any]] = []
    new_recordings: list[dict[str, Any]] = []
    results: list[SavedCall] = []
    created = set(to_create)
    for index, ((snapshot, _), known, (call_row, ticket_row)) in enumerate(zip(saves, knowns, rows, strict=True)):
        assert known is not None
        # Rows just inserted are the snapshot's; rows looked up (``call_row``
        # None) are rewritten from it.
        if index not in created and call_row != known.call_row:
            call_updates.append({**call_row, "call_key": known.call_id})
        if index not in created and ticket_row != known.ticket_row:
            values = {**ticket_row, "ticket_key": known.ticket_id, "new_status": ticket_row["status"]}
            del values["status"]
            ticket_updates.append(values)
        new_events += (
            {
                "ticket_id": known.ticket_id,
                "call_id": known.call_id,
                "seq": e.seq,
                "at": e.at,
                "kind": e.kind,
                "data": e.data,
            }
            for e in snapshot.events
            if e.seq >= known.events_stored
        )
        new_recordings += (
            {
                "ticket_id": known.ticket_id,
                "call_id": known.call_id,
                "kind": r.kind,
                "path": r.path,
                "seconds": r.seconds,
                "created_at": r.created_at,
            }
            for r in snapshot.recordings[known.recordings_stored :]
        )
        results.append(
            SavedCall(
                known.call_id,
                known.ticket_id,
                known.ticket_number,
                events_stored=max((e.seq for e in snapshot.events), default=known.events_stored - 1) + 1,
                recordings_stored=len(snapshot.recordings),
                call_row=call_row,
                ticket_row=ticket_row,
            )
        )
    if call_updates:
        connection.execute(_UPDATE_CALL, call_updates)
    if ticket_updates:
        connection.execute(_UPDATE_TICKET, ticket_updates)
    if new_events:
        connection.execute(_INSERT_EVENTS, new_events)
    if new_recordings:
        connection.execute(_INSERT_RECORDINGS, new_recordings)
    return results


def _create(
    connection: Connection, snapshots: list[CallSnapshot], rows: list[tuple[dict[str, Any], dict[str, Any]]]
) -> list[SavedCall]:
    """Insert the tickets and the calls; a ticket's number derives from its id."""
    ticket_ids = (
        connection.execute(
            _INSERT_TICKETS,
            [
                {**ticket_row, "created_at": snapshot.started_at}
                for snapshot, (_, ticket_row) in zip(snapshots, rows, strict=True)
            ],
        )
        .scalars()
        .all()
    )
    numbers = [ticket_number.number_for_id(ticket_id) for ticket_id in ticket_ids]
    connection.execute(
        _NUMBER_TICKET,
        [
            {"ticket_key": ticket_id, "new_number": number}
            for ticket_id, number in zip(ticket_ids, numbers, strict=True)
        ],
    )
    call_ids = (
        connection.execute(
            _INSERT_CALLS,
            [
                {**call_row, "uniqueid": snapshot.uniqueid, "started_at": snapshot.started_at, "ticket_id": ticket_id}
                for snapshot, (call_row, _), ticket_id in zip(snapshots, rows, ticket_ids, strict=True)
            ],
        )
        .scalars()
        .all()
    )
    return [
        SavedCall(call_id, ticket_id, number)
        for call_id, ticket_id, number in zip(call_ids, ticket_ids, numbers, strict=True)
    ]


def _stored_states(connection: Connection, snapshots: list[CallSnapshot]) -> dict[int, SavedCall]:
    """What is already stored of calls saved without ``known``, by ``id()`` of
    their snapshot (absent: nothing stored, the call is created)."""
    rows = {
        row[0]: row
        for row in connection.execute(_STORED_CALLS, {"uniqueids": [snapshot.uniqueid for snapshot in snapshots]})
    }
    found: dict[int, SavedCall] = {}
    for snapshot in snapshots:
        row = rows.get(snapshot.uniqueid)
        if row is None:
            continue
        if row[4] != snapshot.started_at or row[5] != snapshot.channel:
            # Another call already has this uniqueid (two Asterisk hosts without a
            # ``systemname``, or a restarted one): never merge two calls' records.
            original = snapshot.uniqueid
            snapshot.uniqueid = f"{original}-{secrets.token_hex(3)}"
            log.warning("uniqueid %s already belongs to another call; stored as %s", original, snapshot.uniqueid)
            continue
        found[id(snapshot)] = _stored_timeline(connection, snapshot, row[1], row[2], row[3])
    return found


def _stored_timeline(
    connection: Connection, snapshot: CallSnapshot, call_id: int, ticket_id: int, number: str
) -> SavedCall:
    """How much of a stored call's timeline is there (a spool replay, or a
    save that was given up on but committed after all)."""
    stored_seq = connection.scalar(
        select(func.coalesce(func.max(models.TicketEvent.seq), -1)).where(models.TicketEvent.call_id == call_id)
    )
    stored_paths = set(
        connection.scalars(
            select(models.Recording.path).where(models.Recording.path.in_([r.path for r in snapshot.recordings]))
        )
    )
    # Recordings are appended in order, so the stored ones are a prefix.
    stored_recordings = sum(1 for r in snapshot.recordings if r.path in stored_paths)
    return SavedCall(
        call_id,
        ticket_id,
        number,
        events_stored=(stored_seq if stored_seq is not None else -1) + 1,
        recordings_stored=stored_recordings,
    )

"""The REST API under ``/api/`` (contract: PRODUCT.md section 5).

One route table (``ROUTES``) says, for each route, its handler and who may call
it; ``setup`` registers exactly that table and builds the OpenAPI document
from it. Each request is one short unit of work on the database.

Conventions: times are ISO 8601 with the offset of the configured zone
(``settings.zone``), dates ``YYYY-MM-DD``, phone numbers as entered plus E.164;
lists are paged with ``limit``/``offset`` and say ``next_offset`` (``null`` on
the last page).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import ColumnElement, Select, func, or_, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from ivr import directory_import, tickets
from ivr.config import WEEKDAY_KEYS
from ivr.storage import settings_store
from ivr.storage.models import Call, Caller, CallerNumber, Office, Recording, Ticket, TicketEvent
from ivr.web import RUNTIME, WebRuntime, validation
from ivr.web import openapi as openapi_doc
from ivr.web.auth import PUBLIC, Access, add_route, identity
from ivr.web.errors import DATABASE_DOWN, ApiError, Conflict, Invalid, NotFound

log = logging.getLogger("ivr.web.api")

#: Ticket statuses staff can set (Indonesian, as the web app shows them; the
#: IVR itself writes "open" and "closed").
#: What staff may set; the list filter also knows the statuses calls set (abandoned, ...).
TICKET_STATUSES: Final = tickets.STAFF_STATUSES
#: The note is read to the caller by TTS: long enough for two sentences.
MAX_NOTE: Final = 500
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
MAX_OFFSET: Final = 1_000_000
#: How far ahead ``GET /api/office-hours`` lists holidays.
HOLIDAY_WINDOW_DAYS: Final = 60
#: A dead database must make the health check say so quickly.
HEALTH_DB_TIMEOUT: Final = 1.5
#: Keys of a step that come from the step itself; event data with these names
#: is renamed ``<kind>_<key>`` (a recording's ``kind`` becomes ``record_kind``).
_STEP_KEYS: Final = frozenset({"at", "kind"})
#: AMI states that are not a problem for the health check.
_AMI_FINE: Final = frozenset({"connected", "disabled"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ: Final = Access(permission="read")
#: How long a JSON body may take to arrive once its headers have.
BODY_READ_SECONDS = 30.0


# -- helpers -------------------------------------------------------------------


def _runtime(request: web.Request) -> WebRuntime:
    return request.app[RUNTIME]


def _iso(value: datetime | None, zone: ZoneInfo, *, precise: bool = False) -> str | None:
    if value is None:
        return None
    return value.astimezone(zone).isoformat(timespec="milliseconds" if precise else "seconds")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a clear 4xx."""
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(415, "Send the body as JSON with Content-Type: application/json")
    limit = request.client_max_size
    if request.content_length is not None and limit and request.content_length > limit:
        raise ApiError(413, f"Request body larger than {limit} bytes")
    try:
        # A body that trickles in (slowloris) must not hold a handler for ever.
        async with asyncio.timeout(BODY_READ_SECONDS):
            body = await request.read()  # aiohttp raises 413 past client_max_size
    except TimeoutError:
        raise ApiError(
            408, "Isi permintaan datang terlalu lambat / The request body arrived too slowly", code="body_timeout"
        ) from None
    if not body.strip():
        raise ApiError(400, "The request body is empty; expected a JSON object", code="invalid_json")
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "The request body is not UTF-8 text", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", code="invalid_json"
        ) from None
    except RecursionError:  # "[[[[..." a megabyte deep
        raise ApiError(400, "The JSON is nested too deeply", code="invalid_json") from None
    except _NotJsonNumber as exc:
        raise ApiError(400, f"Malformed JSON: {exc}", code="invalid_json") from None
    except ValueError:  # an integer of more than 4300 digits (sys.get_int_max_str_digits)
        raise Invalid({"_body": validation.OUT_OF_RANGE}) from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object", code="invalid_json")
    problems = validation.clean_document(data)
    if problems:
        raise Invalid(problems)
    return data


class _NotJsonNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259 section 6)."""
    raise _NotJsonNumber(f"{name} is not a JSON number")


def _reject_unknown(body: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = [key for key in body if key not in allowed]
    if unknown:
        raise Invalid(
            {key: "Kolom tidak dikenal / Unknown field" for key in unknown},
            f"Unknown fields; allowed: {', '.join(allowed)}",
        )


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Invalid({name: f"Harus bilangan bulat {low}-{high} / Must be an integer from {low} to {high}"})
    return value


def _page(request: web.Request) -> tuple[int, int]:
    return (
        _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        _int_param(request, "offset", 0, 0, MAX_OFFSET),
    )


def _page_body(items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """``items`` holds up to ``limit + 1`` rows: the extra one says there is more."""
    more = len(items) > limit
    return {
        "items": items[:limit],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


def _list_param(request: web.Request, name: str) -> list[str]:
    return [part.strip() for part in request.query.get(name, "").split(",") if part.strip()]


_OFFSET_WITH_LOST_PLUS = re.compile(r" (\d{2}(:?\d{2})?)$")


def parse_since(raw: str, zone: ZoneInfo) -> datetime:
    """A date (midnight in ``zone``) or a date-time (naive means ``zone``), in
    UTC. A ``+`` that arrived as a space (an unencoded query string) is
    restored. ``ValueError`` for anything else, year 1 and 9999 included."""
    raw = _OFFSET_WITH_LOST_PLUS.sub(r"+\1", raw.strip())
    if len(raw) == 10:
        value = datetime.combine(date.fromisoformat(raw), time(0), tzinfo=zone)
    else:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{raw!r} is out of range") from None


def _step(event: TicketEvent, zone: ZoneInfo) -> dict[str, Any]:
    step: dict[str, Any] = {"at": _iso(event.at, zone, precise=True), "kind": event.kind}
    for key, value in (event.data or {}).items():
        step[f"{event.kind}_{key}" if key in _STEP_KEYS else key] = value
    return step


async def _caller_ref(session: AsyncSession, caller_id: int | None) -> dict[str, Any] | None:
    if caller_id is None:
        return None
    row = (
        await session.execute(
            select(Caller.id, Caller.name, Office.name)
            .outerjoin(Office, Office.id == Caller.office_id)
            .where(Caller.id == caller_id)
        )
    ).first()
    return {"id": row[0], "name": row[1], "office": row[2]} if row else None


# -- health and the document -----------------------------------------------------


async def _database_status(runtime: WebRuntime) -> str:
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT), runtime.sessions() as session:
            await session.execute(text("SELECT 1"))
    except (*DATABASE_DOWN, SQLAlchemyError) as exc:
        log.warning("health: database down (%s)", type(exc).__name__)
        return "down"
    return "ok"


def _tts_status(runtime: WebRuntime) -> str:
    try:
        return str(runtime.speech.health().get("status", "unknown"))
    except Exception:
        log.exception("health: the TTS engine's health() failed")
        return "unknown"


def _ami_status(runtime: WebRuntime) -> str:
    """AMIClient.state (connecting, connected, auth_failed, down), or disabled."""
    ami = runtime.services.ami
    return "disabled" if ami is None else str(ami.state)


async def health(request: web.Request) -> web.Response:
    """Public: says only ok/down per part and two counters."""
    runtime = _runtime(request)
    database = await _database_status(runtime)
    if database == "ok":
        # A read can work while writes fail (another process holds SQLite's
        # lock, a read-only file, a full disk): the call records' writes say.
        writes = runtime.services.spool.store.write_status()
        if writes != "ok":
            database = f"writes-{writes}"
    tts = _tts_status(runtime)
    ami = _ami_status(runtime)
    try:
        backlog = runtime.services.spool.backlog()
    except OSError:
        backlog = -1
    # Records waiting in the spool mean the database refused or timed out
    # recently, even if a quick read works now.
    healthy = database == "ok" and tts == "ok" and ami in _AMI_FINE and backlog == 0
    return web.json_response(
        {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "ami": ami,
            "tts": tts,
            "spool_backlog": backlog,
            "active_calls": len(runtime.calls.active),
        }
    )


OPENAPI_DOCUMENT: Final[web.AppKey[dict[str, Any]]] = web.AppKey("openapi_document")


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_DOCUMENT])


# -- calls -------------------------------------------------------------------------


async def get_call(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    zone = runtime.settings.zone
    uniqueid = request.match_info["uniqueid"]
    if len(uniqueid) > 64 or validation.text_problem(uniqueid) is not None:
        raise NotFound("No such call")
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                select(Call, Ticket.number)
                .outerjoin(Ticket, Ticket.id == Call.ticket_id)
                .where(Call.uniqueid == uniqueid)
            )
        ).first()
        if row is None:
            raise NotFound("No such call")
        call, number = row
        caller = await _caller_ref(session, call.caller_id)
        events = await session.scalars(
            select(TicketEvent).where(TicketEvent.call_id == call.id).order_by(TicketEvent.seq, TicketEvent.id)
        )
        steps = [_step(event, zone) for event in events]
    return web.json_response(
        {
            "uniqueid": call.uniqueid,
            "linkedid": call.linkedid,
            "script": call.script,
            "channel": call.channel,
            "caller_number": call.caller_number,
            "caller_e164": call.caller_e164,
            "caller_name": call.caller_name,
            "caller": caller,
            "dialed_number": call.dialed_number,
            "started_at": _iso(call.started_at, zone),
            "ended_at": _iso(call.ended_at, zone),
            "duration_seconds": call.duration_seconds,
            "outcome": call.outcome,
            "outcome_step": call.outcome_step,
            "active": call.uniqueid in runtime.calls.active,
            "ticket": number,
            "steps": steps,
        }
    )


# -- tickets -----------------------------------------------------------------------


def _ticket_summary(ticket: Ticket, office: str | None, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "kind": ticket.kind,
        "status": ticket.status,
        "priority": ticket.priority,
        "office": office,
        "office_id": ticket.office_id,
        "caller_number": ticket.caller_number,
        "caller_e164": ticket.caller_e164,
        "note_for_caller": ticket.note_for_caller,
        "created_at": _iso(ticket.created_at, zone),
        "updated_at": _iso(ticket.updated_at, zone),
    }


def _ticket_filters(request: web.Request, zone: ZoneInfo) -> list[ColumnElement[bool]]:
    """The ``WHERE`` of ``GET /api/tickets`` from its query string, or 422 naming each bad parameter."""
    errors: dict[str, str] = {}
    conditions: list[ColumnElement[bool]] = [Ticket.number.is_not(None)]
    for name, column, known in (
        ("status", Ticket.status, tickets.STATUSES),
        ("kind", Ticket.kind, tickets.KINDS),
        ("priority", Ticket.priority, tickets.PRIORITIES),
    ):
        values = _list_param(request, name)
        unknown = [value for value in values if value not in known]
        if unknown:
            errors[name] = f"Tidak dikenal / Unknown: {', '.join(unknown)}; one of: {', '.join(known)}"
        elif values:
            conditions.append(column.in_(values))
    offices = [validation.parse_id(office) for office in _list_param(request, "office_id")]
    if None in offices:
        errors["office_id"] = (
            f"Harus id instansi (1-{validation.MAX_ID}) / Must be office ids (1 to {validation.MAX_ID})"
        )
    elif offices:
        conditions.append(Ticket.office_id.in_(offices))
    for name, inclusive_day_end in (("since", False), ("until", True)):
        raw = request.query.get(name)
        if not raw:
            continue
        try:
            bound = parse_since(raw, zone)
        except ValueError:
            errors[name] = "Gunakan YYYY-MM-DD atau tanggal-waktu ISO 8601 / Use YYYY-MM-DD or an ISO 8601 date-time"
            continue
        if inclusive_day_end:
            # "until=2026-12-02" takes the whole of that day.
            if len(raw.strip()) == 10:
                bound += timedelta(days=1)
            conditions.append(Ticket.created_at < bound)
        else:
            conditions.append(Ticket.created_at >= bound)
    if errors:
        raise Invalid(errors)
    return conditions


async def ticket_list_body(request: web.Request) -> dict[str, Any]:
    """A page of tickets as ``GET /api/tickets`` answers it (the ticket list page shows the same)."""
    runtime = _runtime(request)
    zone = runtime.settings.zone
    limit, offset = _page(request)
    conditions = _ticket_filters(request, zone)
    query = (
        select(Ticket, Office.name)
        .outerjoin(Office, Office.id == Ticket.office_id)
        .where(*conditions)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    async with runtime.sessions() as session:
        rows = (await session.execute(query)).all()
        total = await session.scalar(select(func.count(Ticket.id)).where(*conditions))
    items = [_ticket_summary(ticket, office, zone) for ticket, office in rows]
    body = _page_body(items, limit, offset)
    body["total"] = total or 0
    return body


async def list_tickets(request: web.Request) -> web.Response:
    return web.json_response(await ticket_list_body(request))


def _ticket_number(request: web.Request) -> str:
    number = request.match_info["number"]
    if not (len(number) == 8 and number.isascii() and number.isdigit()):
        raise NotFound("No such ticket (a ticket number has 8 digits)")
    return number


async def ticket_detail(session: AsyncSession, number: str, zone: ZoneInfo) -> dict[str, Any]:
    row = (
        await session.execute(
            select(Ticket, Office.name).outerjoin(Office, Office.id == Ticket.office_id).where(Ticket.number == number)
        )
    ).first()
    if row is None:
        raise NotFound("No such ticket")
    ticket, office = row
    body = _ticket_summary(ticket, office, zone)
    body["details"] = ticket.details or {}
    body["caller"] = await _caller_ref(session, ticket.caller_id)
    body["calls"] = list(
        await session.scalars(select(Call.uniqueid).where(Call.ticket_id == ticket.id).order_by(Call.started_at))
    )
    recordings = await session.scalars(select(Recording).where(Recording.ticket_id == ticket.id).order_by(Recording.id))
    body["recordings"] = [
        {
            "id": recording.id,
            "kind": recording.kind,
            "seconds": recording.seconds,
            "created_at": _iso(recording.created_at, zone),
            "url": f"/api/recordings/{recording.id}",
        }
        for recording in recordings
    ]
    events = await session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.at, TicketEvent.id)
    )
    body["events"] = [_step(event, zone) for event in events]
    return body


async def get_ticket(request: web.Request) -> web.Response:
    number = _ticket_number(request)
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        body = await ticket_detail(session, number, runtime.settings.zone)
    return web.json_response(body)


async def patch_ticket(request: web.Request) -> web.Response:
    number = _ticket_number(request)
    body = await read_json(request)
    _reject_unknown(body, ("status", "note_for_caller"))
    if not body:
        raise Invalid({"status": "Tidak ada yang diubah / Nothing to change"}, "Give status and/or note_for_caller")
    errors: dict[str, str] = {}
    status = body.get("status")
    if "status" in body and status not in TICKET_STATUSES:
        errors["status"] = f"Status harus salah satu dari / Status must be one of: {', '.join(TICKET_STATUSES)}"
    note = body.get("note_for_caller")
    if "note_for_caller" in body:
        if not isinstance(note, str):
            errors["note_for_caller"] = "Harus teks / Must be a string"
        elif len(note.strip()) > MAX_NOTE:
            errors["note_for_caller"] = f"Maks. {MAX_NOTE} karakter / At most {MAX_NOTE} characters"
    if errors:
        raise Invalid(errors)
    who = identity(request)
    if "note_for_caller" in body and not who.can("tickets.write"):
        raise ApiError(403, f"Role {who.role!r} may change a ticket's status only")

    runtime = _runtime(request)
    async with runtime.sessions.begin() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.number == number).with_for_update())
        if ticket is None:
            raise NotFound("No such ticket")
        changes: dict[str, dict[str, str]] = {}
        if isinstance(status, str) and status != ticket.status:
            changes["status"] = {"from": ticket.status, "to": status}
            ticket.status = status
        if isinstance(note, str) and note.strip() != ticket.note_for_caller:
            changes["note_for_caller"] = {"from": ticket.note_for_caller, "to": note.strip()}
            ticket.note_for_caller = note.strip()
        if changes:
            session.add(
                TicketEvent(
                    ticket_id=ticket.id,
                    kind="staff",
                    at=datetime.now(UTC),
                    data={"action": "update", "changes": changes, "by": who.describe()},
                )
            )
    if changes:
        log.info("ticket %s updated by %s: %s", number, who.name, ", ".join(changes))
    async with runtime.sessions() as session:
        detail = await ticket_detail(session, number, runtime.settings.zone)
    return web.json_response(detail)


# -- recordings --------------------------------------------------------------------


def _int_id(request: web.Request, what: str) -> int:
    value = validation.parse_id(request.match_info["id"])
    if value is None:
        raise NotFound(f"No such {what}")
    return value


async def get_recording(request: web.Request) -> web.StreamResponse:
    recording_id = _int_id(request, "recording")
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        recording = await session.get(Recording, recording_id)
    if recording is None:
        raise NotFound("No such recording")
    root = runtime.settings.recordings_root
    path = (root / recording.path).resolve()
    # The path comes from our own records, but a file outside the recordings
    # folder is never served, whatever the database says.
    if not path.is_relative_to(root) or not path.is_file():
        log.warning("recording %s: file missing or outside the recordings folder", recording_id)
        raise NotFound("The recording's file is missing")
    return web.FileResponse(path)


# -- callers -----------------------------------------------------------------------


def _caller_body(caller: Caller, office: Office | None, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": caller.id,
        "name": caller.name,
        "office": office.name if office else None,
        "office_id": office.id if office else None,
        "role": caller.role,
        "active": caller.active,
        "has_pin": caller.pin_hash is not None,
        "numbers": [{"raw": number.raw, "e164": number.e164} for number in caller.numbers],
        "created_at": _iso(caller.created_at, zone),
        "updated_at": _iso(caller.updated_at, zone),
    }


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _caller_search(query: Select[Any], q: str) -> Select[Any]:
    pattern = _like(q)
    office = aliased(Office)
    conditions: list[ColumnElement[bool]] = [
        Caller.name.ilike(pattern, escape="\\"),
        Caller.role.ilike(pattern, escape="\\"),
        Caller.office_id.in_(select(office.id).where(office.name.ilike(pattern, escape="\\"))),
    ]
    digits = "".join(ch for ch in q if ch.isascii() and ch.isdigit())
    if len(digits) >= 4:
        # "0812 3456" finds +62812345...: drop the national trunk prefix.
        needle = digits[1:] if digits.startswith("0") else digits
        conditions.append(Caller.numbers.any(CallerNumber.e164.contains(needle)))
    return query.where(or_(*conditions))


async def list_callers(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    limit, offset = _page(request)
    q = request.query.get("q", "").strip()
    if len(q) > 100:
        raise Invalid({"q": "Maks. 100 karakter / At most 100 characters"})
    if (problem := validation.text_problem(q)) is not None:
        raise Invalid({"q": problem})
    query = (
        select(Caller)
        .options(selectinload(Caller.numbers), selectinload(Caller.office))
        .order_by(func.lower(Caller.name), Caller.id)
        .limit(limit + 1)
        .offset(offset)
    )
    if q:
        query = _caller_search(query, q)
    async with runtime.sessions() as session:
        callers = (await session.scalars(query)).all()
    zone = runtime.settings.zone
    items = [_caller_body(caller, caller.office, zone) for caller in callers]
    return web.json_response(_page_body(items, limit, offset))


async def get_caller(request: web.Request) -> web.Response:
    caller_id = _int_id(request, "caller")
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        caller = await session.scalar(
            select(Caller)
            .options(selectinload(Caller.numbers), selectinload(Caller.office))
            .where(Caller.id == caller_id)
        )
    if caller is None:
        raise NotFound("No such caller")
    return web.json_response(_caller_body(caller, caller.office, runtime.settings.zone))


_CALLER_FIELDS: Final = ("name", "office", "office_kind", "office_id", "role", "numbers", "pin")


def _optional_text(body: Mapping[str, Any], key: str, errors: dict[str, str]) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    errors[key] = "Harus teks / Must be a string"
    return None


async def create_caller(request: web.Request) -> web.Response:
    body = await read_json(request)
    _reject_unknown(body, _CALLER_FIELDS)
    errors: dict[str, str] = {}
    name = _optional_text(body, "name", errors) or ""
    office_name = _optional_text(body, "office", errors)
    office_kind = _optional_text(body, "office_kind", errors)
    role = _optional_text(body, "role", errors)
    pin = body.get("pin")
    if pin is not None and not isinstance(pin, str):
        # A number would lose a PIN's leading zeros.
        errors["pin"] = "PIN harus teks berisi angka / PIN must be a string of digits"
        pin = None
    office_id = validation.id_value(body, "office_id", errors)
    if office_id is not None and office_name:
        errors["office"] = "Isi office atau office_id, bukan keduanya / Give office or office_id, not both"
    numbers = body.get("numbers")
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        errors["numbers"] = "Harus daftar teks / Must be a list of strings"
        numbers = []
    draft, field_errors = directory_import.check_caller(
        name=name, office=office_name, office_kind=office_kind, role=role, numbers=numbers, pin=pin
    )
    errors = {**field_errors, **errors}
    if errors or draft is None:
        raise Invalid(errors)

    runtime = _runtime(request)
    # A number already in the directory: say whose, before hashing the PIN.
    async with runtime.sessions() as session:
        _raise_if_taken(await numbers_in_use_of(session, draft))
    pin_hash = await directory_import.hash_pin(draft.pin) if draft.pin else None
    try:
        async with runtime.sessions.begin() as session:
            _raise_if_taken(await numbers_in_use_of(session, draft))
            office: Office | None = None
            if office_id is not None:
                office = await session.get(Office, office_id)
                if office is None:
                    raise Invalid({"office_id": "Instansi tidak ditemukan / No such office"})
            elif draft.office:
                book = await directory_import.OfficeBook.load(session)
                office = book.get_or_create(draft.office, draft.office_kind)
            caller = directory_import.add_caller(session, draft, pin_hash, office)
            await session.flush()
    except IntegrityError:
        # Someone registered one of the numbers between our check and the insert.
        raise Conflict("Nomor sudah terdaftar / A number is already registered") from None
    runtime.services.directory.forget()  # the next call from these numbers is recognised
    who = identity(request)
    log.info("caller %s registered by %s", caller.id, who.name)
    return web.json_response(
        _caller_body(caller, office, runtime.settings.zone),
        status=201,
        headers={"Location": f"/api/callers/{caller.id}"},
    )


async def numbers_in_use_of(session: AsyncSession, draft: directory_import.CallerDraft) -> dict[str, tuple[int, str]]:
    """The draft's numbers already registered: e164 -> (index in the draft, owner)."""
    taken = await directory_import.numbers_in_use(session, (n.e164 for n in draft.numbers))
    return {n.e164: (index, taken[n.e164]) for index, n in enumerate(draft.numbers) if n.e164 in taken}


def _raise_if_taken(taken: Mapping[str, tuple[int, str]]) -> None:
    if taken:
        raise Conflict(
            "Nomor sudah terdaftar / A number is already registered",
            fields={
                f"numbers[{index}]": directory_import.Msg.in_use(e164, owner) for e164, (index, owner) in taken.items()
            },
        )


# -- office hours ------------------------------------------------------------------


async def office_hours_body(runtime: WebRuntime) -> dict[str, Any]:
    services = runtime.services
    calendar = services.calendar
    zone = calendar.zone
    now = datetime.now(UTC)
    override = await services.override.get()
    status = calendar.status(now, override=override)
    today = now.astimezone(zone).date()
    until = today + timedelta(days=HOLIDAY_WINDOW_DAYS)
    weekly = runtime.settings.office_hours
    return {
        "zone": str(zone),
        "now": _iso(now, zone),
        "weekly": {
            day: (
                {"opens": weekly[day].opens.strftime("%H:%M"), "closes": weekly[day].closes.strftime("%H:%M")}
                if day in weekly
                else None
            )
            for day in WEEKDAY_KEYS
        },
        "holidays": [{"date": day.isoformat(), "name": name} for day, name in calendar.holidays_between(today, until)],
        "holidays_from": today.isoformat(),
        "holidays_to": until.isoformat(),
        "override": override or "none",
        "status": {
            "open": status.open,
            "emergency_only": status.emergency_only,
            "reason": status.reason,
            "holiday_name": status.holiday_name,
            "next_open": _iso(status.next_open, zone),
        },
    }


async def get_office_hours(request: web.Request) -> web.Response:
    return web.json_response(await office_hours_body(_runtime(request)))


async def put_override(request: web.Request) -> web.Response:
    body = await read_json(request)
    _reject_unknown(body, ("mode",))
    mode = body.get("mode")
    if mode not in settings_store.OVERRIDE_MODES:
        raise Invalid({"mode": f"Harus salah satu dari / Must be one of: {', '.join(settings_store.OVERRIDE_MODES)}"})
    assert isinstance(mode, str)
    who = identity(request)
    runtime = _runtime(request)
    async with runtime.sessions.begin() as session:
        await settings_store.set_override(session, mode, by=who.name)
    # This process's calls see it at once; other processes within the cache's TTL.
    runtime.services.override.set(None if mode == "none" else mode)
    log.info("office-hours override set to %s by %s", mode, who.name)
    return web.json_response(await office_hours_body(runtime))


# -- the route table ---------------------------------------------------------------


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    access: Access


ROUTES: Final[tuple[ApiRoute, ...]] = (
    ApiRoute("GET", "/api/health", health, PUBLIC),
    ApiRoute("GET", "/api/openapi.json", openapi, PUBLIC),
    ApiRoute("GET", "/api/calls/{uniqueid}", get_call, READ),
    ApiRoute("GET", "/api/tickets", list_tickets, READ),
    ApiRoute("GET", "/api/tickets/{number}", get_ticket, READ),
    ApiRoute("PATCH", "/api/tickets/{number}", patch_ticket, Access(permission="tickets.status")),
    ApiRoute("GET", "/api/recordings/{id}", get_recording, READ),
    ApiRoute("GET", "/api/callers", list_callers, READ),
    ApiRoute("POST", "/api/callers", create_caller, Access(permission="callers.write")),
    ApiRoute("GET", "/api/callers/{id}", get_caller, READ),
    ApiRoute("GET", "/api/office-hours", get_office_hours, READ),
    ApiRoute("PUT", "/api/office-hours/override", put_override, Access(permission="office_hours.write")),
)


def setup(app: web.Application) -> None:
    """Register the API routes and build the OpenAPI document."""
    for route in ROUTES:
        add_route(app, route.method, route.path, route.handler, route.access)
    app[OPENAPI_DOCUMENT] = openapi_doc.build_document(ROUTES, TICKET_STATUSES)

"""``/api/leaders`` and ``/api/agenda`` (PRODUCT.md section 5's API contract).

Registered by ``add_agenda_routes`` after ``ivr.web.api.setup``: the routes go
through ``ivr.web.auth.add_route`` (so the auth middleware guards them like any
other) and their operations are added to the OpenAPI document the app serves.

Every change that commits tells the notifier (``AgendaServices.notify_days``)
which (leader, day) read-backs it touched, before and after the change, so the
phone read-back is re-rendered at once in the background.

An item as the API shows it::

    {"id": 7, "leader_id": 1, "leader": {"id": 1, "title": "Bupati", "name": "..."},
     "date": "2025-12-15", "start": "13:00", "end": null,
     "activity": "Peresmian Jembatan ...", "place": "Desa Sipedang", "status": "dipindahkan",
     "status_detail": {"new_date": "2025-12-17", "new_start": "09:00", "representative": null},
     "note": "", "spoken": "Pukul tiga belas tepat: ...", "updated_by": "token:web",
     "created_at": "...+07:00", "updated_at": "...+07:00"}
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from aiohttp import web

from ivr.agenda import store
from ivr.agenda.speech import item_text
from ivr.agenda.store import DayKey, ItemView, LeaderInfo
from ivr.storage.agenda_models import AGENDA_STATUSES
from ivr.web import RUNTIME, validation
from ivr.web.api import READ, _int_id, _iso, _page, _page_body, _reject_unknown, read_json
from ivr.web.auth import Access, identity
from ivr.web.errors import Invalid, NotFound
from ivr.web.openapi import JSON, add_documented_routes, error, json_content, nullable, ref

log = logging.getLogger("ivr.web.agenda")

WRITE: Final = Access(permission="agenda.write")
#: The longest date range one ``GET /api/agenda`` may ask for.
MAX_RANGE_DAYS: Final = 92
#: When no range is given: today and the next six days.
DEFAULT_DAYS: Final = 7

_ITEM_FIELDS: Final = ("leader_id", "date", "start", "end", "activity", "place", "status", "status_detail", "note")
_DETAIL_FIELDS: Final = ("new_date", "new_start", "representative")


class AgendaNotifier(Protocol):
    """What the API tells about a change (``AgendaServices`` satisfies it)."""

    def notify_days(self, days: Iterable[DayKey]) -> None: ...


AGENDA_NOTIFIER: Final[web.AppKey[AgendaNotifier | None]] = web.AppKey("agenda_notifier")


# -- JSON ---------------------------------------------------------------------------


def _hhmm(value: dt.time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def _leader_body(leader: LeaderInfo) -> dict[str, Any]:
    return {
        "id": leader.id,
        "title": leader.title,
        "name": leader.name,
        "menu_key": leader.menu_key,
        "position": leader.position,
    }


def _item_body(item: ItemView, leader: LeaderInfo | None, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": item.id,
        "leader_id": item.leader_id,
        "leader": None if leader is None else {"id": leader.id, "title": leader.title, "name": leader.name},
        "date": item.date.isoformat(),
        "start": _hhmm(item.start),
        "end": _hhmm(item.end),
        "activity": item.activity,
        "place": item.place,
        "status": item.status,
        "status_detail": {
            "new_date": item.new_date.isoformat() if item.new_date else None,
            "new_start": _hhmm(item.new_start),
            "representative": item.representative or None,
        },
        "note": item.note,
        # What callers hear for this item on its own day.
        "spoken": item_text(item),
        "updated_by": item.updated_by,
        "created_at": _iso(item.created_at, zone),
        "updated_at": _iso(item.updated_at, zone),
    }


# -- parsing ------------------------------------------------------------------------

_DATE_MESSAGE: Final = "Gunakan YYYY-MM-DD / Use YYYY-MM-DD"
_TIME_MESSAGE: Final = "Gunakan JJ:MM, misalnya 08:30 / Use HH:MM, e.g. 08:30"


def _parse_date(value: Any) -> dt.date:
    if not isinstance(value, str) or len(value.strip()) != 10:
        raise ValueError(_DATE_MESSAGE)
    return dt.date.fromisoformat(value.strip())


def _parse_time(value: Any) -> dt.time:
    """ "08:30", "8:30" or "08.30" (how Indonesians write it); seconds are refused."""
    if not isinstance(value, str):
        raise ValueError(_TIME_MESSAGE)
    text = value.strip().replace(".", ":")
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or len(hours) > 2 or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(_TIME_MESSAGE)
    return dt.time(int(hours), int(minutes))


def _parse_fields(body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The body's fields as ``ItemView`` field values; ``Invalid`` lists every
    problem at once, one message per field."""
    _reject_unknown(body, _ITEM_FIELDS)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if creating:
        for name in ("leader_id", "date", "start", "activity"):
            if body.get(name) is None:
                errors[name] = "Wajib diisi / Required"

    def take(name: str, key: str, parse: Callable[[Any], Any], value: Any, *, nullable: bool = False) -> None:
        if value is None:
            if nullable:  # null clears: text fields become empty
                values[key] = "" if parse is _text else None
            elif not creating:
                errors[name] = "Tidak boleh kosong / Must not be null"
            return
        try:
            values[key] = parse(value)
        except ValueError:
            errors[name] = _MESSAGES[parse]

    if body.get("leader_id") is not None:
        leader_id = validation.id_value(body, "leader_id", errors)
        if leader_id is not None:
            values["leader_id"] = leader_id
    elif "leader_id" in body and not creating:
        errors["leader_id"] = "Tidak boleh kosong / Must not be null"
    if "date" in body:
        take("date", "date", _parse_date, body["date"])
    if "start" in body:
        take("start", "start", _parse_time, body["start"])
    if "end" in body:
        take("end", "end", _parse_time, body["end"], nullable=True)
    for name in ("activity", "place", "note"):
        if name in body:
            take(name, name, _text, body[name], nullable=name != "activity")
    if "status" in body:
        status = body["status"]
        canonical = store.canonical_status(status) if isinstance(status, str) else None
        if canonical is None:
            errors["status"] = f"Status harus salah satu dari / Status must be one of: {', '.join(AGENDA_STATUSES)}"
        else:
            values["status"] = canonical
    if "status_detail" in body:
        detail = body["status_detail"]
        if detail is None:
            values.update(new_date=None, new_start=None, representative="")
        elif not isinstance(detail, dict):
            errors["status_detail"] = "Harus objek / Must be an object"
        else:
            unknown = [key for key in detail if key not in _DETAIL_FIELDS]
            for key in unknown:
                errors[f"status_detail.{key}"] = "Kolom tidak dikenal / Unknown field"
            for key, parse in (("new_date", _parse_date), ("new_start", _parse_time), ("representative", _text)):
                if key in detail:
                    take(f"status_detail.{key}", key, parse, detail[key], nullable=True)
    if errors:
        raise Invalid(errors)
    return values


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


_MESSAGES: Final[dict[Callable[[Any], Any], str]] = {
    _parse_date: _DATE_MESSAGE,
    _parse_time: _TIME_MESSAGE,
    _text: "Harus teks / Must be a string",
}


def _invalid(error: store.InvalidItem) -> Invalid:
    return Invalid(error.fields)


# -- handlers -----------------------------------------------------------------------


def _notify(request: web.Request, days: Iterable[DayKey]) -> None:
    notifier = request.app.get(AGENDA_NOTIFIER)
    if notifier is None:
        return
    try:
        notifier.notify_days(sorted(set(days)))
    except Exception:  # the change is saved; the sweep will render it later
        log.exception("could not ask for the agenda read-back to be re-rendered")


def _today(zone: ZoneInfo) -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone(zone).date()


async def list_leaders(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    async with runtime.sessions() as session:
        leaders = await store.list_leaders(session)
    return web.json_response({"items": [_leader_body(leader) for leader in leaders]})


def _query_date(request: web.Request, name: str, errors: dict[str, str]) -> dt.date | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        return _parse_date(raw)
    except ValueError:
        errors[name] = _DATE_MESSAGE
        return None


async def list_agenda(request: web.Request) -> web.Response:
    """``?date=`` one day, or ``?from=&to=`` (default: today and six more);
    ``leader_id``, ``status`` (comma-separated) filter."""
    runtime = request.app[RUNTIME]
    zone = runtime.settings.zone
    limit, offset = _page(request)
    errors: dict[str, str] = {}
    day = _query_date(request, "date", errors)
    first = _query_date(request, "from", errors)
    last = _query_date(request, "to", errors)
    if day is not None and (first or last):
        errors["date"] = "Isi date atau from/to, bukan keduanya / Give date or from/to, not both"
    leader_id: int | None = None
    raw_leader = request.query.get("leader_id", "").strip()
    if raw_leader:
        leader_id = validation.parse_id(raw_leader)
        if leader_id is None:
            errors["leader_id"] = validation.ID
    statuses = [part.strip() for part in request.query.get("status", "").split(",") if part.strip()]
    canonical = [store.canonical_status(status) for status in statuses]
    if None in canonical:
        errors["status"] = f"Status harus salah satu dari / Status must be one of: {', '.join(AGENDA_STATUSES)}"
    if day is not None:
        first = last = day
    first = first or (last - dt.timedelta(days=DEFAULT_DAYS - 1) if last else _today(zone))
    last = last or first + dt.timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        errors["to"] = "Harus sama atau sesudah from / Must not be before from"
    elif (last - first).days >= MAX_RANGE_DAYS:
        errors["to"] = f"Rentang maks. {MAX_RANGE_DAYS} hari / At most {MAX_RANGE_DAYS} days"
    if errors:
        raise Invalid(errors)
    async with runtime.sessions() as session:
        items = await store.list_items(
            session,
            date_from=first,
            date_to=last,
            leader_id=leader_id,
            statuses=[status for status in canonical if status],
            limit=limit + 1,
            offset=offset,
        )
        leaders = {leader.id: leader for leader in await store.list_leaders(session)}
    body = _page_body([_item_body(item, leaders.get(item.leader_id), zone) for item in items], limit, offset)
    body["from"], body["to"] = first.isoformat(), last.isoformat()
    return web.json_response(body)


async def _item_response(request: web.Request, item: ItemView, status: int = 200) -> web.Response:
    runtime = request.app[RUNTIME]
    async with runtime.sessions() as session:
        try:
            leader: LeaderInfo | None = await store.get_leader(session, item.leader_id)
        except store.LeaderNotFound:
            leader = None
    headers = {"Location": f"/api/agenda/{item.id}"} if status == 201 else None
    return web.json_response(_item_body(item, leader, runtime.settings.zone), status=status, headers=headers)


async def get_agenda_item(request: web.Request) -> web.Response:
    item_id = _int_id(request, "agenda item")
    async with request.app[RUNTIME].sessions() as session:
        try:
            item = await store.get_item(session, item_id)
        except store.ItemNotFound:
            raise NotFound("No such agenda item") from None
    return await _item_response(request, item)


async def create_agenda_item(request: web.Request) -> web.Response:
    values = _parse_fields(await read_json(request), creating=True)
    who = identity(request)
    draft = store.new_item(
        values.pop("leader_id"), values.pop("date"), values.pop("start"), values.pop("activity"), **values
    )
    try:
        async with request.app[RUNTIME].sessions.begin() as session:
            item = await store.create_item(session, draft, by=who.name)
    except store.LeaderNotFound:
        raise Invalid({"leader_id": "Pimpinan tidak ditemukan / No such leader"}) from None
    except store.InvalidItem as exc:
        raise _invalid(exc) from None
    log.info("agenda item %s created by %s", item.id, who.name)
    _notify(request, store.affected_days(item))
    return await _item_response(request, item, status=201)


async def patch_agenda_item(request: web.Request) -> web.Response:
    item_id = _int_id(request, "agenda item")
    body = await read_json(request)
    values = _parse_fields(body, creating=False)
    if not body:
        raise Invalid({"status": "Tidak ada yang diubah / Nothing to change"}, "Give at least one field to change")
    who = identity(request)
    try:
        async with request.app[RUNTIME].sessions.begin() as session:
            before, after = await store.update_item(session, item_id, values, by=who.name)
    except store.ItemNotFound:
        raise NotFound("No such agenda item") from None
    except store.LeaderNotFound:
        raise Invalid({"leader_id": "Pimpinan tidak ditemukan / No such leader"}) from None
    except store.InvalidItem as exc:
        raise _invalid(exc) from None
    if after != before:
        changed = sorted(name for name in _changed(before, after))
        log.info("agenda item %s updated by %s: %s", item_id, who.name, ", ".join(changed))
        _notify(request, store.affected_days(before) | store.affected_days(after))
    return await _item_response(request, after)


def _changed(before: ItemView, after: ItemView) -> Iterable[str]:
    for name in ("leader_id", "date", "start", "end", "activity", "place", "status"):
        if getattr(before, name) != getattr(after, name):
            yield name
    if (before.new_date, before.new_start, before.representative) != (
        after.new_date,
        after.new_start,
        after.representative,
    ):
        yield "status_detail"
    if before.note != after.note:
        yield "note"


async def delete_agenda_item(request: web.Request) -> web.Response:
    item_id = _int_id(request, "agenda item")
    who = identity(request)
    try:
        async with request.app[RUNTIME].sessions.begin() as session:
            item = await store.delete_item(session, item_id)
    except store.ItemNotFound:
        raise NotFound("No such agenda item") from None
    log.info("agenda item %s deleted by %s", item_id, who.name)
    _notify(request, store.affected_days(item))
    return web.Response(status=204)


# -- registration and the OpenAPI document ------------------------------------------

ROUTES: Final = (
    ("GET", "/api/leaders", list_leaders, READ),
    ("GET", "/api/agenda", list_agenda, READ),
    ("POST", "/api/agenda", create_agenda_item, WRITE),
    ("GET", "/api/agenda/{id}", get_agenda_item, READ),
    ("PATCH", "/api/agenda/{id}", patch_agenda_item, WRITE),
    ("DELETE", "/api/agenda/{id}", delete_agenda_item, WRITE),
)


def add_agenda_routes(app: web.Application, notifier: AgendaNotifier | None) -> None:
    """Register the agenda routes (after ``ivr.web.api.setup``) and document
    them. ``notifier`` is told about every change (None: nobody re-renders)."""
    app[AGENDA_NOTIFIER] = notifier
    add_documented_routes(app, ROUTES, _OPERATIONS, _SCHEMAS)


_DATE: Final = {"type": "string", "format": "date"}
_TIME: Final = {"type": "string", "pattern": "^[0-2]?[0-9][:.][0-5][0-9]$", "examples": ["08:30"]}
_STATUS: Final = {"enum": list(AGENDA_STATUSES), "description": "'sedang berlangsung' is accepted for berlangsung"}
_DETAIL: Final = {
    "type": "object",
    "additionalProperties": False,
    "description": "new date/time when dipindahkan or ditunda; representative when diwakilkan (any may be null)",
    "properties": {
        "new_date": nullable(_DATE),
        "new_start": nullable(_TIME),
        "representative": nullable({"type": "string", "maxLength": store.MAX_REPRESENTATIVE}),
    },
}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_ITEM_ID: Final = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "agenda item id",
    "schema": {"type": "integer"},
}


def _writable(required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": {
            "leader_id": {"type": "integer"},
            "date": _DATE,
            "start": _TIME,
            "end": nullable({**_TIME, "description": "earlier than start: runs past midnight"}),
            "activity": {"type": "string", "minLength": 1, "maxLength": store.MAX_ACTIVITY},
            "place": {"type": "string", "maxLength": store.MAX_PLACE},
            "status": _STATUS,
            "status_detail": nullable(_DETAIL),
            "note": {"type": "string", "maxLength": store.MAX_NOTE, "description": "public: read to callers"},
        },
    }


_SCHEMAS: Final[dict[str, Any]] = {
    "Leader": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string", "examples": ["Bupati"]},
            "name": {"type": "string"},
            "menu_key": {"type": "string", "description": "the key callers press for this leader"},
            "position": {"type": "integer"},
        },
    },
    "LeaderList": {"type": "object", "properties": {"items": {"type": "array", "items": ref("Leader")}}},
    "AgendaItem": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "leader_id": {"type": "integer"},
            "leader": nullable(
                {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "name": {"type": "string"}},
                }
            ),
            "date": _DATE,
            "start": {"type": "string", "examples": ["08:30"]},
            "end": nullable({"type": "string"}),
            "activity": {"type": "string"},
            "place": {"type": "string"},
            "status": _STATUS,
            "status_detail": _DETAIL,
            "note": {"type": "string"},
            "spoken": {"type": "string", "description": "the item as callers hear it (spoken Indonesian)"},
            "updated_by": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "AgendaPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": ref("AgendaItem")},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "next_offset": nullable({"type": "integer"}),
            "from": _DATE,
            "to": _DATE,
        },
    },
    "AgendaCreate": _writable(["leader_id", "date", "start", "activity"]),
    "AgendaPatch": _writable([]),
}

_BODY_ERRORS: Final = {
    "400": error("malformed JSON"),
    "413": error("body too large"),
    "415": error("not JSON"),
    "422": error("invalid fields, one message per field"),
}

_OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/api/leaders"): {
        "summary": "The leaders callers can hear the agenda of, in menu order",
        "responses": {"200": json_content(ref("LeaderList"), "the leaders")},
    },
    ("GET", "/api/agenda"): {
        "summary": "Agenda items by date, time and id",
        "parameters": [
            _query("date", _DATE, "one day"),
            _query("from", _DATE, "first day (default today)"),
            _query("to", _DATE, f"last day (default from + {DEFAULT_DAYS - 1}; at most {MAX_RANGE_DAYS} days)"),
            _query("leader_id", {"type": "integer"}),
            _query("status", {"type": "string"}, "comma-separated statuses"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)"),
            _query("offset", {"type": "integer", "minimum": 0}, "rows to skip (the previous page's next_offset)"),
        ],
        "responses": {"200": json_content(ref("AgendaPage"), "a page of items"), "422": error("bad parameter")},
    },
    ("POST", "/api/agenda"): {
        "summary": "Add an agenda item; its phone read-back is rendered at once",
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("AgendaCreate")}}},
        "responses": {"201": json_content(ref("AgendaItem"), "created (Location: /api/agenda/{id})"), **_BODY_ERRORS},
    },
    ("GET", "/api/agenda/{id}"): {
        "summary": "One agenda item",
        "parameters": [_ITEM_ID],
        "responses": {"200": json_content(ref("AgendaItem"), "the item"), "404": error("no such item")},
    },
    ("PATCH", "/api/agenda/{id}"): {
        "summary": "Change an agenda item (status, time, ...); the phone read-back follows at once",
        "description": (
            "A status change drops the old status's detail (new date/time, representative) unless "
            "status_detail is given with it."
        ),
        "parameters": [_ITEM_ID],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("AgendaPatch")}}},
        "responses": {"200": json_content(ref("AgendaItem"), "the item"), "404": error("no such item"), **_BODY_ERRORS},
    },
    ("DELETE", "/api/agenda/{id}"): {
        "summary": "Remove an agenda item entered by mistake (a cancelled activity is status dibatalkan)",
        "parameters": [_ITEM_ID],
        "responses": {"204": {"description": "deleted"}, "404": error("no such item")},
    },
}

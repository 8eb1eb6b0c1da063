"""``/api/roster`` and ``/api/alarms``: the duty roster and unanswered emergencies.

Registered by ``add_roster_routes(app)`` after ``ivr.web.api.setup``, through
``ivr.web.auth.add_route`` like every route, and added to the OpenAPI document.

* ``GET /api/roster`` and ``PUT /api/roster``: the whole roster as one document
  (``ivr.emergency.document``); a ``PUT`` replaces it atomically. It must
  carry the ``version`` you read (409 when someone changed it meanwhile) and
  at least one officer.
  This process's emergency calls use the new roster at once, other processes
  within ``IVR_ROSTER_REFRESH_SECONDS``.
* ``GET /api/roster/now``: who is rung for an emergency right now, from the
  roster the calls use (answers when the database is down), with the flags
  (fallback in use, an invalid dial string...).
* ``GET /api/alarms``: unanswered emergencies, unacknowledged ones by default;
  ``GET /api/alarms/{id}`` with its callbacks; ``POST /api/alarms/{id}/acknowledge``
  closes it from the web app (who and when are recorded).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ivr.emergency import callbacks, document, store
from ivr.emergency.roster import Defaults, Plan, next_change
from ivr.emergency.roster import plan as plan_chain
from ivr.emergency.service import EmergencyServices
from ivr.storage import models
from ivr.storage.roster_models import ALARM_STATES, EmergencyAlarm, EmergencyCallback
from ivr.web import RUNTIME, WebRuntime
from ivr.web.api import READ, _int_id, _iso, _page, _page_body, read_json
from ivr.web.auth import Access, identity
from ivr.web.errors import ApiError, Conflict, Invalid, NotFound
from ivr.web.openapi import JSON, add_documented_routes, error, json_content, nullable, ref

log = logging.getLogger("ivr.web.roster")

WRITE: Final = Access(permission="roster.write")
#: Acknowledging an alarm is working an emergency ticket: duty officers may.
ACKNOWLEDGE: Final = Access(permission="tickets.status")
UNACKNOWLEDGED: Final = ("open", "exhausted")


def _desk(runtime: WebRuntime) -> EmergencyServices | None:
    desk = getattr(runtime.services, "emergency", None)
    return desk if isinstance(desk, EmergencyServices) else None


# -- the roster ------------------------------------------------------------------------


async def get_roster(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    async with runtime.sessions() as session:
        roster = await store.load_roster(session)
        _, updated_at, updated_by = await store.roster_meta(session)
    body = document.render(roster, updated_by=updated_by)
    body["updated_at"] = _iso(updated_at, runtime.settings.zone)
    return web.json_response(body)


VERSION_REQUIRED = (
    "Wajib: versi roster yang dibaca (GET /api/roster), 0 untuk roster pertama / "
    "Required: the version you read (GET /api/roster), 0 for the first roster"
)
OFFICERS_REQUIRED = "Roster harus berisi minimal satu petugas / The roster needs at least one officer"


async def put_roster(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await read_json(request)
    # A body that forgot the version or the officers (``{}``) would replace
    # the roster the emergency line rings with nothing: refused, not applied.
    missing: dict[str, str] = {}
    if body.get("version") is None:
        missing["version"] = VERSION_REQUIRED
    if not body.get("officers"):
        missing["officers"] = OFFICERS_REQUIRED
    try:
        roster = document.parse(body, default_zone=runtime.settings.timezone)
    except document.RosterInvalid as exc:
        raise Invalid({**missing, **exc.fields}) from None
    if missing:
        raise Invalid(missing)
    who = identity(request)
    expected = body.get("version")
    try:
        async with runtime.sessions.begin() as session:
            version = await store.save_roster(session, roster, by=who.name, expected_version=expected)
    except store.VersionConflict as exc:
        raise Conflict(
            f"The roster was changed meanwhile (now version {exc.current}); reload it and apply your change again",
            {"version": f"Versi sekarang / Current version: {exc.current}"},
        ) from None
    except IntegrityError:
        raise Conflict("The roster was changed at the same moment; try again") from None
    log.info("duty roster version %s saved by %s", version, who.name)
    desk = _desk(runtime)
    if desk is not None:
        async with runtime.sessions() as session:
            desk.roster.replace(await store.load_roster(session))
    return await get_roster(request)


def _plan_body(planned: Plan, zone: ZoneInfo) -> dict[str, Any]:
    summary = planned.summary()
    if planned.occurrence:
        summary["occurrence"] = [_iso(t, zone) for t in planned.occurrence]
    return {**summary, "uses_fallback": planned.uses_fallback}


async def chain_now_and_next(runtime: WebRuntime, now: datetime) -> dict[str, Any]:
    """Who is rung for an emergency at ``now``, from the roster the calls use
    (the database when this process has no emergency service), and from when
    the chain may change (``next``: the next shift start or end)."""
    zone = runtime.settings.zone
    desk = _desk(runtime)
    s = runtime.settings
    defaults = Defaults(s.emergency_ring_seconds, s.emergency_rounds, tuple(s.emergency_fallback_dial))
    if desk is not None:
        roster, source, healthy = desk.roster.roster, desk.roster.source, desk.roster.healthy
    else:  # no emergency service in this process (a web-only runtime): read the database
        async with runtime.sessions() as session:
            roster = await store.load_roster(session)
        source, healthy = "database", True
    change = next_change(roster, now)
    return {
        "at": _iso(now, zone),
        **_plan_body(plan_chain(roster, now, defaults), zone),
        "roster_version": roster.version,
        "roster_source": source,
        "roster_fresh": healthy,
        "next": None
        if change is None
        else {"at": _iso(change, zone), **_plan_body(plan_chain(roster, change, defaults), zone)},
    }


async def roster_now(request: web.Request) -> web.Response:
    return web.json_response(await chain_now_and_next(request.app[RUNTIME], datetime.now(UTC)))


# -- alarms ------------------------------------------------------------------------------


def _alarm_body(alarm: EmergencyAlarm, ticket: str | None, placed: int, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": alarm.id,
        "state": alarm.state,
        "ticket": ticket or alarm.ticket_number,
        "call_uniqueid": alarm.call_uniqueid,
        "caller_number": alarm.caller_number,
        "caller_e164": alarm.caller_e164,
        "caller_name": alarm.caller_name,
        "office": alarm.office_name or None,
        "message_seconds": alarm.message_seconds,
        "has_message": bool(alarm.message_path),
        "flags": alarm.flags or [],
        "raised_at": _iso(alarm.raised_at, zone),
        "callbacks_placed": placed,
        "acknowledged_at": _iso(alarm.acknowledged_at, zone),
        "acknowledged_by": alarm.acknowledged_by or None,
        "acknowledged_via": alarm.acknowledged_via or None,
    }


def _callback_body(job: EmergencyCallback, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": job.id,
        "round": job.round,
        "level": job.level,
        "officer": job.officer_name,
        "target": job.dial_string,
        "state": job.state,
        "result": job.result or None,
        "due_at": _iso(job.due_at, zone, precise=True),
        "sent_at": _iso(job.sent_at, zone, precise=True),
        "finished_at": _iso(job.finished_at, zone, precise=True),
    }


def _placed_column() -> Any:
    return (
        select(func.count(EmergencyCallback.id))
        .where(EmergencyCallback.alarm_id == EmergencyAlarm.id, EmergencyCallback.sent_at.is_not(None))
        .scalar_subquery()
    )


def _ticket_number_column() -> Any:
    return (
        select(models.Ticket.number)
        .join(models.Call, models.Call.ticket_id == models.Ticket.id)
        .where(models.Call.uniqueid == EmergencyAlarm.call_uniqueid)
        .scalar_subquery()
    )


async def list_alarms(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    zone = runtime.settings.zone
    limit, offset = _page(request)
    raw = request.query.get("state", "")
    states = [s.strip() for s in raw.split(",") if s.strip()] or list(UNACKNOWLEDGED)
    if "all" in states:
        states = list(ALARM_STATES)
    bad = [s for s in states if s not in ALARM_STATES]
    if bad:
        raise Invalid({"state": f"Salah satu dari / One of: {', '.join(ALARM_STATES)}, all"})
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(EmergencyAlarm, _ticket_number_column(), _placed_column())
                .where(EmergencyAlarm.state.in_(states))
                .order_by(EmergencyAlarm.raised_at.desc(), EmergencyAlarm.id.desc())
                .limit(limit + 1)
                .offset(offset)
            )
        ).all()
        total = await session.scalar(
            select(func.count(EmergencyAlarm.id)).where(EmergencyAlarm.state.in_(UNACKNOWLEDGED))
        )
    body = _page_body([_alarm_body(a, t, p, zone) for a, t, p in rows], limit, offset)
    body["unacknowledged"] = total or 0
    return web.json_response(body)


async def _alarm_detail(runtime: WebRuntime, alarm_id: int) -> dict[str, Any]:
    zone = runtime.settings.zone
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                select(EmergencyAlarm, _ticket_number_column(), _placed_column()).where(EmergencyAlarm.id == alarm_id)
            )
        ).first()
        if row is None:
            raise NotFound("No such alarm")
        jobs = await session.scalars(
            select(EmergencyCallback).where(EmergencyCallback.alarm_id == alarm_id).order_by(EmergencyCallback.id)
        )
        body = _alarm_body(row[0], row[1], row[2], zone)
        body["callbacks"] = [_callback_body(job, zone) for job in jobs]
    return body


async def get_alarm(request: web.Request) -> web.Response:
    return web.json_response(await _alarm_detail(request.app[RUNTIME], _int_id(request, "alarm")))


async def acknowledge_alarm(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    alarm_id = _int_id(request, "alarm")
    who = identity(request)
    async with runtime.sessions.begin() as session:
        if await session.get(EmergencyAlarm, alarm_id) is None:
            raise NotFound("No such alarm")
        won, by = await callbacks.acknowledge(session, alarm_id, by=who.name, via="web", now=datetime.now(UTC))
    if not won:
        raise ApiError(409, f"Already acknowledged by {by}", code="already_acknowledged")
    desk = _desk(runtime)
    if desk is not None:
        desk.callbacks.wake()
    log.info("emergency alarm %s acknowledged by %s from the web", alarm_id, who.name)
    return web.json_response(await _alarm_detail(runtime, alarm_id))


# -- registration and the OpenAPI document ------------------------------------------

ROUTES: Final = (
    ("GET", "/api/roster", get_roster, READ),
    ("PUT", "/api/roster", put_roster, WRITE),
    ("GET", "/api/roster/now", roster_now, READ),
    ("GET", "/api/alarms", list_alarms, READ),
    ("GET", "/api/alarms/{id}", get_alarm, READ),
    ("POST", "/api/alarms/{id}/acknowledge", acknowledge_alarm, ACKNOWLEDGE),
)


def add_roster_routes(app: web.Application) -> None:
    """Register the roster and alarm routes (after ``ivr.web.api.setup``) and document them."""
    add_documented_routes(app, ROUTES, _OPERATIONS, _SCHEMAS)


_DATETIME: Final = {"type": "string", "format": "date-time"}
_LEVEL: Final = {
    "type": "object",
    "required": ["officers"],
    "properties": {
        "mode": {"enum": ["sequential", "simultaneous"], "default": "sequential"},
        "ring_seconds": {"type": "integer", "minimum": 5, "maximum": 120, "default": 20},
        "officers": {"type": "array", "items": {"type": "string"}, "description": "officer codes, in order"},
    },
}
_FLAG: Final = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "examples": ["fallback", "roster-empty", "no-shift", "invalid-dial-string", "shift-overlap"],
        },
        "detail": {"type": "string"},
    },
}
_ALARM_ID: Final = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "alarm id",
    "schema": {"type": "integer"},
}

_SCHEMAS: Final[dict[str, Any]] = {
    "Roster": {
        "type": "object",
        "description": "The whole duty roster. Read-only fields (phone_e164, updated_*) are ignored on PUT.",
        "properties": {
            "version": {"type": "integer", "description": "send it back on PUT to detect concurrent changes"},
            "updated_at": nullable(_DATETIME),
            "updated_by": {"type": "string"},
            "officers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "name", "dial_strings"],
                    "properties": {
                        "code": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,39}$"},
                        "name": {"type": "string"},
                        "phone": {"type": "string", "description": "as entered"},
                        "phone_e164": nullable({"type": "string", "readOnly": True}),
                        "dial_strings": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "examples": ["PJSIP/201", "Local/081234567001@callcenter-mobile"],
                            },
                            "description": "Asterisk Dial targets, all rung at once for this officer",
                        },
                        "active": {"type": "boolean", "default": True},
                    },
                },
            },
            "shifts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "start", "end", "levels"],
                    "properties": {
                        "name": {"type": "string"},
                        "timezone": {"type": "string", "default": "Asia/Jakarta"},
                        "start": {**_DATETIME, "description": "with an offset, or wall clock in the shift's zone"},
                        "end": _DATETIME,
                        "repeat": {"enum": ["none", "daily", "weekly"], "default": "none"},
                        "until": nullable({"type": "string", "format": "date"}),
                        "rounds": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
                        "levels": {"type": "array", "items": _LEVEL},
                        "overrides": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["replaces", "substitute"],
                                "properties": {
                                    "date": nullable(
                                        {
                                            "type": "string",
                                            "format": "date",
                                            "description": "start date of the occurrence",
                                        }
                                    ),
                                    "replaces": {"type": "string"},
                                    "substitute": {"type": "string"},
                                    "note": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
            "fallback": {
                "type": "object",
                "description": "rung when no shift covers now (flagged on the ticket)",
                "properties": {"rounds": {"type": "integer"}, "levels": {"type": "array", "items": _LEVEL}},
            },
        },
    },
    "RosterNow": {
        "type": "object",
        "properties": {
            "at": _DATETIME,
            "source": {"enum": ["shift", "fallback", "default", "none"]},
            "shift": nullable({"type": "string"}),
            "occurrence": nullable({"type": "array", "items": _DATETIME}),
            "rounds": {"type": "integer"},
            "levels": {"type": "array", "items": {"type": "object"}},
            "substitutions": {"type": "array", "items": {"type": "object"}},
            "flags": {"type": "array", "items": _FLAG},
            "uses_fallback": {"type": "boolean"},
            "roster_version": {"type": "integer"},
            "roster_source": {"enum": ["database", "api", "snapshot", "empty"]},
            "roster_fresh": {"type": "boolean", "description": "false while the database cannot be read"},
            "next": nullable(
                {
                    "type": "object",
                    "description": "the chain from the next shift start or end (`at`), same fields as above",
                }
            ),
        },
    },
    "Alarm": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "state": {"enum": list(ALARM_STATES)},
            "ticket": nullable({"type": "string"}),
            "call_uniqueid": {"type": "string"},
            "caller_number": {"type": "string"},
            "caller_e164": nullable({"type": "string"}),
            "caller_name": {"type": "string"},
            "office": nullable({"type": "string"}),
            "has_message": {"type": "boolean"},
            "message_seconds": {"type": "number"},
            "flags": {"type": "array", "items": _FLAG},
            "raised_at": _DATETIME,
            "callbacks_placed": {"type": "integer"},
            "acknowledged_at": nullable(_DATETIME),
            "acknowledged_by": nullable({"type": "string"}),
            "acknowledged_via": nullable({"enum": ["phone", "web"]}),
            "callbacks": {"type": "array", "items": {"type": "object"}, "description": "detail only"},
        },
    },
    "AlarmPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": ref("Alarm")},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "next_offset": nullable({"type": "integer"}),
            "unacknowledged": {"type": "integer"},
        },
    },
}

_OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/api/roster"): {
        "summary": "The duty roster: officers, shifts with escalation chains and overrides, fallback chain",
        "responses": {"200": json_content(ref("Roster"), "the roster")},
    },
    ("PUT", "/api/roster"): {
        "summary": "Replace the whole duty roster (emergency calls in this process use it at once)",
        "description": "`version` (the one read; 0 before the first roster) and at least one officer are required.",
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("Roster")}}},
        "responses": {
            "200": json_content(ref("Roster"), "the roster saved, with its new version"),
            "400": error("malformed JSON"),
            "409": error("the version sent is not the current one"),
            "415": error("not JSON"),
            "422": error("invalid fields, one message per field"),
        },
    },
    ("GET", "/api/roster/now"): {
        "summary": "Who an emergency rings right now (works while the database is down)",
        "responses": {"200": json_content(ref("RosterNow"), "the chain in force and its flags")},
    },
    ("GET", "/api/alarms"): {
        "summary": "Unanswered emergencies (unacknowledged ones by default)",
        "parameters": [
            {
                "name": "state",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "comma-separated: open, exhausted, acknowledged, or all",
            },
            {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}},
            {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer"}},
        ],
        "responses": {"200": json_content(ref("AlarmPage"), "a page of alarms"), "422": error("bad parameter")},
    },
    ("GET", "/api/alarms/{id}"): {
        "summary": "One alarm with its callbacks",
        "parameters": [_ALARM_ID],
        "responses": {"200": json_content(ref("Alarm"), "the alarm"), "404": error("no such alarm")},
    },
    ("POST", "/api/alarms/{id}/acknowledge"): {
        "summary": "Acknowledge an alarm from the web app: callbacks stop",
        "parameters": [_ALARM_ID],
        "responses": {
            "200": json_content(ref("Alarm"), "acknowledged"),
            "404": error("no such alarm"),
            "409": error("already acknowledged (by whom in the message)"),
        },
    },
}

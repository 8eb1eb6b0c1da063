"""The OpenAPI 3.1 document of ``/api/``, written by hand next to the route
table (``ivr.web.api.ROUTES``).

``build_document`` merges the two: each route must have an operation here and
each operation a route, or the app refuses to start; security and the roles a
route admits come from the route's access rule, so they cannot drift. A test
also checks the finished document against the app's router.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ivr.storage.settings_store import OVERRIDE_MODES

if TYPE_CHECKING:
    from aiohttp import web

    from ivr.web.api import ApiRoute
    from ivr.web.auth import Access, Handler

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return json_content(ref("Error"), description)


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def add_documented_routes(
    app: web.Application,
    routes: Iterable[tuple[str, str, Handler, Access]],
    operations: Mapping[tuple[str, str], dict[str, Any]],
    schemas: Mapping[str, Any],
) -> None:
    """Register routes of a feature module (after ``ivr.web.api.setup``) and
    add them to the app's OpenAPI document, with the auth responses every
    protected route has."""
    from ivr.web.api import OPENAPI_DOCUMENT
    from ivr.web.auth import add_route

    if OPENAPI_DOCUMENT not in app:
        raise RuntimeError("feature routes must be added after ivr.web.api.setup (they extend its OpenAPI document)")
    document = app[OPENAPI_DOCUMENT]
    for method, path, handler, access in routes:
        add_route(app, method, path, handler, access)
        operation = dict(operations[(method, path)])
        operation["operationId"] = handler.__name__
        operation["x-roles"] = access.roles()
        responses = dict(operation.get("responses", {}))
        responses.setdefault("401", error("no token, or an unknown or revoked one"))
        if access.permission is not None:
            responses.setdefault("403", error("the token's role may not do this"))
        responses.setdefault("503", error("the database is unavailable"))
        operation["responses"] = responses
        document["paths"].setdefault(path, {})[method.lower()] = operation
    document["components"]["schemas"].update(schemas)


_DATETIME: Final = {"type": "string", "format": "date-time", "description": "ISO 8601 with offset, configured zone"}
_DATE: Final = {"type": "string", "format": "date"}


def _path_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_PAGE_PARAMS: Final = [
    _query("limit", "page size (default 50, at most 200)", {"type": "integer", "minimum": 1, "maximum": 200}),
    _query("offset", "rows to skip (use the previous page's next_offset)", {"type": "integer", "minimum": 0}),
]


def schemas(ticket_statuses: Sequence[str]) -> dict[str, Any]:
    """The component schemas (``ticket_statuses``: what PATCH accepts)."""
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "examples": ["not_found", "validation_failed"]},
                        "message": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "description": "one message per invalid field (Indonesian / English)",
                        },
                    },
                }
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "database", "ami", "tts", "spool_backlog", "active_calls"],
            "properties": {
                "status": {"enum": ["ok", "degraded"]},
                "database": {
                    "enum": ["ok", "down", "writes-failing", "writes-slow"],
                    "description": "down: not even a read works; writes-failing: the last call record "
                    "could not be written; writes-slow: one has been under way for over 5 s",
                },
                "ami": {"type": "string", "examples": ["disabled", "connected", "connecting", "down", "auth_failed"]},
                "tts": {"type": "string", "examples": ["ok", "degraded", "unknown"]},
                "spool_backlog": {"type": "integer", "description": "call records waiting for the database"},
                "active_calls": {"type": "integer"},
            },
        },
        "Step": {
            "type": "object",
            "required": ["at", "kind"],
            "description": (
                "One timeline entry: `at`, `kind`, then the entry's own fields, e.g. prompt: text, prompt; "
                "dtmf: digits; record: path, seconds, record_kind; dial: target, status; step: name; "
                "staff: action, changes, by. A field that would clash with `at` or `kind` is prefixed "
                "with the entry's kind (`record_kind`)."
            ),
            "properties": {"at": _DATETIME, "kind": {"type": "string"}},
            "additionalProperties": True,
        },
        "CallerRef": {
            "type": "object",
            "required": ["id", "name", "office"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "office": nullable({"type": "string"}),
            },
        },
        "Call": {
            "type": "object",
            "properties": {
                "uniqueid": {"type": "string"},
                "linkedid": {"type": "string"},
                "script": {"type": "string", "examples": ["main", "emergency"]},
                "channel": {"type": "string"},
                "caller_number": {"type": "string", "description": "as received from Asterisk"},
                "caller_e164": nullable({"type": "string"}),
                "caller_name": {"type": "string", "description": "caller ID name from the network"},
                "caller": nullable(ref("CallerRef")),
                "dialed_number": {"type": "string"},
                "started_at": _DATETIME,
                "ended_at": nullable(_DATETIME),
                "duration_seconds": nullable({"type": "number"}),
                "outcome": {"type": "string", "examples": ["in-progress", "completed", "abandoned", "transferred"]},
                "outcome_step": {"type": "string"},
                "active": {"type": "boolean", "description": "the call is in progress on this server"},
                "ticket": nullable({"type": "string", "description": "ticket number"}),
                "steps": {"type": "array", "items": ref("Step")},
            },
        },
        "Recording": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "kind": {"type": "string"},
                "seconds": {"type": "number"},
                "created_at": _DATETIME,
                "url": {"type": "string", "description": "GET it with the same token (audio/wav)"},
            },
        },
        "TicketSummary": {
            "type": "object",
            "properties": {
                "number": {"type": "string", "pattern": "^[0-9]{8}$"},
                "kind": {"type": "string"},
                "status": {"enum": list(ticket_statuses)},
                "priority": {"type": "string"},
                "office": nullable({"type": "string"}),
                "office_id": nullable({"type": "integer"}),
                "caller_number": {"type": "string"},
                "caller_e164": nullable({"type": "string"}),
                "note_for_caller": {"type": "string"},
                "created_at": _DATETIME,
                "updated_at": _DATETIME,
            },
        },
        "Ticket": {
            "allOf": [
                ref("TicketSummary"),
                {
                    "type": "object",
                    "properties": {
                        "details": {"type": "object"},
                        "caller": nullable(ref("CallerRef")),
                        "calls": {"type": "array", "items": {"type": "string"}, "description": "uniqueids"},
                        "recordings": {"type": "array", "items": ref("Recording")},
                        "events": {"type": "array", "items": ref("Step")},
                    },
                },
            ]
        },
        "TicketPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": ref("TicketSummary")},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next_offset": nullable({"type": "integer"}),
                "total": {"type": "integer", "description": "tickets matching the filters, all pages"},
            },
        },
        "TicketPatch": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "status": {"enum": list(ticket_statuses)},
                "note_for_caller": {
                    "type": "string",
                    "maxLength": 500,
                    "description": "read to the caller by phone (ticket tracking); staff and admin only",
                },
            },
        },
        "Number": {
            "type": "object",
            "properties": {"raw": {"type": "string"}, "e164": {"type": "string"}},
        },
        "Caller": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "office": nullable({"type": "string"}),
                "office_id": nullable({"type": "integer"}),
                "role": {"type": "string"},
                "active": {"type": "boolean"},
                "has_pin": {"type": "boolean"},
                "numbers": {"type": "array", "items": ref("Number")},
                "created_at": _DATETIME,
                "updated_at": _DATETIME,
            },
        },
        "CallerPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": ref("Caller")},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next_offset": nullable({"type": "integer"}),
            },
        },
        "CallerCreate": {
            "type": "object",
            "required": ["name", "numbers"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "maxLength": 200},
                "office": {"type": "string", "description": "office name; created when new (not with office_id)"},
                "office_kind": {"type": "string", "description": "for a new office: opd, kecamatan, kelurahan, ..."},
                "office_id": {"type": "integer", "description": "an existing office (not with office)"},
                "role": {"type": "string", "maxLength": 100},
                "numbers": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 10,
                    "items": {"type": "string"},
                    "description": "as people write them: 0812-3456-7890, +62 812..., 0286 321234",
                },
                "pin": {"type": "string", "pattern": "^[0-9]{4,8}$", "writeOnly": True},
            },
        },
        "OfficeHours": {
            "type": "object",
            "properties": {
                "zone": {"type": "string", "examples": ["Asia/Jakarta"]},
                "now": _DATETIME,
                "weekly": {
                    "type": "object",
                    "description": "mon..sun; null when closed all day",
                    "additionalProperties": nullable(
                        {
                            "type": "object",
                            "properties": {
                                "opens": {"type": "string", "examples": ["07:30"]},
                                "closes": {"type": "string", "examples": ["16:00"]},
                            },
                        }
                    ),
                },
                "holidays": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"date": _DATE, "name": {"type": "string"}}},
                },
                "holidays_from": _DATE,
                "holidays_to": _DATE,
                "override": {"enum": list(OVERRIDE_MODES)},
                "status": {
                    "type": "object",
                    "properties": {
                        "open": {"type": "boolean"},
                        "emergency_only": {"type": "boolean"},
                        "reason": {"enum": ["weekly", "after-hours", "weekend", "holiday", "override"]},
                        "holiday_name": nullable({"type": "string"}),
                        "next_open": nullable(_DATETIME),
                    },
                },
            },
        },
        "OverridePut": {
            "type": "object",
            "required": ["mode"],
            "additionalProperties": False,
            "properties": {"mode": {"enum": list(OVERRIDE_MODES)}},
        },
    }


_TICKET_NUMBER = _path_param("number", "ticket number (8 digits, last one a check digit)")

#: The operations, by (method, path). Responses every protected route may give
#: (401, 403, 503) are added by ``build_document``.
OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/api/health"): {
        "summary": "Health of the server and what it depends on",
        "description": "No token needed. HTTP 200 also when degraded; read `status`.",
        "responses": {"200": json_content(ref("Health"), "health")},
    },
    ("GET", "/api/openapi.json"): {
        "summary": "This document",
        "responses": {
            "200": {"description": "the OpenAPI document", "content": {JSON: {"schema": {"type": "object"}}}}
        },
    },
    ("GET", "/api/calls/{uniqueid}"): {
        "summary": "A call with its steps",
        "description": (
            "Steps are saved at the call's checkpoints (start, ticket submitted, end): "
            "a call in progress may not show its latest steps yet."
        ),
        "parameters": [_path_param("uniqueid", "Asterisk's uniqueid of the channel")],
        "responses": {"200": json_content(ref("Call"), "the call"), "404": error("no such call")},
    },
    ("GET", "/api/tickets"): {
        "summary": "Tickets, newest first",
        "parameters": [
            _query("status", "comma-separated statuses", {"type": "string"}),
            _query("kind", "comma-separated kinds (info, message, emergency, request, ...)", {"type": "string"}),
            _query("priority", "comma-separated priorities (normal, urgent)", {"type": "string"}),
            _query("office_id", "comma-separated office ids (as `office_id` in GET /api/callers)", {"type": "string"}),
            _query(
                "since",
                "created at or after: date (YYYY-MM-DD, midnight in the configured zone) or date-time",
                {"type": "string"},
            ),
            _query(
                "until",
                "created before: date-time, or a date (YYYY-MM-DD: up to the end of that day)",
                {"type": "string"},
            ),
            *_PAGE_PARAMS,
        ],
        "responses": {"200": json_content(ref("TicketPage"), "a page of tickets"), "422": error("bad parameter")},
    },
    ("GET", "/api/tickets/{number}"): {
        "summary": "A ticket with its recordings and timeline",
        "parameters": [_TICKET_NUMBER],
        "responses": {"200": json_content(ref("Ticket"), "the ticket"), "404": error("no such ticket")},
    },
    ("PATCH", "/api/tickets/{number}"): {
        "summary": "Change a ticket's status or the note callers hear",
        "description": "Adds a `staff` entry to the timeline. Duty officers may change the status only.",
        "parameters": [_TICKET_NUMBER],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("TicketPatch")}}},
        "responses": {
            "200": json_content(ref("Ticket"), "the updated ticket"),
            "400": error("malformed JSON"),
            "404": error("no such ticket"),
            "413": error("body too large"),
            "415": error("not JSON"),
            "422": error("invalid fields"),
        },
    },
    ("GET", "/api/recordings/{id}"): {
        "summary": "A recording's audio",
        "parameters": [_path_param("id", "recording id", {"type": "integer"})],
        "responses": {
            "200": {
                "description": "the audio",
                "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
            },
            "404": error("no such recording, or its file is missing"),
        },
    },
    ("GET", "/api/callers"): {
        "summary": "The caller directory",
        "parameters": [
            _query("q", "part of a name, office, role or phone number", {"type": "string"}),
            *_PAGE_PARAMS,
        ],
        "responses": {"200": json_content(ref("CallerPage"), "a page of callers"), "422": error("bad parameter")},
    },
    ("POST", "/api/callers"): {
        "summary": "Register an officer",
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("CallerCreate")}}},
        "responses": {
            "201": json_content(ref("Caller"), "created (Location: /api/callers/{id})"),
            "400": error("malformed JSON"),
            "409": error("a number is already registered"),
            "413": error("body too large"),
            "415": error("not JSON"),
            "422": error("invalid fields, one message per field"),
        },
    },
    ("GET", "/api/callers/{id}"): {
        "summary": "One directory entry",
        "parameters": [_path_param("id", "caller id", {"type": "integer"})],
        "responses": {"200": json_content(ref("Caller"), "the caller"), "404": error("no such caller")},
    },
    ("GET", "/api/office-hours"): {
        "summary": "Weekly hours, holidays of the next 60 days, override and status now",
        "responses": {"200": json_content(ref("OfficeHours"), "office hours")},
    },
    ("PUT", "/api/office-hours/override"): {
        "summary": "Set or clear (`none`) the office-hours override; calls see it at once",
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("OverridePut")}}},
        "responses": {
            "200": json_content(ref("OfficeHours"), "office hours with the new override"),
            "400": error("malformed JSON"),
            "415": error("not JSON"),
            "422": error("unknown mode"),
        },
    },
}


def build_document(routes: Sequence[ApiRoute], ticket_statuses: Sequence[str]) -> dict[str, Any]:
    registered = {(route.method, route.path) for route in routes}
    missing = sorted(registered - OPERATIONS.keys())
    extra = sorted(OPERATIONS.keys() - registered)
    if missing or extra:
        raise RuntimeError(f"OpenAPI document out of step with the routes: undocumented {missing}, stale {extra}")
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation = copy.deepcopy(OPERATIONS[(route.method, route.path)])
        operation["operationId"] = route.handler.__name__
        responses = operation.setdefault("responses", {})
        if route.access.public:
            operation["security"] = []
        else:
            operation["x-roles"] = route.access.roles()
            responses.setdefault("401", error("no token, or an unknown or revoked one"))
            if route.access.permission is not None:
                responses.setdefault("403", error("the token's role may not do this"))
            responses.setdefault("503", error("the database is unavailable"))
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Call Center Protokol IVR API",
            "version": "1",
            "description": (
                "Tickets, calls, caller directory and office hours of the Call Center Protokol. "
                "Authenticate with `Authorization: Bearer <token>` (`ivr tokens create --role ROLE`). "
                "Times are ISO 8601 with the offset of the configured zone; dates YYYY-MM-DD; "
                "phone numbers as entered plus E.164."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas(ticket_statuses),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }

"""The OpenAPI 3.1 document of ``/api/``, written by hand next to the route
table (``ivr.web.api.ROUTES``).

``build_document`` merges the two: each route must have an operation here and
each operation a route, or the app refuses to start; security and the roles a
route admits come from the route's access rule, so they cannot drift. A test
also checks the finished document against the app's router.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ivr.storage.settings_store import OVERRIDE_MODES

if TYPE_CHECKING:
    from ivr.web.api import ApiRoute

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


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
                "database": {"enum": ["ok", "down"]},
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
                "office": _nullable({"type": "string"}),
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
                "caller_e164": _nullable({"type": "string"}),
                "caller_name": {"type": "string", "description": "caller ID name from the network"},
                "caller": _nullable(_ref("CallerRef")),
                "dialed_number": {"type": "string"},
                "started_at": _DATETIME,
                "ended_at": _nullable(_DATETIME),
                "duration_seconds": _nullable({"type": "number"}),
                "outcome": {"type": "string", "examples": ["in-progress", "completed", "abandoned", "transferred"]},
                "outcome_step": {"type": "string"},
                "active": {"type": "boolean", "description": "the call is in progress on this server"},
                "ticket": _nullable({"type": "string", "description": "ticket number"}),
                "steps": {"type": "array", "items": _ref("Step")},
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
                "office": _nullable({"type": "string"}),
                "caller_number": {"type": "string"},
                "caller_e164": _nullable({"type": "string"}),
                "note_for_caller": {"type": "string"},
                "created_at": _DATETIME,
                "updated_at": _DATETIME,
            },
        },
        "Ticket": {
            "allOf": [
                _ref("TicketSummary"),
                {
                    "type": "object",
                    "properties": {
                        "details": {"type": "object"},
                        "caller": _nullable(_ref("CallerRef")),
                        "calls": {"type": "array", "items": {"type": "string"}, "description": "uniqueids"},
                        "recordings": {"type": "array", "items": _ref("Recording")},
                        "events": {"type": "array", "items": _ref("Step")},
                    },
                },
            ]
        },
        "TicketPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("TicketSummary")},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next_offset": _nullable({"type": "integer"}),
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
                "office": _nullable({"type": "string"}),
                "office_id": _nullable({"type": "integer"}),
                "role": {"type": "string"},
                "active": {"type": "boolean"},
                "has_pin": {"type": "boolean"},
                "numbers": {"type": "array", "items": _ref("Number")},
                "created_at": _DATETIME,
                "updated_at": _DATETIME,
            },
        },
        "CallerPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("Caller")},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next_offset": _nullable({"type": "integer"}),
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
                    "additionalProperties": _nullable(
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
                        "holiday_name": _nullable({"type": "string"}),
                        "next_open": _nullable(_DATETIME),
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
        "responses": {"200": _json(_ref("Health"), "health")},
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
        "responses": {"200": _json(_ref("Call"), "the call"), "404": _error("no such call")},
    },
    ("GET", "/api/tickets"): {
        "summary": "Tickets, newest first",
        "parameters": [
            _query("status", "comma-separated statuses", {"type": "string"}),
            _query("kind", "comma-separated kinds (info, message, emergency, request, ...)", {"type": "string"}),
            _query(
                "since",
                "created at or after: date (YYYY-MM-DD, midnight in the configured zone) or date-time",
                {"type": "string"},
            ),
            *_PAGE_PARAMS,
        ],
        "responses": {"200": _json(_ref("TicketPage"), "a page of tickets"), "422": _error("bad parameter")},
    },
    ("GET", "/api/tickets/{number}"): {
        "summary": "A ticket with its recordings and timeline",
        "parameters": [_TICKET_NUMBER],
        "responses": {"200": _json(_ref("Ticket"), "the ticket"), "404": _error("no such ticket")},
    },
    ("PATCH", "/api/tickets/{number}"): {
        "summary": "Change a ticket's status or the note callers hear",
        "description": "Adds a `staff` entry to the timeline. Duty officers may change the status only.",
        "parameters": [_TICKET_NUMBER],
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("TicketPatch")}}},
        "responses": {
            "200": _json(_ref("Ticket"), "the updated ticket"),
            "400": _error("malformed JSON"),
            "404": _error("no such ticket"),
            "413": _error("body too large"),
            "415": _error("not JSON"),
            "422": _error("invalid fields"),
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
            "404": _error("no such recording, or its file is missing"),
        },
    },
    ("GET", "/api/callers"): {
        "summary": "The caller directory",
        "parameters": [
            _query("q", "part of a name, office, role or phone number", {"type": "string"}),
            *_PAGE_PARAMS,
        ],
        "responses": {"200": _json(_ref("CallerPage"), "a page of callers"), "422": _error("bad parameter")},
    },
    ("POST", "/api/callers"): {
        "summary": "Register an officer",
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("CallerCreate")}}},
        "responses": {
            "201": _json(_ref("Caller"), "created (Location: /api/callers/{id})"),
            "400": _error("malformed JSON"),
            "409": _error("a number is already registered"),
            "413": _error("body too large"),
            "415": _error("not JSON"),
            "422": _error("invalid fields, one message per field"),
        },
    },
    ("GET", "/api/callers/{id}"): {
        "summary": "One directory entry",
        "parameters": [_path_param("id", "caller id", {"type": "integer"})],
        "responses": {"200": _json(_ref("Caller"), "the caller"), "404": _error("no such caller")},
    },
    ("GET", "/api/office-hours"): {
        "summary": "Weekly hours, holidays of the next 60 days, override and status now",
        "responses": {"200": _json(_ref("OfficeHours"), "office hours")},
    },
    ("PUT", "/api/office-hours/override"): {
        "summary": "Set or clear (`none`) the office-hours override; calls see it at once",
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("OverridePut")}}},
        "responses": {
            "200": _json(_ref("OfficeHours"), "office hours with the new override"),
            "400": _error("malformed JSON"),
            "415": _error("not JSON"),
            "422": _error("unknown mode"),
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
            responses.setdefault("401", _error("no token, or an unknown or revoked one"))
            if route.access.permission is not None:
                responses.setdefault("403", _error("the token's role may not do this"))
            responses.setdefault("503", _error("the database is unavailable"))
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

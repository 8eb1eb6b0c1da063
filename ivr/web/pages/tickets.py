"""``/tickets`` and ``/tickets/{number}``: the ticket list with its filters, and
one ticket with its timeline, recordings, status and note for the caller.

The list reads exactly what ``GET /api/tickets`` answers for the same query
string (so a filtered list is a shareable link and the API is its twin); the
detail page reads ``GET /api/tickets/{number}``'s body and writes through
``PATCH /api/tickets/{number}`` (``static/tickets.js``). New and changed tickets
reach an open list through the live events.

The labels here (kinds, statuses, steps of a call) are the board's too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from ivr import tickets
from ivr.storage.models import Office
from ivr.web import RUNTIME
from ivr.web.api import DEFAULT_LIMIT, READ, _ticket_number, ticket_detail, ticket_list_body
from ivr.web.auth import add_route
from ivr.web.errors import Invalid
from ivr.web.pages.timeline import RECORDING_LABELS, STEP_LABELS, timeline_rows

PRIORITY_LABELS: Final = {tickets.NORMAL: "Biasa", tickets.URGENT: "Mendesak"}

#: What the board and the list need to name things in the browser.
LABELS: Final = {
    "kinds": tickets.KINDS,
    "statuses": tickets.STATUSES,
    "priorities": PRIORITY_LABELS,
    "steps": STEP_LABELS,
    "recordings": RECORDING_LABELS,
}

#: The filters the list offers (the API takes lists; the form picks one of each).
FILTERS: Final = ("kind", "status", "priority", "office_id", "since", "until")


async def _offices(request: web.Request) -> list[tuple[str, str]]:
    async with request.app[RUNTIME].sessions() as session:
        rows = (await session.execute(select(Office.id, Office.name).order_by(Office.name))).all()
    return [(str(office_id), name) for office_id, name in rows]


def _page_link(request: web.Request, offset: int) -> str:
    query = {name: request.query[name] for name in (*FILTERS, "limit") if request.query.get(name)}
    if offset:
        query["offset"] = str(offset)
    return f"/tickets?{urlencode(query)}" if query else "/tickets"


@aiohttp_jinja2.template("tickets.html")
async def tickets_page(request: web.Request) -> dict[str, Any]:
    chosen = {name: request.query.get(name, "") for name in FILTERS}
    error: str | None = None
    try:
        page = await ticket_list_body(request)
    except Invalid as exc:
        error = "Filter tidak valid: " + "; ".join((exc.fields or {}).values())
        page = {"items": [], "limit": DEFAULT_LIMIT, "offset": 0, "next_offset": None, "total": 0}
    items = [{**item, "created": datetime.fromisoformat(item["created_at"])} for item in page["items"]]
    offset, limit = page["offset"], page["limit"]
    return {
        "chosen": chosen,
        "error": error,
        "items": items,
        "total": page["total"],
        "first": offset + 1 if items else 0,
        "last": offset + len(items),
        "previous": _page_link(request, max(0, offset - limit)) if offset > 0 else None,
        "next": _page_link(request, page["next_offset"]) if page["next_offset"] is not None else None,
        "live": offset == 0,
        "choices": [
            ("kind", "Jenis", "Semua jenis", list(tickets.KINDS.items())),
            ("status", "Status", "Semua status", list(tickets.STATUSES.items())),
            ("priority", "Prioritas", "Semua", list(PRIORITY_LABELS.items())),
            ("office_id", "Instansi", "Semua instansi", await _offices(request)),
        ],
        "labels": LABELS,
    }


@aiohttp_jinja2.template("tickets_detail.html")
async def ticket_page(request: web.Request) -> dict[str, Any]:
    number = _ticket_number(request)
    runtime = request.app[RUNTIME]
    async with runtime.sessions() as session:
        ticket = await ticket_detail(session, number, runtime.settings.zone)
    return {
        "ticket": ticket,
        "created": datetime.fromisoformat(ticket["created_at"]),
        "timeline": timeline_rows(ticket["events"]),
        "recordings": [
            {**recording, "created": datetime.fromisoformat(recording["created_at"])}
            for recording in ticket["recordings"]
        ],
        "staff_statuses": [(status, tickets.STATUSES[status]) for status in tickets.STAFF_STATUSES],
        "labels": LABELS,
    }


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/tickets", tickets_page, READ)
    add_route(app, "GET", "/tickets/{number}", ticket_page, READ)

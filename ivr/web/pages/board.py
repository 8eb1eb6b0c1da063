"""``/``: today's board. Calls in progress, open tickets, emergency alarms and
who is on duty, kept current by the live events (``static/board.js``).

The page itself is a frame: the browser fills it from the same API the
integrations use (``GET /api/tickets``, ``GET /api/alarms``, ``GET
/api/roster/now``) and from ``GET /api/events``, whose first message lists the
calls in progress. Acknowledging an alarm is ``POST /api/alarms/{id}/acknowledge``.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from ivr import tickets
from ivr.web.api import READ
from ivr.web.auth import add_route
from ivr.web.pages.tickets import LABELS

#: Tickets staff still have to work on. Calls that only asked for information
#: close themselves; while in progress they are on the board as calls.
BOARD_STATUSES: Final = (
    tickets.OPEN,
    tickets.DITERIMA,
    tickets.DIPROSES,
    tickets.DIJADWALKAN,
    tickets.ABANDONED_WITH_MESSAGE,
)
BOARD_KINDS: Final = tuple(kind for kind in tickets.KINDS if kind != tickets.INFO)
#: Open tickets the board shows at most (the list page has them all).
BOARD_TICKETS: Final = 50


@aiohttp_jinja2.template("board.html")
async def board_page(request: web.Request) -> dict[str, Any]:
    return {
        "statuses": ",".join(BOARD_STATUSES),
        "kinds": ",".join(BOARD_KINDS),
        "limit": BOARD_TICKETS,
        "labels": LABELS,
    }


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/", board_page, READ)

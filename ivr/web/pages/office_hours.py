"""``/office-hours``: the weekly hours, the holidays ahead, the state right now
and the manual override. The page reads what ``GET /api/office-hours`` answers
and changes the override through ``PUT /api/office-hours/override``
(``static/office_hours.js``), so the page offers nothing the API lacks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from ivr.config import WEEKDAY_KEYS
from ivr.web import RUNTIME
from ivr.web.api import READ, office_hours_body
from ivr.web.auth import add_route
from ivr.web.pages.display import HARI

#: The override modes as staff read them, in the order the form offers them.
OVERRIDE_LABELS: Final = {
    "none": "Ikuti jadwal",
    "open": "Buka",
    "closed": "Tutup",
    "emergency-only": "Hanya darurat",
}
REASON_LABELS: Final = {
    "weekly": "sesuai jam layanan mingguan",
    "after-hours": "di luar jam layanan",
    "weekend": "hari tanpa jam layanan",
    "holiday": "hari libur",
    "override": "diatur manual oleh petugas",
}


def _state(status: dict[str, Any]) -> str:
    if status["emergency_only"]:
        return "Hanya darurat"
    return "Buka" if status["open"] else "Tutup"


@aiohttp_jinja2.template("office_hours.html")
async def office_hours_page(request: web.Request) -> dict[str, Any]:
    body = await office_hours_body(request.app[RUNTIME])
    status = body["status"]
    return {
        "zone": body["zone"],
        "week": [(HARI[index], body["weekly"][key]) for index, key in enumerate(WEEKDAY_KEYS)],
        "holidays": [(date.fromisoformat(item["date"]), item["name"]) for item in body["holidays"]],
        "holidays_to": date.fromisoformat(body["holidays_to"]),
        "state": _state(status),
        "is_open": status["open"],
        "emergency_only": status["emergency_only"],
        "reason": REASON_LABELS.get(status["reason"], status["reason"]),
        "holiday_name": status["holiday_name"],
        "next_open": datetime.fromisoformat(status["next_open"]) if status["next_open"] else None,
        "override": body["override"],
        "override_labels": OVERRIDE_LABELS,
    }


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/office-hours", office_hours_page, READ)

"""``/agenda``: a leader's agenda for one day, as staff keep it and callers hear it.

One leader (tabs in menu order) and one day (today by default; a date picker,
the day before and after). Items are read here; every change goes through
``/api/agenda`` (``static/agenda.js``, with the session's CSRF token), so the
page does exactly what an integration can do and the read-back re-render the
API asks for follows every change. Each row shows what a caller hears for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from ivr.agenda import store
from ivr.agenda.speech import item_text
from ivr.storage.agenda_models import AGENDA_STATUSES
from ivr.web import RUNTIME
from ivr.web.api import READ
from ivr.web.auth import add_route

#: Status labels as the page shows them (the stored values are the API's).
STATUS_LABELS: Final = {
    "terjadwal": "Terjadwal",
    "berlangsung": "Sedang berlangsung",
    "selesai": "Selesai",
    "ditunda": "Ditunda",
    "dibatalkan": "Dibatalkan",
    "dipindahkan": "Dipindahkan",
    "diwakilkan": "Diwakilkan",
}
#: The status whose detail is a representative (``store.RESCHEDULED``: a new date/time).
REPRESENTED: Final = "diwakilkan"


def _day(raw: str, today: dt.date) -> tuple[dt.date, str]:
    """The day asked for, or today with a message when it is not a date."""
    if not raw:
        return today, ""
    try:
        day = dt.date.fromisoformat(raw.strip())
    except ValueError:
        return today, "Tanggal tidak dikenali (gunakan YYYY-MM-DD); ditampilkan hari ini."
    if not store.FIRST_DATE <= day <= store.LAST_DATE:  # the agenda's range (and no year 1 minus a day)
        return today, f"Agenda hanya untuk {store.FIRST_DATE.year}-{store.LAST_DATE.year}; ditampilkan hari ini."
    return day, ""


def _hhmm(value: dt.time | None) -> str:
    return "" if value is None else value.strftime("%H:%M")


def _row(item: store.ItemView, day: dt.date) -> dict[str, Any]:
    return {
        "id": item.id,
        "date": item.date,
        "start": _hhmm(item.start),
        "end": _hhmm(item.end),
        "activity": item.activity,
        "place": item.place,
        "status": item.status,
        "new_date": item.new_date,
        "new_start": _hhmm(item.new_start),
        "representative": item.representative,
        "note": item.note,
        "spoken": item_text(item, day),
        "updated_by": item.updated_by,
    }


async def agenda_page(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    today = dt.datetime.now(dt.UTC).astimezone(runtime.settings.zone).date()
    day, date_message = _day(request.query.get("date", ""), today)
    async with runtime.sessions() as session:
        leaders = await store.list_leaders(session)
        chosen = request.query.get("leader", "")
        leader = next((one for one in leaders if str(one.id) == chosen), leaders[0] if leaders else None)
        agenda = await store.load_day(session, leader.id, day) if leader is not None else None
    context = {
        "leaders": leaders,
        "leader": leader,
        "day": day,
        "today": today,
        "previous_day": day - dt.timedelta(days=1),
        "next_day": day + dt.timedelta(days=1),
        "date_message": date_message,
        "items": [_row(item, day) for item in agenda.items] if agenda else [],
        # Read on this day too: runs on past midnight, or moved here from another day.
        "also_heard": [_row(item, day) for item in (*agenda.carried, *agenda.moved_in)] if agenda else [],
        "saved": request.query.get("saved", ""),
        "statuses": [(status, STATUS_LABELS.get(status, status)) for status in AGENDA_STATUSES],
        "status_labels": STATUS_LABELS,
        "rescheduled": store.RESCHEDULED,
        "represented": REPRESENTED,
    }
    return aiohttp_jinja2.render_template("agenda.html", request, context)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/agenda", agenda_page, READ)

"""``/roster``: the duty roster, who is rung for an emergency now and next.

The page shows the roster document of ``GET /api/roster`` (officers, shifts
with their escalation levels and overrides, the fallback chain) and the chain
in force from ``ivr.web.roster_api.chain_now_and_next`` (what
``GET /api/roster/now`` answers, from the roster the calls use). Staff with
``roster.write`` edit it in ``static/roster.js``, which changes a copy of the
document and sends it back whole with ``PUT /api/roster`` (the version it read
guards against someone else's change meanwhile); others see it read-only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final

import aiohttp_jinja2
from aiohttp import web

from ivr import callerid
from ivr.emergency import document, store
from ivr.web import RUNTIME
from ivr.web.api import READ
from ivr.web.auth import add_route
from ivr.web.roster_api import chain_now_and_next

REPEAT_LABELS: Final = {"none": "sekali", "daily": "setiap hari", "weekly": "setiap minggu"}
MODE_LABELS: Final = {"sequential": "bergiliran", "simultaneous": "serentak"}
SOURCE_LABELS: Final = {
    "shift": "sesuai jadwal piket",
    "fallback": "rantai cadangan piket (tidak ada shift yang berlaku)",
    "default": "nomor cadangan dari konfigurasi (IVR_EMERGENCY_FALLBACK_DIAL)",
    "none": "TIDAK ADA yang dapat dihubungi",
}
#: What staff must know about the chain in force, by flag code; the English
#: detail stays available as the tooltip.
FLAG_LABELS: Final = {
    "roster-empty": "Jadwal piket kosong.",
    "no-shift": "Tidak ada shift yang berlaku saat ini.",
    "fallback": "Rantai cadangan yang dipakai.",
    "shift-overlap": "Beberapa shift tumpang tindih; shift yang mulai paling akhir dipakai.",
    "shift-unreachable": "Tidak ada petugas shift ini yang dapat dihubungi.",
    "unknown-officer": "Ada kode petugas yang tidak dikenal; dilewati.",
    "inactive-officer": "Ada petugas nonaktif; dilewati.",
    "invalid-dial-string": "Ada nomor panggil yang tidak sah; dilewati.",
    "unreachable-officer": "Ada petugas tanpa nomor panggil yang sah; dilewati.",
    "empty-level": "Ada tingkat tanpa petugas yang dapat dihubungi.",
    "no-target": "Tidak ada yang dapat dihubungi untuk keadaan darurat!",
}


def _phone_shown(phone: str) -> str:
    return callerid.display(callerid.normalize(phone)) if phone else ""


def _moment(value: str | None) -> datetime | None:
    """An API time (ISO 8601, in the configured zone) for the date filters."""
    return datetime.fromisoformat(value) if value else None


async def roster_page(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    zone = runtime.settings.zone
    async with runtime.sessions() as session:
        roster = await store.load_roster(session)
        _, updated_at, updated_by = await store.roster_meta(session)
    body = document.render(roster, updated_by=updated_by)
    names = {officer["code"]: officer["name"] for officer in body["officers"]}
    for officer in body["officers"]:
        officer["phone_shown"] = _phone_shown(officer["phone"])
    for shift in body["shifts"]:
        shift["start_local"] = datetime.fromisoformat(shift["start"])
        shift["end_local"] = datetime.fromisoformat(shift["end"])
        shift["until_date"] = date.fromisoformat(shift["until"]) if shift["until"] else None
        for override in shift["overrides"]:
            override["date_value"] = date.fromisoformat(override["date"]) if override["date"] else None
    now = await chain_now_and_next(runtime, datetime.now(UTC))
    for chain in (now, now["next"]):
        if chain is not None:
            chain["at_local"] = _moment(chain["at"])
            occurrence = chain.get("occurrence") or [None, None]
            chain["from_local"], chain["until_local"] = (_moment(t) for t in occurrence)
    context = {
        "roster": body,
        "names": names,
        "updated_at": updated_at.astimezone(zone) if updated_at else None,
        "now": now,
        "upcoming": now["next"],
        "repeat_labels": REPEAT_LABELS,
        "mode_labels": MODE_LABELS,
        "source_labels": SOURCE_LABELS,
        "flag_labels": FLAG_LABELS,
    }
    return aiohttp_jinja2.render_template("roster.html", request, context)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/roster", roster_page, READ)

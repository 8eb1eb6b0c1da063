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

PRIORITY_LABELS: Final = {tickets.NORMAL: "Biasa", tickets.URGENT: "Mendesak"}

#: A call's step (``Call.enter``) by its first part: "agenda:leader" is "Agenda pimpinan".
STEP_LABELS: Final = {
    "start": "Mulai",
    "greeting": "Salam pembuka",
    "menu": "Menu",
    "agenda": "Agenda pimpinan",
    "submit": "Permohonan / notifikasi",
    "track": "Lacak tiket",
    "ticket-number": "Nomor tiket",
    "record": "Merekam pesan",
    "message-saved": "Pesan tersimpan",
    "operator": "Operator",
    "emergency": "Darurat",
    "screen": "Penyaringan petugas",
    "ack": "Konfirmasi alarm",
    "alert": "Peringatan",
    "goodbye": "Penutup",
}

#: Timeline entries by kind.
EVENT_LABELS: Final = {
    "prompt": "Diputar",
    "dtmf": "Tombol",
    "record": "Rekaman",
    "dial": "Panggilan keluar",
    "step": "Langkah",
    "menu": "Menu",
    "staff": "Petugas",
    "alarm": "Alarm darurat",
    "callback": "Panggilan balik",
    "alert": "Peringatan",
    "emergency": "Darurat",
    "screen": "Penyaringan",
    "submit": "Pengajuan",
    "track": "Lacak tiket",
    "pin": "PIN",
    "office": "Jam layanan",
    "operator": "Operator",
    "playback": "Pemutaran rekaman",
    "error": "Gangguan",
}

DIAL_LABELS: Final = {
    "started": "memanggil",
    "ANSWER": "dijawab",
    "NOANSWER": "tidak dijawab",
    "BUSY": "sibuk",
    "CONGESTION": "jaringan sibuk",
    "CHANUNAVAIL": "tidak tersedia",
    "CANCEL": "dibatalkan",
}

RECORDING_LABELS: Final = {
    "message": "Pesan suara",
    "description": "Uraian permohonan",
    "emergency": "Pesan darurat",
    "follow_up": "Tindak lanjut",
}

OFFICE_REASONS: Final = {
    "weekly": "jam layanan",
    "after-hours": "di luar jam layanan",
    "weekend": "hari tanpa layanan",
    "holiday": "hari libur",
    "override": "diatur petugas",
}

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


def step_label(step: str | None) -> str:
    if not step:
        return ""
    return STEP_LABELS.get(step.split(":", 1)[0], step)


def _quote(text: str) -> str:
    return f"“{text}”" if text else "(kosong)"


def _staff_text(entry: dict[str, Any]) -> str:
    parts = []
    changes = entry.get("changes") or {}
    if "status" in changes:
        change = changes["status"]
        parts.append(
            f"Status {tickets.STATUSES.get(change['from'], change['from'])} → "
            f"{tickets.STATUSES.get(change['to'], change['to'])}"
        )
    if "note_for_caller" in changes:
        parts.append(f"Catatan untuk penelepon: {_quote(changes['note_for_caller']['to'])}")
    who = (entry.get("by") or {}).get("label") or "petugas"
    return f"{'; '.join(parts) or entry.get('action', '')} (oleh {who})"


def describe(entry: dict[str, Any]) -> str:
    """One timeline entry as a sentence (plain text: the template escapes it)."""
    kind = entry["kind"]
    if kind == "prompt":
        return entry.get("text") or entry.get("prompt") or ""
    if kind == "dtmf":
        digits = entry.get("digits") or ""
        return f"Menekan {digits}" if digits else "Tidak menekan tombol"
    if kind == "record":
        what = entry.get("record_kind", "")
        return f"{RECORDING_LABELS.get(what, what)}, {entry.get('seconds', 0)} detik".lstrip(", ")
    if kind == "office":
        state = "Buka" if entry.get("open") else "Tutup"
        reason = OFFICE_REASONS.get(entry.get("reason", ""), entry.get("reason", ""))
        return f"{state} ({reason})" if reason else state
    if kind == "dial":
        status = entry.get("status", "")
        return f"{entry.get('target', '')}: {DIAL_LABELS.get(status, status)}"
    if kind == "step":
        return step_label(entry.get("name"))
    if kind == "staff":
        return _staff_text(entry)
    if kind in ("alarm", "alert") and entry.get("action"):
        action = {"raised": "dibunyikan", "acknowledged": "diakui", "exhausted": "tidak ada yang mengakui"}
        by = f" oleh {entry['by']}" if entry.get("by") else ""
        return f"{action.get(entry['action'], entry['action'])}{by}"
    rest = {key: value for key, value in entry.items() if key not in ("at", "kind")}
    return ", ".join(f"{key}: {value}" for key, value in rest.items())


def _spoken_digit(entry: dict[str, Any]) -> str | None:
    """The digit a ``digit.N`` prompt spoke (a ticket or phone number is read
    back one prompt per digit), else None."""
    prompt = entry.get("prompt") or ""
    if entry["kind"] == "prompt" and prompt.startswith("digit.") and prompt[6:].isdigit():
        return prompt[6:]
    return None


def timeline_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline's rows; a number read back digit by digit is one row
    ("Angka dibacakan: 8898 6204") instead of one row per digit."""
    rows: list[dict[str, Any]] = []
    for entry in events:
        digit = _spoken_digit(entry)
        if digit is not None and rows and "digits" in rows[-1]:
            rows[-1]["digits"] += digit
        else:
            rows.append(
                {
                    "at": datetime.fromisoformat(entry["at"]),
                    "kind": entry["kind"],
                    "label": EVENT_LABELS.get(entry["kind"], entry["kind"]),
                    "text": describe(entry),
                    **({"digits": digit} if digit is not None else {}),
                }
            )
    for row in rows:
        if "digits" in row:
            digits = row.pop("digits")
            grouped = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
            row["text"] = f"Angka dibacakan: {grouped}"
    return rows


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

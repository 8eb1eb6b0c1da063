"""The ticket list's filters and paging (``GET /api/tickets``), and the ticket
pages that show the same data (``/tickets``, ``/tickets/{number}``)."""

from __future__ import annotations

import ast
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from web_fixtures import TestRuntime, api, bearer, store_call, tokens, web_runtime

import ivr
from ivr.storage.models import Office, Ticket
from ivr.web.pages.timeline import EVENT_LABELS, SENTENCES, describe, timeline_rows

__all__ = ["api", "tokens", "web_runtime"]  # fixtures used by name

Client = TestClient[Any, Any]
WIB = ZoneInfo("Asia/Jakarta")


async def _office(runtime: TestRuntime, name: str) -> int:
    async with runtime.sessions.begin() as session:
        office = Office(name=name, kind="opd")
        session.add(office)
        await session.flush()
        return office.id


async def _numbers(api: Client, token: str, query: str) -> list[str]:
    response = await api.get(f"/api/tickets?{query}", headers=bearer(token))
    assert response.status == 200, await response.text()
    return [item["number"] for item in (await response.json())["items"]]


async def test_filters_by_priority_office_and_date_range_with_a_total(
    api: Client, web_runtime: TestRuntime, tokens: dict[str, str]
) -> None:
    health = await _office(web_runtime, "Dinas Kesehatan")
    wanadadi = await _office(web_runtime, "Kecamatan Wanadadi")
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=WIB)
    saved = []
    for day, office, kind in (
        (0, health, "message"),
        (1, wanadadi, "schedule_change"),
        (2, health, "request"),
        (2, None, "emergency"),
    ):
        saved.append(
            await store_call(
                web_runtime.sessions,
                f"1796500000.{len(saved)}",
                monday + timedelta(days=day),
                office_id=office,
                ticket_kind=kind,
            )
        )
    async with web_runtime.sessions.begin() as session:
        await session.execute(
            update(Ticket).where(Ticket.kind.in_(("schedule_change", "emergency"))).values(priority="urgent")
        )
    n = [s.ticket_number for s in saved]
    duty = tokens["duty"]

    assert await _numbers(api, duty, "priority=urgent") == [n[3], n[1]]
    assert await _numbers(api, duty, f"office_id={health}") == [n[2], n[0]]
    assert await _numbers(api, duty, f"office_id={health},{wanadadi}&priority=normal") == [n[2], n[0]]
    # A date range is whole days in the configured zone; "until" takes its whole day.
    assert await _numbers(api, duty, "since=2026-12-01&until=2026-12-01") == [n[1]]
    assert await _numbers(api, duty, "until=2026-11-30") == [n[0]]
    assert await _numbers(api, duty, "since=2026-12-02") == [n[3], n[2]]

    page = await (await api.get("/api/tickets?limit=3&offset=0", headers=bearer(duty))).json()
    assert page["total"] == 4 and page["next_offset"] == 3 and len(page["items"]) == 3
    assert page["items"][0]["office_id"] is None and page["items"][1]["office_id"] == health
    filtered = await (await api.get(f"/api/tickets?office_id={health}&limit=1", headers=bearer(duty))).json()
    assert filtered["total"] == 2 and filtered["next_offset"] == 1

    for query, field in (
        ("priority=high", "priority"),
        ("kind=complaint", "kind"),
        ("office_id=abc", "office_id"),
        ("office_id=-1", "office_id"),
        ("until=tomorrow", "until"),
    ):
        response = await api.get(f"/api/tickets?{query}", headers=bearer(duty))
        assert response.status == 422, query
        assert field in (await response.json())["error"]["fields"], query


async def test_the_list_page_shows_the_same_page_and_escapes_data(
    api: Client, web_runtime: TestRuntime, tokens: dict[str, str]
) -> None:
    office = await _office(web_runtime, '<script>alert("x")</script> Dinas')
    saved = await store_call(
        web_runtime.sessions,
        "1796500100.1",
        datetime(2026, 12, 2, 10, 0, tzinfo=WIB),
        office_id=office,
        ticket_kind="message",
        events=[(datetime(2026, 12, 2, 10, 0, 5, tzinfo=WIB), "prompt", {"prompt": "x", "text": "<b>Halo</b>"})],
    )
    headers = {**bearer(tokens["staff"]), "Accept": "text/html"}
    listing = await api.get(f"/tickets?kind=message&office_id={office}", headers=headers)
    assert listing.status == 200
    html = await listing.text()
    assert saved.ticket_number in html and "Menampilkan 1–1 dari 1 tiket" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    await store_call(web_runtime.sessions, "1796500100.2", datetime(2026, 12, 2, 11, 0, tzinfo=WIB), office_id=office)
    first_page = await (await api.get(f"/tickets?office_id={office}&limit=1", headers=headers)).text()
    assert "Menampilkan 1–1 dari 2 tiket" in first_page and saved.ticket_number not in first_page
    assert f'href="/tickets?office_id={office}&amp;limit=1&amp;offset=1" rel="next"' in first_page
    second_page = await (await api.get(f"/tickets?office_id={office}&limit=1&offset=1", headers=headers)).text()
    assert "Menampilkan 2–2 dari 2 tiket" in second_page and saved.ticket_number in second_page
    assert f'href="/tickets?office_id={office}&amp;limit=1" rel="prev"' in second_page
    refused = await (await api.get("/tickets?priority=high", headers=headers)).text()
    assert "Filter tidak valid" in refused

    detail = await api.get(f"/tickets/{saved.ticket_number}", headers=headers)
    assert detail.status == 200
    page = await detail.text()
    assert "&lt;b&gt;Halo&lt;/b&gt;" in page and "<b>Halo" not in page
    assert (await api.get("/tickets/00000000", headers=headers)).status == 404


def test_timeline_entries_read_as_sentences() -> None:
    assert describe({"at": "", "kind": "dtmf", "digits": "2"}) == "Menekan 2"
    assert describe({"at": "", "kind": "dtmf", "digits": ""}) == "Tidak menekan tombol"
    assert describe({"at": "", "kind": "dial", "target": "Local/100@operator", "status": "NOANSWER"}) == (
        "Local/100@operator: tidak dijawab"
    )
    assert describe({"at": "", "kind": "step", "name": "agenda:leader"}) == "Agenda pimpinan"
    staff = {
        "at": "",
        "kind": "staff",
        "action": "update",
        "changes": {"status": {"from": "open", "to": "diproses"}, "note_for_caller": {"from": "", "to": "Kamis"}},
        "by": {"label": "sari"},
    }
    assert describe(staff) == "Status Baru → Diproses; Catatan untuk penelepon: “Kamis” (oleh sari)"


def test_a_number_read_digit_by_digit_is_one_timeline_row() -> None:
    at = "2026-12-03T09:00:00+00:00"
    spoken = [{"at": at, "kind": "prompt", "prompt": f"digit.{d}", "text": "x"} for d in "889862045"]
    events = [
        {"at": at, "kind": "prompt", "prompt": "ticket.number", "text": "Nomor tiket Anda adalah"},
        *spoken,
        {"at": at, "kind": "dtmf", "digits": "9"},
        *spoken[:2],
    ]
    assert [row["text"] for row in timeline_rows(events)] == [
        "Nomor tiket Anda adalah",
        "Angka dibacakan: 8898 6204 5",
        "Menekan 9",
        "Angka dibacakan: 88",
    ]


#: The kinds ``describe`` words itself (their fields are few and fixed).
DESCRIBED_DIRECTLY = {"prompt", "dtmf", "record", "office", "dial", "step", "staff", "alarm"}


def _kinds_the_code_writes() -> set[str]:
    """Every first argument of ``<x>.record.add("kind", ...)`` and of the
    callback loop's ``_ticket_event(session, alarm, "kind", ...)`` in ivr/."""
    kinds = set()
    for path in Path(ivr.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "add" and ast.unparse(func.value).endswith("record"):
                argument = node.args[0] if node.args else None
            elif isinstance(func, ast.Name) and func.id == "_ticket_event":
                argument = node.args[2]
            else:
                continue
            assert isinstance(argument, ast.Constant), f"{path}: {ast.unparse(node)}"
            kinds.add(argument.value)
    return kinds


def test_every_timeline_entry_the_code_writes_has_an_indonesian_sentence() -> None:
    kinds = _kinds_the_code_writes()
    assert {"emergency-attempt", "callback", "screen", "pin", "alarm"} <= kinds  # the scan finds them
    assert kinds - DESCRIBED_DIRECTLY - set(SENTENCES) == set()
    assert kinds - set(EVENT_LABELS) == set()  # the label column too


@pytest.mark.parametrize(
    ("entry", "sentence"),
    [
        (
            {
                "kind": "emergency-attempt",
                "round": 1,
                "level": 2,
                "mode": "simultaneous",
                "officers": ["Rudi", "Sri"],
                "outcome": "screening timeout",
                "answered_by": "Rudi",
            },
            "Putaran 1, tingkat 2 (serentak): Rudi, Sri menjawab tetapi tidak menekan 1 (dijawab Rudi)",
        ),
        (
            {"kind": "callback", "round": 1, "level": 1, "officer": "Rudi", "target": "PJSIP/201", "result": "busy"},
            "Panggilan balik ke Rudi (putaran 1, tingkat 1): sibuk",
        ),
        ({"kind": "screen", "decision": "ACCEPT", "attempt": "x"}, "Petugas menerima panggilan (menekan 1)"),
        ({"kind": "pin", "attempt": 2, "result": "wrong", "caller": None}, "PIN salah (percobaan 2)"),
        (
            {"kind": "input-rejected", "what": "date", "keys": "3102", "problem": "no-such-date"},
            "Tanggal ditolak (3102): tanggal tidak ada",
        ),
        (
            {"kind": "track", "number": "88986204", "found": True, "status": "diproses"},
            "Tiket 88986204 ditemukan, status Diproses",
        ),
        (
            {"kind": "roster-flag", "code": "no-shift", "detail": "no shift"},
            "Catatan jadwal piket: Tidak ada shift yang berlaku saat ini.",
        ),
        # fields this code does not know: shown as they are, never an error page
        ({"kind": "pin", "tries": 3}, "tries: 3"),
        ({"kind": "brand-new", "x": 1}, "x: 1"),
    ],
)
def test_call_events_read_as_indonesian_sentences(entry: dict[str, Any], sentence: str) -> None:
    assert describe({"at": "", **entry}) == sentence

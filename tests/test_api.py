"""The REST API against a real database: authentication and roles on every
route, error handling, and the read and write paths of the contract."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from web_fixtures import TestRuntime, api, bearer, build_runtime, store_call, tokens, web_runtime

from ivr import records
from ivr.storage import settings_store
from ivr.storage.calls import CallSnapshot
from ivr.storage.database import create_engine
from ivr.storage.models import ApiToken, Caller, CallerNumber, Office, Ticket, TicketEvent
from ivr.web.app import create_web_app
from ivr.web.auth import SESSION_COOKIE, Access, add_route
from ivr.web.pages import PAGE_ROUTES

__all__ = ["api", "tokens", "web_runtime"]  # fixtures used by name

WIB = ZoneInfo("Asia/Jakarta")
PUBLIC_ROUTES = {("GET", "/api/health"), ("GET", "/api/openapi.json")}
#: Pages and files anyone may fetch, with what an anonymous request gets (a
#: login POST without the form's token is refused, but not for lack of a session).
PUBLIC_PAGES = {("GET", "/login"): 200, ("POST", "/login"): 400, ("GET", "/static"): 200, ("HEAD", "/static"): 200}
#: An ordinary Wednesday: no holiday, office open 07:30-16:00 WIB.
WEDNESDAY_10AM = datetime(2026, 12, 2, 10, 0, tzinfo=WIB)

Client = TestClient[Any, Any]


def _offset_ok(value: str) -> bool:
    return value.endswith("+07:00")


def _concrete(path: str) -> str:
    if path == "/static":
        return "/static/app.css"
    return re.sub(r"\{[^}]+\}", "12345678", path)


def _registered(app: web.Application, *, pages: bool = False) -> set[tuple[str, str]]:
    """(method, path) of the API routes, and of the pages and static files too with ``pages``."""
    routes = set()
    for route in app.router.routes():
        if route in app[PAGE_ROUTES] and not pages:
            continue
        info = route.resource.canonical if route.resource is not None else None
        if info is not None:
            routes.add((route.method, info))
    return routes


async def _office(runtime: TestRuntime, name: str = "Dinas Kesehatan", kind: str = "opd") -> int:
    async with runtime.sessions.begin() as session:
        office = Office(name=name, kind=kind)
        session.add(office)
        await session.flush()
        return office.id


async def _caller(runtime: TestRuntime, name: str, office_id: int | None, e164: str, raw: str) -> int:
    async with runtime.sessions.begin() as session:
        caller = Caller(name=name, office_id=office_id, role="Kepala Seksi")
        caller.numbers = [CallerNumber(raw=raw, e164=e164)]
        session.add(caller)
        await session.flush()
        return caller.id


# -- authentication --------------------------------------------------------------


async def test_every_route_needs_a_token_except_the_public_ones(api: Client, tokens: dict[str, str]) -> None:
    """Every route of the app, pages included: API clients get 401, a browser
    asking for a page is sent to the login form, a made-up session cookie
    counts for nothing."""
    registered = _registered(api.app, pages=True)
    assert PUBLIC_ROUTES | set(PUBLIC_PAGES) <= registered
    assert ("GET", "/office-hours") in registered and len(registered) >= 15
    for method, path in sorted(registered):
        url = _concrete(path)
        anonymous = await api.request(method, url)
        if (method, path) in PUBLIC_ROUTES:
            assert anonymous.status == 200, (method, path)
            continue
        if (method, path) in PUBLIC_PAGES:
            assert anonymous.status == PUBLIC_PAGES[method, path], (method, path)
            continue
        if not path.startswith("/api/"):
            browser = await api.request(method, url, headers={"Accept": "text/html"}, allow_redirects=False)
            assert browser.status == 303, (method, path)
            assert browser.headers["Location"].startswith("/login?next="), (method, path)
        forged = await api.request(method, url, cookies={SESSION_COOKIE: "made-up"}, allow_redirects=False)
        assert forged.status == 401, (method, path)
        assert anonymous.status == 401, (method, path)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await anonymous.json())["error"]["code"] == "unauthorized"
        wrong = await api.request(method, url, headers=bearer("not-a-token"))
        assert wrong.status == 401, (method, path)
        assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
        basic = await api.request(method, url, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        assert basic.status == 401, (method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/"),  # the board is GET only
        ("POST", "/office-hours"),
        ("GET", "/api/nothing-here"),
        ("POST", "/api/health"),
        ("DELETE", "/api/tickets"),
    ],
)
async def test_unknown_paths_and_methods_need_a_token_too(
    api: Client, tokens: dict[str, str], method: str, path: str
) -> None:
    response = await api.request(method, path)
    assert response.status == 401
    # With a token the client learns the truth, as JSON.
    known = await api.request(method, path, headers=bearer(tokens["duty"]))
    assert known.status in (404, 405)
    body = await known.json()
    assert body["error"]["code"] in ("not_found", "method_not_allowed")


async def test_revoked_token_is_refused(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    assert (await api.get("/api/tickets", headers=bearer(tokens["staff"]))).status == 200
    async with web_runtime.sessions.begin() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.label == "test-staff").values(revoked_at=datetime.now(UTC))
        )
    response = await api.get("/api/tickets", headers=bearer(tokens["staff"]))
    assert response.status == 401


async def test_role_limits(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    saved = await store_call(web_runtime.sessions, "1700000000.1", WEDNESDAY_10AM, ticket_kind="message")
    ticket = f"/api/tickets/{saved.ticket_number}"
    caller = {"name": "Rudi Hartono", "numbers": ["081227014466"]}

    # duty: reads, changes a ticket's status, nothing else.
    duty = bearer(tokens["duty"])
    assert (await api.get("/api/tickets", headers=duty)).status == 200
    assert (await api.get("/api/callers", headers=duty)).status == 200
    assert (await api.patch(ticket, json={"status": "diterima"}, headers=duty)).status == 200
    refused = await api.patch(ticket, json={"note_for_caller": "Sudah kami terima"}, headers=duty)
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    assert (await api.post("/api/callers", json=caller, headers=duty)).status == 403
    assert (await api.put("/api/office-hours/override", json={"mode": "closed"}, headers=duty)).status == 403

    # staff: tickets, the directory and the office-hours override (PRODUCT.md section 3).
    staff = bearer(tokens["staff"])
    assert (await api.patch(ticket, json={"note_for_caller": "Dijadwalkan Kamis"}, headers=staff)).status == 200
    assert (await api.post("/api/callers", json=caller, headers=staff)).status == 201
    assert (await api.put("/api/office-hours/override", json={"mode": "closed"}, headers=staff)).status == 200

    # admin: everything.
    admin = bearer(tokens["admin"])
    assert (await api.put("/api/office-hours/override", json={"mode": "closed"}, headers=admin)).status == 200


async def test_tokens_never_reach_the_log(
    api: Client, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await api.get("/api/tickets", headers=bearer(tokens["admin"]))
    await api.get("/api/tickets", headers=bearer(tokens["admin"] + "x"))
    await api.put("/api/office-hours/override", json={"mode": "open"}, headers=bearer(tokens["admin"]))
    for token in tokens.values():
        assert token not in caplog.text


# -- errors ----------------------------------------------------------------------


async def test_malformed_json_is_a_clear_400(api: Client, tokens: dict[str, str]) -> None:
    headers = {**bearer(tokens["admin"]), "Content-Type": "application/json"}
    response = await api.post("/api/callers", data=b'{"name": "Budi", "numbers": [', headers=headers)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_json"
    assert "line 1" in error["message"]

    for body in (b"[1, 2]", b"", b"\xff\xfe{}", b"[" * 200_000):
        response = await api.post("/api/callers", data=body, headers=headers)
        assert response.status == 400, body
        assert (await response.json())["error"]["code"] == "invalid_json"

    form = await api.post("/api/callers", data={"name": "Budi"}, headers=bearer(tokens["admin"]))
    assert form.status == 415


async def test_oversized_body_is_413(api: Client, tokens: dict[str, str]) -> None:
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    headers = {**bearer(tokens["admin"]), "Content-Type": "application/json"}
    response = await api.post("/api/callers", data=big, headers=headers)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"

    # Chunked, so no Content-Length to judge by: aiohttp stops reading at the limit.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    chunked = await api.post("/api/callers", data=chunks(), headers=headers)
    assert chunked.status == 413
    assert (await chunked.json())["error"]["code"] == "payload_too_large"
    # Without a token the body is not even read.
    anonymous = await api.post("/api/callers", data=big, headers={"Content-Type": "application/json"})
    assert anonymous.status == 401


async def test_internal_errors_do_not_leak(
    aiohttp_client: Any, web_runtime: TestRuntime, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail: postgres://ivr:hunter2@db/ivr")

    app = create_web_app(web_runtime)
    add_route(app, "GET", "/api/broken", broken, Access(permission="read"))
    client = await aiohttp_client(app)
    response = await client.get("/api/broken", headers=bearer(tokens["duty"]))
    assert response.status == 500
    text = await response.text()
    assert "secret" not in text and "hunter2" not in text
    error = (await response.json())["error"]
    assert error["code"] == "internal"
    reference = re.search(r"ref ([0-9a-f]+)", error["message"])
    assert reference is not None
    assert f"GET /api/broken failed (ref {reference.group(1)})" in caplog.text


# -- health and the document ----------------------------------------------------


async def test_health(api: Client, web_runtime: TestRuntime) -> None:
    web_runtime.calls.active["1700000000.5"] = object()
    response = await api.get("/api/health")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert await response.json() == {
        "status": "ok",
        "database": "ok",
        "ami": "disabled",
        "tts": "ok",
        "spool_backlog": 0,
        "active_calls": 1,
    }
    web_runtime.speech.status = "degraded"
    body = await (await api.get("/api/health")).json()
    assert body["status"] == "degraded" and body["tts"] == "degraded"


async def test_health_says_when_call_records_cannot_be_written(
    api: Client, web_runtime: TestRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads may work while writes fail (another process holding SQLite's
    lock, a read-only file): the last call record's write decides."""
    store = web_runtime.services.spool.store
    snapshot = CallSnapshot(
        uniqueid="1765432100.42",
        channel="PJSIP/trunk-0000002a",
        script="main",
        started_at=datetime.now(UTC),
        caller_number="081234567890",
    )

    def locked(*_: Any) -> None:
        raise OperationalError("INSERT ...", {}, Exception("database is locked"))

    monkeypatch.setattr(records, "save_calls", locked)
    with pytest.raises(OperationalError):
        await store.save(snapshot)
    body = await (await api.get("/api/health")).json()
    assert (body["status"], body["database"]) == ("degraded", "writes-failing")
    monkeypatch.undo()
    await store.save(snapshot)
    body = await (await api.get("/api/health")).json()
    assert (body["status"], body["database"]) == ("ok", "ok")


@pytest.fixture
async def silent_database() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never says a word: a
    database that hangs rather than refuses."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"postgresql+asyncpg://ivr:secret@127.0.0.1:{port}/ivr"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_health_with_a_hanging_database_is_fast_and_degraded(
    aiohttp_client: Any, web_runtime: TestRuntime, silent_database: str
) -> None:
    engine = create_engine(silent_database)
    try:
        dead = build_runtime(web_runtime.settings, engine)
        client = await aiohttp_client(create_web_app(dead))
        started = time.monotonic()
        response = await client.get("/api/health")
        elapsed = time.monotonic() - started
        assert response.status == 200
        body = await response.json()
        assert body["status"] == "degraded" and body["database"] == "down"
        assert elapsed < 3.0
        assert "secret" not in await response.text()

        # A protected route cannot check its token: 503, not a hang or a 500.
        started = time.monotonic()
        protected = await client.get("/api/tickets", headers=bearer("whatever"))
        assert protected.status == 503
        assert (await protected.json())["error"]["code"] == "unavailable"
        assert time.monotonic() - started < 4.0
    finally:
        await engine.dispose()


async def test_the_app_runs_on_the_real_runtime(aiohttp_client: Any, runtime: Any) -> None:
    """``ivr.app.Runtime`` (from ``ivr serve``'s own start-up) is what the web app expects."""
    client = await aiohttp_client(create_web_app(runtime))
    body = await (await client.get("/api/health")).json()
    assert body["database"] == "ok" and body["active_calls"] == 0


async def test_openapi_document_matches_the_routes(api: Client) -> None:
    response = await api.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented == _registered(api.app)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (method.upper(), path) in PUBLIC_ROUTES:
                assert operation["security"] == []
            else:
                assert operation["x-roles"], (method, path)
                assert "401" in operation["responses"]
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', await response.text()))
    assert refs <= set(document["components"]["schemas"])


# -- calls -----------------------------------------------------------------------


async def test_call_with_its_steps(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    office_id = await _office(web_runtime)
    caller_id = await _caller(web_runtime, "dr. Rina Kartika", office_id, "+6285712345678", "0857-1234-5678")
    t0 = WEDNESDAY_10AM.astimezone(UTC)
    events = [
        (t0, "step", {"name": "greeting"}),
        (t0 + timedelta(seconds=1), "prompt", {"prompt": "greeting.known", "text": "Selamat datang"}),
        (t0 + timedelta(seconds=4), "dtmf", {"digits": "0", "timeout": False}),
        (t0 + timedelta(seconds=5), "dial", {"target": "Local/100@operator", "status": "started"}),
        (t0 + timedelta(seconds=30), "dial", {"target": "Local/100@operator", "status": "NOANSWER"}),
        (t0 + timedelta(seconds=31), "record", {"kind": "message", "path": "tickets/a.wav", "seconds": 12.5}),
    ]
    saved = await store_call(
        web_runtime.sessions,
        "1700000000.42",
        t0,
        caller_number="0857-1234-5678",
        caller_e164="+6285712345678",
        caller_id=caller_id,
        office_id=office_id,
        events=events,
        ended_at=t0 + timedelta(seconds=50),
        outcome="completed",
        ticket_kind="message",
    )
    response = await api.get("/api/calls/1700000000.42", headers=bearer(tokens["duty"]))
    assert response.status == 200
    call = await response.json()
    assert call["uniqueid"] == "1700000000.42"
    assert call["caller_number"] == "0857-1234-5678"
    assert call["caller_e164"] == "+6285712345678"
    assert call["caller"] == {"id": caller_id, "name": "dr. Rina Kartika", "office": "Dinas Kesehatan"}
    assert call["started_at"] == "2026-12-02T10:00:00+07:00"
    assert call["ended_at"] == "2026-12-02T10:00:50+07:00"
    assert call["duration_seconds"] == 50
    assert call["outcome"] == "completed"
    assert call["ticket"] == saved.ticket_number
    assert call["active"] is False
    kinds = [step["kind"] for step in call["steps"]]
    assert kinds == ["step", "prompt", "dtmf", "dial", "dial", "record"]
    assert all(_offset_ok(step["at"]) for step in call["steps"])
    assert call["steps"][1]["text"] == "Selamat datang"
    assert call["steps"][2]["digits"] == "0"
    assert call["steps"][4].items() >= {"target": "Local/100@operator", "status": "NOANSWER"}.items()
    assert call["steps"][5]["path"] == "tickets/a.wav" and call["steps"][5]["seconds"] == 12.5
    assert call["steps"][5]["record_kind"] == "message"  # the data's own "kind", renamed

    missing = await api.get("/api/calls/nope.1", headers=bearer(tokens["duty"]))
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


# -- tickets ---------------------------------------------------------------------


async def test_ticket_list_filters_and_pages(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    day = WEDNESDAY_10AM
    numbers = []
    for i in range(5):
        saved = await store_call(
            web_runtime.sessions,
            f"1700000100.{i}",
            day + timedelta(hours=i),
            ticket_kind="emergency" if i == 4 else "message",
            ticket_status="closed" if i == 0 else "open",
        )
        numbers.append(saved.ticket_number)
    headers = bearer(tokens["duty"])

    everything = await (await api.get("/api/tickets", headers=headers)).json()
    assert [t["number"] for t in everything["items"]] == numbers[::-1]  # newest first
    assert everything["next_offset"] is None
    first = everything["items"][0]
    assert first["kind"] == "emergency" and first["status"] == "open" and _offset_ok(first["created_at"])

    page = await (await api.get("/api/tickets?limit=2", headers=headers)).json()
    assert [t["number"] for t in page["items"]] == numbers[:2:-1][:2]
    assert page["next_offset"] == 2
    page = await (await api.get("/api/tickets?limit=2&offset=4", headers=headers)).json()
    assert [t["number"] for t in page["items"]] == [numbers[0]] and page["next_offset"] is None

    closed = await (await api.get("/api/tickets?status=closed", headers=headers)).json()
    assert [t["number"] for t in closed["items"]] == [numbers[0]]
    emergencies = await (await api.get("/api/tickets?kind=emergency", headers=headers)).json()
    assert [t["number"] for t in emergencies["items"]] == [numbers[4]]
    both = await (await api.get("/api/tickets?status=open,closed&kind=message", headers=headers)).json()
    assert len(both["items"]) == 4

    # since: a date is midnight WIB; a date-time keeps its offset, even when
    # an unencoded "+" arrived as a space.
    assert len((await (await api.get("/api/tickets?since=2026-12-02", headers=headers)).json())["items"]) == 5
    assert len((await (await api.get("/api/tickets?since=2026-12-03", headers=headers)).json())["items"]) == 0
    late = await api.get("/api/tickets", params={"since": "2026-12-02T12:00:00+07:00"}, headers=headers)
    assert len((await late.json())["items"]) == 3
    unencoded = await api.get("/api/tickets?since=2026-12-02T05:00:00 00:00", headers=headers)
    assert len((await unencoded.json())["items"]) == 3

    for query in (
        "limit=0",
        "limit=201",
        "limit=x",
        "offset=-1",
        "status=lost",
        "since=yesterday",
        "since=0001-01-01T00:00:00%2B07:00",
        "since=9999-12-31T23:00:00-10:00",
    ):
        response = await api.get(f"/api/tickets?{query}", headers=headers)
        assert response.status == 422, query
        assert (await response.json())["error"]["fields"], query


async def test_ticket_detail_with_recordings_and_timeline(
    api: Client, web_runtime: TestRuntime, tokens: dict[str, str]
) -> None:
    office_id = await _office(web_runtime, "Kecamatan Wanadadi", "kecamatan")
    t0 = WEDNESDAY_10AM.astimezone(UTC)
    relative = f"tickets/test/{t0:%Y%m%d}-{id(api)}.wav"
    audio = web_runtime.settings.recordings_root / relative
    audio.parent.mkdir(parents=True, exist_ok=True)
    audio.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    saved = await store_call(
        web_runtime.sessions,
        "1700000200.1",
        t0,
        office_id=office_id,
        events=[
            (t0, "prompt", {"prompt": "message.intro", "text": "Silakan tinggalkan pesan"}),
            (t0 + timedelta(seconds=20), "record", {"kind": "message", "path": relative, "seconds": 14.0}),
        ],
        recordings=[("message", relative, 14.0, t0 + timedelta(seconds=20))],
        ticket_kind="message",
    )
    headers = bearer(tokens["duty"])
    response = await api.get(f"/api/tickets/{saved.ticket_number}", headers=headers)
    assert response.status == 200
    ticket = await response.json()
    assert ticket["number"] == saved.ticket_number
    assert ticket["office"] == "Kecamatan Wanadadi"
    assert ticket["kind"] == "message" and ticket["priority"] == "normal"
    assert ticket["calls"] == ["1700000200.1"]
    assert [event["kind"] for event in ticket["events"]] == ["prompt", "record"]
    [recording] = ticket["recordings"]
    assert recording["kind"] == "message" and recording["seconds"] == 14.0
    assert recording["created_at"] == "2026-12-02T10:00:20+07:00"

    played = await api.get(recording["url"], headers=headers)
    assert played.status == 200
    assert await played.read() == audio.read_bytes()
    assert (await api.get(recording["url"])).status == 401
    audio.unlink()
    assert (await api.get(recording["url"], headers=headers)).status == 404

    for number in ("12345678", "abc", "1234567890"):
        missing = await api.get(f"/api/tickets/{number}", headers=headers)
        assert missing.status == 404
        assert (await missing.json())["error"]["code"] == "not_found"


async def test_patch_changes_the_ticket_and_adds_a_timeline_entry(
    api: Client, web_runtime: TestRuntime, tokens: dict[str, str]
) -> None:
    saved = await store_call(web_runtime.sessions, "1700000300.1", WEDNESDAY_10AM, ticket_kind="request")
    url = f"/api/tickets/{saved.ticket_number}"
    staff = bearer(tokens["staff"])

    response = await api.patch(
        url, json={"status": "dijadwalkan", "note_for_caller": " Bupati hadir Kamis pukul 09.00 "}, headers=staff
    )
    assert response.status == 200
    ticket = await response.json()
    assert ticket["status"] == "dijadwalkan"
    assert ticket["note_for_caller"] == "Bupati hadir Kamis pukul 09.00"
    entry = ticket["events"][-1]
    assert entry["kind"] == "staff" and _offset_ok(entry["at"])
    assert entry["changes"]["status"] == {"from": "open", "to": "dijadwalkan"}
    assert entry["changes"]["note_for_caller"]["to"] == "Bupati hadir Kamis pukul 09.00"
    assert entry["by"]["label"] == "test-staff" and entry["by"]["role"] == "staff"

    # The same values again change nothing and add nothing.
    again = await api.patch(url, json={"status": "dijadwalkan"}, headers=staff)
    assert len((await again.json())["events"]) == len(ticket["events"])

    async with web_runtime.sessions() as session:
        stored = await session.scalar(select(Ticket).where(Ticket.number == saved.ticket_number))
        assert stored is not None and stored.status == "dijadwalkan"
        staff_events = (
            await session.scalars(
                select(TicketEvent).where(TicketEvent.ticket_id == stored.id, TicketEvent.kind == "staff")
            )
        ).all()
        assert len(staff_events) == 1

    for body, field in (
        ({"status": "done"}, "status"),
        ({"note_for_caller": 5}, "note_for_caller"),
        ({"note_for_caller": "x" * 501}, "note_for_caller"),
        ({"priority": "urgent"}, "priority"),
        ({}, "status"),
    ):
        response = await api.patch(url, json=body, headers=staff)
        assert response.status == 422, body
        assert field in (await response.json())["error"]["fields"], body
    assert (await api.patch("/api/tickets/12345678", json={"status": "selesai"}, headers=staff)).status == 404


# -- callers ---------------------------------------------------------------------


async def test_register_a_caller(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    staff = bearer(tokens["staff"])
    response = await api.post(
        "/api/callers",
        json={
            "name": "  Wahyu   Hidayat ",
            "office": "Kecamatan Banjarmangu",
            "office_kind": "kecamatan",
            "role": "Camat",
            "numbers": ["0813-2765-4321", "+62 286 591234"],
            "pin": "0427",
        },
        headers=staff,
    )
    assert response.status == 201
    caller = await response.json()
    assert response.headers["Location"] == f"/api/callers/{caller['id']}"
    assert caller["name"] == "Wahyu Hidayat"
    assert caller["office"] == "Kecamatan Banjarmangu"
    assert caller["numbers"] == [
        {"raw": "0813-2765-4321", "e164": "+6281327654321"},
        {"raw": "+62 286 591234", "e164": "+62286591234"},
    ]
    assert caller["has_pin"] is True
    assert "pin" not in caller and "pin_hash" not in caller and "0427" not in await response.text()

    async with web_runtime.sessions() as session:
        stored = await session.get(Caller, caller["id"])
        assert stored is not None and stored.pin_hash is not None
        assert stored.pin_hash.startswith("$argon2id$")
        assert PasswordHasher().verify(stored.pin_hash, "0427")
        office = await session.scalar(select(Office).where(Office.name == "Kecamatan Banjarmangu"))
        assert office is not None and office.kind == "kecamatan"

    # An existing office by id; then by name in another spelling: no new office.
    second = await api.post(
        "/api/callers",
        json={"name": "Dewi Lestari", "office_id": office.id, "numbers": ["087812345670"]},
        headers=staff,
    )
    assert second.status == 201 and (await second.json())["office"] == "Kecamatan Banjarmangu"
    third = await api.post(
        "/api/callers",
        json={"name": "Slamet", "office": "kecamatan  banjarmangu", "numbers": ["081390001122"]},
        headers=staff,
    )
    assert (await third.json())["office_id"] == office.id

    fetched = await api.get(f"/api/callers/{caller['id']}", headers=bearer(tokens["duty"]))
    assert (await fetched.json())["numbers"] == caller["numbers"]
    assert (await api.get("/api/callers/999999", headers=staff)).status == 404


async def test_caller_validation(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    staff = bearer(tokens["staff"])

    async def errors(body: dict[str, Any], status: int = 422) -> dict[str, str]:
        response = await api.post("/api/callers", json=body, headers=staff)
        assert response.status == status, (body, await response.text())
        fields: dict[str, str] = (await response.json())["error"].get("fields", {})
        return fields

    fields = await errors({"name": "Budi", "numbers": ["081234567890", "12", "halo"]})
    assert set(fields) == {"numbers[1]", "numbers[2]"}
    assert "Nomor telepon tidak valid" in fields["numbers[1]"] and "Invalid phone number" in fields["numbers[1]"]
    assert "numbers" in await errors({"name": "Budi", "numbers": []})
    assert "numbers" in await errors({"name": "Budi", "numbers": "081234567890"})
    assert "numbers[1]" in await errors({"name": "Budi", "numbers": ["081234567890", "+62 812-3456-7890"]})
    assert "name" in await errors({"name": "   ", "numbers": ["081234567890"]})
    assert "name" in await errors({"numbers": ["081234567890"]})
    assert "pin" in await errors({"name": "Budi", "numbers": ["081234567890"], "pin": "12"})
    assert "pin" in await errors({"name": "Budi", "numbers": ["081234567890"], "pin": "12a45"})
    assert "pin" in await errors({"name": "Budi", "numbers": ["081234567890"], "pin": 1234})
    assert "office_id" in await errors({"name": "Budi", "numbers": ["081234567890"], "office_id": 424242})
    assert "office" in await errors({"name": "Budi", "numbers": ["081234567890"], "office": "X", "office_id": 1})
    assert "password" in await errors({"name": "Budi", "numbers": ["081234567890"], "password": "x"})

    assert (
        await api.post("/api/callers", json={"name": "Budi", "numbers": ["081234567890"]}, headers=staff)
    ).status == 201
    taken = await errors({"name": "Andi", "numbers": ["0878 1111 2222", "+6281234567890"]}, status=409)
    assert "Budi" in taken["numbers[1]"] and "already registered" in taken["numbers[1]"]
    async with web_runtime.sessions() as session:
        names = set(await session.scalars(select(Caller.name)))
    assert names == {"Budi"}


async def test_caller_search(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    office_id = await _office(web_runtime, "Dinas Pendidikan dan Kebudayaan")
    await _caller(web_runtime, "Siti Aminah", office_id, "+6281298765432", "0812-9876-5432")
    await _caller(web_runtime, "Agus Prasetyo", None, "+6282133344455", "082133344455")
    headers = bearer(tokens["duty"])

    async def names(query: str) -> list[str]:
        body = await (await api.get("/api/callers", params={"q": query} if query else None, headers=headers)).json()
        return [item["name"] for item in body["items"]]

    assert await names("") == ["Agus Prasetyo", "Siti Aminah"]
    assert await names("siti") == ["Siti Aminah"]
    assert await names("pendidikan") == ["Siti Aminah"]
    assert await names("0821 3334") == ["Agus Prasetyo"]
    assert await names("%") == []
    page = await (await api.get("/api/callers?limit=1", headers=headers)).json()
    assert page["next_offset"] == 1 and page["items"][0]["numbers"][0]["e164"] == "+6282133344455"


# -- office hours ----------------------------------------------------------------


async def test_office_hours(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    response = await api.get("/api/office-hours", headers=bearer(tokens["duty"]))
    assert response.status == 200
    hours = await response.json()
    assert hours["zone"] == "Asia/Jakarta"
    assert hours["weekly"]["mon"] == {"opens": "07:30", "closes": "16:00"}
    assert hours["weekly"]["fri"] == {"opens": "07:30", "closes": "11:30"}
    assert hours["weekly"]["sat"] is None and hours["weekly"]["sun"] is None
    assert hours["override"] == "none"
    assert set(hours["status"]) == {"open", "emergency_only", "reason", "holiday_name", "next_open"}
    assert _offset_ok(hours["now"])
    for holiday in hours["holidays"]:
        assert hours["holidays_from"] <= holiday["date"] <= hours["holidays_to"] and holiday["name"]


async def test_override_reaches_calls_at_once(api: Client, web_runtime: TestRuntime, tokens: dict[str, str]) -> None:
    services = web_runtime.services
    assert services.calendar.holiday_name(WEDNESDAY_10AM.date()) is None
    assert (await services.office_status(WEDNESDAY_10AM)).open is True  # primes the override cache
    admin = bearer(tokens["admin"])

    response = await api.put("/api/office-hours/override", json={"mode": "closed"}, headers=admin)
    assert response.status == 200
    body = await response.json()
    assert body["override"] == "closed" and body["status"]["reason"] == "override"
    status = await services.office_status(WEDNESDAY_10AM)
    assert (status.open, status.reason) == (False, "override")
    async with web_runtime.sessions() as session:
        assert await settings_store.get_override(session) == "closed"

    await api.put("/api/office-hours/override", json={"mode": "emergency-only"}, headers=admin)
    assert (await services.office_status(WEDNESDAY_10AM)).emergency_only is True

    await api.put("/api/office-hours/override", json={"mode": "none"}, headers=admin)
    status = await services.office_status(WEDNESDAY_10AM)
    assert (status.open, status.reason) == (True, "weekly")
    async with web_runtime.sessions() as session:
        assert await settings_store.get_override(session) is None

    for body in ({"mode": "holiday"}, {"mode": None}, {}, {"mode": "open", "until": "tomorrow"}):
        response = await api.put("/api/office-hours/override", json=body, headers=admin)
        assert response.status == 422, body

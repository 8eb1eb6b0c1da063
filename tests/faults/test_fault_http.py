"""HTTP abuse: every route without credentials, cookie writes without or with a
wrong CSRF token, oversized and malformed bodies, path traversal in recording
and static URLs, huge headers, a body that trickles in. Each is refused with a
clean 4xx (JSON on the API), nothing leaks, and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from web_fixtures import TestRuntime, bearer, tokens, web_runtime

from ivr import app as app_module
from ivr.app import serving_web
from ivr.storage import users, web_sessions
from ivr.web import api
from ivr.web.app import MAX_BODY_BYTES, create_web_app
from ivr.web.auth import ACCESS_RULES, SESSION_COOKIE

__all__ = ["tokens", "web_runtime"]  # fixtures used by name
pytestmark = pytest.mark.fault("HTTP abuse")

Client = TestClient[Any, Any]
WRITES = ("POST", "PUT", "PATCH", "DELETE")
#: Routes that take a CSV file instead of JSON.
CSV_UPLOADS = ("/api/callers/import",)
TRAVERSALS = (
    "/api/recordings/..%2F..%2Fetc%2Fpasswd",
    "/api/recordings/../../etc/passwd",
    "/api/recordings/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/recordings/1%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/recordings/..%5c..%5cetc%5cpasswd",
    "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/static/../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
)


@pytest.fixture
async def client(aiohttp_client: Any, web_runtime: TestRuntime) -> Client:
    result: Client = await aiohttp_client(create_web_app(web_runtime))
    return result


def _routes(client: Client) -> list[tuple[str, str, Any]]:
    """Every registered (method, URL, rule), path parameters filled in."""
    found = []
    for route, rule in client.app[ACCESS_RULES].items():
        if route.resource is None or route.method == "HEAD":
            continue
        url = re.sub(r"\{[^}]+\}", "1", route.resource.canonical)
        found.append((route.method, url, rule))
    assert len(found) > 20, "the route table looks empty"
    return sorted(found, key=lambda item: (item[1], item[0]))


async def _still_serving(client: Client) -> None:
    response = await client.get("/api/health")
    assert response.status in (200, 503)
    assert "status" in await response.json()


async def _json_error(response: Any) -> dict[str, Any]:
    assert response.content_type == "application/json", (response.status, await response.text())
    body = await response.json()
    assert isinstance(body.get("error"), dict) and body["error"].get("message"), body
    return body["error"]


async def test_every_route_refuses_the_anonymous(client: Client, fault: Any):
    for method, url, rule in _routes(client):
        fault.cases()
        response = await client.request(method, url, json={}, allow_redirects=False)
        assert response.status < 500, (method, url, response.status)
        if rule.public:
            continue
        if url.startswith("/api/"):
            assert response.status == 401, (method, url, response.status)
            assert (await _json_error(response))["code"] == "unauthorized"
        else:
            assert response.status in (303, 401), (method, url, response.status)
    await _still_serving(client)


async def test_cookie_writes_without_or_with_a_wrong_csrf_token_are_refused(
    client: Client, web_runtime: TestRuntime, fault: Any
):
    async with web_runtime.sessions.begin() as session:
        await users.create_user(session, "admin.uji", "kata-sandi-yang-panjang", "admin", "Admin Uji")
        account = await users.check_password(session, "admin.uji", "kata-sandi-yang-panjang")
        assert account is not None
        session_id = await web_sessions.start_session(session, account, "127.0.0.1")
    cookies = {SESSION_COOKIE: session_id}
    wrong_tokens = ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": web_sessions.csrf_token_for("another")})
    writes = [(m, u) for m, u, rule in _routes(client) if m in WRITES and not rule.public]
    assert writes
    for method, url in writes:
        for headers in wrong_tokens:
            fault.cases()
            response = await client.request(method, url, json={}, cookies=cookies, headers=headers)
            assert response.status == 403, (method, url, headers, response.status)
            assert (await _json_error(response))["code"] == "csrf_failed"
    # The same cookie with the right token is let through: the refusals were the token's.
    good = {"X-CSRF-Token": web_sessions.csrf_token_for(session_id)}
    response = await client.put("/api/office-hours/override", json={"mode": "none"}, cookies=cookies, headers=good)
    assert response.status == 200, await response.text()


async def test_oversized_and_malformed_bodies_get_clean_json_errors(client: Client, tokens: dict[str, str], fault: Any):
    auth = bearer(tokens["admin"])
    json_writes = [
        (m, u)
        for m, u, rule in _routes(client)
        if m in ("POST", "PUT", "PATCH") and u.startswith("/api/") and u not in CSV_UPLOADS
    ]
    bodies = {
        "oversized": (b'{"x": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}', {413}),
        "malformed": (b'{"mode": ', {400}),
        "not UTF-8": (b'{"mode": "\xff\xfe"}', {400}),
        "deeply nested": (b"[" * 100000, {400}),
        "not an object": (b"[1, 2]", {400}),
    }
    for method, url in json_writes:
        for name, (body, statuses) in bodies.items():
            fault.cases()
            headers = {**auth, "Content-Type": "application/json"}
            response = await client.request(method, url, data=body, headers=headers)
            # A route with an id may say 404 first (nothing to change), never 5xx.
            allowed = statuses | ({404} if "/1" in url else set())
            assert response.status in allowed, (name, method, url, response.status, await response.text())
            await _json_error(response)
    for url in CSV_UPLOADS:
        fault.cases()
        huge = b"nama,nomor\n" + b"a,0812\n" * (2 * MAX_BODY_BYTES // 7)
        response = await client.post(url, data=huge, headers={**auth, "Content-Type": "text/csv"})
        assert response.status == 413, (url, response.status)
        await _json_error(response)
    await _still_serving(client)


async def test_path_traversal_in_recording_and_static_urls_is_refused(
    client: Client, tokens: dict[str, str], fault: Any
):
    for url in TRAVERSALS:
        fault.cases()
        response = await client.get(url, headers=bearer(tokens["admin"]), allow_redirects=False)
        body = await response.read()
        assert response.status in (400, 403, 404), (url, response.status)
        assert b"root:" not in body
    await _still_serving(client)


async def _raw_request(client: Client, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(4096)
    finally:
        writer.close()


async def test_huge_headers_are_refused(client: Client, fault: Any):
    for header in (b"X-Junk: " + b"a" * 100_000, b"".join(b"X-%d: y\r\n" % i for i in range(5000)).rstrip()):
        fault.cases()
        answer = await _raw_request(client, b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
        assert 400 <= status < 500 or answer == b"", answer[:200]
    await _still_serving(client)


async def test_a_body_that_trickles_in_is_cut_off_and_others_are_served(
    client: Client, tokens: dict[str, str], fault: Any, monkeypatch: pytest.MonkeyPatch
):
    fault.cases()
    monkeypatch.setattr(api, "BODY_READ_SECONDS", 1.0)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"PUT /api/office-hours/override HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + tokens["admin"].encode() + b"\r\nContent-Length: 100\r\n\r\n{"
    )

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(40):  # a byte every 0.1 s: 4 s of body if nobody stops it
                await _still_serving(client)
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.1)

    slow = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(3):
            answer = await reader.read(4096)
    finally:
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    await _still_serving(client)


async def test_a_request_never_finished_is_closed_and_whole_ones_are_still_answered(runtime: Any, monkeypatch: Any):
    """Half-sent requests held open (slowloris) would use up the file
    descriptors the FastAGI listener needs too: the server closes them."""
    monkeypatch.setattr(app_module, "HTTP_IDLE_SECONDS", 0.5)
    async with serving_web(runtime) as base_url:
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: ivr\r\n")  # never the blank line
        await writer.drain()
        async with asyncio.timeout(10):
            assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: ivr\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(10):
            assert (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()

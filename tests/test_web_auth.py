"""Staff sign-in over HTTP: the login form, sessions (cookie flags, rotation,
expiry, logout, disabled users), the login throttle, CSRF on every cookie
write, role limits for signed-in staff, and Bearer tokens left as they were."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from web_fixtures import TestRuntime, bearer, build_runtime, tokens, web_runtime

from ivr import cli as cli_module
from ivr.config import Settings
from ivr.seed import seed_demo_admin
from ivr.storage.database import create_engine, session_factory
from ivr.storage.models import User
from ivr.storage.users import check_password, create_user, set_active
from ivr.storage.web_models import LoginThrottle, WebSession
from ivr.storage.web_sessions import ThrottlePolicy, locked_until, record_failure
from ivr.web.agenda_api import AGENDA_NOTIFIER, add_agenda_routes
from ivr.web.app import create_web_app
from ivr.web.auth import ACCESS_RULES, ROLE_PERMISSIONS, SESSION_COOKIE, Access, add_route, safe_next
from ivr.web.pages.login import LOGIN_FORM_COOKIE

__all__ = ["tokens", "web_runtime"]  # fixtures used by name

Client = TestClient[Any, Any]
PASSWORD = "kata-sandi-yang-panjang"
WRONG = "Nama pengguna atau kata sandi salah."
LOCKED = "Terlalu banyak percobaan masuk yang gagal"


def _app(runtime: TestRuntime) -> web.Application:
    """The web app with every feature's routes (the agenda's too, which
    ``create_web_app`` adds only when the runtime has agenda services)."""
    app = create_web_app(runtime)
    if AGENDA_NOTIFIER not in app:
        add_agenda_routes(app, None)
    return app


@pytest.fixture
async def client(aiohttp_client: Any, web_runtime: TestRuntime) -> Client:
    result: Client = await aiohttp_client(_app(web_runtime))
    return result


async def _client_with(aiohttp_client: Any, settings: Settings, runtime: TestRuntime, **changes: Any) -> Client:
    """The web app on the same database, with some settings changed."""
    changed = build_runtime(settings.model_copy(update=changes), runtime.engine)
    client: Client = await aiohttp_client(create_web_app(changed))
    return client


async def _user(runtime: TestRuntime, username: str, role: str = "staff", full_name: str = "") -> None:
    async with runtime.sessions.begin() as session:
        await create_user(session, username, PASSWORD, role, full_name or f"Petugas {username}")


def _login_token(html: str) -> str:
    match = re.search(r'name="login_token" value="([^"]+)"', html)
    assert match, "no login form"
    return match.group(1)


async def _submit_login(client: Client, username: str, password: str, next_path: str = "/office-hours") -> Any:
    form = await client.get("/login", params={"next": next_path})
    token = _login_token(await form.text())
    data = {"username": username, "password": password, "login_token": token, "next": next_path}
    return await client.post("/login", data=data, allow_redirects=False)


@dataclass(frozen=True)
class Signed:
    """A signed-in browser, reduced to what it sends: its cookie and the CSRF
    token its pages carry."""

    session_id: str
    csrf_token: str

    @property
    def cookies(self) -> dict[str, str]:
        return {SESSION_COOKIE: self.session_id}

    def writes(self) -> dict[str, Any]:
        return {"cookies": self.cookies, "headers": {"X-CSRF-Token": self.csrf_token}}


async def _sign_in(client: Client, username: str, password: str = PASSWORD) -> Signed:
    response = await _submit_login(client, username, password)
    assert response.status == 303, await response.text()
    session_id = response.cookies[SESSION_COOKIE].value
    page = await client.get("/office-hours", cookies={SESSION_COOKIE: session_id})
    assert page.status == 200
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', await page.text())
    assert match
    client.session.cookie_jar.clear()  # every later request says which browser it comes from
    return Signed(session_id, match.group(1))


def _login_next(location: str) -> str:
    """The page a redirect to the login form will return to."""
    parts = urlsplit(location)
    assert parts.path == "/login" and not parts.netloc
    (next_path,) = parse_qs(parts.query)["next"]
    return next_path


async def _session_rows(runtime: TestRuntime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WebSession)) or 0)


# -- signing in -------------------------------------------------------------------


async def test_sign_in_sets_a_safe_cookie_and_goes_to_next(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina", full_name="Rina Wulandari")
    response = await _submit_login(client, "Rina ", PASSWORD, next_path="/office-hours?tab=1")
    assert response.status == 303
    assert response.headers["Location"] == "/office-hours?tab=1"
    cookie = SimpleCookie(response.headers.getone("Set-Cookie"))  # the first: the session's
    morsel = cookie[SESSION_COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http in the test; see the next test
    assert not morsel["max-age"] and not morsel["expires"]  # gone with the browser; the server limits its life
    assert len(morsel.value) >= 40
    async with web_runtime.sessions() as session:
        stored = await session.scalar(select(WebSession.id_hash))
    assert stored and morsel.value not in stored and len(stored) == 64  # only a digest is kept
    page = await client.get("/office-hours")
    assert page.status == 200
    assert "Rina Wulandari" in await page.text()


async def test_cookie_is_secure_when_configured(
    aiohttp_client: Any, settings: Settings, web_runtime: TestRuntime
) -> None:
    client = await _client_with(aiohttp_client, settings, web_runtime, session_cookie_secure=True)
    await _user(web_runtime, "rina")
    form = await client.get("/login")
    form_cookie = SimpleCookie(form.headers.getone("Set-Cookie"))[LOGIN_FORM_COOKIE]
    assert form_cookie["secure"]
    # The client keeps a Secure cookie away from plain http; a browser behind the TLS proxy would send it.
    data = {"username": "rina", "password": PASSWORD, "login_token": form_cookie.value, "next": "/"}
    response = await client.post(
        "/login", data=data, cookies={LOGIN_FORM_COOKIE: form_cookie.value}, allow_redirects=False
    )
    assert response.status == 303
    assert SimpleCookie(response.headers.getone("Set-Cookie"))[SESSION_COOKIE]["secure"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    wrong_password = await _submit_login(client, "rina", "bukan-kata-sandinya")
    unknown_user = await _submit_login(client, "tidak-ada", "bukan-kata-sandinya")
    disabled = "joko"
    await _user(web_runtime, disabled)
    async with web_runtime.sessions.begin() as session:
        await set_active(session, disabled, False)
    disabled_user = await _submit_login(client, disabled, PASSWORD)
    for response in (wrong_password, unknown_user, disabled_user):
        assert response.status == 400
        assert WRONG in await response.text()
        assert SESSION_COOKIE not in response.cookies
    assert await _session_rows(web_runtime) == 0


async def test_login_form_needs_its_own_token(client: Client, web_runtime: TestRuntime) -> None:
    """Another site cannot post the login form (login CSRF): the form's token
    must match the cookie set when the form was shown."""
    await _user(web_runtime, "rina")
    data = {"username": "rina", "password": PASSWORD, "login_token": "forged", "next": "/"}
    forged = await client.post("/login", data=data, allow_redirects=False)
    assert forged.status == 400
    assert "kedaluwarsa" in await forged.text()
    client.session.cookie_jar.update_cookies({LOGIN_FORM_COOKIE: "forged"})
    assert (await client.post("/login", data=data, allow_redirects=False)).status == 400  # cookie path is /login only
    assert await _session_rows(web_runtime) == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/tickets?status=baru", "/tickets?status=baru"),
        ("/agenda#today", "/agenda#today"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("http:/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("/login?next=/tickets", "/"),
        ("tickets", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_next_is_a_path_on_this_site(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


async def test_sign_in_never_redirects_off_site(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = await _submit_login(client, "rina", PASSWORD, next_path=target)
        assert response.status == 303
        assert response.headers["Location"] == "/"
    page = await client.get("/login", params={"next": "https://evil.example/"})
    assert "evil" not in await page.text()


async def test_sign_in_rotates_the_session(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    first = await _sign_in(client, "rina")
    client.session.cookie_jar.update_cookies(first.cookies)
    response = await _submit_login(client, "rina", PASSWORD)
    assert response.status == 303
    second = response.cookies[SESSION_COOKIE].value
    assert second != first.session_id
    client.session.cookie_jar.clear()
    assert (await client.get("/api/office-hours", cookies=first.cookies)).status == 401
    assert (await client.get("/api/office-hours", cookies={SESSION_COOKIE: second})).status == 200
    assert await _session_rows(web_runtime) == 1


async def test_logout_ends_the_session(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    signed = await _sign_in(client, "rina")
    refused = await client.post("/logout", cookies=signed.cookies, allow_redirects=False)
    assert refused.status == 403  # without the CSRF token, another site could sign staff out
    response = await client.post(
        "/logout", data={"csrf_token": signed.csrf_token}, cookies=signed.cookies, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert response.cookies[SESSION_COOKIE].value == ""
    assert await _session_rows(web_runtime) == 0
    assert (await client.get("/api/office-hours", cookies=signed.cookies)).status == 401


# -- sessions end ---------------------------------------------------------------


@pytest.mark.parametrize("column", ["last_seen_at", "created_at"])
async def test_session_expires(client: Client, web_runtime: TestRuntime, column: str) -> None:
    """Idle too long (30 minutes by default), or signed in too long ago (12 hours)."""
    await _user(web_runtime, "rina")
    signed = await _sign_in(client, "rina")
    settings = web_runtime.settings
    age = {
        "last_seen_at": timedelta(minutes=settings.session_idle_minutes, seconds=1),
        "created_at": timedelta(hours=settings.session_max_hours, seconds=1),
    }[column]
    still_fresh = {"last_seen_at": datetime.now(UTC)} if column == "created_at" else {}
    async with web_runtime.sessions.begin() as session:
        await session.execute(update(WebSession).values({column: datetime.now(UTC) - age, **still_fresh}))
    page = await client.get(
        "/office-hours", cookies=signed.cookies, headers={"Accept": "text/html"}, allow_redirects=False
    )
    assert page.status == 303
    assert _login_next(page.headers["Location"]) == "/office-hours"
    assert page.cookies[SESSION_COOKIE].value == ""  # the stale cookie is dropped
    assert await _session_rows(web_runtime) == 0


async def test_use_keeps_a_session_alive(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    signed = await _sign_in(client, "rina")
    earlier = datetime.now(UTC) - timedelta(minutes=web_runtime.settings.session_idle_minutes - 1)
    async with web_runtime.sessions.begin() as session:
        await session.execute(update(WebSession).values(last_seen_at=earlier))
    assert (await client.get("/api/office-hours", cookies=signed.cookies)).status == 200
    async with web_runtime.sessions() as session:
        seen = await session.scalar(select(WebSession.last_seen_at))
    assert seen is not None and seen > earlier + timedelta(minutes=1)


async def test_disabled_or_deleted_user_is_signed_out(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    await _user(web_runtime, "joko")
    rina = await _sign_in(client, "rina")
    joko = await _sign_in(client, "joko")
    async with web_runtime.sessions.begin() as session:
        await session.execute(update(User).where(User.username == "rina").values(active=False))
    assert (await client.get("/api/office-hours", cookies=rina.cookies)).status == 401
    async with web_runtime.sessions.begin() as session:
        await session.execute(delete(User).where(User.username == "joko"))
    assert (await client.get("/api/office-hours", cookies=joko.cookies)).status == 401
    async with web_runtime.sessions() as session:
        owners = set(await session.scalars(select(WebSession.user_id)))
        rina_id = await session.scalar(select(User.id).where(User.username == "rina"))
    assert owners == {rina_id}  # joko's went with him; rina's stays refused until she is enabled again


# -- the login throttle ---------------------------------------------------------


async def test_repeated_failures_lock_the_username(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    limit = web_runtime.settings.login_max_failures
    for _ in range(limit - 1):
        assert (await _submit_login(client, "rina", "salah-salah-salah")).status == 400
    locked = await _submit_login(client, "rina", "salah-salah-salah")
    assert locked.status == 429
    assert LOCKED in await locked.text()
    # Locked means locked: the right password gets no session either.
    right = await _submit_login(client, "rina", PASSWORD)
    assert right.status == 429 and SESSION_COOKIE not in right.cookies
    # An unknown username locks the same way: a lockout tells nothing about who exists.
    for _ in range(limit):
        last = await _submit_login(client, "bukan-siapa-siapa", "salah-salah-salah")
    assert last.status == 429 and LOCKED in await last.text()
    # After the lockout the right password works again, and the count starts over.
    async with web_runtime.sessions.begin() as session:
        await session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == "user:rina")
            .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await _submit_login(client, "rina", PASSWORD)).status == 303
    async with web_runtime.sessions() as session:
        assert await session.scalar(select(LoginThrottle).where(LoginThrottle.key == "user:rina")) is None


async def test_repeated_failures_from_one_address_lock_it(
    aiohttp_client: Any, settings: Settings, web_runtime: TestRuntime
) -> None:
    client = await _client_with(aiohttp_client, settings, web_runtime, login_max_failures_per_address=3)
    await _user(web_runtime, "rina")
    # Without trusted proxies, X-Forwarded-For is the client's own say-so and changes nothing.
    for name, forged in (("andi", "198.51.100.1"), ("budi", "198.51.100.2")):
        client.session.headers["X-Forwarded-For"] = forged
        assert (await _submit_login(client, name, "salah-salah-salah")).status == 400
    assert (await _submit_login(client, "citra", "salah-salah-salah")).status == 429
    locked = await _submit_login(client, "rina", PASSWORD)  # a fresh username, the same address
    assert locked.status == 429 and LOCKED in await locked.text()


async def test_behind_a_trusted_proxy_each_client_has_its_own_count(
    aiohttp_client: Any, settings: Settings, web_runtime: TestRuntime
) -> None:
    client = await _client_with(
        aiohttp_client, settings, web_runtime, login_max_failures_per_address=2, http_trusted_proxies=("127.0.0.0/8",)
    )
    await _user(web_runtime, "rina")
    # What the client wrote itself (left) is ignored; the proxy's entry (right) counts.
    client.session.headers["X-Forwarded-For"] = "192.0.2.99, 203.0.113.7"
    assert (await _submit_login(client, "andi", "salah-salah-salah")).status == 400
    client.session.headers["X-Forwarded-For"] = "192.0.2.98, 203.0.113.7"
    assert (await _submit_login(client, "budi", "salah-salah-salah")).status == 429
    client.session.headers["X-Forwarded-For"] = "203.0.113.8"
    response = await _submit_login(client, "rina", PASSWORD)
    assert response.status == 303
    async with web_runtime.sessions() as session:
        assert await session.scalar(select(WebSession.client_address)) == "203.0.113.8"


async def test_failures_outside_the_window_do_not_add_up(web_runtime: TestRuntime) -> None:
    policy = ThrottlePolicy.from_settings(web_runtime.settings)
    keys = policy.limits("rina", "192.0.2.1")
    start = datetime.now(UTC)
    for _ in range(policy.per_user - 1):
        assert await record_failure(web_runtime.sessions, keys, policy, start) is None
    later = start + policy.window + timedelta(seconds=1)
    assert await record_failure(web_runtime.sessions, keys, policy, later) is None  # counting starts again
    for _ in range(policy.per_user - 2):
        assert await record_failure(web_runtime.sessions, keys, policy, later) is None
    until = await record_failure(web_runtime.sessions, keys, policy, later)
    assert until == later + policy.lockout
    async with web_runtime.sessions() as session:
        assert await locked_until(session, keys, later) == until
        assert await locked_until(session, keys, until) is None


# -- CSRF and Bearer tokens -----------------------------------------------------


async def test_cookie_writes_need_the_csrf_token(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    signed = await _sign_in(client, "rina")
    url = "/api/office-hours/override"
    body = {"mode": "closed"}
    missing = await client.put(url, json=body, cookies=signed.cookies)
    assert missing.status == 403
    assert (await missing.json())["error"]["code"] == "csrf_failed"
    wrong = await client.put(url, json=body, cookies=signed.cookies, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status == 403
    other = await _sign_in(client, "rina")  # a token of another session of the same user
    borrowed = await client.put(url, json=body, cookies=signed.cookies, headers={"X-CSRF-Token": other.csrf_token})
    assert borrowed.status == 403
    assert (await client.put(url, json=body, **signed.writes())).status == 200
    # Reading needs no token.
    assert (await client.get("/api/office-hours", cookies=signed.cookies)).status == 200


async def test_form_field_carries_the_csrf_token(client: Client, web_runtime: TestRuntime) -> None:
    await _user(web_runtime, "rina")
    signed = await _sign_in(client, "rina")
    wrong = await client.post("/logout", data={"csrf_token": "x" * 64}, cookies=signed.cookies, allow_redirects=False)
    assert wrong.status == 403
    right = await client.post(
        "/logout", data={"csrf_token": signed.csrf_token}, cookies=signed.cookies, allow_redirects=False
    )
    assert right.status == 303


async def test_bearer_tokens_need_no_csrf_token(
    client: Client, web_runtime: TestRuntime, tokens: dict[str, str]
) -> None:
    url = "/api/office-hours/override"
    assert (await client.put(url, json={"mode": "open"}, headers=bearer(tokens["staff"]))).status == 200
    # The header wins over any cookie: a bad token is refused even with a live session.
    await _user(web_runtime, "rina")
    signed = await _sign_in(client, "rina")
    refused = await client.get("/api/office-hours", cookies=signed.cookies, headers=bearer("not-a-token"))
    assert refused.status == 401


async def test_pages_send_browsers_to_login_and_api_clients_get_401(client: Client) -> None:
    browser = await client.get("/office-hours?x=1", headers={"Accept": "text/html"}, allow_redirects=False)
    assert browser.status == 303
    assert _login_next(browser.headers["Location"]) == "/office-hours?x=1"
    script = await client.get("/office-hours")
    assert script.status == 401 and (await script.json())["error"]["code"] == "unauthorized"
    api = await client.get("/api/office-hours", headers={"Accept": "text/html"}, allow_redirects=False)
    assert api.status == 401


async def test_every_guarded_route_follows_the_role_permissions(client: Client, web_runtime: TestRuntime) -> None:
    """A signed-in user of each role is refused (403) exactly the routes whose
    permission the role lacks (ROLE_PERMISSIONS): duty cannot edit the agenda,
    staff cannot edit the roster, and so on."""
    rules = {
        (route.method, route.resource.canonical): rule
        for route, rule in client.app[ACCESS_RULES].items()
        if rule.permission is not None and route.resource is not None
    }
    assert ("POST", "/api/agenda") in rules and ("PUT", "/api/roster") in rules
    for role in ROLE_PERMISSIONS:
        await _user(web_runtime, role, role)
        signed = await _sign_in(client, role)
        for (method, path), rule in sorted(rules.items()):
            url = re.sub(r"\{[^}]+\}", "999999", path)
            response = await client.request(method, url, json={}, **signed.writes())
            refused = response.status == 403 and (await response.json())["error"]["code"] == "forbidden"
            assert refused == (rule.permission not in ROLE_PERMISSIONS[role]), (role, method, path, response.status)


def test_session_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="session_idle_minutes"):
        Settings(session_idle_minutes=13 * 60, session_max_hours=12)
    with pytest.raises(ValidationError):
        Settings(login_max_failures=0)
    with pytest.raises(ValidationError, match=r"proxy\.example"):
        Settings(http_trusted_proxies=("proxy.example",))


# -- the command line ------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    """``cli("users", "list", stdin="...")``: ``ivr`` on a fresh SQLite database
    in a temporary folder; returns (exit code, stdout, stderr)."""
    for name in [name for name in os.environ if name.startswith("IVR_") and not name.startswith("IVR_TEST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IVR_RECORDINGS_DIR", str(tmp_path / "recordings"))
    monkeypatch.setattr(cli_module, "setup_logging", lambda *args: None)  # keep pytest's log capture in place

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli_module.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_manages_users(cli: Callable[..., Any]) -> None:
    code, out, _ = cli(
        "users", "create", "--username", "Rina", "--role", "staff", "--full-name", "Rina W", stdin=PASSWORD
    )
    assert (code, out.strip()) == (0, "user rina created")
    assert cli("users", "create", "--username", "rina", "--role", "duty", stdin=PASSWORD)[2].strip() == (
        "user rina already exists"
    )
    code, _, err = cli("users", "create", "--username", "joko", "--role", "duty", stdin="pendek\n")
    assert code == 2 and "at least 10 characters" in err
    code, _, err = cli("users", "create", "--username", "bad name", "--role", "duty", stdin=PASSWORD)
    assert code == 2 and "username" in err
    assert cli("users", "disable", "rina")[:2] == (0, "user rina disabled\n")
    code, out, _ = cli("users", "list")
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["username", "role", "state"] and row.split()[:5] == [
        "rina", "staff", "disabled", "Rina", "W",
    ]  # fmt: skip
    assert cli("users", "enable", "rina")[0] == 0
    assert "active" in cli("users", "list")[1]
    code, _, err = cli("users", "disable", "nobody")
    assert (code, err) == (2, "no user nobody\n")


def test_cli_unlocks_and_resets_a_password(cli: Callable[..., Any], tmp_path: Path) -> None:
    """An administrator locked out (or who lost the password printed once)
    gets back in from the command line."""
    assert cli("users", "create", "--username", "admin2", "--role", "admin", stdin=PASSWORD)[0] == 0
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'ivr.sqlite3'}")
    sessions = session_factory(engine)
    key = {"user:admin2": 1}

    async def lock_and_sign_in() -> None:
        await record_failure(sessions, key, ThrottlePolicy(1, 1, timedelta(minutes=15), timedelta(minutes=15)))
        async with sessions.begin() as session:
            user_id = await session.scalar(select(User.id).where(User.username == "admin2"))
            session.add(WebSession(id_hash=secrets.token_hex(32), user_id=user_id, client_address="127.0.0.1"))

    async def state() -> tuple[Any, int, bool]:
        async with sessions() as session:
            return (
                await locked_until(session, key),
                await session.scalar(select(func.count()).select_from(WebSession)),
                await check_password(session, "admin2", "sandi-baru-yang-panjang") is not None,
            )

    async def run(check: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await check()
        finally:
            await engine.dispose()

    asyncio.run(run(lock_and_sign_in))
    assert cli("users", "unlock", "admin2")[:2] == (0, "user admin2 unlocked\n")
    locked, open_sessions, new_password_works = asyncio.run(run(state))
    assert locked is None and open_sessions == 1 and not new_password_works

    asyncio.run(run(lock_and_sign_in))
    code, out, _ = cli("users", "set-password", "admin2", stdin="sandi-baru-yang-panjang\n")
    assert (code, out) == (0, "password of admin2 changed; its sessions ended\n")
    assert asyncio.run(run(state)) == (None, 0, True)
    assert cli("users", "set-password", "admin2", stdin="pendek\n")[0] == 2
    assert cli("users", "set-password", "nobody", stdin=PASSWORD)[2] == "no user nobody\n"


def test_cli_call_without_a_server_says_so_in_one_line(cli: Callable[..., Any]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, out, err = cli("call", "--port", str(port), "--keys", "1")
    assert (code, out) == (1, "")
    assert err == f"no FastAGI server on 127.0.0.1:{port} (is `ivr serve` running? --port picks another)\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--keys", "1,xyz"), "bad key group 'xyz'"),
        (("--keys", "rec:abc"), "bad record length"),
        (("--keys", "rec:-1"), "0 to 3600 seconds"),
        (("--dial", "nonsense"), "use TARGET=STATUS"),
        (("--dial", "Local/100@operator=BOGUS"), "is not ANSWER[:s]"),
        (("--dial", "Local/100@operator=ANSWER:x"), "is not ANSWER[:s]"),
    ],
)
def test_cli_call_with_a_bad_script_says_what_is_wrong(
    cli: Callable[..., Any], arguments: tuple[str, ...], message: str
) -> None:
    code, out, err = cli("call", "--port", "1", *arguments)
    assert (code, out) == (2, "")
    assert err.startswith("ivr call: ") and message in err and err.count("\n") == 1


def test_cli_never_takes_a_password_argument(cli: Callable[..., Any]) -> None:
    with pytest.raises(SystemExit):
        cli("users", "create", "--username", "rina", "--role", "staff", "--password", PASSWORD)


def test_cli_lists_and_revokes_tokens(cli: Callable[..., Any]) -> None:
    code, token, _ = cli("tokens", "create", "--role", "duty", "--label", "dashboard")
    assert code == 0 and len(token.strip()) >= 40
    code, out, _ = cli("tokens", "list")
    assert code == 0 and token.strip() not in out
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["id", "role", "label"] and row.split()[:3] == ["1", "duty", "dashboard"]
    assert cli("tokens", "revoke", "1")[:2] == (0, "token 1 revoked\n")
    assert cli("tokens", "revoke", "1")[0] == 1
    assert cli("tokens", "revoke", "99")[0] == 1
    assert cli("tokens", "list")[1].strip().splitlines()[1].split()[-2:] != ["-", "-"]  # revoked at a time


def test_demo_seed_creates_one_admin_and_prints_the_password_once(
    cli: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code, out, _ = cli("seed", "--demo")
    assert code == 0
    match = re.search(r"web app sign-in: user admin, password (\S+) ", out)
    assert match
    password = match.group(1)
    assert password not in caplog.text
    code, again, _ = cli("seed", "--demo")
    assert code == 0 and "password" not in again
    assert cli("users", "list")[1].splitlines()[1].split()[:3] == ["admin", "admin", "active"]


async def test_demo_admin_can_sign_in(client: Client, web_runtime: TestRuntime) -> None:
    password = await seed_demo_admin(web_runtime.sessions)
    assert password is not None and len(password) >= 16
    assert await seed_demo_admin(web_runtime.sessions) is None
    assert (await _submit_login(client, "admin", password)).status == 303


async def test_a_page_the_role_may_not_open_says_so_in_indonesian(
    aiohttp_client: Any, web_runtime: TestRuntime
) -> None:
    async def roster_editor(request: web.Request) -> web.Response:
        return web.Response(text="editor", content_type="text/html")

    app = _app(web_runtime)
    add_route(app, "GET", "/roster-editor", roster_editor, Access(permission="roster.write"))
    client: Client = await aiohttp_client(app)
    await _user(web_runtime, "joko", "duty")
    signed = await _sign_in(client, "joko")
    page = await client.get("/roster-editor", cookies=signed.cookies, headers={"Accept": "text/html"})
    assert page.status == 403 and page.content_type == "text/html"
    text = await page.text()
    assert "Tidak diizinkan" in text and "Peran Anda (duty)" in text
    script = await client.get("/roster-editor", cookies=signed.cookies)
    assert script.status == 403 and (await script.json())["error"]["code"] == "forbidden"

"""Signing in and out.

``POST /login`` checks the login throttle first (a locked username or address
gets no password check at all), then the password; every failure looks the
same whether the username exists or not. A success starts a new session (any
session the browser had is ended: the id changes at sign-in) and redirects to
``next`` when that is a path on this site.

The login form has its own CSRF defence, since there is no session yet: a
random value in a short-lived cookie and the same value in the form (double
submit), so another site cannot sign a browser in to an account of its choice.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from datetime import datetime
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from ivr.storage import users, web_sessions
from ivr.web import RUNTIME, validation
from ivr.web.auth import (
    PUBLIC,
    SESSION_COOKIE,
    TOKEN_CHECK_TIMEOUT,
    Access,
    add_route,
    client_address,
    safe_next,
    see_other,
)

log = logging.getLogger("ivr.web.login")

LOGIN_FORM_COOKIE: Final = "ivr_login"
LOGIN_FORM_SECONDS: Final = 3600

WRONG_CREDENTIALS: Final = "Nama pengguna atau kata sandi salah."
LOCKED: Final = "Terlalu banyak percobaan masuk yang gagal. Silakan coba lagi setelah pukul {until}."
FORM_EXPIRED: Final = "Formulir sudah kedaluwarsa. Silakan coba lagi."


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[RUNTIME].settings.session_cookie_secure


def _render(
    request: web.Request, status: int, *, message: str = "", username: str = "", next_path: str = "/"
) -> web.Response:
    """The login form with a fresh form token (cookie and hidden field)."""
    login_token = secrets.token_urlsafe(24)
    context: dict[str, Any] = {"message": message, "username": username, "next": next_path, "login_token": login_token}
    response = aiohttp_jinja2.render_template("login.html", request, context, status=status)
    response.set_cookie(
        LOGIN_FORM_COOKIE,
        login_token,
        max_age=LOGIN_FORM_SECONDS,
        path="/login",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    return _render(request, 200, next_path=safe_next(request.query.get("next")))


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = users.normalize_username(str(form.get("username", "")))[:80]
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")))
    offered = str(form.get("login_token", ""))
    expected = request.cookies.get(LOGIN_FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(offered.encode(errors="replace"), expected.encode()):
        return _render(request, 400, message=FORM_EXPIRED, username=username, next_path=next_path)
    if validation.text_problem(username) is not None or validation.text_problem(password) is not None:
        # No account has such a name or password: refused before the database and the hasher.
        return _render(request, 400, message=WRONG_CREDENTIALS, username="", next_path=next_path)

    runtime = request.app[RUNTIME]
    settings = runtime.settings
    throttle = web_sessions.ThrottlePolicy.from_settings(settings)
    keys = throttle.limits(username, client_address(request))
    async with asyncio.timeout(TOKEN_CHECK_TIMEOUT), runtime.sessions() as session:
        locked = await web_sessions.locked_until(session, keys)
    if locked is not None:
        return _locked(request, locked, username, next_path)

    async with runtime.sessions.begin() as session:
        account = await users.check_password(session, username, password)
    if account is None:
        locked = await web_sessions.record_failure(runtime.sessions, keys, throttle)
        log.info("sign-in refused (%s)", "now locked" if locked else "wrong username or password")
        if locked is not None:
            return _locked(request, locked, username, next_path)
        return _render(request, 400, message=WRONG_CREDENTIALS, username=username, next_path=next_path)

    policy = web_sessions.SessionPolicy.from_settings(settings)
    async with runtime.sessions.begin() as session:
        await web_sessions.end_session(session, request.cookies.get(SESSION_COOKIE, ""))
        await web_sessions.purge_expired_sessions(session, policy)
        await web_sessions.clear_failures(session, web_sessions.user_key(account.username))
        session_id = await web_sessions.start_session(session, account, client_address(request))
    log.info("%s signed in", account.username)
    response = see_other(next_path)
    response.set_cookie(SESSION_COOKIE, session_id, path="/", httponly=True, samesite="Lax", secure=_secure(request))
    response.del_cookie(LOGIN_FORM_COOKIE, path="/login")
    return response


def _locked(request: web.Request, until: datetime, username: str, next_path: str) -> web.StreamResponse:
    local = until.astimezone(request.app[RUNTIME].settings.zone)
    message = LOCKED.format(until=local.strftime("%H.%M"))
    return _render(request, 429, message=message, username=username, next_path=next_path)


async def logout(request: web.Request) -> web.StreamResponse:
    async with request.app[RUNTIME].sessions.begin() as session:
        await web_sessions.end_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = see_other("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/login", login_page, PUBLIC)
    add_route(app, "POST", "/login", login, PUBLIC)
    add_route(app, "POST", "/logout", logout, Access())

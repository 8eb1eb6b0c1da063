"""Who is asking, and may they.

Every route is registered with an ``Access`` rule (``add_route``). A route is
either public (the health check, the OpenAPI document, the login page, the
static CSS/JS) or needs an identity, and possibly a permission. Anything without
a rule (an unknown path, a wrong method) needs an identity too, so an anonymous
client gets 401 everywhere except on the public routes and learns nothing about
which paths exist. A browser asking for a page (``Accept: text/html``, outside
``/api/``) is sent to the login page instead (303 to ``/login?next=...``).

Identities come from two places, each checked in one short unit of work:

- ``Authorization: Bearer <token>`` (RFC 6750) against ``api_tokens``: kind
  "token". When the header is present, cookies are ignored.
- the ``ivr_session`` cookie against ``web_sessions`` (``ivr.storage.web_sessions``):
  kind "user". A cookie is sent by the browser on its own, so every request that
  changes something (POST, PUT, PATCH, DELETE) must also carry the session's
  CSRF token, as the form field ``csrf_token`` or the header ``X-CSRF-Token``.
  Bearer tokens are never sent implicitly and need no CSRF token.

Roles and what they may do:

========  ===================================================================
admin     everything
staff     read; write tickets (status and note), agenda, caller directory
duty      read; change a ticket's status
========  ===================================================================
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractRoute

from ivr.storage import tokens, web_sessions
from ivr.web import RUNTIME
from ivr.web.errors import ApiError

Permission = Literal[
    "read",
    "tickets.status",
    "tickets.write",
    "agenda.write",
    "callers.write",
    "roster.write",
    "office_hours.write",
]

ALL_PERMISSIONS: Final[frozenset[Permission]] = frozenset(
    ("read", "tickets.status", "tickets.write", "agenda.write", "callers.write", "roster.write", "office_hours.write")
)

ROLE_PERMISSIONS: Final[Mapping[str, frozenset[Permission]]] = {
    "admin": ALL_PERMISSIONS,
    "staff": frozenset(
        ("read", "tickets.status", "tickets.write", "agenda.write", "callers.write", "office_hours.write")
    ),
    "duty": frozenset(("read", "tickets.status")),
}

#: How long a token or session check may take before the request fails with 503.
TOKEN_CHECK_TIMEOUT: Final = 2.0
#: Sent with every 401 (RFC 6750 section 3).
REALM: Final = 'Bearer realm="ivr"'
SESSION_COOKIE: Final = "ivr_session"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
#: Methods that change nothing (RFC 9110 section 9.2.1) need no CSRF token.
SAFE_METHODS: Final = frozenset(("GET", "HEAD", "OPTIONS"))
LOGIN_PATH: Final = "/login"


@dataclass(frozen=True)
class Access:
    """The rule of one route. ``permission=None`` with ``public=False``: any
    authenticated identity."""

    public: bool = False
    permission: Permission | None = None

    def roles(self) -> list[str]:
        """The roles this rule admits (for the OpenAPI document)."""
        if self.public:
            return []
        return [
            role for role, granted in ROLE_PERMISSIONS.items() if self.permission is None or self.permission in granted
        ]


PUBLIC: Final = Access(public=True)


@dataclass(frozen=True)
class Identity:
    """An authenticated client: an API token (``kind="token"``, ``label`` its
    label) or a signed-in staff member (``kind="user"``, ``label`` the
    username, ``full_name`` for the pages)."""

    kind: Literal["token", "user"]
    id: int
    label: str
    role: str
    full_name: str = ""

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    @property
    def name(self) -> str:
        """Short, for ``updated_by`` columns and logs (never the token itself)."""
        return f"{self.kind}:{self.label or self.id}"[:80]

    def describe(self) -> dict[str, Any]:
        """For the ticket timeline: who did it."""
        return {"type": self.kind, "id": self.id, "label": self.label, "role": self.role}


ACCESS_RULES: Final[web.AppKey[dict[AbstractRoute, Access]]] = web.AppKey("access_rules")
IDENTITY: Final[web.RequestKey[Identity]] = web.RequestKey("identity")
#: The CSRF token of the request's cookie session (absent for Bearer tokens).
CSRF_TOKEN: Final[web.RequestKey[str]] = web.RequestKey("csrf_token")


def add_route(
    app: web.Application,
    method: str,
    path: str,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    access: Access,
) -> AbstractRoute:
    """Register a route with its access rule (the only way routes are added)."""
    route = app.router.add_route(method, path, handler)
    app[ACCESS_RULES][route] = access
    return route


def add_static(app: web.Application, prefix: str, folder: Path) -> None:
    """Serve a folder of public files (CSS, JS; never data) under ``prefix``."""
    resource = app.router.add_static(prefix, folder, show_index=False, follow_symlinks=False)
    for route in resource:
        app[ACCESS_RULES][route] = PUBLIC


def identity(request: web.Request) -> Identity:
    return request[IDENTITY]


def safe_next(raw: str | None, default: str = "/") -> str:
    """Where to go after signing in: a path on this site only (``/tickets?x=1``),
    never another site (``//evil.example``, ``https://...``, ``/\\evil``)."""
    if not raw or len(raw) > 2000 or not raw.startswith("/") or raw.startswith("//"):
        return default
    if "\\" in raw or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        return default
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or parts.path == LOGIN_PATH:
        return default
    return raw


def client_address(request: web.Request) -> str:
    """The client's IP address: the peer's, or, when the peer is a trusted
    reverse proxy (``http_trusted_proxies``), the nearest address in
    ``X-Forwarded-For`` that is not one of those proxies (addresses further
    left were written by the client and prove nothing)."""
    peer = request.remote or "unknown"
    networks = [ipaddress.ip_network(n, strict=False) for n in request.app[RUNTIME].settings.http_trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            return any(ipaddress.ip_address(address) in network for network in networks)
        except ValueError:
            return False

    if not trusted(peer):
        return peer
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed(hops):
        if not trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                break  # not an address: the proxy did not write it
    return peer


def see_other(location: str) -> web.Response:
    """303: after a form POST the browser GETs ``location``."""
    return web.Response(status=303, headers={"Location": location})


def login_url(next_path: str) -> str:
    return f"{LOGIN_PATH}?{urlencode({'next': next_path})}"


def wants_page(request: web.Request) -> bool:
    """A browser asking for a page (not an API client): it gets redirects and HTML."""
    return (
        not request.path.startswith("/api/")
        and "Authorization" not in request.headers
        and "text/html" in request.headers.get("Accept", "")
    )


def _unauthorized(message: str, *, bad_token: bool = False) -> ApiError:
    challenge = REALM + (', error="invalid_token"' if bad_token else "")
    return ApiError(401, message, headers={"WWW-Authenticate": challenge})


def _login_required(request: web.Request, *, stale_cookie: bool) -> Exception:
    if wants_page(request):
        redirect = web.HTTPSeeOther(login_url(safe_next(request.path_qs)))
        if stale_cookie:
            redirect.del_cookie(SESSION_COOKIE, path="/")
        return redirect
    return _unauthorized("Authentication required: send Authorization: Bearer <token>")


async def authenticate(request: web.Request) -> Identity:
    header = request.headers.get("Authorization", "")
    if header:
        return await _bearer_identity(request, header)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if session_id:
        who = await _session_identity(request, session_id)
        if who is not None:
            return who
    raise _login_required(request, stale_cookie=bool(session_id))


async def _session_identity(request: web.Request, session_id: str) -> Identity | None:
    runtime = request.app[RUNTIME]
    policy = web_sessions.SessionPolicy.from_settings(runtime.settings)
    async with asyncio.timeout(TOKEN_CHECK_TIMEOUT), runtime.sessions.begin() as session:
        signed_in = await web_sessions.find_session(session, session_id, policy)
    if signed_in is None:
        return None
    if request.method not in SAFE_METHODS:
        await _check_csrf(request, session_id)
    request[CSRF_TOKEN] = signed_in.csrf_token
    account = signed_in.account
    return Identity(kind="user", id=account.id, label=account.username, role=account.role, full_name=account.full_name)


async def _check_csrf(request: web.Request, session_id: str) -> None:
    offered = request.headers.get(CSRF_HEADER)
    if offered is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        field = (await request.post()).get(CSRF_FIELD)
        offered = field if isinstance(field, str) else None
    if not offered or not web_sessions.csrf_matches(session_id, offered):
        raise ApiError(
            403,
            "Token CSRF tidak ada atau salah; muat ulang halaman / CSRF token missing or wrong",
            code="csrf_failed",
        )


async def _bearer_identity(request: web.Request, header: str) -> Identity:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Unsupported authorization: send Authorization: Bearer <token>")
    sessions = request.app[RUNTIME].sessions
    async with asyncio.timeout(TOKEN_CHECK_TIMEOUT), sessions.begin() as session:
        holder = await tokens.identify_token(session, token)
    if holder is None:
        raise _unauthorized("Unknown or revoked token", bad_token=True)
    return Identity(kind="token", id=holder.id, label=holder.label, role=holder.role)


async def page_context(request: web.Request) -> dict[str, Any]:
    """What every template gets (a Jinja2 context processor): ``identity``
    (None on public pages), ``csrf_token``, ``can(permission)`` and ``path``."""
    who = request.get(IDENTITY)

    def can(permission: Permission) -> bool:
        return who is not None and who.can(permission)

    return {"identity": who, "csrf_token": request.get(CSRF_TOKEN, ""), "can": can, "path": request.path}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = request.app[ACCESS_RULES].get(request.match_info.route)
    if rule is not None and rule.public:
        return await handler(request)
    who = await authenticate(request)
    request[IDENTITY] = who
    if rule is not None and rule.permission is not None and not who.can(rule.permission):
        if wants_page(request) and request.method in SAFE_METHODS:
            return aiohttp_jinja2.render_template("forbidden.html", request, await page_context(request), status=403)
        raise ApiError(403, f"Role {who.role!r} may not do this ({rule.permission} needed)")
    return await handler(request)

"""Who is asking, and may they.

Every route is registered with an ``Access`` rule (``add_route``). A route is
either public (the health check, the OpenAPI document, later the login page) or
needs an identity, and possibly a permission. Anything without a rule (an
unknown path, a wrong method) needs an identity too, so an anonymous client
gets 401 everywhere except on the public routes and learns nothing about which
paths exist.

Identities come from ``Authorization: Bearer <token>`` (RFC 6750), checked
against ``api_tokens`` in one short unit of work. The web pages will add a
session cookie as a second way to an ``Identity``; the rules stay the same.

Roles and what they may do:

========  ===================================================================
admin     everything
staff     read; write tickets (status and note), agenda, caller directory
duty      read; change a ticket's status
========  ===================================================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractRoute

from ivr.storage import tokens
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

#: How long a token check may take before the request fails with 503.
TOKEN_CHECK_TIMEOUT: Final = 2.0
#: Sent with every 401 (RFC 6750 section 3).
REALM: Final = 'Bearer realm="ivr"'


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
    """An authenticated client. ``kind`` is "token" for API tokens (web
    sessions will add "user")."""

    kind: Literal["token"]
    id: int
    label: str
    role: str

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


def identity(request: web.Request) -> Identity:
    return request[IDENTITY]


def _unauthorized(message: str, *, bad_token: bool = False) -> ApiError:
    challenge = REALM + (', error="invalid_token"' if bad_token else "")
    return ApiError(401, message, headers={"WWW-Authenticate": challenge})


async def authenticate(request: web.Request) -> Identity:
    header = request.headers.get("Authorization", "")
    if not header:
        raise _unauthorized("Authentication required: send Authorization: Bearer <token>")
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


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = request.app[ACCESS_RULES].get(request.match_info.route)
    if rule is not None and rule.public:
        return await handler(request)
    who = await authenticate(request)
    request[IDENTITY] = who
    if rule is not None and rule.permission is not None and not who.can(rule.permission):
        raise ApiError(403, f"Role {who.role!r} may not do this ({rule.permission} needed)")
    return await handler(request)

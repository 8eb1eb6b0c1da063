"""The aiohttp application: the REST API now, the staff pages later.

``create_web_app`` builds a fresh application around a runtime; nothing is
global, so tests build as many as they like. Middlewares, outermost first:

1. ``error_middleware``: every error becomes JSON; nothing internal leaks.
2. ``auth_middleware``: every route needs an identity unless it was
   registered as public (``ivr.web.auth.add_route``), pages included.

The pages (another issue) will register their routes through ``add_route``
too, with a public login page and a cookie session as a second way to an
identity; they need no change here beyond their own ``setup`` call.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ivr.web import RUNTIME, WebRuntime, api
from ivr.web.agenda_api import add_agenda_routes
from ivr.web.auth import ACCESS_RULES, auth_middleware
from ivr.web.errors import error_middleware
from ivr.web.roster_api import add_roster_routes

#: The largest request body accepted. API bodies are small JSON; a page that
#: takes a CSV upload would stream its body with a limit of its own.
MAX_BODY_BYTES: Final = 1024 * 1024


async def _protective_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Answers carry names and phone numbers: no shared cache keeps them, no
    browser guesses their type, no link leaks the URL."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")


def create_web_app(runtime: WebRuntime) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES)
    app[RUNTIME] = runtime
    app[ACCESS_RULES] = {}
    app.on_response_prepare.append(_protective_headers)
    api.setup(app)
    if runtime.services.agenda is not None:
        add_agenda_routes(app, runtime.services.agenda)
    add_roster_routes(app)
    return app

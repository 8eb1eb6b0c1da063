"""The aiohttp application: the REST API and the staff pages.

``create_web_app`` builds a fresh application around a runtime; nothing is
global, so tests build as many as they like. Middlewares, outermost first:

1. ``error_middleware``: every error becomes JSON; nothing internal leaks.
2. ``auth_middleware``: every route needs an identity (a Bearer token or a
   signed-in session with its CSRF token for writes) unless it was registered
   as public (``ivr.web.auth.add_route``), pages included.

The pages (``ivr.web.pages``) come after the API: they read through the same
repository functions and write through the API routes.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ivr.web import RUNTIME, WebRuntime, api
from ivr.web.agenda_api import add_agenda_routes
from ivr.web.auth import ACCESS_RULES, auth_middleware
from ivr.web.callers_api import add_callers_routes
from ivr.web.errors import error_middleware
from ivr.web.events import add_event_routes
from ivr.web.metrics_api import add_metrics_route
from ivr.web.pages import setup_pages
from ivr.web.reports_api import add_reports_routes
from ivr.web.roster_api import add_roster_routes

#: The largest request body accepted. API bodies are small JSON; a page that
#: takes a CSV upload would stream its body with a limit of its own.
MAX_BODY_BYTES: Final = 1024 * 1024

#: Pages load scripts, styles and media from this site only, never inline
#: scripts (so a name that slipped past escaping still could not run), and no
#: other site may frame them. Inline ``style`` attributes stay allowed (bar
#: widths in the reports).
PAGE_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


async def _protective_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Answers carry names and phone numbers: no shared cache keeps them, no
    browser guesses their type, no link leaks the URL."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")


def create_web_app(runtime: WebRuntime) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES)
    app[RUNTIME] = runtime
    app[ACCESS_RULES] = {}
    app.on_response_prepare.append(_protective_headers)
    api.setup(app)
    if runtime.services.agenda is not None:
        add_agenda_routes(app, runtime.services.agenda)
    add_roster_routes(app)
    add_event_routes(app)
    add_callers_routes(app)
    add_metrics_route(app)
    add_reports_routes(app)
    setup_pages(app)  # last: the pages read and write through the routes above
    return app

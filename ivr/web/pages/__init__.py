"""The staff pages: server-rendered Jinja2 templates, a little vanilla JS.

``setup_pages`` sets up the template engine (autoescaping on: data is always
shown as text), the public ``/static/`` folder (CSS and JS only, nothing with
data) and each page module's routes. Every page module has
``add_routes(app)`` and registers its routes with ``ivr.web.auth.add_route``
and an ``Access`` rule, like the API; the list below is explicit, one line per
module.

Templates get ``identity`` (None on public pages), ``csrf_token`` (for forms,
and in ``<meta name="csrf-token">`` for ``ivr.api``), ``can(permission)`` and
``path`` (``ivr.web.auth.page_context``), and the filters ``tanggal``,
``jam`` and ``tanggal_jam`` (``ivr.web.pages.display``; times in the
configured zone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from ivr.web import RUNTIME
from ivr.web.auth import add_static, page_context
from ivr.web.pages import agenda, board, callers, display, login, office_hours, reports, roster, tickets

PAGE_MODULES: Final = (login, office_hours, agenda, roster, callers, board, tickets, reports)

WEB_DIR: Final = Path(__file__).resolve().parent.parent
TEMPLATES_DIR: Final = WEB_DIR / "templates"
STATIC_DIR: Final = WEB_DIR / "static"

#: The routes ``setup_pages`` added: pages and static files, which the OpenAPI
#: document leaves out.
PAGE_ROUTES: Final[web.AppKey[frozenset[AbstractRoute]]] = web.AppKey("page_routes")


def setup_pages(app: web.Application) -> None:
    before = set(app.router.routes())
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        context_processors=[page_context],
    )
    zone = app[RUNTIME].settings.zone
    environment.filters["tanggal"] = display.tanggal
    environment.filters["jam"] = lambda value: display.jam(display.in_zone(value, zone))
    environment.filters["tanggal_jam"] = lambda value: display.tanggal_jam(value, zone)
    add_static(app, "/static/", STATIC_DIR)
    for module in PAGE_MODULES:
        module.add_routes(app)
    app[PAGE_ROUTES] = frozenset(set(app.router.routes()) - before)

"""``/callers``: the caller directory (registered officers and their numbers).

The list, the search and every change go through the API from
``static/callers.js``: ``GET /api/callers?q=`` (name, office, role or part of
a number, in any common way of writing it), ``POST``/``PATCH``/``DELETE
/api/callers``, and the CSV upload ``POST /api/callers/import``, whose report
(rejected rows with line and reason) the page shows. Staff with
``callers.write`` see the forms; others see the list only.
"""

from __future__ import annotations

from typing import Final

import aiohttp_jinja2
from aiohttp import web

from ivr import directory_import
from ivr.web.api import READ
from ivr.web.auth import add_route
from ivr.web.callers_api import MAX_UPLOAD_BYTES

#: Rows per page of the list.
PAGE_SIZE: Final = 25


async def callers_page(request: web.Request) -> web.Response:
    context = {
        "q": request.query.get("q", "")[:100],
        "page_size": PAGE_SIZE,
        "columns": ",".join(directory_import.COLUMNS),
        "max_upload_bytes": MAX_UPLOAD_BYTES,
        "max_upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
        "max_numbers": directory_import.MAX_NUMBERS,
    }
    return aiohttp_jinja2.render_template("callers.html", request, context)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/callers", callers_page, READ)

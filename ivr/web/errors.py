"""Errors as the API shows them, and the one middleware that renders them.

Every error leaves as ``{"error": {"code": ..., "message": ...}}`` (plus
``"fields"`` for validation errors, one message per field). Handlers raise
``ApiError``; aiohttp's own ``HTTPException``s (unknown route, wrong method,
body too large) are rendered the same way. Anything else is logged with the
request's method and path and a short reference, and the client sees only that
reference: no exception text, no SQL, no stack.

Nothing here logs headers or query strings: the ``Authorization`` header holds a
token, and a token must never reach a log.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger("ivr.web")

#: Exceptions that mean "the database is not answering" rather than a bug: the
#: client gets 503 and may retry; the log gets a warning, not a stack.
DATABASE_DOWN: Final = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, TimeoutError, OSError)

#: Machine-readable codes for the statuses the API uses.
CODES: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    500: "internal",
    503: "unavailable",
}

#: Headers of aiohttp's exceptions that the client needs to see.
_KEPT_HEADERS: Final = ("Allow", "WWW-Authenticate")


class ApiError(Exception):
    """An error the client caused or must know about, with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.fields = dict(fields) if fields else None
        self.headers = dict(headers) if headers else None

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, fields=self.fields, headers=self.headers)


class NotFound(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class Invalid(ApiError):
    """422 with one message per field (``{"numbers[1]": "..."}``)."""

    def __init__(self, fields: Mapping[str, str], message: str = "Data tidak valid / Invalid data") -> None:
        super().__init__(422, message, fields=fields)


class Conflict(ApiError):
    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(409, message, fields=fields)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body: dict[str, object] = {"code": code, "message": message}
    if fields:
        body["fields"] = dict(fields)
    return web.json_response({"error": body}, status=status, headers=headers)


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> web.Response:
    status = exc.status
    headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
    if status == 404:
        message = f"Nothing at {request.path}"
    elif status == 405:
        message = f"Method {request.method} not allowed here"
    elif status == 413:
        message = exc.text or "Request body too large"
    else:
        message = exc.reason
    return error_response(status, CODES.get(status, "error"), message, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are answers, not errors
            raise
        return _from_http_exception(exc, request)
    except DATABASE_DOWN as exc:
        log.warning("%s %s: database unavailable (%s)", request.method, request.path, type(exc).__name__)
        return error_response(503, "unavailable", "The database is unavailable; try again shortly")
    except Exception:
        reference = secrets.token_hex(4)
        log.exception("%s %s failed (ref %s)", request.method, request.path, reference)
        return error_response(500, "internal", f"Internal error (ref {reference})")

"""Changing the caller directory: ``PATCH``/``DELETE /api/callers/{id}`` and
``POST /api/callers/import`` (the listing, lookup and ``POST /api/callers``
live in ``ivr.web.api``).

Registered by ``add_callers_routes`` after ``ivr.web.api.setup``, through
``ivr.web.auth.add_route`` and documented in the OpenAPI document, like the
agenda and roster routes.

The import takes the same CSV file as ``ivr callers import`` (rules and
messages in ``ivr.directory_import``), either as the request body
(``Content-Type: text/csv``) or as the ``file`` field of a
``multipart/form-data`` form. The body is read in chunks and refused with 413
as soon as it passes ``MAX_UPLOAD_BYTES``, so an oversized upload is never
held in memory whole. Good rows go in together in one transaction; rejected
rows come back with their line and reason::

    {"source": "callers.csv", "encoding": "utf-8", "rows": 3, "imported": 2,
     "offices_created": ["Dinas Kesehatan"], "warnings": [],
     "rejected": [{"line": 4, "name": "Joko", "reason": "Nomor telepon tidak valid: ..."}]}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import BodyPartReader, web
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from ivr import directory_import
from ivr.directory_import import CallerDraft, CallerImportError, ImportReport, NumberEntry
from ivr.storage.models import Caller, CallerNumber, Office
from ivr.web import RUNTIME, WebRuntime, validation
from ivr.web.api import (
    _caller_body,
    _int_id,
    _optional_text,
    _raise_if_taken,
    _reject_unknown,
    numbers_in_use_of,
    read_json,
)
from ivr.web.auth import Access, identity
from ivr.web.errors import ApiError, Conflict, Invalid, NotFound
from ivr.web.openapi import JSON, _path_param, add_documented_routes, error, json_content, ref

log = logging.getLogger("ivr.web.callers")

WRITE: Final = Access(permission="callers.write")
#: A directory of a few thousand officers is a few hundred kilobytes; a bigger
#: upload is the wrong file, and it is refused before it is held in memory.
MAX_UPLOAD_BYTES: Final = 2 * 1024 * 1024
_CHUNK_BYTES: Final = 64 * 1024
_UPLOAD_FIELD: Final = "file"

_PATCH_FIELDS: Final = ("name", "office", "office_kind", "office_id", "role", "numbers", "pin", "active")


# -- edit and delete ------------------------------------------------------------------


async def _load_caller(session: AsyncSession, caller_id: int, *, for_update: bool = False) -> Caller:
    query = (
        select(Caller).options(selectinload(Caller.numbers), selectinload(Caller.office)).where(Caller.id == caller_id)
    )
    caller = await session.scalar(query.with_for_update() if for_update else query)
    if caller is None:
        raise NotFound("No such caller")
    return caller


def _patched_draft(body: Mapping[str, Any], caller: Caller) -> CallerDraft:
    """The entry as it would be after the patch, checked by the same rules as a
    new one (``directory_import.check_caller``). Fields not in the body keep
    their value; the office only counts when it changes."""
    errors: dict[str, str] = {}
    name = _optional_text(body, "name", errors) if "name" in body else caller.name
    role = _optional_text(body, "role", errors) if "role" in body else caller.role
    office = _optional_text(body, "office", errors)
    office_kind = _optional_text(body, "office_kind", errors)
    office_id = validation.id_value(body, "office_id", errors)
    if office_id is not None and office:
        errors["office"] = "Isi office atau office_id, bukan keduanya / Give office or office_id, not both"
    pin = body.get("pin")
    if pin is not None and not isinstance(pin, str):
        errors["pin"] = "PIN harus teks berisi angka / PIN must be a string of digits"
        pin = None
    numbers = body.get("numbers") if "numbers" in body else [n.raw for n in caller.numbers]
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        errors["numbers"] = "Harus daftar teks / Must be a list of strings"
        numbers = []
    if "active" in body and not isinstance(body["active"], bool):
        errors["active"] = "true/false"
    draft, field_errors = directory_import.check_caller(
        name=name or "", office=office, office_kind=office_kind, role=role, numbers=numbers, pin=pin
    )
    errors = {**field_errors, **errors}
    if errors or draft is None:
        raise Invalid(errors)
    return draft


def _replace_numbers(caller: Caller, entries: tuple[NumberEntry, ...]) -> None:
    """Keep the rows of numbers that stay (a delete and an insert of the same
    number in one flush would trip the unique index: inserts go first)."""
    existing = {number.e164: number for number in caller.numbers}
    kept: list[CallerNumber] = []
    for entry in entries:
        row = existing.get(entry.e164)
        if row is None:
            row = CallerNumber(raw=entry.raw, e164=entry.e164)
        else:
            row.raw = entry.raw
        kept.append(row)
    caller.numbers = kept


async def _office_for(session: AsyncSession, body: Mapping[str, Any], draft: CallerDraft) -> Office | None:
    office_id = body.get("office_id")
    if office_id is not None:
        office = await session.get(Office, office_id)
        if office is None:
            raise Invalid({"office_id": "Instansi tidak ditemukan / No such office"})
        return office
    if draft.office:
        book = await directory_import.OfficeBook.load(session)
        return book.get_or_create(draft.office, draft.office_kind)
    return None  # "office": null or "" clears it


async def patch_caller(request: web.Request) -> web.Response:
    caller_id = _int_id(request, "caller")
    body = await read_json(request)
    _reject_unknown(body, _PATCH_FIELDS)
    if not body:
        raise Invalid({"name": "Tidak ada yang diubah / Nothing to change"}, "Give at least one field to change")
    runtime = request.app[RUNTIME]
    async with runtime.sessions() as session:
        draft = _patched_draft(body, await _load_caller(session, caller_id))
    # Hash a new PIN before the transaction: it takes tens of milliseconds.
    pin_hash = await directory_import.hash_pin(draft.pin) if draft.pin else None
    try:
        async with runtime.sessions.begin() as session:
            caller = await _load_caller(session, caller_id, for_update=True)
            own = {number.e164 for number in caller.numbers}
            taken = await numbers_in_use_of(session, draft)
            _raise_if_taken({e164: found for e164, found in taken.items() if e164 not in own})
            caller.name, caller.role = draft.name, draft.role
            if "office" in body or "office_id" in body:
                caller.office = await _office_for(session, body, draft)
            if "pin" in body:
                caller.pin_hash = pin_hash
            if "active" in body:
                caller.active = body["active"]
            _replace_numbers(caller, draft.numbers)
            await session.flush()
            office = caller.office
    except IntegrityError:
        raise Conflict("Nomor sudah terdaftar / A number is already registered") from None
    runtime.services.directory.forget()  # calls from old and new numbers are looked up again
    log.info("caller %s updated by %s: %s", caller_id, identity(request).name, ", ".join(sorted(body)))
    return web.json_response(_caller_body(caller, office, runtime.settings.zone))


async def delete_caller(request: web.Request) -> web.Response:
    caller_id = _int_id(request, "caller")
    runtime = request.app[RUNTIME]
    # Numbers go with the entry (ON DELETE CASCADE); calls and tickets keep the
    # number they were made from and lose only the link (ON DELETE SET NULL).
    async with runtime.sessions.begin() as session:
        deleted = await session.execute(delete(Caller).where(Caller.id == caller_id))
        if deleted.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("No such caller")
    runtime.services.directory.forget()
    log.info("caller %s deleted by %s", caller_id, identity(request).name)
    return web.Response(status=204)


# -- CSV import -----------------------------------------------------------------------


def _too_large() -> ApiError:
    megabytes = MAX_UPLOAD_BYTES // (1024 * 1024)
    return ApiError(
        413,
        f"Berkas terlalu besar: maks. {megabytes} MB / File too large: at most {megabytes} MB",
        code="payload_too_large",
    )


async def _read_limited(read_chunk: Any) -> bytes:
    """Chunks from ``read_chunk()`` until it gives ``b""``; 413 past the limit."""
    received = bytearray()
    while chunk := await read_chunk():
        received += chunk
        if len(received) > MAX_UPLOAD_BYTES:
            raise _too_large()
    return bytes(received)


async def _upload(request: web.Request) -> tuple[bytes, str]:
    """The uploaded file and its name, from a CSV body or a multipart form."""
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES + _CHUNK_BYTES:
        raise _too_large()  # said to be too big: refused before reading a byte
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name == _UPLOAD_FIELD:
                data = await _read_limited(lambda: part.read_chunk(_CHUNK_BYTES))
                return data, part.filename or "upload.csv"
        raise Invalid({_UPLOAD_FIELD: "Pilih berkas CSV / Choose a CSV file"}, "No file field in the form")
    if request.content_type in ("text/csv", "text/plain", "application/octet-stream"):
        return await _read_limited(lambda: request.content.read(_CHUNK_BYTES)), "upload.csv"
    raise ApiError(
        415, "Kirim berkas CSV (text/csv atau multipart/form-data) / Send a CSV file (text/csv or multipart/form-data)"
    )


def _report_body(report: ImportReport) -> dict[str, Any]:
    return {
        "source": report.source,
        "encoding": report.encoding,
        "rows": report.rows,
        "imported": report.imported,
        "offices_created": report.offices_created,
        "warnings": report.warnings,
        "rejected": [{"line": row.line, "name": row.name, "reason": row.reason} for row in report.rejected],
    }


async def import_callers(request: web.Request) -> web.Response:
    data, filename = await _upload(request)
    if not data:
        raise Invalid({_UPLOAD_FIELD: "Berkas kosong / The file is empty"})
    runtime: WebRuntime = request.app[RUNTIME]
    try:
        report = await directory_import.import_callers(runtime.sessions, data, source=filename[:200])
    except CallerImportError as exc:
        raise Invalid({_UPLOAD_FIELD: str(exc)}, "Berkas tidak dapat diimpor / The file cannot be imported") from None
    except IntegrityError:
        # A number registered between the import's check and its insert: the
        # transaction rolled back whole, nothing was imported.
        raise Conflict("Nomor didaftarkan bersamaan; ulangi impor / A number was registered meanwhile; retry") from None
    if report.imported:
        runtime.services.directory.forget()
    log.info(
        "caller import by %s: %d rows, %d imported, %d rejected",
        identity(request).name,
        report.rows,
        report.imported,
        len(report.rejected),
    )
    return web.json_response(_report_body(report))


# -- registration and the OpenAPI document ------------------------------------------

ROUTES: Final = (
    ("PATCH", "/api/callers/{id}", patch_caller, WRITE),
    ("DELETE", "/api/callers/{id}", delete_caller, WRITE),
    ("POST", "/api/callers/import", import_callers, WRITE),
)


def add_callers_routes(app: web.Application) -> None:
    """Register the directory's write routes (after ``ivr.web.api.setup``) and document them."""
    add_documented_routes(app, ROUTES, _OPERATIONS, _SCHEMAS)


_CALLER_ID: Final = _path_param("id", "caller id", {"type": "integer"})

_SCHEMAS: Final[dict[str, Any]] = {
    "CallerPatch": {
        "type": "object",
        "additionalProperties": False,
        "description": "only the fields given change; same rules as CallerCreate",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": directory_import.MAX_NAME},
            "office": {
                "type": ["string", "null"],
                "description": "office name (created if new); null or empty: no office",
            },
            "office_kind": {"type": "string", "examples": ["opd", "kecamatan", "kelurahan"]},
            "office_id": {"type": "integer"},
            "role": {"type": "string", "maxLength": directory_import.MAX_ROLE},
            "numbers": {
                "type": "array",
                "minItems": 1,
                "maxItems": directory_import.MAX_NUMBERS,
                "items": {"type": "string"},
                "description": "replaces the list",
            },
            "pin": {
                "type": ["string", "null"],
                "pattern": "^[0-9]{4,8}$",
                "writeOnly": True,
                "description": "null removes the PIN",
            },
            "active": {"type": "boolean", "description": "inactive entries are not recognised on calls"},
        },
    },
    "CallerImportReport": {
        "type": "object",
        "properties": {
            "source": {"type": "string", "description": "the uploaded file's name"},
            "encoding": {"enum": ["utf-8", "utf-8-sig", "cp1252"]},
            "rows": {"type": "integer", "description": "non-blank rows under the header"},
            "imported": {"type": "integer"},
            "offices_created": {"type": "array", "items": {"type": "string"}},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "line": {"type": "integer", "description": "line in the file where the row starts"},
                        "name": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    },
}

_OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("PATCH", "/api/callers/{id}"): {
        "summary": "Change a directory entry",
        "parameters": [_CALLER_ID],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("CallerPatch")}}},
        "responses": {
            "200": json_content(ref("Caller"), "the updated entry"),
            "400": error("malformed JSON"),
            "404": error("no such caller"),
            "409": error("a number is registered to someone else"),
            "413": error("body too large"),
            "415": error("not JSON"),
            "422": error("invalid fields, one message per field"),
        },
    },
    ("DELETE", "/api/callers/{id}"): {
        "summary": "Remove a directory entry (its calls and tickets keep the number)",
        "parameters": [_CALLER_ID],
        "responses": {"204": {"description": "deleted"}, "404": error("no such caller")},
    },
    ("POST", "/api/callers/import"): {
        "summary": "Import a directory CSV (the columns of `ivr callers import`)",
        "description": (
            "Header `name,office,office_kind,role,numbers,pin`; only name and numbers are required; "
            "numbers separated by `;`. UTF-8 (with or without BOM) or Windows-1252. Good rows are "
            "imported together in one transaction; rejected rows are listed with line and reason. "
            f"At most {MAX_UPLOAD_BYTES} bytes."
        ),
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [_UPLOAD_FIELD],
                        "properties": {_UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                    }
                },
            },
        },
        "responses": {
            "200": json_content(ref("CallerImportReport"), "the report (rows may have been rejected)"),
            "409": error("a number was registered during the import; nothing was imported"),
            "413": error("file too large"),
            "415": error("neither text/csv nor multipart/form-data"),
            "422": error("the file cannot be imported as a whole (encoding, columns); nothing was imported"),
        },
    },
}

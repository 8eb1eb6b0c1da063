"""``/api/reports``: the daily and monthly reports (``ivr.reports``) as JSON and CSV.

* ``GET /api/reports/daily?date=YYYY-MM-DD`` (default today, in the configured zone)
* ``GET /api/reports/monthly?month=YYYY-MM`` (default this month)
* ``GET /api/reports/daily.csv`` and ``/api/reports/monthly.csv``: the same
  report as a CSV download, for spreadsheets.

The CSV is the "format pelaporan" staff file or print: sections one after the
other (title row, header row, rows, a blank row), UTF-8 with a byte order mark
so that Excel reads it as UTF-8, times in the office's zone without offset (as
spreadsheets read them) and whole seconds (a decimal point means something else
in an Indonesian spreadsheet). Text that comes from data (office and caller
names, numbers, staff names) could be a formula to a spreadsheet: a cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
leading apostrophe, so it is shown as text and never evaluated.

Registered by ``add_reports_routes`` after ``ivr.web.api.setup``, documented in
the OpenAPI document like the agenda and roster routes; every identity with
"read" may fetch them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web

from ivr import reports, tickets
from ivr.reports import Period, Report
from ivr.web import RUNTIME
from ivr.web.api import READ, _iso
from ivr.web.errors import ApiError
from ivr.web.openapi import _query, add_documented_routes, error, json_content, nullable, ref

CSV_TYPE: Final = "text/csv"
BOM: Final = "\ufeff"
#: Leading characters that make a spreadsheet evaluate a cell (OWASP "CSV injection").
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
KIND_TITLES: Final = {"day": "Laporan Harian", "month": "Laporan Bulanan"}
FILE_PREFIXES: Final = {"day": "laporan-harian", "month": "laporan-bulanan"}


def _today(zone: ZoneInfo) -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone(zone).date()


def requested_period(request: web.Request, kind: str) -> Period:
    """The period a request names (``date`` or ``month``), default today or
    this month; a bad value is a 400 with the reason in Indonesian."""
    zone = request.app[RUNTIME].settings.zone
    name = "date" if kind == "day" else "month"
    raw = request.query.get(name, "").strip()
    try:
        if kind == "day":
            return reports.parse_day(raw, zone) if raw else Period.day(_today(zone), zone)
        if raw:
            return reports.parse_month(raw, zone)
        today = _today(zone)
        return Period.month(today.year, today.month, zone)
    except reports.BadPeriod as exc:
        raise ApiError(400, str(exc), code="invalid_period", fields={name: str(exc)}) from None


async def load_report(request: web.Request, period: Period) -> Report:
    async with request.app[RUNTIME].sessions() as session:
        return await reports.build_report(session, period)


# -- JSON ----------------------------------------------------------------------------


def _count(count: reports.Count, name: str) -> dict[str, Any]:
    return {name: count.key, "label": count.label, "count": count.count}


def _seconds(summary: reports.Seconds) -> dict[str, Any]:
    return {"count": summary.count, "average": summary.average, "max": summary.longest}


def report_body(report: Report) -> dict[str, Any]:
    period = report.period
    zone = period.zone
    totals = report.totals
    em = report.emergencies
    return {
        "period": {
            "kind": period.kind,
            "key": period.key,
            "label": period.label,
            "first_day": period.first_day.isoformat(),
            "last_day": period.last_day.isoformat(),
            "from": _iso(period.start, zone),
            "to": _iso(period.end, zone),
            "zone": str(zone),
        },
        "generated_at": _iso(report.generated_at, zone),
        "totals": {
            "calls": totals.calls,
            "registered_calls": totals.registered_calls,
            "distinct_numbers": totals.distinct_numbers,
            "average_duration_seconds": totals.average_duration_seconds,
            "requests": totals.requests,
            "incomplete_requests": totals.incomplete_requests,
            "emergencies": totals.emergencies,
            "emergencies_unanswered": totals.emergencies_unanswered,
            "busiest_hour": totals.busiest_hour,
        },
        "calls_by_outcome": [_count(c, "outcome") for c in report.calls_by_outcome],
        "calls_by_hour": [{"hour": h.hour, "count": h.count} for h in report.calls_by_hour],
        "calls_by_day": [{"date": d.day.isoformat(), "count": d.count} for d in report.calls_by_day],
        "abandoned_at": [_count(c, "step") for c in report.abandoned_at],
        "requests_by_office": [
            {
                "office_id": r.office_id,
                "office": r.office,
                **r.by_kind,
                "total": r.total,
                "incomplete": r.incomplete,
            }
            for r in report.requests_by_office
        ],
        "busiest_offices": [
            {
                "office_id": o.office_id,
                "office": o.office,
                "calls": o.calls,
                "requests": o.requests,
                "emergencies": o.emergencies,
            }
            for o in report.busiest_offices
        ],
        "emergencies": {
            "total": em.total,
            "by_result": [_count(c, "result") for c in em.by_result],
            "answered": _seconds(em.answered),
            "alarms": em.alarms,
            "acknowledged": _seconds(em.acknowledged),
            "not_acknowledged": em.not_acknowledged,
            "time_to_answer": [
                {
                    "label": c.label,
                    "upto_seconds": c.upto_seconds,
                    "answered": c.answered,
                    "acknowledged": c.acknowledged,
                }
                for c in em.answer_classes
            ],
            "unanswered": [
                {
                    "ticket": e.ticket,
                    "at": _iso(e.at, zone),
                    "office": e.office,
                    "caller": e.caller,
                    "caller_number": e.caller_number,
                    "result": e.result,
                    "result_label": e.result_label,
                    "alarm_state": e.alarm_state,
                    "alarm_raised_at": _iso(e.alarm_raised_at, zone),
                    "acknowledged_at": _iso(e.acknowledged_at, zone),
                    "acknowledged_by": e.acknowledged_by,
                    "acknowledge_seconds": e.acknowledge_seconds,
                }
                for e in em.unanswered
            ],
            "unanswered_truncated": em.unanswered_truncated,
        },
    }


async def daily_report(request: web.Request) -> web.Response:
    return web.json_response(report_body(await load_report(request, requested_period(request, "day"))))


async def monthly_report(request: web.Request) -> web.Response:
    return web.json_response(report_body(await load_report(request, requested_period(request, "month"))))


# -- CSV -------------------------------------------------------------------------------


def safe_cell(value: Any) -> Any:
    """A cell as written: text that a spreadsheet would run as a formula gets
    a leading apostrophe; numbers and other text are kept."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _local(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _whole(seconds: float | None) -> int | str:
    return "" if seconds is None else round(seconds)


def _office(name: str | None) -> str:
    return name if name is not None else "(penelepon tidak terdaftar)"


def _section(title: str, header: list[str], rows: Iterable[list[Any]]) -> Iterator[list[Any]]:
    yield [title]
    yield header
    yield from rows
    yield []


def report_rows(report: Report) -> Iterator[list[Any]]:
    """The report as CSV rows (cells not yet made safe)."""
    period = report.period
    zone = period.zone
    totals = report.totals
    em = report.emergencies
    yield [f"{KIND_TITLES[period.kind]} Call Center Protokol"]
    yield ["Periode", period.label]
    yield ["Zona waktu", str(zone)]
    yield ["Dibuat", _local(report.generated_at, zone)]
    yield []
    yield from _section(
        "Ringkasan",
        ["Uraian", "Jumlah"],
        [
            ["Panggilan masuk", totals.calls],
            ["Dari penelepon terdaftar", totals.registered_calls],
            ["Nomor penelepon berbeda", totals.distinct_numbers],
            ["Rata-rata durasi panggilan (detik)", _whole(totals.average_duration_seconds)],
            ["Permohonan, notifikasi, perubahan jadwal", totals.requests],
            ["Pengajuan tidak selesai (penelepon menutup)", totals.incomplete_requests],
            ["Panggilan darurat", totals.emergencies],
            ["Darurat tidak terjawab langsung", totals.emergencies_unanswered],
            ["Jam tersibuk", totals.busiest_hour_label or ""],
        ],
    )
    yield from _section(
        "Panggilan per hasil",
        ["Hasil", "Kode", "Jumlah"],
        ([c.label, c.key, c.count] for c in report.calls_by_outcome),
    )
    yield from _section("Panggilan per jam", ["Jam", "Jumlah"], ([h.label, h.count] for h in report.calls_by_hour))
    if period.kind == "month":
        yield from _section(
            "Panggilan per hari", ["Tanggal", "Jumlah"], ([d.day.isoformat(), d.count] for d in report.calls_by_day)
        )
    yield from _section(
        "Permohonan per OPD",
        ["OPD", *(tickets.KINDS[k] for k in reports.REQUEST_KINDS), "Jumlah", "Tidak selesai"],
        (
            [_office(r.office), *(r.by_kind[k] for k in reports.REQUEST_KINDS), r.total, r.incomplete]
            for r in report.requests_by_office
        ),
    )
    yield from _section(
        "OPD tersibuk",
        ["OPD", "Panggilan", "Permohonan", "Darurat"],
        ([o.office, o.calls, o.requests, o.emergencies] for o in report.busiest_offices),
    )
    yield from _section(
        "Ditutup penelepon per langkah", ["Langkah", "Jumlah"], ([c.label, c.count] for c in report.abandoned_at)
    )
    yield from _section(
        "Darurat",
        ["Uraian", "Jumlah", "Rata-rata (detik)", "Terlama (detik)"],
        [
            *([c.label, c.count, "", ""] for c in em.by_result),
            [
                "Waktu tanggap petugas (terjawab langsung)",
                em.answered.count,
                _whole(em.answered.average),
                _whole(em.answered.longest),
            ],
            ["Alarm dinaikkan", em.alarms, "", ""],
            [
                "Alarm dikonfirmasi (sejak alarm)",
                em.acknowledged.count,
                _whole(em.acknowledged.average),
                _whole(em.acknowledged.longest),
            ],
            ["Alarm belum dikonfirmasi", em.not_acknowledged, "", ""],
        ],
    )
    yield from _section(
        "Darurat: waktu tanggap",
        ["Waktu", "Terjawab langsung", "Alarm dikonfirmasi"],
        ([c.label, c.answered, c.acknowledged] for c in em.answer_classes),
    )
    title = "Darurat tidak terjawab" + (
        f" ({reports.MAX_LISTED_EMERGENCIES} pertama dari {totals.emergencies_unanswered})"
        if em.unanswered_truncated
        else ""
    )
    yield from _section(
        title,
        [
            "Waktu",
            "Tiket",
            "OPD",
            "Penelepon",
            "Nomor",
            "Keterangan",
            "Status alarm",
            "Alarm dinaikkan",
            "Dikonfirmasi",
            "Oleh",
            "Waktu konfirmasi (detik)",
        ],
        (
            [
                _local(e.at, zone),
                e.ticket or "",
                _office(e.office),
                e.caller or "",
                e.caller_number,
                e.result_label,
                reports.ALARM_LABELS.get(e.alarm_state, e.alarm_state) if e.alarm_state else "tidak ada alarm",
                _local(e.alarm_raised_at, zone),
                _local(e.acknowledged_at, zone),
                e.acknowledged_by or "",
                _whole(e.acknowledge_seconds),
            ]
            for e in em.unanswered
        ),
    )


def report_csv(report: Report) -> bytes:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    for row in report_rows(report):
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue().encode("utf-8")


def csv_response(report: Report) -> web.Response:
    period = report.period
    filename = f"{FILE_PREFIXES[period.kind]}-{period.key}.csv"
    return web.Response(
        body=report_csv(report),
        content_type=CSV_TYPE,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def daily_report_csv(request: web.Request) -> web.Response:
    return csv_response(await load_report(request, requested_period(request, "day")))


async def monthly_report_csv(request: web.Request) -> web.Response:
    return csv_response(await load_report(request, requested_period(request, "month")))


# -- registration and the OpenAPI document ---------------------------------------------------

ROUTES: Final = (
    ("GET", "/api/reports/daily", daily_report, READ),
    ("GET", "/api/reports/monthly", monthly_report, READ),
    ("GET", "/api/reports/daily.csv", daily_report_csv, READ),
    ("GET", "/api/reports/monthly.csv", monthly_report_csv, READ),
)


def add_reports_routes(app: web.Application) -> None:
    """Register the report routes (after ``ivr.web.api.setup``) and document them."""
    add_documented_routes(app, ROUTES, _OPERATIONS, _SCHEMAS)


_DATE_PARAM: Final = _query(
    "date", "the day, YYYY-MM-DD (default: today in the configured zone)", {"type": "string", "format": "date"}
)
_MONTH_PARAM: Final = _query(
    "month",
    "the month, YYYY-MM (default: this month in the configured zone)",
    {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "examples": ["2026-12"]},
)
_INT: Final = {"type": "integer", "minimum": 0}
_SECONDS: Final = {
    "type": "object",
    "properties": {"count": _INT, "average": nullable({"type": "number"}), "max": nullable({"type": "number"})},
}


def _counted(name: str) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {name: {"type": "string"}, "label": {"type": "string"}, "count": _INT},
        },
    }


_SCHEMAS: Final[dict[str, Any]] = {
    "Report": {
        "type": "object",
        "description": (
            "Counts for whole local days (midnight to midnight in the configured zone). Calls are the "
            "incoming ones (flows main and emergency); requests are tickets of kind request, notification "
            "and schedule_change (incomplete: the caller hung up before confirming)."
        ),
        "properties": {
            "period": {
                "type": "object",
                "properties": {
                    "kind": {"enum": ["day", "month"]},
                    "key": {"type": "string", "examples": ["2026-12-03", "2026-12"]},
                    "label": {"type": "string", "examples": ["Kamis, 3 Desember 2026"]},
                    "first_day": {"type": "string", "format": "date"},
                    "last_day": {"type": "string", "format": "date"},
                    "from": {"type": "string", "format": "date-time"},
                    "to": {"type": "string", "format": "date-time", "description": "exclusive"},
                    "zone": {"type": "string", "examples": ["Asia/Jakarta"]},
                },
            },
            "generated_at": {"type": "string", "format": "date-time"},
            "totals": {
                "type": "object",
                "properties": {
                    "calls": _INT,
                    "registered_calls": _INT,
                    "distinct_numbers": _INT,
                    "average_duration_seconds": nullable({"type": "number"}),
                    "requests": _INT,
                    "incomplete_requests": _INT,
                    "emergencies": _INT,
                    "emergencies_unanswered": _INT,
                    "busiest_hour": nullable({"type": "integer", "minimum": 0, "maximum": 23}),
                },
            },
            "calls_by_outcome": _counted("outcome"),
            "calls_by_hour": {
                "type": "array",
                "description": "24 entries, local hour of day",
                "items": {"type": "object", "properties": {"hour": _INT, "count": _INT}},
            },
            "calls_by_day": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"date": {"type": "string", "format": "date"}, "count": _INT},
                },
            },
            "abandoned_at": _counted("step"),
            "requests_by_office": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "office_id": nullable({"type": "integer"}),
                        "office": nullable({"type": "string", "description": "null: unregistered callers"}),
                        **{kind: _INT for kind in reports.REQUEST_KINDS},
                        "total": _INT,
                        "incomplete": _INT,
                    },
                },
            },
            "busiest_offices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "office_id": {"type": "integer"},
                        "office": {"type": "string"},
                        "calls": _INT,
                        "requests": _INT,
                        "emergencies": _INT,
                    },
                },
            },
            "emergencies": ref("ReportEmergencies"),
        },
    },
    "ReportEmergencies": {
        "type": "object",
        "properties": {
            "total": _INT,
            "by_result": _counted("result"),
            "answered": {**_SECONDS, "description": "from the start of routing to the officer's 1"},
            "alarms": _INT,
            "acknowledged": {**_SECONDS, "description": "from the alarm to its acknowledgement"},
            "not_acknowledged": _INT,
            "time_to_answer": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string"},
                        "upto_seconds": nullable({"type": "integer"}),
                        "answered": _INT,
                        "acknowledged": _INT,
                    },
                },
            },
            "unanswered": {
                "type": "array",
                "description": f"at most {reports.MAX_LISTED_EMERGENCIES}, oldest first",
                "items": {
                    "type": "object",
                    "properties": {
                        "ticket": nullable({"type": "string"}),
                        "at": {"type": "string", "format": "date-time"},
                        "office": nullable({"type": "string"}),
                        "caller": nullable({"type": "string"}),
                        "caller_number": {"type": "string"},
                        "result": {"enum": [*reports.EMERGENCY_RESULTS, "other"]},
                        "result_label": {"type": "string"},
                        "alarm_state": nullable({"enum": list(reports.ALARM_LABELS)}),
                        "alarm_raised_at": nullable({"type": "string", "format": "date-time"}),
                        "acknowledged_at": nullable({"type": "string", "format": "date-time"}),
                        "acknowledged_by": nullable({"type": "string"}),
                        "acknowledge_seconds": nullable({"type": "number"}),
                    },
                },
            },
            "unanswered_truncated": {"type": "boolean"},
        },
    },
}

_CSV_CONTENT: Final = {
    "description": "the report as a CSV download (UTF-8 with BOM; Content-Disposition: attachment)",
    "content": {CSV_TYPE: {"schema": {"type": "string"}}},
}
_BAD_PERIOD: Final = error("a malformed or out-of-range date or month (message in Indonesian)")

_OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/api/reports/daily"): {
        "summary": "The daily report: calls by outcome and hour, requests by office, emergencies",
        "parameters": [_DATE_PARAM],
        "responses": {"200": json_content(ref("Report"), "the report"), "400": _BAD_PERIOD},
    },
    ("GET", "/api/reports/monthly"): {
        "summary": "The monthly report (also calls per day)",
        "parameters": [_MONTH_PARAM],
        "responses": {"200": json_content(ref("Report"), "the report"), "400": _BAD_PERIOD},
    },
    ("GET", "/api/reports/daily.csv"): {
        "summary": "The daily report as CSV",
        "parameters": [_DATE_PARAM],
        "responses": {"200": _CSV_CONTENT, "400": _BAD_PERIOD},
    },
    ("GET", "/api/reports/monthly.csv"): {
        "summary": "The monthly report as CSV",
        "parameters": [_MONTH_PARAM],
        "responses": {"200": _CSV_CONTENT, "400": _BAD_PERIOD},
    },
}

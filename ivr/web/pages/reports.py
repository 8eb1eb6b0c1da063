"""``/reports``: the daily or monthly report with charts, tables and a CSV link.

``?date=YYYY-MM-DD`` shows a day, ``?month=YYYY-MM`` a month (nothing: today).
The figures come from ``ivr.reports`` like ``GET /api/reports/...``; the CSV
link is that API's download, so the page offers nothing the API lacks.

Charts are inline SVG drawn on the server: this module lays the bars out
(``Chart``), ``templates/reports_charts.html`` writes them. Every chart has a
``<title>`` and ``<desc>`` and every bar a ``<title>`` and its number, and a
table beside it holds the same figures, so nothing needs a script or a colour
to be read. ``static/reports.css`` fits the page to A4 when printed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from ivr import reports, tickets
from ivr.reports import Period, Report
from ivr.web import RUNTIME
from ivr.web.api import READ
from ivr.web.auth import add_route
from ivr.web.pages.display import BULAN, tanggal
from ivr.web.reports_api import FILE_PREFIXES, KIND_TITLES, load_report

#: Chart geometry (SVG user units; the SVG scales to its box).
WIDTH: Final = 720
COLUMN_HEIGHT: Final = 220
ROW_HEIGHT: Final = 22
LABEL_WIDTH: Final = 230
#: Room for the numbers written above or after the bars.
VALUE_ROOM: Final = 40
AXIS_ROOM: Final = 22
#: Longer axis labels are cut (the bar's title and the table keep the whole text).
MAX_LABEL: Final = 34
#: The chart of requests shows the busiest offices; the table lists them all.
CHART_OFFICES: Final = 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    series: int
    #: The category (an hour, a day, an office) as the axis shows it.
    label: str
    #: What a screen reader or a hover says: "09.00-09.59: 3 panggilan".
    title: str
    value_x: float
    value_y: float


@dataclass(frozen=True)
class AxisLabel:
    x: float
    y: float
    text: str
    anchor: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    width: int
    height: int
    bars: list[Bar]
    labels: list[AxisLabel]
    #: Series names for the legend (one series: no legend).
    series: list[str]
    #: The baseline the bars stand on: (x1, y1, x2, y2).
    axis: tuple[float, float, float, float]
    horizontal: bool


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _describe(title: str, total: int, unit: str, peak: tuple[str, int] | None) -> str:
    if total == 0:
        return f"{title}: tidak ada data pada periode ini."
    text = f"{title}: jumlah {total} {unit}"
    if peak is not None:
        text += f"; terbanyak {peak[1]} pada {peak[0]}"
    return text + "."


def column_chart(chart_id: str, title: str, items: Sequence[tuple[str, str, int]], unit: str) -> Chart:
    """Vertical bars, one per item ``(axis label, full label, value)``, in order."""
    top, bottom = VALUE_ROOM / 2, COLUMN_HEIGHT - AXIS_ROOM
    left, right = 8.0, WIDTH - 8.0
    slot = (right - left) / max(len(items), 1)
    peak = max((value for _, _, value in items), default=0)
    scale = (bottom - top) / peak if peak else 0.0
    bars, labels = [], []
    for index, (axis_label, full_label, value) in enumerate(items):
        height = value * scale
        x = left + index * slot + slot * 0.15
        bars.append(
            Bar(
                x=round(x, 2),
                y=round(bottom - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
                value=value,
                series=0,
                label=axis_label,
                title=f"{full_label}: {value} {unit}",
                value_x=round(x + slot * 0.35, 2),
                value_y=round(bottom - height - 4, 2),
            )
        )
        labels.append(AxisLabel(round(x + slot * 0.35, 2), bottom + 15, axis_label, "middle"))
    busiest = max(items, key=lambda item: item[2]) if peak else None
    return Chart(
        id=chart_id,
        title=title,
        description=_describe(title, sum(v for _, _, v in items), unit, (busiest[1], busiest[2]) if busiest else None),
        width=WIDTH,
        height=COLUMN_HEIGHT,
        bars=bars,
        labels=labels,
        series=[],
        axis=(left, bottom, right, bottom),
        horizontal=False,
    )


def bar_chart(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, Sequence[int]]],
    unit: str,
    series: Sequence[str] = (),
) -> Chart:
    """Horizontal bars: a row per ``(label, values)``, one bar per series in each row."""
    per_row = max(len(series), 1)
    row_height = ROW_HEIGHT * per_row + 8
    left, right = float(LABEL_WIDTH), WIDTH - VALUE_ROOM
    height = int(max(len(rows), 1) * row_height + 8)
    peak = max((value for _, values in rows for value in values), default=0)
    scale = (right - left) / peak if peak else 0.0
    bars, labels = [], []
    for row_index, (label, values) in enumerate(rows):
        row_top = 4 + row_index * row_height
        labels.append(AxisLabel(left - 8, row_top + row_height / 2 + 1, _cut(label), "end"))
        for series_index, value in enumerate(values):
            y = row_top + 4 + series_index * ROW_HEIGHT
            width = value * scale
            name = f" ({series[series_index]})" if series else ""
            bars.append(
                Bar(
                    x=left,
                    y=y,
                    width=round(width, 2),
                    height=ROW_HEIGHT - 4,
                    value=value,
                    series=series_index,
                    label=label,
                    title=f"{label}{name}: {value} {unit}",
                    value_x=round(left + width + 4, 2),
                    value_y=y + ROW_HEIGHT / 2 + 1,
                )
            )
    total = sum(value for _, values in rows for value in values)
    return Chart(
        id=chart_id,
        title=title,
        description=_describe(title, total, unit, None),
        width=WIDTH,
        height=height,
        bars=bars,
        labels=labels,
        series=list(series),
        axis=(left, 0, left, height),
        horizontal=True,
    )


# -- the page -----------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """ "45 detik", "1 menit 30 detik", "2 jam 5 menit"; "-" for none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} jam {minutes} menit" if minutes else f"{hours} jam"
    if minutes:
        return f"{minutes} menit {secs} detik" if secs else f"{minutes} menit"
    return f"{secs} detik"


def _when(value: dt.datetime | None, period: Period) -> str:
    """A time in the period's zone: "20.05" in a daily report, "3 Desember 20.05" in a monthly one."""
    if value is None:
        return "-"
    local = value.astimezone(period.zone)
    clock = local.strftime("%H.%M")
    return clock if period.kind == "day" else f"{local.day} {BULAN[local.month - 1]} {clock}"


def _charts(report: Report) -> dict[str, Chart]:
    period = report.period
    charts = {
        "hours": column_chart(
            "chart-hours",
            "Panggilan per jam",
            [(f"{h.hour:02d}", h.label, h.count) for h in report.calls_by_hour],
            "panggilan",
        ),
        "outcomes": bar_chart(
            "chart-outcomes",
            "Panggilan per hasil",
            [(c.label, [c.count]) for c in report.calls_by_outcome],
            "panggilan",
        ),
        "requests": bar_chart(
            "chart-requests",
            "Permohonan per OPD",
            [
                (r.office or "Penelepon tidak terdaftar", [r.by_kind[k] for k in reports.REQUEST_KINDS])
                for r in report.requests_by_office[:CHART_OFFICES]
            ],
            "pengajuan",
            [tickets.KINDS[k] for k in reports.REQUEST_KINDS],
        ),
        "emergencies": bar_chart(
            "chart-emergencies",
            "Darurat: waktu tanggap",
            [(c.label, [c.answered, c.acknowledged]) for c in report.emergencies.answer_classes],
            "kejadian",
            ["Terjawab langsung", "Alarm dikonfirmasi"],
        ),
    }
    if period.kind == "month":
        charts["days"] = column_chart(
            "chart-days",
            "Panggilan per hari",
            [(str(d.day.day), f"{d.day.day} {BULAN[d.day.month - 1]}", d.count) for d in report.calls_by_day],
            "panggilan",
        )
    return charts


def _csv_url(period: Period) -> str:
    if period.kind == "day":
        return f"/api/reports/daily.csv?date={period.key}"
    return f"/api/reports/monthly.csv?month={period.key}"


def _requested(request: web.Request) -> tuple[Period, str]:
    """The period asked for, or today and why the request's was refused."""
    zone = request.app[RUNTIME].settings.zone
    today = dt.datetime.now(dt.UTC).astimezone(zone).date()
    month = request.query.get("month", "").strip()
    day = request.query.get("date", "").strip()
    try:
        if month:
            return reports.parse_month(month, zone), ""
        if day:
            return reports.parse_day(day, zone), ""
    except reports.BadPeriod as exc:
        return Period.day(today, zone), str(exc)
    return Period.day(today, zone), ""


async def reports_page(request: web.Request) -> web.Response:
    period, problem = _requested(request)
    report = await load_report(request, period)
    em = report.emergencies
    context: dict[str, Any] = {
        "report": report,
        "period": period,
        "heading": KIND_TITLES[period.kind],
        "problem": problem,
        "charts": _charts(report),
        "hour_rows": [(h.label, h.count) for h in report.calls_by_hour if h.count],
        "day_rows": [(tanggal(d.day), d.count) for d in report.calls_by_day if d.count],
        "csv_url": _csv_url(period),
        "csv_name": f"{FILE_PREFIXES[period.kind]}-{period.key}.csv",
        "month_value": period.first_day.strftime("%Y-%m"),
        "request_kinds": [(k, tickets.KINDS[k]) for k in reports.REQUEST_KINDS],
        "alarm_labels": reports.ALARM_LABELS,
        "busiest_hour": report.totals.busiest_hour_label or "-",
        "average_duration": duration(report.totals.average_duration_seconds),
        "answered": {"average": duration(em.answered.average), "longest": duration(em.answered.longest)},
        "acknowledged": {"average": duration(em.acknowledged.average), "longest": duration(em.acknowledged.longest)},
        "duration": duration,
        "when": lambda value: _when(value, period),
    }
    return aiohttp_jinja2.render_template("reports.html", request, context, status=400 if problem else 200)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/reports", reports_page, READ)

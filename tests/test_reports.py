"""Reports ("format pelaporan"): exact figures on known data, on SQLite and on
PostgreSQL, the JSON and CSV answers of ``/api/reports``, and who may read them.

The data set is one Thursday (3 December 2026, WIB) with calls at the edges of
the local day and of the UTC day (00:00 WIB is 17:00 UTC the day before, 07:00
WIB is midnight UTC), plus calls just outside the day and the month, so any
bucketing in UTC instead of WIB changes the numbers.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web_fixtures import TestRuntime, api, bearer, tokens, web_runtime

from ivr import reports
from ivr.reports import Period
from ivr.storage.calls import CallSnapshot, save_call
from ivr.storage.models import Caller, CallerNumber, Office
from ivr.storage.roster_models import EmergencyAlarm

__all__ = ["api", "tokens", "web_runtime"]  # fixtures used by name

WIB = ZoneInfo("Asia/Jakarta")
THURSDAY = date(2026, 12, 3)
#: An office name that is a spreadsheet formula: the CSV must defuse it.
FORMULA_OFFICE = '=HYPERLINK("http://x","klik")'

Client = TestClient[Any, Any]


def wib(text: str) -> datetime:
    """ "2026-12-03 00:30" (or with seconds) as an aware WIB datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=WIB)


async def office_with_caller(sessions: async_sessionmaker[AsyncSession], name: str, e164: str) -> tuple[int, int]:
    async with sessions.begin() as session:
        office = Office(name=name, kind="opd")
        session.add(office)
        await session.flush()
        caller = Caller(name=f"Petugas {name[:20]}", office_id=office.id, role="Staf")
        caller.numbers = [CallerNumber(raw="0" + e164[3:], e164=e164)]
        session.add(caller)
        await session.flush()
        return office.id, caller.id


class Seeder:
    """Writes calls as the IVR does (``save_call``), one per ``call``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.count = 0

    async def call(
        self,
        at: datetime,
        outcome: str = "completed",
        *,
        who: tuple[int, int] | None = None,
        number: str | None = "+6289900000001",
        kind: str = "info",
        status: str = "open",
        step: str = "",
        seconds: float = 60,
        script: str = "main",
        emergency: dict[str, Any] | None = None,
    ) -> str:
        self.count += 1
        uniqueid = f"1764720000.{self.count}"
        office_id, caller_id = who if who else (None, None)
        snapshot = CallSnapshot(
            uniqueid=uniqueid,
            channel=f"PJSIP/trunk-{self.count:08d}",
            script=script,
            started_at=at.astimezone(UTC),
            caller_number=number.replace("+62", "0") if number else "",
            caller_e164=number,
            caller_id=caller_id,
            office_id=office_id,
            ended_at=(at + timedelta(seconds=seconds)).astimezone(UTC),
            outcome=outcome,
            outcome_step=step,
            ticket_kind=kind,
            ticket_status=status,
            ticket_priority="urgent" if kind == "emergency" else "normal",
            ticket_details={"emergency": emergency} if emergency is not None else {},
        )
        async with self.sessions.begin() as session:
            await session.run_sync(lambda sync_session: save_call(sync_session.connection(), snapshot))
        return uniqueid

    async def alarm(self, uniqueid: str, raised: datetime, acknowledged: datetime | None, state: str) -> None:
        async with self.sessions.begin() as session:
            session.add(
                EmergencyAlarm(
                    call_uniqueid=uniqueid,
                    raised_at=raised.astimezone(UTC),
                    acknowledged_at=acknowledged.astimezone(UTC) if acknowledged else None,
                    acknowledged_by="Budi (piket)" if acknowledged else "",
                    acknowledged_via="phone" if acknowledged else "",
                    state=state,
                )
            )


@pytest.fixture
async def seeded(web_runtime: TestRuntime) -> TestRuntime:
    """The known data set (see the module docstring); figures in the tests below."""
    sessions = web_runtime.sessions
    a = await office_with_caller(sessions, "Dinas Kesehatan", "+6281200000001")
    b = await office_with_caller(sessions, "Kecamatan Wiradesa", "+6281200000002")
    c = await office_with_caller(sessions, FORMULA_OFFICE, "+6281200000003")
    a_number, b_number, c_number = "+6281200000001", "+6281200000002", "+6281200000003"
    seed = Seeder(sessions)
    # Outside the day: the evening before, the first instant of the next day.
    await seed.call(wib("2026-12-02 23:59:59"), who=a, number=a_number)
    await seed.call(wib("2026-12-04 00:00:00"), who=a, number=a_number)
    # Outside the month: 30 November 23:59 WIB, and 1 January 00:10 WIB (still December in UTC).
    await seed.call(wib("2026-11-30 23:59:00"), who=a, number=a_number)
    await seed.call(wib("2027-01-01 00:10:00"), who=a, number=a_number)
    # An officer's screening leg is not a call in.
    await seed.call(wib("2026-12-03 10:00"), script="screen", who=b, number=b_number)

    # The day: 15 calls.
    await seed.call(wib("2026-12-03 00:00:00"), who=a, number=a_number)  # 17:00 UTC the day before
    await seed.call(wib("2026-12-03 00:30"), "abandoned", step="menu:main")
    await seed.call(wib("2026-12-03 06:59:59"), who=a, number=a_number, kind="request")  # 23:59:59 UTC
    await seed.call(wib("2026-12-03 07:00:00"), "transferred", who=b, number=b_number, seconds=120)  # 00:00 UTC
    await seed.call(wib("2026-12-03 09:15"), who=a, number=a_number, kind="request")
    await seed.call(
        wib("2026-12-03 09:40"),
        "abandoned",
        who=b,
        number=b_number,
        kind="request",
        status="abandoned-with-message",
        step="submit:record",
    )
    await seed.call(wib("2026-12-03 09:50"), who=a, number=a_number)
    await seed.call(wib("2026-12-03 10:05"), who=b, number=b_number, kind="notification")
    await seed.call(wib("2026-12-03 13:00"), kind="schedule_change")
    await seed.call(
        wib("2026-12-03 14:00"),
        "emergency-answered",
        script="emergency",
        who=a,
        number=a_number,
        kind="emergency",
        emergency={"result": "answered", "time_to_answer_seconds": 12.5, "accepted_by": "Budi"},
    )
    await seed.call(
        wib("2026-12-03 15:00"),
        "emergency-answered",
        script="emergency",
        who=b,
        number=b_number,
        kind="emergency",
        emergency={"result": "answered", "time_to_answer_seconds": 45.5},
    )
    await seed.call(
        wib("2026-12-03 16:00"),
        "abandoned",
        script="emergency",
        number=None,
        kind="emergency",
        step="emergency:escalation",
        emergency={"result": "abandoned during escalation"},
    )
    acknowledged = await seed.call(
        wib("2026-12-03 20:00"),
        "emergency-unanswered",
        script="emergency",
        who=a,
        number=a_number,
        kind="emergency",
        emergency={"result": "unanswered"},
    )
    # Exactly 60 s from alarm to acknowledgement: the "1-2 menit" class on both databases.
    await seed.alarm(acknowledged, wib("2026-12-03 20:02:00"), wib("2026-12-03 20:03:00"), "acknowledged")
    waiting = await seed.call(
        wib("2026-12-03 23:30"),
        "emergency-unanswered",
        script="emergency",
        who=c,
        number=c_number,
        kind="emergency",
        emergency={"result": "unanswered"},
    )
    await seed.alarm(waiting, wib("2026-12-03 23:31:00"), None, "exhausted")
    await seed.call(datetime(2026, 12, 3, 16, 59, 59, 999000, tzinfo=UTC))  # 23:59:59.999 WIB
    return web_runtime


async def _report(runtime: TestRuntime, period: Period) -> reports.Report:
    async with runtime.sessions() as session:
        return await reports.build_report(session, period)


# -- periods -----------------------------------------------------------------------


def test_a_day_is_local_midnight_to_midnight() -> None:
    day = Period.day(THURSDAY, WIB)
    assert day.start == datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
    assert day.end == datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
    assert len(day.hour_edges()) == 25
    assert day.label == "Kamis, 3 Desember 2026"


def test_hours_follow_daylight_saving_and_half_hour_offsets() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    autumn = Period.day(date(2026, 10, 25), berlin)  # clocks go back: 25 hours
    local_hours = [edge.astimezone(berlin).hour for edge in autumn.hour_edges()[:-1]]
    assert local_hours == [0, 1, 2, 2, *range(3, 24)]
    spring = Period.day(date(2026, 3, 29), berlin)  # clocks go forward: 23 hours
    assert [edge.astimezone(berlin).hour for edge in spring.hour_edges()[:-1]] == [0, 1, *range(3, 24)]
    india = ZoneInfo("Asia/Kolkata")
    edges = Period.day(THURSDAY, india).hour_edges()
    assert {edge.astimezone(india).minute for edge in edges} == {0}


def test_a_month_has_its_calendar_days() -> None:
    february = Period.month(2028, 2, WIB)
    assert february.days == 29
    assert february.end == datetime(2028, 2, 29, 17, 0, tzinfo=UTC)
    assert february.label == "Februari 2028"
    assert february.key == "2028-02"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2026-13-01", "Tanggal tidak valid"),
        ("03-12-2026", "Tanggal tidak valid"),
        ("2026-12-3", "Tanggal tidak valid"),
        ("", "Tanggal tidak valid"),
        ("1999-12-31", "di luar jangkauan"),
    ],
)
def test_bad_days_are_refused_in_indonesian(raw: str, message: str) -> None:
    with pytest.raises(reports.BadPeriod, match=message):
        reports.parse_day(raw, WIB)


@pytest.mark.parametrize("raw", ["2026-00", "2026-13", "2026-1", "26-12", "2026/12", "２０２６-12"])
def test_bad_months_are_refused(raw: str) -> None:
    with pytest.raises(reports.BadPeriod, match="Bulan tidak valid"):
        reports.parse_month(raw, WIB)


# -- figures -----------------------------------------------------------------------


async def test_daily_report_counts_the_local_day(seeded: TestRuntime) -> None:
    report = await _report(seeded, Period.day(THURSDAY, WIB))
    outcomes = {c.key: c.count for c in report.calls_by_outcome}
    assert outcomes == {
        "completed": 7,
        "transferred": 1,
        "abandoned": 3,
        "emergency-answered": 2,
        "emergency-unanswered": 2,
        "failed": 0,
        "in-progress": 0,
    }
    by_hour = {h.hour: h.count for h in report.calls_by_hour if h.count}
    assert by_hour == {0: 2, 6: 1, 7: 1, 9: 3, 10: 1, 13: 1, 14: 1, 15: 1, 16: 1, 20: 1, 23: 2}
    assert [(d.day, d.count) for d in report.calls_by_day] == [(THURSDAY, 15)]
    totals = report.totals
    assert totals.calls == 15
    assert totals.registered_calls == 11
    assert totals.distinct_numbers == 4  # three offices' numbers and one unregistered; withheld is none
    assert totals.average_duration_seconds == 64.0  # 14 x 60 s and one of 120 s
    assert totals.busiest_hour == 9
    assert (totals.requests, totals.incomplete_requests) == (4, 1)
    assert (totals.emergencies, totals.emergencies_unanswered) == (5, 3)
    assert [(c.key, c.count) for c in report.abandoned_at] == [
        ("emergency:escalation", 1),
        ("menu:main", 1),
        ("submit:record", 1),
    ]


async def test_requests_and_busiest_offices(seeded: TestRuntime) -> None:
    report = await _report(seeded, Period.day(THURSDAY, WIB))
    requests = [(r.office, r.by_kind, r.incomplete, r.total) for r in report.requests_by_office]
    assert requests == [
        ("Dinas Kesehatan", {"request": 2, "notification": 0, "schedule_change": 0}, 0, 2),
        ("Kecamatan Wiradesa", {"request": 0, "notification": 1, "schedule_change": 0}, 1, 1),
        (None, {"request": 0, "notification": 0, "schedule_change": 1}, 0, 1),
    ]
    busiest = [(o.office, o.calls, o.requests, o.emergencies) for o in report.busiest_offices]
    assert busiest == [
        ("Dinas Kesehatan", 6, 2, 2),
        ("Kecamatan Wiradesa", 4, 1, 1),
        (FORMULA_OFFICE, 1, 0, 1),
    ]


async def test_emergencies_with_time_to_answer(seeded: TestRuntime) -> None:
    emergencies = (await _report(seeded, Period.day(THURSDAY, WIB))).emergencies
    assert emergencies.total == 5
    assert [(c.key, c.count) for c in emergencies.by_result] == [
        ("answered", 2),
        ("unanswered", 2),
        ("abandoned during escalation", 1),
    ]
    assert emergencies.answered == reports.Seconds(2, 29.0, 45.5)
    assert emergencies.alarms == 2
    assert emergencies.acknowledged == reports.Seconds(1, 60.0, 60.0)
    assert emergencies.not_acknowledged == 1
    classes = {c.label: (c.answered, c.acknowledged) for c in emergencies.answer_classes}
    assert classes["< 30 detik"] == (1, 0)
    assert classes["30-59 detik"] == (1, 0)
    assert classes["1-2 menit"] == (0, 1)
    assert sum(a for a, _ in classes.values()) == 2
    assert sum(k for _, k in classes.values()) == 1

    listed = emergencies.unanswered
    assert [e.at.astimezone(WIB).strftime("%H:%M") for e in listed] == ["16:00", "20:00", "23:30"]
    hung_up, acknowledged, waiting = listed
    assert (hung_up.result, hung_up.alarm_state, hung_up.caller_number) == ("abandoned during escalation", None, "")
    assert acknowledged.office == "Dinas Kesehatan"
    assert acknowledged.acknowledge_seconds == 60.0
    assert acknowledged.acknowledged_by == "Budi (piket)"
    assert acknowledged.alarm_raised_at == wib("2026-12-03 20:02:00")
    assert (waiting.office, waiting.alarm_state, waiting.acknowledged_at) == (FORMULA_OFFICE, "exhausted", None)
    assert all(e.ticket and len(e.ticket) == 8 for e in listed)
    assert not emergencies.unanswered_truncated


async def test_monthly_report_counts_the_local_month(seeded: TestRuntime) -> None:
    report = await _report(seeded, Period.month(2026, 12, WIB))
    assert report.totals.calls == 17
    days = {d.day: d.count for d in report.calls_by_day if d.count}
    assert days == {date(2026, 12, 2): 1, THURSDAY: 15, date(2026, 12, 4): 1}
    assert len(report.calls_by_day) == 31
    by_hour = {h.hour: h.count for h in report.calls_by_hour}
    assert (by_hour[0], by_hour[23]) == (3, 3)
    assert {c.key: c.count for c in report.calls_by_outcome}["completed"] == 9
    assert report.busiest_offices[0].calls == 8


async def test_an_empty_period_reports_zeros(seeded: TestRuntime) -> None:
    report = await _report(seeded, Period.day(date(2026, 12, 5), WIB))
    assert report.totals.calls == 0
    assert report.totals.busiest_hour is None
    assert report.totals.average_duration_seconds is None
    assert all(h.count == 0 for h in report.calls_by_hour)
    assert report.requests_by_office == []
    assert report.emergencies.total == 0
    assert report.emergencies.answered == reports.Seconds(0, None, None)


# -- the API ---------------------------------------------------------------------------

REPORT_PATHS = ("/api/reports/daily", "/api/reports/monthly", "/api/reports/daily.csv", "/api/reports/monthly.csv")


def _csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "UTF-8 byte order mark, so that Excel reads UTF-8"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def _section(rows: list[list[str]], title: str) -> list[list[str]]:
    """The rows of one CSV section, without its title and header."""
    start = rows.index([title])
    end = next(i for i in range(start, len(rows)) if not rows[i])
    return rows[start + 2 : end]


async def test_daily_report_as_json(api: Client, tokens: dict[str, str], seeded: TestRuntime) -> None:
    response = await api.get("/api/reports/daily?date=2026-12-03", headers=bearer(tokens["duty"]))
    assert response.status == 200
    body = await response.json()
    assert body["period"] == {
        "kind": "day",
        "key": "2026-12-03",
        "label": "Kamis, 3 Desember 2026",
        "first_day": "2026-12-03",
        "last_day": "2026-12-03",
        "from": "2026-12-03T00:00:00+07:00",
        "to": "2026-12-04T00:00:00+07:00",
        "zone": "Asia/Jakarta",
    }
    assert body["totals"]["calls"] == 15
    assert [h["count"] for h in body["calls_by_hour"]][:8] == [2, 0, 0, 0, 0, 0, 1, 1]
    assert body["requests_by_office"][1] == {
        "office_id": body["requests_by_office"][1]["office_id"],
        "office": "Kecamatan Wiradesa",
        "request": 0,
        "notification": 1,
        "schedule_change": 0,
        "total": 1,
        "incomplete": 1,
    }
    emergencies = body["emergencies"]
    assert emergencies["answered"] == {"count": 2, "average": 29.0, "max": 45.5}
    assert emergencies["acknowledged"] == {"count": 1, "average": 60.0, "max": 60.0}
    listed = emergencies["unanswered"]
    assert [e["at"] for e in listed] == [
        "2026-12-03T16:00:00+07:00",
        "2026-12-03T20:00:00+07:00",
        "2026-12-03T23:30:00+07:00",
    ]
    assert listed[1]["acknowledged_at"] == "2026-12-03T20:03:00+07:00"


async def test_monthly_report_as_json(api: Client, tokens: dict[str, str], seeded: TestRuntime) -> None:
    response = await api.get("/api/reports/monthly?month=2026-12", headers=bearer(tokens["staff"]))
    assert response.status == 200
    body = await response.json()
    assert body["period"]["label"] == "Desember 2026"
    assert body["period"]["to"] == "2027-01-01T00:00:00+07:00"
    assert body["totals"]["calls"] == 17
    assert len(body["calls_by_day"]) == 31
    assert body["calls_by_day"][2] == {"date": "2026-12-03", "count": 15}


async def test_the_default_period_is_today_and_this_month(api: Client, tokens: dict[str, str]) -> None:
    today = datetime.now(UTC).astimezone(WIB).date()
    daily = await (await api.get("/api/reports/daily", headers=bearer(tokens["admin"]))).json()
    assert daily["period"]["key"] == today.isoformat()
    monthly = await (await api.get("/api/reports/monthly.csv", headers=bearer(tokens["admin"]))).read()
    assert _csv_rows(monthly)[1] == ["Periode", Period.month(today.year, today.month, WIB).label]


async def test_daily_report_as_csv(api: Client, tokens: dict[str, str], seeded: TestRuntime) -> None:
    response = await api.get("/api/reports/daily.csv?date=2026-12-03", headers=bearer(tokens["staff"]))
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="laporan-harian-2026-12-03.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    rows = _csv_rows(await response.read())
    assert rows[0] == ["Laporan Harian Call Center Protokol"]
    assert rows[1] == ["Periode", "Kamis, 3 Desember 2026"]
    summary = dict(_section(rows, "Ringkasan"))
    assert summary["Panggilan masuk"] == "15"
    assert summary["Rata-rata durasi panggilan (detik)"] == "64"
    assert summary["Jam tersibuk"] == "09.00-09.59"
    assert summary["Darurat tidak terjawab langsung"] == "3"
    by_hour = _section(rows, "Panggilan per jam")
    assert len(by_hour) == 24
    assert by_hour[0] == ["00.00-00.59", "2"] and by_hour[23] == ["23.00-23.59", "2"]
    assert ["Ditutup penelepon", "abandoned", "3"] in _section(rows, "Panggilan per hasil")
    assert _section(rows, "Permohonan per OPD") == [
        ["Dinas Kesehatan", "2", "0", "0", "2", "0"],
        ["Kecamatan Wiradesa", "0", "1", "0", "1", "1"],
        ["(penelepon tidak terdaftar)", "0", "0", "1", "1", "0"],
    ]
    assert not any(row and row[0] == "Panggilan per hari" for row in rows), "a day has no per-day section"
    classes = {row[0]: row[1:] for row in _section(rows, "Darurat: waktu tanggap")}
    assert classes["1-2 menit"] == ["0", "1"]
    unanswered = _section(rows, "Darurat tidak terjawab")
    assert [row[0] for row in unanswered] == ["2026-12-03 16:00:00", "2026-12-03 20:00:00", "2026-12-03 23:30:00"]
    assert unanswered[1][7:] == ["2026-12-03 20:02:00", "2026-12-03 20:03:00", "Budi (piket)", "60"]


async def test_csv_defuses_formulas_from_data(api: Client, tokens: dict[str, str], seeded: TestRuntime) -> None:
    response = await api.get("/api/reports/daily.csv?date=2026-12-03", headers=bearer(tokens["admin"]))
    rows = _csv_rows(await response.read())
    cells = [cell for row in rows for cell in row]
    assert FORMULA_OFFICE not in cells
    assert ["'" + FORMULA_OFFICE, "1", "0", "1"] in _section(rows, "OPD tersibuk")
    assert _section(rows, "Darurat tidak terjawab")[2][2] == "'" + FORMULA_OFFICE
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")]


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+62812", "'+62812"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Dinas = Kesehatan", "Dinas = Kesehatan"),
        (5, 5),
    ],
)
def test_safe_cell(cell: Any, written: Any) -> None:
    from ivr.web.reports_api import safe_cell

    assert safe_cell(cell) == written


async def test_monthly_csv_has_days(api: Client, tokens: dict[str, str], seeded: TestRuntime) -> None:
    response = await api.get("/api/reports/monthly.csv?month=2026-12", headers=bearer(tokens["duty"]))
    assert response.headers["Content-Disposition"] == 'attachment; filename="laporan-bulanan-2026-12.csv"'
    rows = _csv_rows(await response.read())
    assert rows[0] == ["Laporan Bulanan Call Center Protokol"]
    days = _section(rows, "Panggilan per hari")
    assert len(days) == 31
    assert days[1:4] == [["2026-12-02", "1"], ["2026-12-03", "15"], ["2026-12-04", "1"]]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/reports/daily?date=2026-02-30", "Tanggal tidak valid"),
        ("/api/reports/daily.csv?date=kemarin", "Tanggal tidak valid"),
        ("/api/reports/daily?date=1900-01-01", "di luar jangkauan"),
        ("/api/reports/monthly?month=2026-13", "Bulan tidak valid"),
        ("/api/reports/monthly.csv?month=2026-1", "Bulan tidak valid"),
    ],
)
async def test_bad_periods_are_400_in_indonesian(api: Client, tokens: dict[str, str], path: str, message: str) -> None:
    response = await api.get(path, headers=bearer(tokens["admin"]))
    assert response.status == 400
    assert response.content_type == "application/json"
    error = (await response.json())["error"]
    assert error["code"] == "invalid_period"
    assert message in error["message"]


async def test_reports_need_a_token(api: Client, tokens: dict[str, str]) -> None:
    for path in REPORT_PATHS:
        anonymous = await api.get(path, headers={"Accept": "application/json"})
        assert anonymous.status == 401, path
        assert "WWW-Authenticate" in anonymous.headers
        wrong = await api.get(path, headers=bearer("not-a-token"))
        assert wrong.status == 401, path


@pytest.mark.parametrize("role", ["admin", "staff", "duty"])
async def test_every_role_may_read_reports(api: Client, tokens: dict[str, str], role: str) -> None:
    for path in REPORT_PATHS:
        response = await api.get(path, headers=bearer(tokens[role]))
        assert response.status == 200, (role, path)


async def test_reports_are_in_the_openapi_document(api: Client) -> None:
    document = await (await api.get("/api/openapi.json")).json()
    for path in REPORT_PATHS:
        operation = document["paths"][path]["get"]
        assert operation["x-roles"] == ["admin", "staff", "duty"]
        assert {"200", "400", "401", "403"} <= set(operation["responses"])
    assert "text/csv" in document["paths"]["/api/reports/daily.csv"]["get"]["responses"]["200"]["content"]
    assert document["components"]["schemas"]["Report"]["properties"]["emergencies"] == {
        "$ref": "#/components/schemas/ReportEmergencies"
    }


# -- the page (server side; tests/test_browser_reports.py drives it in a browser) -----------


async def test_report_page_draws_charts_and_tables(api: Client, tokens: dict[str, str], seeded: TestRuntime) -> None:
    response = await api.get("/reports?date=2026-12-03", headers=bearer(tokens["duty"]))
    assert response.status == 200
    html = await response.text()
    assert "Laporan Harian: <span data-period>Kamis, 3 Desember 2026</span>" in html
    assert html.count('data-chart="') == 4  # hours, outcomes, requests, emergencies
    assert '<g class="bar series-0" data-label="09" data-series="0" data-value="3">' in html
    assert "<title>09.00-09.59: 3 panggilan</title>" in html
    assert '<tr><th scope="row">09.00-09.59</th><td class="num">3</td></tr>' in html
    assert html.count('<tfoot><tr><th scope="row">Jumlah</th><td class="num">15</td></tr></tfoot>') == 2
    assert 'href="/api/reports/daily.csv?date=2026-12-03"' in html
    # The office named like a formula is text in the page, and markup in data stays text.
    assert "=HYPERLINK(&#34;http://x&#34;,&#34;klik&#34;)" in html


async def test_monthly_page_has_days(api: Client, tokens: dict[str, str], seeded: TestRuntime) -> None:
    html = await (await api.get("/reports?month=2026-12", headers=bearer(tokens["staff"]))).text()
    assert "Laporan Bulanan: <span data-period>Desember 2026</span>" in html
    assert html.count('data-chart="') == 5
    assert '<g class="bar series-0" data-label="3" data-series="0" data-value="15">' in html
    assert '<tr><th scope="row">Kamis, 3 Desember 2026</th><td class="num">15</td></tr>' in html
    assert 'href="/api/reports/monthly.csv?month=2026-12"' in html


async def test_report_page_escapes_names(api: Client, tokens: dict[str, str], web_runtime: TestRuntime) -> None:
    office = await office_with_caller(web_runtime.sessions, "<script>alert(1)</script>", "+6281200000009")
    await Seeder(web_runtime.sessions).call(wib("2026-12-03 10:00"), who=office, kind="request")
    html = await (await api.get("/reports?date=2026-12-03", headers=bearer(tokens["admin"]))).text()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_report_page_with_a_bad_date_says_why(api: Client, tokens: dict[str, str]) -> None:
    response = await api.get("/reports?date=2026-02-30", headers=bearer(tokens["admin"]))
    assert response.status == 400
    html = await response.text()
    assert "Tanggal tidak valid" in html
    assert "Ditampilkan laporan hari ini." in html


async def test_report_page_needs_a_session(api: Client) -> None:
    response = await api.get("/reports", headers={"Accept": "text/html"}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/reports"

"""Reports, the "format pelaporan" (PRODUCT.md section 5): what happened in one
day or one month, counted in the database.

A period is local: a day runs from midnight to midnight in the office's zone
(``settings.zone``, WIB), not in UTC. A call at 00:30 WIB on the 4th is stored
as 17:30 UTC on the 3rd and counts on the 4th.

Everything is aggregated in SQL, with constructs both databases evaluate alike:

* Local hours. SQLite has no time zones and PostgreSQL's ``EXTRACT`` depends on
  the session's zone, so the database never converts a time. The local hours of
  the period are computed here (their UTC start instants, DST included) and the
  SQL only compares ``started_at`` with them: a balanced ``CASE`` tree gives
  each row the index of its hour in about log2(744) comparisons, and rows are
  grouped by that index. The result has at most one row per hour and outcome,
  however many calls there were.
* Durations (alarm raised -> acknowledged) need date arithmetic, which differs
  between the two; ``seconds_between`` compiles to each one's form.
* Emergency facts the call flow wrote into the ticket's JSON details
  (``details.emergency.result``, ``time_to_answer_seconds``) are read with
  SQLAlchemy's JSON paths (``JSON_EXTRACT`` / ``#>>``).

Expressions that carry bound parameters (the hour tree, JSON paths) are
grouped through a subquery: PostgreSQL does not recognise ``CASE ... $1`` in
the select list and ``CASE ... $9`` in ``GROUP BY`` as one expression.

Only the incoming calls count as calls (scripts ``main`` and ``emergency``):
the legs placed to duty officers and the desk (``screen``, ``ack``,
``alert``) are FastAGI sessions too, but nobody called in.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import ColumnElement, Float, SQLColumnExpression, and_, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ivr import tickets
from ivr.storage.models import Call, Caller, Office, Ticket
from ivr.storage.roster_models import EmergencyAlarm

HOUR: Final = dt.timedelta(hours=1)
#: FastAGI scripts a caller dials into (``ivr.flows.build_registry``).
INCOMING_SCRIPTS: Final = ("main", "emergency")

#: Call outcomes (``calls.outcome``) in report order, with their labels.
OUTCOMES: Final[dict[str, str]] = {
    "completed": "Selesai dilayani",
    "transferred": "Diteruskan ke operator",
    "abandoned": "Ditutup penelepon",
    "emergency-answered": "Darurat terjawab",
    "emergency-unanswered": "Darurat tidak terjawab",
    "failed": "Gagal (gangguan sistem)",
    "in-progress": "Sedang berlangsung",
}

#: ``details.emergency.result`` as the emergency flow writes it, and labels.
ANSWERED: Final = "answered"
UNANSWERED: Final = "unanswered"
HUNG_UP: Final = "abandoned during escalation"
EMERGENCY_RESULTS: Final[dict[str, str]] = {
    ANSWERED: "Terjawab petugas piket",
    UNANSWERED: "Tidak terjawab (alarm)",
    HUNG_UP: "Penelepon menutup sebelum terjawab",
}
OTHER_RESULT_LABEL: Final = "Lainnya (dialihkan ke meja protokol / terhenti)"

#: Alarm states (``emergency_alarms.state``) and labels.
ALARM_LABELS: Final[dict[str, str]] = {
    "open": "Belum dikonfirmasi (panggilan ulang berjalan)",
    "exhausted": "Belum dikonfirmasi (panggilan ulang habis)",
    "acknowledged": "Sudah dikonfirmasi",
}

#: Time-to-answer classes: (upper bound in seconds, exclusive; None = no bound), label.
ANSWER_CLASSES: Final[tuple[tuple[int | None, str], ...]] = (
    (30, "< 30 detik"),
    (60, "30-59 detik"),
    (120, "1-2 menit"),
    (300, "2-5 menit"),
    (900, "5-15 menit"),
    (3600, "15-60 menit"),
    (None, "1 jam atau lebih"),
)

#: Submission kinds and their column labels in "requests by office".
REQUEST_KINDS: Final = tickets.SUBMISSION_KINDS
INCOMPLETE_STATUSES: Final = (tickets.ABANDONED, tickets.ABANDONED_WITH_MESSAGE)

BUSIEST_OFFICES: Final = 10
TOP_ABANDON_STEPS: Final = 10
#: The unanswered emergencies listed one by one (the counts cover them all).
MAX_LISTED_EMERGENCIES: Final = 500
#: Reports cover these years (the forms and the API refuse others).
FIRST_YEAR: Final = 2000
LAST_YEAR: Final = 2099


# -- periods -----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole local days: one (``day``) or a calendar month (``month``)."""

    kind: Literal["day", "month"]
    first_day: dt.date
    days: int
    zone: ZoneInfo

    @classmethod
    def day(cls, day: dt.date, zone: ZoneInfo) -> Period:
        return cls("day", day, 1, zone)

    @classmethod
    def month(cls, year: int, month: int, zone: ZoneInfo) -> Period:
        return cls("month", dt.date(year, month, 1), calendar.monthrange(year, month)[1], zone)

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.days - 1)

    def each_day(self) -> list[dt.date]:
        return [self.first_day + dt.timedelta(days=i) for i in range(self.days)]

    def _midnight(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).astimezone(dt.UTC)

    @property
    def start(self) -> dt.datetime:
        return self._midnight(self.first_day)

    @property
    def end(self) -> dt.datetime:
        """The first instant after the period (exclusive)."""
        return self._midnight(self.last_day + dt.timedelta(days=1))

    def hour_edges(self) -> list[dt.datetime]:
        """UTC instants at which the period's local hours start, then its end.

        Stepping an hour at a time in UTC from local midnight lands on every
        local hour start, whatever the offset (+07:00, +05:30) and across a DST
        change (a 23- or 25-hour day), as long as offsets change by whole hours."""
        edges = []
        at = self.start
        while at < self.end:
            edges.append(at)
            at += HOUR
        edges.append(self.end)
        return edges

    @property
    def label(self) -> str:
        """ "Kamis, 3 Desember 2026" or "Desember 2026"."""
        if self.kind == "day":
            return format_date(self.first_day, "EEEE, d MMMM y", locale="id")
        return format_date(self.first_day, "LLLL y", locale="id")

    @property
    def key(self) -> str:
        """ "2026-12-03" or "2026-12" (as the API and the file names give it)."""
        return self.first_day.isoformat() if self.kind == "day" else self.first_day.strftime("%Y-%m")


class BadPeriod(ValueError):
    """A date or month the reports cannot cover; the message is for staff (Indonesian)."""


def parse_day(raw: str, zone: ZoneInfo) -> Period:
    try:
        day = dt.date.fromisoformat(raw.strip()) if len(raw.strip()) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise BadPeriod(f"Tanggal tidak valid: {raw[:20]!r}. Gunakan format TTTT-BB-HH, misalnya 2026-12-03.")
    _check_year(day.year)
    return Period.day(day, zone)


def parse_month(raw: str, zone: ZoneInfo) -> Period:
    text = raw.strip()
    year, sep, month = text.partition("-")
    if not (sep and len(year) == 4 and len(month) == 2 and (year + month).isascii() and (year + month).isdigit()):
        raise BadPeriod(f"Bulan tidak valid: {raw[:20]!r}. Gunakan format TTTT-BB, misalnya 2026-12.")
    if not 1 <= int(month) <= 12:
        raise BadPeriod(f"Bulan tidak valid: {raw[:20]!r}. Bulan harus 01 sampai 12.")
    _check_year(int(year))
    return Period.month(int(year), int(month), zone)


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise BadPeriod(f"Tahun {year} di luar jangkauan laporan ({FIRST_YEAR}-{LAST_YEAR}).")


# -- the report ----------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    key: str
    label: str
    count: int


def hour_label(hour: int) -> str:
    """ "09.00-09.59": one local hour, written the Indonesian way."""
    return f"{hour:02d}.00-{hour:02d}.59"


@dataclass(frozen=True)
class HourCount:
    hour: int
    count: int

    @property
    def label(self) -> str:
        return hour_label(self.hour)


@dataclass(frozen=True)
class DayCount:
    day: dt.date
    count: int


@dataclass(frozen=True)
class OfficeRequests:
    """Submissions from one office (``office_id`` None: unregistered callers)."""

    office_id: int | None
    office: str | None
    by_kind: dict[str, int]
    #: Submissions the caller hung up on before confirming (not in ``total``).
    incomplete: int

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


@dataclass(frozen=True)
class OfficeActivity:
    office_id: int
    office: str
    calls: int
    requests: int
    emergencies: int


@dataclass(frozen=True)
class Seconds:
    """Summary of durations: how many, their mean and the longest (None without any)."""

    count: int
    average: float | None
    longest: float | None


@dataclass(frozen=True)
class AnswerClass:
    label: str
    upto_seconds: int | None
    #: Emergencies an officer accepted live within this time.
    answered: int
    #: Alarms of unanswered emergencies acknowledged within this time of being raised.
    acknowledged: int


@dataclass(frozen=True)
class UnansweredEmergency:
    ticket: str | None
    at: dt.datetime
    office: str | None
    caller: str | None
    caller_number: str
    result: str
    result_label: str
    alarm_state: str | None
    alarm_raised_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    acknowledge_seconds: float | None


@dataclass(frozen=True)
class Emergencies:
    total: int
    by_result: list[Count]
    answered: Seconds
    alarms: int
    acknowledged: Seconds
    #: Alarms still waiting for an officer (open or exhausted).
    not_acknowledged: int
    answer_classes: list[AnswerClass]
    unanswered: list[UnansweredEmergency]
    #: True when more unanswered emergencies exist than are listed.
    unanswered_truncated: bool

    @property
    def unanswered_total(self) -> int:
        return self.total - next((c.count for c in self.by_result if c.key == ANSWERED), 0)


@dataclass(frozen=True)
class Totals:
    calls: int
    registered_calls: int
    distinct_numbers: int
    average_duration_seconds: float | None
    requests: int
    incomplete_requests: int
    emergencies: int
    emergencies_unanswered: int
    busiest_hour: int | None

    @property
    def busiest_hour_label(self) -> str | None:
        return None if self.busiest_hour is None else hour_label(self.busiest_hour)


@dataclass(frozen=True)
class Report:
    period: Period
    generated_at: dt.datetime
    totals: Totals
    calls_by_outcome: list[Count]
    calls_by_hour: list[HourCount]
    calls_by_day: list[DayCount]
    abandoned_at: list[Count]
    requests_by_office: list[OfficeRequests]
    busiest_offices: list[OfficeActivity]
    emergencies: Emergencies


async def build_report(session: AsyncSession, period: Period, *, now: dt.datetime | None = None) -> Report:
    """The report of ``period``: a handful of aggregate queries in one session."""
    calls = await _call_buckets(session, period)
    by_outcome = _outcomes(calls.by_outcome)
    by_hour = [HourCount(hour, calls.by_hour.get(hour, 0)) for hour in range(24)]
    call_facts = await _call_facts(session, period)
    requests = await _requests_by_office(session, period)
    emergencies = await _emergencies(session, period)
    total_calls = sum(calls.by_outcome.values())
    totals = Totals(
        calls=total_calls,
        registered_calls=call_facts.registered,
        distinct_numbers=call_facts.distinct_numbers,
        average_duration_seconds=call_facts.average_duration,
        requests=sum(r.total for r in requests),
        incomplete_requests=sum(r.incomplete for r in requests),
        emergencies=emergencies.total,
        emergencies_unanswered=emergencies.unanswered_total,
        busiest_hour=max(by_hour, key=lambda h: h.count).hour if total_calls else None,
    )
    return Report(
        period=period,
        generated_at=now or dt.datetime.now(dt.UTC),
        totals=totals,
        calls_by_outcome=by_outcome,
        calls_by_hour=by_hour,
        calls_by_day=[DayCount(day, calls.by_day.get(day, 0)) for day in period.each_day()],
        abandoned_at=await _abandoned_steps(session, period),
        requests_by_office=requests,
        busiest_offices=await _busiest_offices(session, period),
        emergencies=emergencies,
    )


# -- SQL building blocks ---------------------------------------------------------------


class seconds_between(FunctionElement[float]):
    """Seconds from the first datetime column to the second, as a float."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    # julianday is a float of days: rounded to the millisecond, 30 s stays 30.0.
    return f"round((julianday({end}) - julianday({start})) * 86400.0, 3)"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


def interval_index(column: SQLColumnExpression[dt.datetime], edges: Sequence[dt.datetime]) -> ColumnElement[int]:
    """The ``i`` with ``edges[i] <= column < edges[i + 1]`` for a value the query
    already keeps within ``[edges[0], edges[-1])``: a balanced tree of ``CASE``
    comparisons, so each row costs about log2(len(edges)) of them."""

    def node(low: int, high: int) -> ColumnElement[int]:
        if high - low == 1:
            return literal_column(str(low))
        middle = (low + high) // 2
        return case((column < edges[middle], node(low, middle)), else_=node(middle, high))

    return node(0, len(edges) - 1)


def _answer_class(seconds: ColumnElement[float]) -> ColumnElement[int]:
    """The index in ``ANSWER_CLASSES`` of a duration (NULL stays NULL)."""
    whens: list[tuple[ColumnElement[bool], ColumnElement[int]]] = [
        (seconds < bound, literal_column(str(i))) for i, (bound, _) in enumerate(ANSWER_CLASSES) if bound
    ]
    return case(*whens, (seconds.is_not(None), literal_column(str(len(ANSWER_CLASSES) - 1))))


def _calls_in(period: Period) -> ColumnElement[bool]:
    return and_(Call.started_at >= period.start, Call.started_at < period.end, Call.script.in_(INCOMING_SCRIPTS))


def _tickets_in(period: Period) -> ColumnElement[bool]:
    return and_(Ticket.created_at >= period.start, Ticket.created_at < period.end)


# -- calls -------------------------------------------------------------------------------


@dataclass
class _CallBuckets:
    by_outcome: dict[str, int]
    by_hour: dict[int, int]
    by_day: dict[dt.date, int]


async def _call_buckets(session: AsyncSession, period: Period) -> _CallBuckets:
    edges = period.hour_edges()
    bucketed = (
        select(interval_index(Call.started_at, edges).label("bucket"), Call.outcome.label("outcome"))
        .where(_calls_in(period))
        .subquery()
    )
    rows = await session.execute(
        select(bucketed.c.bucket, bucketed.c.outcome, func.count()).group_by(bucketed.c.bucket, bucketed.c.outcome)
    )
    buckets = _CallBuckets({}, {}, {})
    for index, outcome, count in rows:
        local = edges[int(index)].astimezone(period.zone)
        buckets.by_outcome[outcome] = buckets.by_outcome.get(outcome, 0) + count
        buckets.by_hour[local.hour] = buckets.by_hour.get(local.hour, 0) + count
        buckets.by_day[local.date()] = buckets.by_day.get(local.date(), 0) + count
    return buckets


def _outcomes(counts: dict[str, int]) -> list[Count]:
    """Every known outcome (zeros too, so charts keep their shape), then any
    other the records hold."""
    known = [Count(key, label, counts.get(key, 0)) for key, label in OUTCOMES.items()]
    others = [Count(key, key, count) for key, count in sorted(counts.items()) if key not in OUTCOMES]
    return known + others


@dataclass(frozen=True)
class _CallFacts:
    registered: int
    distinct_numbers: int
    average_duration: float | None


async def _call_facts(session: AsyncSession, period: Period) -> _CallFacts:
    row = (
        await session.execute(
            select(
                func.count(Call.caller_id),
                func.count(func.distinct(Call.caller_e164)),
                func.avg(Call.duration_seconds),
            ).where(_calls_in(period))
        )
    ).one()
    return _CallFacts(int(row[0]), int(row[1]), None if row[2] is None else round(float(row[2]), 1))


async def _abandoned_steps(session: AsyncSession, period: Period) -> list[Count]:
    """Where callers hung up (``calls.outcome_step``), most frequent first."""
    rows = await session.execute(
        select(Call.outcome_step, func.count().label("n"))
        .where(_calls_in(period), Call.outcome == "abandoned")
        .group_by(Call.outcome_step)
        .order_by(func.count().desc(), Call.outcome_step)
        .limit(TOP_ABANDON_STEPS)
    )
    return [Count(step, step or "(awal panggilan)", int(n)) for step, n in rows]


# -- requests and offices -----------------------------------------------------------------


async def _requests_by_office(session: AsyncSession, period: Period) -> list[OfficeRequests]:
    incomplete = Ticket.status.in_(INCOMPLETE_STATUSES)
    rows = await session.execute(
        select(
            Ticket.office_id,
            Office.name,
            Ticket.kind,
            func.sum(case((incomplete, 0), else_=1)),
            func.sum(case((incomplete, 1), else_=0)),
        )
        .outerjoin(Office, Office.id == Ticket.office_id)
        .where(_tickets_in(period), Ticket.kind.in_(REQUEST_KINDS))
        .group_by(Ticket.office_id, Office.name, Ticket.kind)
    )
    by_kind: dict[int | None, dict[str, int]] = {}
    names: dict[int | None, str | None] = {}
    not_confirmed: dict[int | None, int] = {}
    for office_id, name, kind, complete, not_complete in rows:
        names[office_id] = name
        by_kind.setdefault(office_id, dict.fromkeys(REQUEST_KINDS, 0))[kind] = int(complete)
        not_confirmed[office_id] = not_confirmed.get(office_id, 0) + int(not_complete)
    offices = [OfficeRequests(key, names[key], by_kind[key], not_confirmed[key]) for key in by_kind]
    # Most submissions first; unregistered callers last among equals.
    return sorted(offices, key=lambda o: (-o.total, -o.incomplete, o.office is None, o.office or ""))


async def _busiest_offices(session: AsyncSession, period: Period) -> list[OfficeActivity]:
    calls = func.count(Call.id)
    requests = func.sum(
        case((and_(Ticket.kind.in_(REQUEST_KINDS), Ticket.status.not_in(INCOMPLETE_STATUSES)), 1), else_=0)
    )
    emergencies = func.sum(case((Ticket.kind == tickets.EMERGENCY, 1), else_=0))
    rows = await session.execute(
        select(Office.id, Office.name, calls, requests, emergencies)
        .select_from(Call)
        .join(Ticket, Ticket.id == Call.ticket_id)
        .join(Office, Office.id == Ticket.office_id)
        .where(_calls_in(period))
        .group_by(Office.id, Office.name)
        .order_by(calls.desc(), Office.name)
        .limit(BUSIEST_OFFICES)
    )
    return [OfficeActivity(i, name, int(c), int(r), int(e)) for i, name, c, r, e in rows]


# -- emergencies ---------------------------------------------------------------------------


def _emergency_rows(period: Period) -> Any:
    """One row per emergency ticket of the period, with its alarm if one was raised."""
    return (
        select(
            Ticket.id.label("ticket_id"),
            Ticket.number.label("number"),
            Ticket.created_at.label("at"),
            Ticket.office_id.label("office_id"),
            Ticket.caller_id.label("caller_id"),
            Ticket.caller_number.label("caller_number"),
            func.coalesce(Ticket.details[("emergency", "result")].as_string(), "").label("result"),
            Ticket.details[("emergency", "time_to_answer_seconds")].as_float().label("answer_seconds"),
            EmergencyAlarm.id.label("alarm_id"),
            EmergencyAlarm.state.label("alarm_state"),
            EmergencyAlarm.raised_at.label("raised_at"),
            EmergencyAlarm.acknowledged_at.label("acknowledged_at"),
            EmergencyAlarm.acknowledged_by.label("acknowledged_by"),
            seconds_between(EmergencyAlarm.raised_at, EmergencyAlarm.acknowledged_at).label("ack_seconds"),
        )
        .select_from(Ticket)
        .outerjoin(Call, Call.ticket_id == Ticket.id)
        .outerjoin(EmergencyAlarm, EmergencyAlarm.call_uniqueid == Call.uniqueid)
        .where(_tickets_in(period), Ticket.kind == tickets.EMERGENCY)
        .subquery()
    )


@dataclass
class _Durations:
    """Sums durations group by group, for ``Seconds``."""

    count: int = 0
    total: float = 0.0
    longest: float = 0.0

    def add(self, count: int, total: float | None, longest: float | None) -> None:
        if count:
            self.count += count
            self.total += float(total or 0.0)
            self.longest = max(float(longest or 0.0), self.longest)

    def summary(self) -> Seconds:
        if not self.count:
            return Seconds(0, None, None)
        return Seconds(self.count, round(self.total / self.count, 1), round(self.longest, 1))


async def _emergencies(session: AsyncSession, period: Period) -> Emergencies:
    em = _emergency_rows(period)
    answer = case((em.c.result == ANSWERED, em.c.answer_seconds))
    facts = select(
        em.c.result.label("result"),
        em.c.alarm_id.label("alarm_id"),
        answer.label("answer"),
        _answer_class(answer).label("answer_class"),
        em.c.ack_seconds.label("ack"),
        _answer_class(em.c.ack_seconds).label("ack_class"),
        case((and_(em.c.alarm_id.is_not(None), em.c.acknowledged_at.is_(None)), 1), else_=0).label("waiting"),
    ).subquery()
    f = facts.c
    groups = await session.execute(
        select(
            f.result,
            f.answer_class,
            f.ack_class,
            func.count(),
            func.count(f.alarm_id),
            func.sum(f.waiting),
            func.count(f.answer),
            func.sum(f.answer),
            func.max(f.answer),
            func.count(f.ack),
            func.sum(f.ack),
            func.max(f.ack),
        ).group_by(f.result, f.answer_class, f.ack_class)
    )
    results: dict[str, int] = {}
    alarms = waiting = 0
    answered, acknowledged = _Durations(), _Durations()
    answered_in = [0] * len(ANSWER_CLASSES)
    acknowledged_in = [0] * len(ANSWER_CLASSES)
    for result, answer_class, ack_class, n, n_alarms, n_waiting, *durations in groups:
        results[result] = results.get(result, 0) + n
        alarms += n_alarms
        waiting += int(n_waiting or 0)
        answered.add(*durations[:3])
        acknowledged.add(*durations[3:])
        if answer_class is not None:
            answered_in[int(answer_class)] += n
        if ack_class is not None:
            acknowledged_in[int(ack_class)] += n

    listed = (
        await session.execute(
            select(em, Office.name.label("office_name"), Caller.name.label("caller_name"))
            .outerjoin(Office, Office.id == em.c.office_id)
            .outerjoin(Caller, Caller.id == em.c.caller_id)
            .where(em.c.result != ANSWERED)
            .order_by(em.c.at, em.c.ticket_id)
            .limit(MAX_LISTED_EMERGENCIES + 1)
        )
    ).all()

    by_result = [Count(key, label, results.get(key, 0)) for key, label in EMERGENCY_RESULTS.items()]
    other = sum(n for key, n in results.items() if key not in EMERGENCY_RESULTS)
    if other:
        by_result.append(Count("other", OTHER_RESULT_LABEL, other))
    return Emergencies(
        total=sum(results.values()),
        by_result=by_result,
        answered=answered.summary(),
        alarms=alarms,
        acknowledged=acknowledged.summary(),
        not_acknowledged=waiting,
        answer_classes=[
            AnswerClass(label, bound, answered_in[i], acknowledged_in[i])
            for i, (bound, label) in enumerate(ANSWER_CLASSES)
        ],
        unanswered=[_unanswered(row) for row in listed[:MAX_LISTED_EMERGENCIES]],
        unanswered_truncated=len(listed) > MAX_LISTED_EMERGENCIES,
    )


def _unanswered(row: Any) -> UnansweredEmergency:
    mapping = row._mapping
    result = mapping["result"]
    seconds = mapping["ack_seconds"]
    return UnansweredEmergency(
        ticket=mapping["number"],
        at=mapping["at"],
        office=mapping["office_name"],
        caller=mapping["caller_name"],
        caller_number=mapping["caller_number"] or "",
        result=result if result in EMERGENCY_RESULTS else "other",
        result_label=EMERGENCY_RESULTS.get(result, OTHER_RESULT_LABEL),
        alarm_state=mapping["alarm_state"],
        alarm_raised_at=mapping["raised_at"],
        acknowledged_at=mapping["acknowledged_at"],
        acknowledged_by=mapping["acknowledged_by"] or None,
        acknowledge_seconds=None if seconds is None else round(float(seconds), 1),
    )

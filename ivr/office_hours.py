"""Office hours: is the protocol office open now, and if not, why and until when.

The answer picks the caller's menu (office-hours menu, or the after-hours
notice with emergency / message), so it must be right on the days that matter:
Indonesian public holidays and the government's collective leave days (cuti
bersama), which the ``holidays`` package carries as its ``government``
category. The joint decree (SKB) that sets cuti bersama can change late in the
year (2025-08-18 was added in the middle of 2025), and regencies add their own
days (Hari Jadi), so a local table of extra closed and extra open days wins
over the package.

All reasoning happens in wall-clock time of the configured zone (WIB,
Asia/Jakarta, by default): office hours are what the clock on the office wall
says, whatever zone the server or the caller's timestamp is in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Final, Literal
from zoneinfo import ZoneInfo

import holidays

from ivr.config import WEEKDAY_KEYS, WeeklyHours

StatusReason = Literal["weekly", "after-hours", "weekend", "holiday", "override"]

#: The override values staff can set (web app, PIN over the phone); "none" and
#: ``None`` both mean "follow the calendar".
OVERRIDES: Final = ("open", "closed", "emergency-only", "none")

#: ``holidays`` categories: "public" are national holidays (libur nasional),
#: "government" the cuti bersama days of civil servants (ASN), which close a
#: regency office just the same.
HOLIDAY_CATEGORIES: Final = ("public", "government")
#: Names in Indonesian: without ``language="id"`` the package answers in English.
HOLIDAY_LANGUAGE: Final = "id"

#: How far ``next_open`` looks ahead. A month of holidays in a row does not
#: happen; a calendar with no open day at all gives ``None`` instead of looping.
NEXT_OPEN_HORIZON_DAYS: Final = 366
#: Longest range ``holidays_between`` accepts, so a web request cannot make us
#: build holiday tables for thousands of years.
MAX_RANGE_DAYS: Final = 5 * 366

_NO_CLOSED_DAYS: Final[Mapping[date, str]] = MappingProxyType({})


@dataclass(frozen=True)
class OfficeStatus:
    """The office at one moment.

    ``emergency_only`` is true only under the "emergency-only" override; the
    ordinary after-hours menu (emergency or leave a message) follows from
    ``open`` being false. ``holiday_name`` names the day's holiday whenever the
    day is one, whatever the reason, so an "open" override on a holiday can
    still say so. ``next_open`` is the next opening by the calendar, in the
    calendar's zone, when the calendar closed the office; it is ``None`` while
    open and under any override (a manual closure has no known end).
    """

    open: bool
    emergency_only: bool
    reason: StatusReason
    holiday_name: str | None
    next_open: datetime | None


class OfficeCalendar:
    """Weekly hours in one zone, minus holidays and cuti bersama, with local
    corrections.

    ``weekly`` maps "mon".."sun" to ``WeeklyHours``; a missing day is closed.
    Hours are half-open, ``[opens, closes)``: at 11:30 on a Friday that closes
    at 11:30 the office is closed, so a caller is never offered a desk that has
    just gone home.

    ``extra_closed`` adds closing days with their name (Hari Jadi Kabupaten, a
    late cuti bersama). ``extra_open`` makes days working days despite the
    package (a cuti bersama the regency does not observe, a replacement working
    Saturday); such a day uses its weekday's hours, or the first configured
    weekday's hours when its weekday has none (a working Saturday works a
    normal full day).
    """

    def __init__(
        self,
        weekly: Mapping[str, WeeklyHours],
        zone: ZoneInfo,
        extra_closed: Mapping[date, str] = _NO_CLOSED_DAYS,
        extra_open: Iterable[date] = frozenset(),
    ) -> None:
        unknown = set(weekly) - set(WEEKDAY_KEYS)
        if unknown:
            raise ValueError(f"unknown weekday keys {sorted(unknown)}; use {', '.join(WEEKDAY_KEYS)}")
        self._weekly: tuple[WeeklyHours | None, ...] = tuple(weekly.get(key) for key in WEEKDAY_KEYS)
        self._zone = zone
        self._extra_closed: Mapping[date, str] = MappingProxyType(dict(extra_closed))
        self._extra_open: frozenset[date] = frozenset(extra_open)
        both = self._extra_open & self._extra_closed.keys()
        if both:
            raise ValueError(f"days both extra open and extra closed: {sorted(both)}")
        self._holidays_by_year: dict[int, holidays.HolidayBase] = {}

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def status(self, at: datetime, override: str | None = None) -> OfficeStatus:
        """Whether the office is open at ``at`` (timezone-aware, any zone).

        An override (``"open"``, ``"closed"``, ``"emergency-only"``) wins over
        the calendar; ``None`` or ``"none"`` follows it. An unknown override is
        a ``ValueError``: the places that store overrides validate against
        ``OVERRIDES``, so a bad value here is a bug, not caller input.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("office hours need a timezone-aware datetime")
        if override is not None and override not in OVERRIDES:
            raise ValueError(f"unknown office-hours override {override!r}; use one of {', '.join(OVERRIDES)}")
        local = at.astimezone(self._zone)
        day = local.date()
        holiday_name = self.holiday_name(day)

        if override == "open":
            return OfficeStatus(True, False, "override", holiday_name, None)
        if override == "closed":
            return OfficeStatus(False, False, "override", holiday_name, None)
        if override == "emergency-only":
            return OfficeStatus(False, True, "override", holiday_name, None)

        # A holiday on a Sunday is reported as the holiday: it is the more
        # useful thing to tell a caller.
        if holiday_name is not None:
            return OfficeStatus(False, False, "holiday", holiday_name, self._next_open(local))
        hours = self._hours_for(day)
        if hours is None:
            return OfficeStatus(False, False, "weekend", None, self._next_open(local))
        if hours.opens <= local.time() < hours.closes:
            return OfficeStatus(True, False, "weekly", None, None)
        return OfficeStatus(False, False, "after-hours", None, self._next_open(local))

    def holiday_name(self, day: date) -> str | None:
        """The name of the holiday that closes the office on ``day``, or
        ``None`` on an ordinary day and on days made extra open. Two holidays
        on one day come joined with "; " (the package's convention)."""
        if day in self._extra_open:
            return None
        local_name = self._extra_closed.get(day)
        if local_name is not None:
            return local_name
        name: str | None = self._holidays(day.year).get(day)
        return name

    def holidays_between(self, start: date, end: date) -> list[tuple[date, str]]:
        """Closing days from ``start`` to ``end``, both included, in date order:
        national holidays and cuti bersama plus the local extra closed days,
        minus the extra open days. For the web app's office-hours page."""
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        if (end - start).days > MAX_RANGE_DAYS:
            raise ValueError(f"range longer than {MAX_RANGE_DAYS} days")
        found: dict[date, str] = {}
        for year in range(start.year, end.year + 1):
            for day, name in self._holidays(year).items():
                if start <= day <= end:
                    found[day] = name
        for day, name in self._extra_closed.items():
            if start <= day <= end:
                found[day] = name
        return sorted((day, name) for day, name in found.items() if day not in self._extra_open)

    def _hours_for(self, day: date) -> WeeklyHours | None:
        hours = self._weekly[day.weekday()]
        if hours is None and day in self._extra_open:
            hours = next((h for h in self._weekly if h is not None), None)
        return hours

    def _next_open(self, local: datetime) -> datetime | None:
        """The first opening strictly after ``local`` (wall-clock in our zone)."""
        for offset in range(NEXT_OPEN_HORIZON_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            if self.holiday_name(day) is not None:
                continue
            hours = self._hours_for(day)
            if hours is None:
                continue
            opening = _at(day, hours.opens, self._zone)
            # Same tzinfo on both sides: Python compares wall-clock times,
            # which is what office hours mean.
            if opening > local:
                return opening
        return None

    def _holidays(self, year: int) -> holidays.HolidayBase:
        """The package's holidays for one year, built once: building a year
        computes lunar dates and costs milliseconds, and every call asks."""
        table = self._holidays_by_year.get(year)
        if table is None:
            table = holidays.country_holidays(
                "ID", years=year, language=HOLIDAY_LANGUAGE, categories=HOLIDAY_CATEGORIES
            )
            self._holidays_by_year[year] = table
        return table


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)

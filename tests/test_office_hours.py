"""Office hours: the weekly calendar in WIB, holidays, cuti bersama, overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ivr.config import Settings, WeeklyHours
from ivr.office_hours import OVERRIDES, OfficeCalendar, OfficeStatus

WIB = ZoneInfo("Asia/Jakarta")
_FULL_DAY = WeeklyHours(opens=time(7, 30), closes=time(16, 0))
#: Spelled out rather than read from ``load_settings()``, which would let an
#: ``IVR_*`` variable in the developer's shell change what these tests mean.
DEFAULT_WEEK = {
    "mon": _FULL_DAY,
    "tue": _FULL_DAY,
    "wed": _FULL_DAY,
    "thu": _FULL_DAY,
    "fri": WeeklyHours(opens=time(7, 30), closes=time(11, 30)),
}


def wib(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=WIB)


@pytest.fixture
def calendar() -> OfficeCalendar:
    return OfficeCalendar(DEFAULT_WEEK, WIB)


def test_default_week_is_the_shipped_default() -> None:
    factory = Settings.model_fields["office_hours"].default_factory
    assert factory is not None
    assert factory() == DEFAULT_WEEK  # type: ignore[call-arg]
    assert Settings.model_fields["timezone"].default == "Asia/Jakarta"


def test_monday_morning_open(calendar: OfficeCalendar) -> None:
    # 2025-08-11 is a Monday.
    assert calendar.status(wib(2025, 8, 11, 9, 0)) == OfficeStatus(True, False, "weekly", None, None)


def test_exactly_at_opening_is_open(calendar: OfficeCalendar) -> None:
    assert calendar.status(wib(2025, 8, 11, 7, 30)).open
    assert not calendar.status(wib(2025, 8, 11, 7, 29, 59, 999999)).open


def test_exactly_at_closing_is_closed(calendar: OfficeCalendar) -> None:
    assert calendar.status(wib(2025, 8, 11, 15, 59, 59, 999999)).open
    status = calendar.status(wib(2025, 8, 11, 16, 0))
    assert status == OfficeStatus(False, False, "after-hours", None, wib(2025, 8, 12, 7, 30))


def test_midnight(calendar: OfficeCalendar) -> None:
    status = calendar.status(wib(2025, 8, 12, 0, 0))
    assert status == OfficeStatus(False, False, "after-hours", None, wib(2025, 8, 12, 7, 30))


def test_friday_closes_at_half_past_eleven(calendar: OfficeCalendar) -> None:
    # 2025-08-08 is a Friday; the following Monday is an ordinary day.
    assert calendar.status(wib(2025, 8, 8, 11, 29)).open
    status = calendar.status(wib(2025, 8, 8, 11, 30))
    assert not status.open
    assert status.reason == "after-hours"
    assert calendar.status(wib(2025, 8, 8, 14, 0)).next_open == wib(2025, 8, 11, 7, 30)


def test_next_open_across_a_weekend(calendar: OfficeCalendar) -> None:
    status = calendar.status(wib(2025, 8, 9, 10, 0))  # Saturday
    assert status == OfficeStatus(False, False, "weekend", None, wib(2025, 8, 11, 7, 30))


def test_independence_day_holiday(calendar: OfficeCalendar) -> None:
    # 2025-08-17 is a Sunday: reported as the holiday, not the weekend.
    status = calendar.status(wib(2025, 8, 17, 10, 0))
    assert not status.open
    assert status.reason == "holiday"
    assert status.holiday_name == "Hari Kemerdekaan Republik Indonesia"


def test_next_open_across_weekend_and_cuti_bersama(calendar: OfficeCalendar) -> None:
    # Fri 15 afternoon -> Sat, Sun 17 (Kemerdekaan), Mon 18 (cuti bersama) -> Tue 19.
    status = calendar.status(wib(2025, 8, 15, 13, 0))
    assert status.reason == "after-hours"
    assert status.next_open == wib(2025, 8, 19, 7, 30)
    monday = calendar.status(wib(2025, 8, 18, 9, 0))
    assert monday.reason == "holiday"
    assert monday.holiday_name is not None and monday.holiday_name.startswith("Cuti Bersama")


def test_cuti_bersama_idul_fitri_2026(calendar: OfficeCalendar) -> None:
    # 2026-03-20 is a Friday of cuti bersama; with Nyepi, Idul Fitri and the
    # cuti bersama around them the office is shut from Wed 18 to Tue 24.
    status = calendar.status(wib(2026, 3, 20, 9, 0))
    assert status == OfficeStatus(False, False, "holiday", "Cuti Bersama Hari Raya Idul Fitri", wib(2026, 3, 25, 7, 30))
    assert calendar.status(wib(2026, 3, 17, 16, 0)).next_open == wib(2026, 3, 25, 7, 30)


def test_utc_datetime_is_converted_to_wib(calendar: OfficeCalendar) -> None:
    # 00:30 UTC Monday is 07:30 WIB: opening time exactly.
    assert calendar.status(datetime(2025, 8, 11, 0, 30, tzinfo=UTC)).open
    # 23:59 UTC Sunday is 06:59 WIB Monday: not yet.
    early = calendar.status(datetime(2025, 8, 10, 23, 59, tzinfo=UTC))
    assert early.reason == "after-hours"
    assert early.next_open == wib(2025, 8, 11, 7, 30)
    # 09:00 UTC Monday is 16:00 WIB: closed, though 09:00 looks like office time.
    assert not calendar.status(datetime(2025, 8, 11, 9, 0, tzinfo=UTC)).open
    # Another fixed offset: 08:00 in UTC+9 (WIT) is 06:00 WIB.
    assert not calendar.status(datetime(2025, 8, 11, 8, 0, tzinfo=timezone(timedelta(hours=9)))).open


def test_next_open_is_in_the_calendar_zone(calendar: OfficeCalendar) -> None:
    next_open = calendar.status(datetime(2025, 8, 11, 12, 0, tzinfo=UTC)).next_open
    assert next_open is not None
    assert next_open.tzinfo == WIB
    assert next_open == datetime(2025, 8, 12, 0, 30, tzinfo=UTC)


def test_naive_datetime_is_rejected(calendar: OfficeCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.status(datetime(2025, 8, 11, 9, 0))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # Sunday night on a holiday: the calendar says closed.
        (None, OfficeStatus(False, False, "holiday", "Hari Kemerdekaan Republik Indonesia", wib(2025, 8, 19, 7, 30))),
        ("none", OfficeStatus(False, False, "holiday", "Hari Kemerdekaan Republik Indonesia", wib(2025, 8, 19, 7, 30))),
        ("open", OfficeStatus(True, False, "override", "Hari Kemerdekaan Republik Indonesia", None)),
        ("closed", OfficeStatus(False, False, "override", "Hari Kemerdekaan Republik Indonesia", None)),
        ("emergency-only", OfficeStatus(False, True, "override", "Hari Kemerdekaan Republik Indonesia", None)),
    ],
)
def test_overrides_on_a_holiday(calendar: OfficeCalendar, override: str | None, expected: OfficeStatus) -> None:
    assert calendar.status(wib(2025, 8, 17, 21, 0), override) == expected


@pytest.mark.parametrize(
    ("override", "open_", "emergency_only"),
    [("open", True, False), ("closed", False, False), ("emergency-only", False, True)],
)
def test_overrides_during_office_hours(
    calendar: OfficeCalendar, override: str, open_: bool, emergency_only: bool
) -> None:
    status = calendar.status(wib(2025, 8, 11, 9, 0), override)
    assert status == OfficeStatus(open_, emergency_only, "override", None, None)


def test_every_documented_override_is_accepted(calendar: OfficeCalendar) -> None:
    for override in OVERRIDES:
        calendar.status(wib(2025, 8, 11, 9, 0), override)


@pytest.mark.parametrize("override", ["OPEN", "emergency_only", "", "tutup"])
def test_unknown_override_is_rejected(calendar: OfficeCalendar, override: str) -> None:
    with pytest.raises(ValueError, match="override"):
        calendar.status(wib(2025, 8, 11, 9, 0), override)


def test_local_extra_closed_day() -> None:
    calendar = OfficeCalendar(DEFAULT_WEEK, WIB, extra_closed={date(2025, 8, 26): "Hari Jadi Kabupaten"})
    status = calendar.status(wib(2025, 8, 26, 9, 0))  # a Tuesday
    assert status == OfficeStatus(False, False, "holiday", "Hari Jadi Kabupaten", wib(2025, 8, 27, 7, 30))
    # The day before, after hours, skips it.
    assert calendar.status(wib(2025, 8, 25, 17, 0)).next_open == wib(2025, 8, 27, 7, 30)


def test_extra_open_day_overrides_cuti_bersama() -> None:
    calendar = OfficeCalendar(DEFAULT_WEEK, WIB, extra_open={date(2025, 8, 18)})
    assert calendar.status(wib(2025, 8, 18, 9, 0)) == OfficeStatus(True, False, "weekly", None, None)
    assert calendar.status(wib(2025, 8, 15, 13, 0)).next_open == wib(2025, 8, 18, 7, 30)


def test_extra_open_saturday_works_a_normal_day() -> None:
    calendar = OfficeCalendar(DEFAULT_WEEK, WIB, extra_open={date(2025, 8, 9)})
    assert calendar.status(wib(2025, 8, 9, 15, 0)).open  # Monday's hours, 07:30-16:00
    assert calendar.status(wib(2025, 8, 8, 13, 0)).next_open == wib(2025, 8, 9, 7, 30)


def test_day_both_extra_open_and_closed_is_rejected() -> None:
    day = date(2025, 8, 26)
    with pytest.raises(ValueError, match="both"):
        OfficeCalendar({}, WIB, extra_closed={day: "x"}, extra_open={day})


def test_unknown_weekday_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="weekday"):
        OfficeCalendar({"monday": WeeklyHours(opens=time(8), closes=time(16))}, WIB)


def test_custom_week_with_saturday() -> None:
    week = {"sat": WeeklyHours(opens=time(8), closes=time(12))}
    calendar = OfficeCalendar(week, WIB)
    assert calendar.status(wib(2025, 8, 9, 8, 0)).open
    assert calendar.status(wib(2025, 8, 11, 9, 0)) == OfficeStatus(False, False, "weekend", None, wib(2025, 8, 16, 8))


def test_never_open_calendar_has_no_next_open() -> None:
    status = OfficeCalendar({}, WIB).status(wib(2025, 8, 11, 9, 0))
    assert status == OfficeStatus(False, False, "weekend", None, None)


def test_holidays_between(calendar: OfficeCalendar) -> None:
    assert calendar.holidays_between(date(2025, 8, 1), date(2025, 8, 31)) == [
        (date(2025, 8, 17), "Hari Kemerdekaan Republik Indonesia"),
        (date(2025, 8, 18), "Cuti Bersama Hari Kemerdekaan Republik Indonesia"),
    ]
    # Both ends included; a range across New Year uses both years' tables.
    days = [day for day, _ in calendar.holidays_between(date(2025, 12, 25), date(2026, 1, 1))]
    assert days == [date(2025, 12, 25), date(2025, 12, 26), date(2026, 1, 1)]


def test_holidays_between_applies_local_corrections() -> None:
    calendar = OfficeCalendar(
        {},
        WIB,
        extra_closed={date(2025, 8, 26): "Hari Jadi Kabupaten"},
        extra_open={date(2025, 8, 18)},
    )
    assert calendar.holidays_between(date(2025, 8, 1), date(2025, 8, 31)) == [
        (date(2025, 8, 17), "Hari Kemerdekaan Republik Indonesia"),
        (date(2025, 8, 26), "Hari Jadi Kabupaten"),
    ]


def test_holidays_between_rejects_bad_ranges(calendar: OfficeCalendar) -> None:
    with pytest.raises(ValueError, match="before"):
        calendar.holidays_between(date(2025, 2, 1), date(2025, 1, 1))
    with pytest.raises(ValueError, match="longer"):
        calendar.holidays_between(date(1, 1, 1), date(9999, 12, 31))


def test_whole_2025_matches_the_published_lists(calendar: OfficeCalendar) -> None:
    """17 national holidays and 11 cuti bersama days in 2025 (SPEECH.md §5)."""
    names = [name for _, name in calendar.holidays_between(date(2025, 1, 1), date(2025, 12, 31))]
    assert len(names) == 28
    assert sum(name.startswith("Cuti Bersama") for name in names) == 11

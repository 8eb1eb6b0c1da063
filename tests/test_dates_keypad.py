"""What a caller keys in, parsed without a call: dates (DDMMYYYY, or DDMM for
the next such date), start times (HHMM) and ticket numbers; every refusal
says why."""

from __future__ import annotations

from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr import ticket_number
from ivr.keypad import MAX_YEARS_AHEAD, Problem, parse_date, parse_ticket_number, parse_time

TODAY = date(2026, 12, 3)  # a Thursday


def problem(value: object) -> str | None:
    return value.code if isinstance(value, Problem) else None


# -- dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, expected",
    [
        ("05122026", date(2026, 12, 5)),
        ("03122026", TODAY),  # today is not in the past
        ("01012027", date(2027, 1, 1)),
        ("29022028", date(2028, 2, 29)),  # a leap day
        ("0512", date(2026, 12, 5)),  # DDMM: later this year
        ("0312", TODAY),  # DDMM: today
        ("0212", date(2027, 12, 2)),  # DDMM: yesterday's date means next year
        ("1501", date(2027, 1, 15)),
        ("2902", date(2028, 2, 29)),  # the next 29 February
    ],
)
def test_dates_that_are_accepted(keys: str, expected: date):
    assert parse_date(keys, today=TODAY, future_only=True) == expected


@pytest.mark.parametrize(
    "keys, code",
    [
        ("", "empty"),  # nothing at all
        ("05*22026", "keys"),  # a star in the middle
        ("05#22026", "keys"),  # a hash in the middle (GET DATA would have stopped there)
        ("0512*", "keys"),
        ("٠٥١٢", "keys"),  # Arabic-Indic digits are digits to Python, not to a keypad
        ("05", "length"),  # what GET DATA returns for "05#122026"
        ("051", "length"),
        ("051220", "length"),
        ("0512202612", "length"),
        ("00000000", "no-such-date"),
        ("0000", "no-such-date"),
        ("31022027", "no-such-date"),  # no 31 February
        ("30022028", "no-such-date"),
        ("29022027", "no-such-date"),  # 2027 is not a leap year
        ("31042027", "no-such-date"),
        ("3104", "no-such-date"),  # DDMM: no year has 31 April
        ("3202", "no-such-date"),
        ("1513", "no-such-date"),  # month 13
        ("02122026", "past"),  # a request cannot be for yesterday
        ("01011999", "past"),
        (f"0101{TODAY.year + MAX_YEARS_AHEAD + 1}", "too-far"),
        ("01019999", "too-far"),
    ],
)
def test_dates_that_are_refused_for_a_request(keys: str, code: str):
    assert problem(parse_date(keys, today=TODAY, future_only=True)) == code


def test_a_notification_may_look_back_up_to_a_year():
    assert parse_date("02122026", today=TODAY, future_only=False) == date(2026, 12, 2)
    assert parse_date("03122025", today=TODAY, future_only=False) == date(2025, 12, 3)
    assert problem(parse_date("01011999", today=TODAY, future_only=False)) == "too-far"
    # DDMM is always the next such date, even when the past is allowed.
    assert parse_date("0212", today=TODAY, future_only=False) == date(2027, 12, 2)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)))
def test_ddmm_is_never_before_today_and_always_has_that_day_and_month(today: date):
    for day, month in ((1, 1), (31, 12), (29, 2), (today.day, today.month)):
        found = parse_date(f"{day:02d}{month:02d}", today=today, future_only=True)
        assert isinstance(found, date)
        assert found >= today and (found.day, found.month) == (day, month)
        assert (found - today).days <= 366 * 4 + 1


@given(st.text(alphabet="0123456789*#", max_size=12))
def test_any_keys_give_a_date_or_a_reason_never_an_exception(keys: str):
    result = parse_date(keys, today=TODAY, future_only=True)
    assert isinstance(result, date | Problem)
    if isinstance(result, date):
        assert result >= TODAY and len(keys) in (4, 8)


# -- times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, expected",
    [("0930", time(9, 30)), ("0000", time(0, 0)), ("2359", time(23, 59)), ("1200", time(12, 0))],
)
def test_times_that_are_accepted(keys: str, expected: time):
    assert parse_time(keys) == expected


@pytest.mark.parametrize(
    "keys, code",
    [
        ("", "empty"),
        ("930", "length"),  # 3 digits: 09:30 or 93:0x? refused
        ("93", "length"),
        ("09300", "length"),
        ("2500", "no-such-time"),  # no 25:00
        ("2400", "no-such-time"),
        ("0960", "no-such-time"),
        ("9999", "no-such-time"),
        ("09*0", "keys"),
        ("0#30", "keys"),
    ],
)
def test_times_that_are_refused(keys: str, code: str):
    assert problem(parse_time(keys)) == code


# -- ticket numbers ------------------------------------------------------------------


def test_an_issued_number_is_accepted():
    number = ticket_number.number_for_id(42)
    assert parse_ticket_number(number) == number


@pytest.mark.parametrize(
    "keys, code",
    [
        ("", "empty"),
        ("12345678901234567890", "length"),  # 20 digits
        ("1234567", "length"),
        ("123456789", "length"),
        ("1234*678", "keys"),
        ("12345678#", "keys"),
        ("12345670", "check-digit"),
    ],
)
def test_numbers_that_are_refused(keys: str, code: str):
    assert problem(parse_ticket_number(keys)) == code


def test_all_zeros_is_well_formed_and_left_to_the_lookup():
    # 0000000 has Damm check digit 0: a valid number of an id no ticket may
    # have yet; the tracking flow then says "not registered".
    assert parse_ticket_number("00000000") == "00000000"


def test_a_wrong_check_digit_is_caught():
    number = ticket_number.number_for_id(1234)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert problem(parse_ticket_number(wrong)) == "check-digit"
    swapped = number[1] + number[0] + number[2:]
    if swapped != number:
        assert problem(parse_ticket_number(swapped)) == "check-digit"


def test_the_one_payload_never_issued_is_refused():
    payload = f"{ticket_number.OFFSET:07d}"
    never = payload + ticket_number.damm_check_digit(payload)
    assert problem(parse_ticket_number(never)) == "never-issued"

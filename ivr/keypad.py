"""Reading what a caller keyed in: dates, start times and ticket numbers.

Pure functions on the string ``GET DATA`` returned (``Call.read_digits``): the
keys before ``#``, where ``*`` counts as a key. Each returns a value or a
``Problem`` whose ``code`` the flow turns into the right apology, so a caller
hears *why* an entry was refused (a wrong length, a date that does not exist, a
date already past), and these rules are tested without a call.

Formats (PRODUCT.md section 3, option 2):

* a date as ``DDMMYYYY``, or ``DDMM`` meaning the next such date (today
  included): ``0512`` keyed on 6 December 2026 is 5 December 2027;
* a start time as ``HHMM`` on the 24-hour clock, ``0000`` .. ``2359``;
* a ticket number as its 8 digits (``ivr.ticket_number``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import Final

from ivr import ticket_number

#: How far ahead an activity may be announced (a ``DDMM`` of 29 February finds
#: the next leap day, at most four years ahead).
MAX_YEARS_AHEAD: Final = 5
#: How far back a notification or a schedule change may refer to.
MAX_DAYS_BACK: Final = 366


@dataclass(frozen=True)
class Problem:
    """Why an entry was refused. ``code`` is one of:

    ``empty`` nothing keyed; ``keys`` a ``*`` (or another non-digit) in it;
    ``length`` not a length the format has; ``no-such-date`` / ``no-such-time``
    (31 February, 25:00); ``past`` before today where the future is required;
    ``too-far`` beyond the horizon either way; ``check-digit`` a ticket number
    that fails its check digit; ``never-issued`` a well-formed number no ticket
    can have."""

    code: str


def _digits_only(keys: str) -> bool:
    return keys.isascii() and keys.isdigit()


def parse_date(keys: str, *, today: date, future_only: bool) -> date | Problem:
    """``DDMMYYYY`` or ``DDMM`` (the next such date on or after ``today``).

    ``future_only`` refuses dates before ``today`` (a request for a leader to
    attend cannot be for yesterday); today itself is allowed."""
    if not keys:
        return Problem("empty")
    if not _digits_only(keys):
        return Problem("keys")
    if len(keys) not in (4, 8):
        return Problem("length")
    day, month = int(keys[:2]), int(keys[2:4])
    if len(keys) == 8:
        try:
            value = date(int(keys[4:]), month, day)
        except ValueError:
            return Problem("no-such-date")
    else:
        found = _next_date(day, month, today)
        if found is None:
            return Problem("no-such-date")
        value = found
    if value < today and future_only:
        return Problem("past")
    if (today - value).days > MAX_DAYS_BACK or value.year > today.year + MAX_YEARS_AHEAD:
        return Problem("too-far")
    return value


def _next_date(day: int, month: int, today: date) -> date | None:
    """The first ``day``/``month`` on or after ``today``; None when no year has it."""
    for year in range(today.year, today.year + MAX_YEARS_AHEAD + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue  # 29 February in a common year, or 31 April in every year
        if candidate >= today:
            return candidate
    return None


def parse_time(keys: str) -> time | Problem:
    """``HHMM`` on the 24-hour clock: ``0930`` is 09:30; ``930`` is refused
    (three keys could be 09:30 or 93:0x), and so are ``2400`` and ``2560``."""
    if not keys:
        return Problem("empty")
    if not _digits_only(keys):
        return Problem("keys")
    if len(keys) != 4:
        return Problem("length")
    hour, minute = int(keys[:2]), int(keys[2:])
    if hour > 23 or minute > 59:
        return Problem("no-such-time")
    return time(hour, minute)


def parse_ticket_number(keys: str) -> str | Problem:
    """A ticket number as keyed: exactly its digits, check digit included."""
    if not keys:
        return Problem("empty")
    if not _digits_only(keys):
        return Problem("keys")
    if len(keys) != ticket_number.NUMBER_DIGITS:
        return Problem("length")
    if not ticket_number.is_valid(keys):
        return Problem("check-digit")
    if ticket_number.id_for_number(keys) is None:
        return Problem("never-issued")
    return keys
